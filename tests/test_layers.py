"""The core's layers hold: no module imports from a layer above its own, and imports inside
functions are kept for cold start only.

The layers are data in :mod:`relay_core._architecture`; this reads every module of
``relay_core`` with :mod:`ast` and names each import that breaks a rule, as
``file:line: rule``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import relay_core
from relay_core._architecture import DEFERRED_CORE, DEFERRED_THIRD_PARTY, LAYERS, layer_of

ROOT = Path(relay_core.__file__).parent
REPO = ROOT.parent

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The modules an import statement loads: ``from relay_core import errors`` is the
    module ``relay_core.errors``, ``from relay_core import Hub`` is the facade."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package.pop()
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    for alias in node.names:
        full = f"{base}.{alias.name}"
        yield full if full in MODULES else base


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, and whether it is inside a function."""

    def walk(
        node: ast.AST, in_function: bool
    ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_function
            else:
                inside = in_function or isinstance(
                    child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
                )
                yield from walk(child, inside)

    yield from walk(tree, False)


def _deferred_third_party(target: str) -> bool:
    return any(target == name or target.startswith(name + ".") for name in DEFERRED_THIRD_PARTY)


def violations(module: str, source: str, path: str) -> Iterator[str]:
    """Each import of ``module`` that breaks a rule, as ``path:line: rule``."""
    own = layer_of(module)
    tree = ast.parse(source)
    for node, in_function in _imports(tree):
        for target in _targets(module, node):
            where = f"{path}:{node.lineno}: {module} imports {target}"
            core = target == "relay_core" or target.startswith("relay_core.")
            if in_function and (module, target) in DEFERRED_CORE:
                continue
            if core:
                theirs = layer_of(target)
                if own is not None and theirs is not None and theirs > own:
                    yield (
                        f"{where}, of the layer {LAYERS[theirs][0]!r} above its own"
                        f" ({LAYERS[own][0]!r})"
                    )
                elif in_function and theirs != len(LAYERS) - 1:
                    yield f"{where} inside a function; import it at module level"
            elif in_function and not _deferred_third_party(target):
                yield (
                    f"{where} inside a function, and it is not one of the heavy modules"
                    " of relay_core._architecture.DEFERRED_THIRD_PARTY; import it at"
                    " module level"
                )


def test_every_module_is_in_a_layer() -> None:
    assert [m for m in MODULES if layer_of(m) is None] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_respect_the_layers(module: str) -> None:
    path = MODULES[module]
    found = list(violations(module, path.read_text(), str(path.relative_to(REPO))))
    assert found == [], "\n".join(found)


def test_deferred_core_imports_are_still_made() -> None:
    made = set()
    for module, path in MODULES.items():
        for node, in_function in _imports(ast.parse(path.read_text())):
            if in_function:
                made.update((module, t) for t in _targets(module, node))
    assert sorted(set(DEFERRED_CORE) - made) == []


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("relay_core.types", "from relay_core.hub import Hub\n", "above its own"),
        (
            "relay_core.config",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from relay_core.routing import Router\n",
            "above its own",
        ),
        ("relay_core.tools", "def f():\n    from relay_core.hub import Hub\n", "above its own"),
        ("relay_core.tools", "def f():\n    import json\n", "heavy modules"),
        ("relay_core.routing", "from relay_core import Hub\n", "'facades' above"),
    ],
)
def test_the_rules_catch_what_they_name(module: str, source: str, rule: str) -> None:
    found = list(violations(module, source, "x.py"))
    assert len(found) == 1, found
    assert rule in found[0]
    assert found[0].startswith("x.py:")


def test_allowed_imports_pass() -> None:
    source = (
        "from relay_core.types import Request\n"
        "def f():\n    import httpx\n    import keyring.errors\n"
    )
    assert list(violations("relay_core.http", source, "x.py")) == []
