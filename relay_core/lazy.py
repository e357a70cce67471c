"""Names a package exports without importing them until first use (PEP 562).

For ``relay_core`` itself and for plugins, whose entry-point module is imported whenever
plugins load and must stay light::

    # relay_acme/__init__.py
    from relay_core.lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(
        __name__, globals(), {"AcmeSettings": "relay_acme._settings"}
    )

``dir()`` lists the module's own names too: pluggy finds hook implementations through it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports", "typed_exports"]


def lazy_exports(
    module: str,
    namespace: dict[str, Any],
    exports: Mapping[str, str],
    *,
    listed: Iterable[str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` importing ``exports[name]`` (a module path) on first
    access and keeping the value in ``namespace``, and the matching ``__dir__``: the
    module's names and the exports, or exactly ``listed`` when given (a package whose
    ``dir()`` is its public API)."""

    def __getattr__(name: str) -> Any:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")

        value = getattr(importlib.import_module(where), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(listed if listed is not None else {*namespace, *exports})

    return __getattr__, __dir__


def typed_exports(
    module: str, namespace: dict[str, Any], *, also: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``lazy_exports`` for a package whose exports are written once, as the
    ``from m import Name as Name`` lines of its ``if TYPE_CHECKING:`` block::

        if TYPE_CHECKING:
            from relay_acme._settings import AcmeSettings as AcmeSettings

        __getattr__, __dir__ = typed_exports(__name__, globals())

    Type checkers read those lines (the redundant alias is how a typed package marks a
    re-export); at run time the block is read from the module's source on the first
    attribute access, not at import. ``__all__`` is those names and ``also`` (names the
    module defines itself), sorted.
    """
    table: dict[str, str] = {}

    def exports() -> dict[str, str]:
        if not table:
            table.update(_type_checking_reexports(module, namespace))
        return table

    def public() -> list[str]:
        return sorted({*exports(), *also})

    def __getattr__(name: str) -> Any:
        if name == "__all__":
            namespace["__all__"] = value = public()
            return value
        where = exports().get(name)
        if where is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    return __getattr__, public


def _type_checking_reexports(module: str, namespace: dict[str, Any]) -> dict[str, str]:
    """``{name: defining module}`` for each ``from m import name as name`` in the
    module's top-level ``if TYPE_CHECKING:`` blocks."""
    import ast  # only when a package's exports are first read

    source = namespace["__loader__"].get_source(module)
    if source is None:
        raise ImportError(f"{module}: its exports are read from its source, which is missing")
    package = namespace.get("__package__") or module
    found: dict[str, str] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"):
            continue
        for statement in node.body:
            if not isinstance(statement, ast.ImportFrom):
                continue
            where = importlib.util.resolve_name(
                "." * statement.level + (statement.module or ""), package
            )
            for alias in statement.names:
                if alias.asname == alias.name:
                    found[alias.name] = where
    return found
