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
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


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
