"""relay-cache: the stores behind Relay's response cache (in memory, a SQLite file, Redis).

This module only registers; it stays light because it is imported whenever plugins load.
The stores (``relay_cache._memory``, ``relay_cache._disk``) are imported by the factory,
which the hub calls on the first call that uses the cache. When the hub asks the cache
is the core's business (``cache=True``, or ``cache: true`` in the catalog); how answers
are kept is this plugin's, configured under the catalog's ``plugins.cache``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from relay_core.plugin import hookimpl

if TYPE_CHECKING:
    from relay_core.plugin import CacheFactory, Catalog, ResponseCache

__all__: list[str] = []

__version__ = "0.1.0"


def _build(settings: Mapping[str, Any]) -> ResponseCache:
    from relay_cache._settings import open_store

    return open_store(settings)


@hookimpl
def relay_register_response_caches(register: Callable[[str, CacheFactory], None]) -> None:
    register("cache", _build)


def _check(catalog: Catalog) -> None:
    from relay_cache._settings import SettingError, Settings

    try:
        Settings.parse(catalog.plugins.get("cache", {}))
    except SettingError as error:
        raise catalog.error(error.reason, ("plugins", "cache", error.key)) from None


@hookimpl
def relay_register_settings(register: Callable[..., None]) -> None:
    # clock is given in code only (tests), but a catalog built in code may carry it.
    register(
        "cache",
        fields=("backend", "max_bytes", "max_entries", "path", "prefix", "ttl", "url", "clock"),
        check=_check,
    )
