"""Nothing outside ``relay_core/hub.py`` touches the hub's private members.

The tool loop, batch jobs, the engine and every plugin drive calls through the hub's
public API (``hub.pipeline``, ``hub.resolve``, ``hub.run_sync``, ...): a private member
may then change without breaking them. The check covers tests too, the plugins' and the
core's: a test that reaches into the hub tests what a user cannot rely on, and a
plugin's tests are the first code its author copies from. A test that needs a hub's
state reads it through a public, read-only property (``hub.response_cache``).

What counts as "the hub" is any name or attribute called ``hub`` or ``..._hub``
(``hub``, ``self.hub``, ``self._hub``, ``client.hub``, ``Hub``), as its own attribute
or through ``getattr(hub, "_name")``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HUB_MODULE = ROOT / "relay_core" / "hub.py"
CHECKED = ("relay_core", "plugins/*/src", "plugins/*/tests", "tests", "integration", "reliability")

_HUB_NAME = re.compile(r"(?:^|_)hub$", re.IGNORECASE)


def _is_hub(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return bool(_HUB_NAME.search(node.id))
    if isinstance(node, ast.Attribute):
        return bool(_HUB_NAME.search(node.attr))
    if isinstance(node, ast.Call):  # a hub returned by a call: state.hub()._x
        return _is_hub(node.func)
    return False


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _reaches(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return _private(node.attr) and _is_hub(node.value)
    # getattr(hub, "_name") and its kin: the same reach, spelt so grep misses it.
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
        and len(node.args) >= 2
        and _is_hub(node.args[0])
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and _private(node.args[1].value)
    )


def private_hub_reaches(source: str) -> list[tuple[int, str]]:
    """Each place in ``source`` that reads a private member of a hub: (line, code)."""
    found = [
        (node.lineno, ast.unparse(node))
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Attribute, ast.Call)) and _reaches(node)
    ]
    return sorted(found)


def _checked_files() -> Iterator[Path]:
    for pattern in CHECKED:
        for folder in sorted(ROOT.glob(pattern)):
            for path in sorted(folder.rglob("*.py")):
                if path != HUB_MODULE:
                    yield path


@pytest.mark.parametrize(
    ("code", "reach"),
    [
        ("hub._call(handle, request)", "hub._call"),
        ("self.hub._sync(coro)", "self.hub._sync"),
        ("self._hub._emit(event)", "self._hub._emit"),
        ("client.hub._sync(coro)", "client.hub._sync"),
        ("other_hub._options()", "other_hub._options"),
        ("Hub._options", "Hub._options"),
        ("store = hub._cache_store", "hub._cache_store"),
        ("state.hub()._configure_plugins()", "state.hub()._configure_plugins"),
        ("getattr(self.hub, '_redact')(request)", "getattr(self.hub, '_redact')"),
    ],
)
def test_a_reach_into_the_hub_is_found(code: str, reach: str) -> None:
    assert private_hub_reaches(code) == [(1, reach)]


@pytest.mark.parametrize(
    "code",
    [
        "hub.pipeline.call(handle, request)",
        "hub.run_sync(coro)",
        "hub.__class__",
        "pool_of(hub)._watcher",  # the pool's own member, not the hub's
        "github._token",
        "handle._adapter",
        "getattr(hub, 'catalog')",
    ],
)
def test_public_use_and_other_objects_pass(code: str) -> None:
    assert private_hub_reaches(code) == []


def test_the_check_covers_the_core_the_plugins_and_their_tests() -> None:
    files = {path.relative_to(ROOT).as_posix() for path in _checked_files()}
    assert "relay_core/tools.py" in files
    assert "relay_core/batch/_engine.py" in files
    assert "plugins/relay-redact/src/relay_redact/_restore.py" in files
    assert "plugins/relay-mock/tests/test_batch_jobs.py" in files
    assert "tests/test_hub.py" in files
    assert "relay_core/hub.py" not in files


def test_nothing_outside_hub_py_touches_a_private_member_of_the_hub() -> None:
    reaches = [
        f"{path.relative_to(ROOT)}:{line}: {code}"
        for path in _checked_files()
        for line, code in private_hub_reaches(path.read_text(encoding="utf-8"))
    ]
    assert not reaches, (
        "use the hub's public API (hub.pipeline, hub.resolve, hub.run_sync, ...) or add "
        "a documented one to relay_core/hub.py:\n" + "\n".join(reaches)
    )
