"""The Redis store: answers shared by every worker and replica that points at one Redis."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from relay_cache._codec import Answer, decode, encode
from relay_core.plugin import PluginNotInstalled, get_logger

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RETRY_AFTER", "RedisCache", "connect", "require"]

_log = get_logger("relay.cache")

# While Redis does not answer, calls skip the cache for this long before one of them
# tries again: an outage costs each call nothing, not a connect timeout.
RETRY_AFTER = 1.0
# A cache that answers slower than the provider would be worse than none; on loopback or
# a LAN Redis answers in well under a millisecond.
TIMEOUT = 0.5


def require() -> None:
    """Raise :class:`PluginNotInstalled` naming the extra when the ``redis`` library is
    missing (checked when the store is opened, so the call that asks says why)."""
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        raise PluginNotInstalled(
            "redis",
            "'relay-cache[redis]'",
            what="the redis client library (for plugins.cache backend: redis)",
        ) from None


def connect(url: str) -> Redis:
    """A ``redis.asyncio`` client for ``url`` (:func:`require` said it is installed)."""
    from redis.asyncio import Redis

    return Redis.from_url(
        url,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        # The store retries nothing itself: a failed call is a miss, the next one asks.
        retry_on_timeout=False,
    )


class RedisCache:
    """Answers in Redis under ``prefix`` + the SHA-256 of the hub's key, so no request
    text is ever in a key name. Each answer is stored with Redis's own expiry (``ttl``);
    the total is bounded by Redis's ``maxmemory``, and which answers go first by its
    ``maxmemory-policy`` (``allkeys-lru`` is the one to set for a cache).

    Failures never reach the call: a Redis that does not answer makes every call a miss,
    logged once per outage (``cache.unavailable``, then ``cache.recovered``); for
    :data:`RETRY_AFTER` seconds after a failure the store does not even try. A
    ``redis.asyncio`` client belongs to one event loop, so the store keeps one client per
    loop it is used from (the hub's sync API runs on a loop of its own).
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float | None,
        max_bytes: int,
        prefix: str = "relay:cache:",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.prefix = prefix
        self._clock = clock
        self._clients: dict[asyncio.AbstractEventLoop, Redis] = {}
        self._down_until = 0.0
        self._down = False

    @property
    def available(self) -> bool:
        """False from a failure until Redis answers again."""
        return not self._down

    def key(self, key: str) -> str:
        """The Redis key of the hub's ``key``."""
        return self.prefix + hashlib.sha256(key.encode()).hexdigest()

    async def get(self, key: str) -> Answer | None:
        client = self._client()
        if client is None:
            return None
        try:
            raw = await client.get(self.key(key))
        except Exception as error:  # the client raises more than RedisError (OSError...)
            self._failed(error)
            return None
        self._answered()
        if raw is None:
            return None
        try:
            return decode(raw.decode() if isinstance(raw, bytes) else raw)
        except Exception as error:  # corrupt, or a Response that changed shape
            _log.warning("cache.unreadable", key=key, error=repr(error))
            await self._forget(client, key)
            return None

    async def put(self, key: str, response: Answer) -> None:
        text = encode(response).encode()
        if len(text) > self.max_bytes:
            _log.debug("cache.too_big", key=key, size=len(text), max_bytes=self.max_bytes)
            return
        client = self._client()
        if client is None:
            return
        # Milliseconds, so a fractional ttl is kept as given.
        expiry = None if self.ttl is None else max(1, round(self.ttl * 1000))
        try:
            await client.set(self.key(key), text, px=expiry)
        except Exception as error:
            self._failed(error)
            return
        self._answered()

    async def aclose(self) -> None:
        """Close this loop's client; a later call opens a new one. Clients of loops that
        have ended went with their loop's sockets."""
        clients, self._clients = self._clients, {}
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - aclose is always awaited on a loop
            return
        client = clients.pop(loop, None)
        if client is not None:
            await client.aclose()
        for other, client in clients.items():
            if other.is_running():  # the hub's sync twin's loop, in its own thread
                done = asyncio.run_coroutine_threadsafe(client.aclose(), other)
                await asyncio.wrap_future(done)

    # -- internals ------------------------------------------------------------------------

    def _client(self) -> Redis | None:
        if self._down and self._clock() < self._down_until:
            return None
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for gone in [other for other in self._clients if other.is_closed()]:
                del self._clients[gone]
            client = self._clients[loop] = connect(self.url)
        return client

    def _failed(self, error: BaseException) -> None:
        self._down_until = self._clock() + RETRY_AFTER
        if not self._down:
            self._down = True
            _log.error(
                "cache.unavailable",
                redis=_where(self.url),
                error=f"{type(error).__name__}: {error}",
                note="calls go on without the response cache until Redis answers",
            )

    def _answered(self) -> None:
        if self._down:
            self._down = False
            _log.warning("cache.recovered", redis=_where(self.url))

    async def _forget(self, client: Redis, key: str) -> None:
        try:
            await client.delete(self.key(key))
        except Exception as error:
            self._failed(error)


def _where(url: str) -> str:
    """``url`` without its password, for logs."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return parts._replace(netloc=user + host).geturl()
