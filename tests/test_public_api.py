"""The public API is exactly what ``relay_core.__all__`` lists, and all of it resolves."""

from __future__ import annotations

import ast
import importlib
from collections import Counter
from pathlib import Path

import pytest

import relay_core


def test_all_is_exact() -> None:
    public = {
        name
        for name in dir(relay_core)
        if not name.startswith("_") and not isinstance(getattr(relay_core, name), type(relay_core))
    }
    # Lazily provided names are public too.
    public.add("configure_logging")
    assert sorted(relay_core.__all__) == sorted(public | {"__version__"})


def test_every_exported_name_resolves_and_is_documented() -> None:
    for name in relay_core.__all__:
        value = getattr(relay_core, name)
        if isinstance(value, type) or (callable(value) and not hasattr(value, "__args__")):
            assert value.__doc__, f"{name} has no docstring"


def test_all_is_sorted() -> None:
    assert relay_core.__all__ == sorted(relay_core.__all__)


def test_each_public_name_is_written_once() -> None:
    """One line a name (``from m import X as X`` under ``TYPE_CHECKING``): there is no
    second list (``__all__``, a lazy table) to forget when a name is added."""
    source = Path(relay_core.__file__).read_text(encoding="utf-8")
    spelled = Counter[str]()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.alias):
            spelled[node.asname or node.name] += 1
        elif isinstance(node, ast.Name):
            spelled[node.id] += 1
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            spelled[node.value] += 1
    imported = set(relay_core.__all__) - {"__version__"}  # defined here, named to __all__
    assert {name: spelled[name] for name in imported if spelled[name] != 1} == {}


def test_a_name_resolves_to_its_defining_modules_object_and_is_typed_there() -> None:
    imports = _type_checking_imports()
    assert sorted([*imports, "__version__"]) == relay_core.__all__
    for name, module in imports.items():
        assert getattr(relay_core, name) is getattr(importlib.import_module(module), name)


def _type_checking_imports() -> dict[str, str]:
    """What mypy and pyright read: the re-exports of the ``TYPE_CHECKING`` block."""
    (block,) = [
        node
        for node in ast.parse(Path(relay_core.__file__).read_text(encoding="utf-8")).body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    found = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom)
        assert statement.module
        for alias in statement.names:
            assert alias.asname == alias.name, f"{alias.name} is imported but not re-exported"
            found[alias.name] = statement.module
    return found


def test_star_import_gives_the_public_api() -> None:
    namespace: dict[str, object] = {}
    exec("from relay_core import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(relay_core.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="'relay_core' has no attribute 'Hubb'"):
        relay_core.Hubb  # noqa: B018 - the look-up is the test
