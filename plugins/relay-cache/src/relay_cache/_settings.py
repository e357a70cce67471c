"""The catalog's ``plugins.cache`` mapping, checked, and the store it asks for."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from attrs import frozen

from relay_core.plugin import ConfigError

if TYPE_CHECKING:
    from relay_core.plugin import ResponseCache

__all__ = ["DEFAULT_TTL", "SettingError", "Settings", "default_path", "open_store"]

Backend = Literal["memory", "disk", "redis"]

DEFAULT_TTL = 86_400.0
MiB = 1024 * 1024
# (max_entries, max_bytes) by backend: a process's memory is dearer than a disk's. Redis
# bounds its total itself (maxmemory), so there max_bytes is the largest answer kept.
DEFAULT_BOUNDS: dict[str, tuple[int, int]] = {
    "memory": (10_000, 64 * MiB),
    "disk": (100_000, 1024 * MiB),
    "redis": (0, 4 * MiB),
}
KNOWN = ("backend", "max_bytes", "max_entries", "path", "prefix", "ttl", "url")
_SCHEMES = ("redis://", "rediss://", "unix://")

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3}
_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3})
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def default_path() -> Path:
    """``$RELAY_CACHE_DIR/responses.db``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    directory = os.environ.get("RELAY_CACHE_DIR")
    if directory:
        return Path(directory).expanduser() / "responses.db"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "relay" / "responses.db"


class SettingError(ConfigError):
    """A bad setting of ``plugins.cache``; ``key`` names it, so a check that has the
    catalog can point at its line."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def _bad(key: str, what: str, value: object) -> SettingError:
    return SettingError(f"plugins.cache.{key} must be {what} (got {value!r})", key)


def _only(key: str, backend: str) -> SettingError:
    return SettingError(f"plugins.cache.{key} applies only to backend: {backend}", key)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _size(value: object) -> int | None:
    # YAML users write `max_bytes: 256 MiB` rather than count the digits of 268435456.
    if _whole(value):
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match and match[2].lower() in _UNITS:
            return int(float(match[1]) * _UNITS[match[2].lower()])
    return None


@frozen(kw_only=True)
class Settings:
    """What ``plugins.cache`` says, with every default filled in."""

    backend: Backend = "memory"
    ttl: float | None = DEFAULT_TTL
    max_entries: int = DEFAULT_BOUNDS["memory"][0]
    max_bytes: int = DEFAULT_BOUNDS["memory"][1]
    path: Path | None = None
    url: str | None = None
    prefix: str = "relay:cache:"
    clock: Callable[[], float] = time.time

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Settings:
        """Check ``raw`` strictly; a :class:`ConfigError` names the first bad setting.

        ``clock`` (a callable returning Unix seconds) is accepted from code only, so
        tests can move time without sleeping; YAML cannot write one.
        """
        if not isinstance(raw, Mapping):
            raise ConfigError(f"plugins.cache must be a mapping of settings (got {raw!r})")
        for key in raw:
            if key not in (*KNOWN, "clock"):
                raise ConfigError(
                    f"plugins.cache has no setting {key!r}; the settings are {', '.join(KNOWN)}"
                )
        backend = raw.get("backend", "memory")
        if backend not in DEFAULT_BOUNDS:
            raise _bad("backend", "memory, disk or redis", backend)
        entries_default, bytes_default = DEFAULT_BOUNDS[backend]

        ttl = raw.get("ttl", DEFAULT_TTL)
        if ttl is not None and not (
            isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and 0 < ttl < math.inf
        ):
            raise _bad("ttl", "a number of seconds above 0, or null to keep answers forever", ttl)

        max_entries = raw.get("max_entries", entries_default)
        if backend == "redis" and "max_entries" in raw:
            raise SettingError(
                "plugins.cache.max_entries does not apply to backend: redis; Redis bounds "
                "the cache with its maxmemory (set maxmemory-policy allkeys-lru)",
                "max_entries",
            )
        if backend != "redis" and (not _whole(max_entries) or max_entries < 1):
            raise _bad("max_entries", "a whole number of answers, 1 or more", max_entries)

        max_bytes = _size(raw.get("max_bytes", bytes_default))
        if max_bytes is None or max_bytes < 1:
            raise _bad(
                "max_bytes", "a size in bytes above 0, like 67108864 or '64 MiB'", raw["max_bytes"]
            )

        path: Path | None = None
        if "path" in raw:
            if backend != "disk":
                raise _only("path", "disk")
            if not isinstance(raw["path"], (str, os.PathLike)) or not str(raw["path"]).strip():
                raise _bad("path", "the path of a SQLite file", raw["path"])
            path = Path(raw["path"]).expanduser()
        elif backend == "disk":
            path = default_path()

        url = raw.get("url")
        if backend == "redis":
            # The URL is not echoed: it may carry Redis's password.
            if not isinstance(url, str) or not url.startswith(_SCHEMES):
                raise SettingError(
                    "plugins.cache.url must be the URL of a Redis server, like "
                    "redis://host:6379/0 (rediss:// for TLS, unix:// for a socket)",
                    "url",
                )
        elif url is not None:
            raise _only("url", "redis")
        prefix = raw.get("prefix", "relay:cache:")
        if backend != "redis" and "prefix" in raw:
            raise _only("prefix", "redis")
        if not isinstance(prefix, str) or not prefix:
            raise _bad("prefix", "a non-empty string starting every key", prefix)

        clock = raw.get("clock", time.time)
        if not callable(clock):
            raise _bad("clock", "a function returning Unix seconds", clock)
        return cls(
            backend=backend,
            ttl=None if ttl is None else float(ttl),
            max_entries=max_entries,
            max_bytes=max_bytes,
            path=path,
            url=url,
            prefix=prefix,
            clock=clock,
        )


def open_store(raw: Mapping[str, Any]) -> ResponseCache:
    """The store ``plugins.cache`` asks for (the factory the plugin registers)."""
    settings = Settings.parse(raw)
    bounds = {"max_entries": settings.max_entries, "max_bytes": settings.max_bytes}
    if settings.backend == "redis":
        from relay_cache._redis import RedisCache, require

        require()
        assert settings.url is not None
        return RedisCache(
            settings.url, ttl=settings.ttl, max_bytes=settings.max_bytes, prefix=settings.prefix
        )
    if settings.backend == "disk":
        from relay_cache._disk import DiskCache

        assert settings.path is not None
        return DiskCache(settings.path, ttl=settings.ttl, clock=settings.clock, **bounds)
    from relay_cache._memory import MemoryCache

    return MemoryCache(ttl=settings.ttl, clock=settings.clock, **bounds)
