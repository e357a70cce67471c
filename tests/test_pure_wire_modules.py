"""Adapters are thin classes over pure wire modules (issue 20, item 5): each module holds
one surface of a provider's wire format as functions of its JSON, with no class, no HTTP
and no adapter behind them, and no module of an adapter package outgrows one idea.

The check reads the source (``ast``), so it needs no plugin installed. A plugin whose
adapter is split lists its wire modules in ``WIRE`` (those that are plain functions of
JSON) and its name in ``SPLIT``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
WIRE: dict[str, tuple[str, ...]] = {
    "relay-gemini": ("payload", "parse", "events", "batches", "rpc", "count"),
    "relay-mistral": ("_payload", "_parse", "_events", "_batches"),
}
# Adapters split into wire modules; relay-openai's and relay-anthropic's wire modules
# also hold small value classes, so only their size is held here.
SPLIT = ("relay-anthropic", "relay-gemini", "relay-mistral", "relay-openai")
MAX_LINES = 500


def _package(plugin: str) -> Path:
    return PLUGINS / plugin / "src" / plugin.replace("-", "_")


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    ("plugin", "module"), [(plugin, name) for plugin, names in WIRE.items() for name in names]
)
def test_a_wire_module_is_functions_of_the_wire(plugin: str, module: str) -> None:
    package = _package(plugin)
    tree = ast.parse((package / f"{module}.py").read_text())
    classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    own = package.name
    # Only the plugin SDK and the plugin's other wire modules: never httpx (I/O is the
    # adapter's) and never the adapter (it builds on these, not the other way round).
    reached = {
        name
        for name in _imports(tree)
        if name.startswith(("httpx", "relay_"))
        and name != "relay_core.plugin"
        and name.removeprefix(own + ".") not in WIRE[plugin]
    }
    assert classes == []
    assert reached == set()


@pytest.mark.parametrize("plugin", SPLIT)
def test_no_module_of_a_split_adapter_outgrows_one_idea(plugin: str) -> None:
    package = _package(plugin)
    sizes = {
        str(path.relative_to(package)): len(path.read_text().splitlines())
        for path in package.rglob("*.py")
    }
    assert {name: size for name, size in sizes.items() if size > MAX_LINES} == {}
