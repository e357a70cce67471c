"""Plugins use only what is published: the core through its plugin SDK
(``relay_core.plugin``) and its application API (``relay_core``), each other through
public modules. Nothing private crosses a package boundary, so the core and each plugin
can change their insides without breaking a plugin that built on them.

The check reads the source (``ast``), so it needs no plugin installed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import relay_core
import relay_core.plugin

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
SOURCES = sorted(PLUGINS.glob("*/src/**/*.py"))
SDK = frozenset(relay_core.plugin.__all__)
# The application API minus what the SDK offers: a name the SDK has comes from the SDK.
APPLICATION = frozenset(relay_core.__all__) - SDK

def _private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def violations(source: str, package: str) -> list[tuple[int, str, str, str]]:
    """Each import in ``source`` (a module of ``package``) that crosses a boundary it may
    not: ``(line, module, name, why)``; ``name`` is ``""`` for ``import module``."""
    found: list[tuple[int, str, str, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            pairs = [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            pairs = [(node.module, alias.name) for alias in node.names]
        else:
            continue  # relative imports stay inside the package
        for module, name in pairs:
            why = _judge(module, name, package)
            if why:
                found.append((node.lineno, module, name, why))
    return found


def _judge(module: str, name: str, package: str) -> str | None:
    top = module.split(".")[0]
    if top == "relay_core":
        if module == "relay_core.plugin":
            return None if name in SDK else "not in relay_core.plugin.__all__"
        if module == "relay_core" and name:
            if name in SDK:
                return "offered by the plugin SDK: import it from relay_core.plugin"
            return None if name in APPLICATION else "not in relay_core.__all__"
        return "import the core through relay_core.plugin (or relay_core's own API)"
    if top.startswith("relay_") and top != package:
        if _private(module):
            return f"{module} is private to its plugin"
        if name.startswith("_"):
            return f"{name} is private to {module}"
    return None


def _package(path: Path) -> str:
    return path.relative_to(PLUGINS).parts[2]


def _relative(path: Path) -> str:
    return path.relative_to(PLUGINS.parent).as_posix()


def test_plugins_import_only_published_names() -> None:
    assert SOURCES, "no plugin sources found"
    problems = [
        f"{_relative(path)}:{line}: {module}{':' + name if name else ''}: {why}"
        for path in SOURCES
        for line, module, name, why in violations(path.read_text(), _package(path))
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("from relay_core.batch._types import Job", "import the core through"),
        ("from relay_core.hub import _parsed", "import the core through"),
        ("from relay_core.http import HttpClient", "import the core through"),
        ("import relay_core.streaming", "import the core through"),
        ("from relay_core.plugin import _MODULES", "not in relay_core.plugin.__all__"),
        ("from relay_core import Provider", "offered by the plugin SDK"),
        ("from relay_core import hub", "not in relay_core.__all__"),
        ("from relay_anthropic._adapter import AnthropicProvider", "private to its plugin"),
        ("from relay_gemini.wire import _http_status", "private to relay_gemini.wire"),
        ("import relay_openai._adapter", "private to its plugin"),
    ],
)
def test_a_crossing_is_reported(source: str, why: str) -> None:
    (found,) = violations(source, "relay_acme")
    assert why in found[3]


@pytest.mark.parametrize(
    "source",
    [
        "from relay_core.plugin import HttpClient, Provider, hookimpl",
        "from relay_core import Hub, load_catalog",
        "from relay_anthropic.messages import StructuredOutput",
        "from relay_acme._adapter import _Options",  # its own insides
        "from ._adapter import AcmeProvider",
        "import httpx",
    ],
)
def test_a_published_import_passes(source: str) -> None:
    assert violations(source, "relay_acme") == []
