"""OpenRouter's public model list as a ``live_api`` pricing source, through a cache.

``price()`` never touches the network: it reads the cache file that :meth:`refresh`
(run by ``relay pricing refresh``) writes. The file records when it was fetched; past
the TTL it is not used, so the snapshot answers instead, and one warning per process
says to refresh. A missing or unreadable cache is a miss with a warning, never a crash.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relay_pricing_snapshot._convert import to_model_info, validate

if TYPE_CHECKING:
    from relay_core.plugin import CostSource, ModelInfo, ModelPrice

__all__ = [
    "CACHE_FILE",
    "DEFAULT_TTL",
    "DEFAULT_URL",
    "OpenRouterSource",
    "cache_dir",
    "ttl_seconds",
]

DEFAULT_URL = "https://openrouter.ai/api/v1/models"
DEFAULT_TTL = 86_400.0
CACHE_FILE = "openrouter-models.json"
_FORMAT = 1
_TIMEOUT = 20.0
# How long a look at the cache file holds. price() runs on every call of every hub, and
# a stat of a file under the home directory cost about as much as the rest of pricing
# together. A refresh by another process (or another source) is seen within this, one
# by this source at once.
_RECHECK = 1.0

log = logging.getLogger("relay.pricing.openrouter")
# (kind, path) of the warnings already logged: one of each per process, not per call.
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _warn_once(kind: str, path: Path, message: str, *args: object) -> None:
    key = (kind, str(path))
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    # Never having refreshed is a choice (live prices are opt-in), not a problem.
    level = logging.INFO if kind == "missing" else logging.WARNING
    log.log(level, message, *args)


def cache_dir() -> Path:
    """``$RELAY_PRICING_CACHE_DIR``, else ``$XDG_CACHE_HOME/relay``, else
    ``~/.cache/relay``."""
    explicit = os.environ.get("RELAY_PRICING_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "relay"


def ttl_seconds() -> float:
    """``$RELAY_PRICING_TTL`` in seconds (default a day); a value that is not a
    positive number is ignored, with a warning."""
    raw = os.environ.get("RELAY_PRICING_TTL")
    if not raw:
        return DEFAULT_TTL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        _warn_once(
            "ttl",
            Path(raw),
            "RELAY_PRICING_TTL=%r is not a number of seconds; using %d",
            raw,
            DEFAULT_TTL,
        )
        return DEFAULT_TTL
    return value


class _Cache:
    """What one cache file holds, indexed: read once per version of the file."""

    def __init__(
        self, stamp: tuple[int, int], fetched_at: float, index: dict[tuple[str, str], ModelInfo]
    ) -> None:
        self.stamp = stamp
        self.fetched_at = fetched_at
        self.index = index


class OpenRouterSource:
    """OpenRouter's models API (tier ``live_api``), read from its on-disk cache.

    ``directory``, ``url``, ``ttl`` and ``clock`` default to the environment
    (``$RELAY_PRICING_CACHE_DIR``, ``$RELAY_OPENROUTER_MODELS_URL``,
    ``$RELAY_PRICING_TTL``) and :func:`time.time`, read at each use so a changed
    environment is seen.
    """

    name = "OpenRouter models API"
    tier: CostSource = "live_api"

    def __init__(
        self,
        *,
        directory: Path | None = None,
        url: str | None = None,
        ttl: float | None = None,
        clock: Any = None,
    ) -> None:
        self._directory = directory
        self._url = url
        self._ttl = ttl
        self._clock = clock or time.time
        self._cache: _Cache | None = None
        self._lock = threading.Lock()
        # The last look at the file: when (by ``clock``), at which path, and what it
        # gave (the cache, or None for a miss).
        self._looked: tuple[float, Path, _Cache | None] | None = None
        self._path: tuple[tuple[str | None, ...], Path] | None = None

    def __repr__(self) -> str:
        return f"OpenRouterSource(path={str(self.path)!r})"

    @property
    def path(self) -> Path:
        """The cache file."""
        if self._directory is not None:
            return self._directory / CACHE_FILE
        # Built again only when the variables that place it change.
        environ = os.environ
        key = (
            environ.get("RELAY_PRICING_CACHE_DIR"),
            environ.get("XDG_CACHE_HOME"),
            environ.get("HOME"),
        )
        if self._path is None or self._path[0] != key:
            self._path = (key, cache_dir() / CACHE_FILE)
        return self._path[1]

    @property
    def url(self) -> str:
        """Where :meth:`refresh` fetches from."""
        return self._url or os.environ.get("RELAY_OPENROUTER_MODELS_URL") or DEFAULT_URL

    # -- reading (no network) -------------------------------------------------------------

    def price(self, provider: str, model: str) -> ModelPrice | None:
        """The price of ``provider/model`` in a fresh cache; ``None`` when the cache is
        missing, unreadable or stale, or does not know the model."""
        index = self._fresh_index()
        found = index.get((provider, model)) if index else None
        return None if found is None else found.price

    def models(self, provider: str | None = None) -> Iterable[ModelInfo]:
        """Every model of a fresh cache (of ``provider`` when given); empty otherwise."""
        index = self._fresh_index() or {}
        return [info for info in index.values() if provider is None or info.provider == provider]

    def _fresh_index(self) -> dict[tuple[str, str], ModelInfo] | None:
        cache = self._read()
        if cache is None:
            return None
        ttl = self._ttl if self._ttl is not None else ttl_seconds()
        age = self._clock() - cache.fetched_at
        if age > ttl:
            _warn_once(
                "stale",
                self.path,
                "OpenRouter prices in %s are %.1f hours old (TTL %.1f hours): not used; "
                "run `relay pricing refresh`",
                self.path,
                age / 3600,
                ttl / 3600,
            )
            return None
        return cache.index

    def _read(self) -> _Cache | None:
        path = self.path
        now = self._clock()
        looked = self._looked
        if looked is not None and looked[1] == path and 0.0 <= now - looked[0] < _RECHECK:
            return looked[2]
        found = self._look(path)
        self._looked = (now, path, found)
        return found

    def _look(self, path: Path) -> _Cache | None:
        try:
            status = path.stat()
        except FileNotFoundError:
            _warn_once(
                "missing",
                path,
                "no OpenRouter price cache at %s: run `relay pricing refresh`",
                path,
            )
            return None
        except OSError as error:
            _warn_once("unreadable", path, "cannot read the OpenRouter price cache: %s", error)
            return None
        stamp = (status.st_mtime_ns, status.st_size)
        with self._lock:
            if self._cache is not None and self._cache.stamp == stamp:
                return self._cache
            try:
                self._cache = _parse(path, stamp)
            except (OSError, ValueError, KeyError, TypeError) as error:
                self._cache = None
                _warn_once(
                    f"corrupt:{stamp}",
                    path,
                    "the OpenRouter price cache %s is unreadable (%s): not used; "
                    "run `relay pricing refresh`",
                    path,
                    error,
                )
            return self._cache

    # -- fetching -------------------------------------------------------------------------

    def refresh(self) -> str:
        """Fetch OpenRouter's model list, check its shape and replace the cache; return
        one line saying what was fetched. Raises :class:`relay_core.ProviderError`
        (``ProviderUnavailable``, ``Timeout``, ``RateLimitError``, ``MalformedResponse``)
        on failure, leaving the cache as it was."""
        url = self.url
        body = _fetch(url)
        try:
            entries = validate(body)
        except ValueError as error:
            from relay_core.plugin import MalformedResponse

            raise MalformedResponse(
                f"{url} answered something that is not a model list: {error}",
                provider="openrouter",
            ) from error
        now = self._clock()
        _write_atomic(
            self.path,
            {
                "format": _FORMAT,
                "url": url,
                "fetched_at": now,
                "fetched": _iso(now),
                "data": list(entries),
            },
        )
        self._looked = None  # this process sees its own refresh at once
        return f"fetched {len(entries)} models from {url}"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")


def _parse(path: Path, stamp: tuple[int, int]) -> _Cache:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise ValueError("not a Relay OpenRouter cache (format 1)")
    fetched_at = document["fetched_at"]
    if not isinstance(fetched_at, (int, float)) or isinstance(fetched_at, bool):
        raise ValueError("'fetched_at' is not a timestamp")
    as_of = _iso(fetched_at)[:10]
    index: dict[tuple[str, str], ModelInfo] = {}
    for entry in validate(document):
        for info in to_model_info(entry, as_of=as_of):
            # Two OpenRouter ids naming one first-party model: the first listed wins.
            index.setdefault((info.provider, info.model), info)
    return _Cache(stamp, float(fetched_at), index)


def _fetch(url: str) -> Any:
    import httpx

    from relay_core.plugin import (
        MalformedResponse,
        ProviderError,
        ProviderUnavailable,
        RateLimitError,
        Timeout,
    )

    try:
        response = httpx.get(
            url, timeout=_TIMEOUT, headers={"accept": "application/json"}, follow_redirects=True
        )
    except httpx.TimeoutException as error:
        raise Timeout(f"no answer from {url} in {_TIMEOUT:.0f} s", provider="openrouter") from error
    except httpx.HTTPError as error:
        raise ProviderUnavailable(f"cannot reach {url}: {error}", provider="openrouter") from error
    status = response.status_code
    if status >= 400:
        error_class: type[ProviderError] = (
            ProviderUnavailable
            if status >= 500
            else RateLimitError
            if status == 429
            else ProviderError
        )
        raise error_class(
            f"{url} answered HTTP {status}: {response.text[:200]}",
            provider="openrouter",
            status_code=status,
        )
    try:
        return response.json()
    except ValueError as error:
        raise MalformedResponse(
            f"{url} answered something that is not JSON", provider="openrouter", status_code=status
        ) from error


def _write_atomic(path: Path, document: dict[str, Any]) -> None:
    # A reader sees the old file or the new one, never half of one: write beside it,
    # then rename over it.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
