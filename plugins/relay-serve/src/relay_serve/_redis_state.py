""":class:`~relay_serve._state.SharedState` in Redis, so that every worker of every
replica counts against the same limits (``plugins.serve.state: redis://...``).

Each operation is one Lua script (or one command), which Redis runs atomically: two
workers never both take the last unit, and no lease is granted from a count another
worker is changing. Time comes from the Redis server (``TIME``), not from the workers,
so replicas whose clocks differ still agree on which window they are in and when a
lease lapses.

Keys are ``relay:serve:`` + the caller's scope (plus the window start, in milliseconds,
for windows): scopes name keys by their catalog name, never by their secret. A store
that does not answer within ``timeout`` seconds, or refuses connections, raises
:class:`~relay_serve._state.StateUnavailable` at once (no retries: the caller decides).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from relay_serve._state import StateUnavailable

__all__ = ["PREFIX", "RedisState", "where"]

T = TypeVar("T")

PREFIX = "relay:serve:"
# Connections to Redis per worker. Every operation is one round trip of well under a
# millisecond, so a few dozen carry thousands of requests a second; a request that
# finds them all busy waits for one rather than opening a connection per request.
_CONNECTIONS = 64
_POOL_WAIT = 10.0

# The server's clock, in seconds, for the scripts below.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS[1] scope; ARGV: amount, limit (-1: none), window. Returns the wait as a string
# ("0": counted), since Lua numbers come back from Redis as integers.
_TAKE = (
    _NOW
    + """
local amount, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start = math.floor(now / window) * window
local key = KEYS[1] .. ':' .. string.format('%.0f', start * 1000)
local count = tonumber(redis.call('GET', key) or '0')
if limit >= 0 and count + amount > limit then
  return tostring(math.max(start + window - now, 0.001))
end
redis.call('INCRBY', key, amount)
redis.call('PEXPIRE', key, math.ceil((start + window - now) * 1000) + 1000)
return '0'
"""
)

# KEYS[1] scope; ARGV: window. The units counted in the current window.
_USED = (
    _NOW
    + """
local window = tonumber(ARGV[1])
local start = math.floor(now / window) * window
return tonumber(redis.call('GET', KEYS[1] .. ':' .. string.format('%.0f', start * 1000)) or '0')
"""
)

# Leases: a sorted set of holder -> deadline. Lapsed members are dropped first, in the
# same script, so a dead worker's places come back without anyone cleaning up.
_DROP_LAPSED = "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"

# The set itself expires when its last lease would lapse, so an idle key leaves nothing.
_EXPIRE_SET = """
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) - now) * 1000) + 1000)
end
"""

# KEYS[1] scope; ARGV: limit, holder, ttl. 1 when held.
_LEASE = (
    _NOW
    + _DROP_LAPSED
    + """
local limit, holder, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], holder) and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, holder)
"""
    + _EXPIRE_SET
    + "return 1\n"
)

# KEYS[1] scope; ARGV: ttl, holders... Only leases still held are extended.
_RENEW = (
    _NOW
    + _DROP_LAPSED
    + """
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
end
"""
    + _EXPIRE_SET
    + "return 1\n"
)

# KEYS[1] scope. The places held now.
_HELD = _NOW + _DROP_LAPSED + "return redis.call('ZCARD', KEYS[1])\n"

# KEYS[1] the once key, KEYS[2..] counters; ARGV[1] ttl in ms, ARGV[2..] amounts.
# Only counters that exist are added to: one the store lost is seeded again by the
# caller from its durable record, which holds this amount already.
_ADD_ONCE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBYFLOAT', KEYS[i], ARGV[i])
  end
end
return 1
"""


# Holds on spend counters: for each counter, a hash of holder -> amount and a sorted set
# of holder -> deadline. KEYS: counter, amounts, deadlines, for each counter; ARGV:
# holder, amount, ttl, then each counter's limit. {-1, '0'} when held, else the first
# counter it would pass (from 0) and what is held on it.
_RESERVE = (
    _NOW
    + """
local holder, amount, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local counters = #KEYS / 3
for i = 1, counters do
  local amounts, deadlines = KEYS[3 * i - 1], KEYS[3 * i]
  for _, lapsed in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', now)) do
    redis.call('HDEL', amounts, lapsed)
  end
  redis.call('ZREMRANGEBYSCORE', deadlines, '-inf', now)
  local held = 0
  for _, value in ipairs(redis.call('HVALS', amounts)) do
    held = held + tonumber(value)
  end
  local spent = tonumber(redis.call('GET', KEYS[3 * i - 2]) or '0')
  if spent + held + amount > tonumber(ARGV[3 + i]) then
    return {i - 1, tostring(held)}
  end
end
local expiry = math.ceil(ttl * 1000) + 1000
for i = 1, counters do
  redis.call('HSET', KEYS[3 * i - 1], holder, ARGV[2])
  redis.call('ZADD', KEYS[3 * i], now + ttl, holder)
  redis.call('PEXPIRE', KEYS[3 * i - 1], expiry)
  redis.call('PEXPIRE', KEYS[3 * i], expiry)
end
return {-1, '0'}
"""
)

# KEYS: amounts, deadlines, for each counter; ARGV[1] the holder.
_UNRESERVE = """
for i = 1, #KEYS, 2 do
  redis.call('HDEL', KEYS[i], ARGV[1])
  redis.call('ZREM', KEYS[i + 1], ARGV[1])
end
return 1
"""


def where(url: str) -> str:
    """``url`` without its user and password, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisState:
    """:class:`~relay_serve._state.SharedState` on the Redis at ``url``
    (``redis://[:password@]host:port/db``, ``rediss://`` for TLS). ``timeout`` bounds
    connecting and each answer, so a dead or hung store is noticed within it."""

    def __init__(self, url: str, *, timeout: float = 1.0, prefix: str = PREFIX) -> None:
        self.where = where(url)
        self._password = urlsplit(url).password or ""
        self._prefix = prefix
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=_CONNECTIONS,
            # Waiting for a free connection is load, not an outage (a busy worker
            # reads its answers late, holding connections longer): allow it far longer
            # than one answer, but not without bound. A dead store is still noticed at
            # once, by the connections that fail.
            timeout=_POOL_WAIT,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # No retries here: an outage must show at once, and the server's policy
            # (on_state_error) decides what a request does then.
            retry=Retry(NoBackoff(), 0),
        )
        self._client = redis.Redis(connection_pool=pool)
        self._take = self._client.register_script(_TAKE)
        self._used = self._client.register_script(_USED)
        self._lease = self._client.register_script(_LEASE)
        self._renew = self._client.register_script(_RENEW)
        self._held = self._client.register_script(_HELD)
        self._add_once = self._client.register_script(_ADD_ONCE)
        self._reserve = self._client.register_script(_RESERVE)
        self._unreserve = self._client.register_script(_UNRESERVE)

    def __repr__(self) -> str:
        return f"RedisState({self.where!r})"

    async def _call(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError) as error:
            # The message names the store without its password; the cause stays chained
            # for the operator's traceback.
            said = str(error).replace(self._password, "***") if self._password else str(error)
            raise StateUnavailable(
                f"the shared state at {self.where} did not answer ({type(error).__name__}: {said})"
            ) from error

    def _key(self, scope: str) -> str:
        return self._prefix + scope

    async def take(self, scope: str, amount: int, limit: int, window: float) -> float:
        wait: Any = await self._call(
            self._take(keys=[self._key(scope)], args=[amount, limit, window])
        )
        return float(wait)

    async def add(self, scope: str, amount: int, window: float) -> None:
        await self._call(self._take(keys=[self._key(scope)], args=[amount, -1, window]))

    async def used(self, scope: str, window: float) -> int:
        count: Any = await self._call(self._used(keys=[self._key(scope)], args=[window]))
        return int(count)

    async def lease(self, scope: str, limit: int, holder: str, ttl: float) -> bool:
        granted: Any = await self._call(
            self._lease(keys=[self._key(scope)], args=[limit, holder, ttl])
        )
        return bool(granted)

    async def renew(self, scope: str, holders: Sequence[str], ttl: float) -> None:
        if holders:
            await self._call(self._renew(keys=[self._key(scope)], args=[ttl, *holders]))

    async def release(self, scope: str, holder: str) -> None:
        await self._call(self._client.zrem(self._key(scope), holder))

    async def held(self, scope: str) -> int:
        count: Any = await self._call(self._held(keys=[self._key(scope)], args=[]))
        return int(count)

    async def add_once(self, once: str, amounts: Mapping[str, float], ttl: float) -> bool:
        keys = [self._key("once:" + once), *(self._key(scope) for scope in amounts)]
        args: list[str | int] = [_ms(ttl), *(repr(float(a)) for a in amounts.values())]
        added: Any = await self._call(self._add_once(keys=keys, args=args))
        return bool(added)

    async def totals(self, scopes: Sequence[str]) -> list[float | None]:
        if not scopes:
            return []
        values: Any = await self._call(self._client.mget([self._key(s) for s in scopes]))
        return [None if value is None else float(value) for value in values]

    async def seed(self, scope: str, value: float, ttl: float | None) -> None:
        expiry = None if ttl is None else _ms(ttl)
        await self._call(self._client.set(self._key(scope), repr(float(value)), nx=True, px=expiry))

    def _hold_keys(self, scope: str) -> list[str]:
        return [self._key("held:" + scope), self._key("held-until:" + scope)]

    async def reserve(
        self, limits: Mapping[str, float], holder: str, amount: float, ttl: float
    ) -> tuple[int, float] | None:
        keys = [key for scope in limits for key in (self._key(scope), *self._hold_keys(scope))]
        args: list[str | float] = [holder, repr(float(amount)), ttl]
        args += [repr(float(limit)) for limit in limits.values()]
        position, held = await self._call(self._reserve(keys=keys, args=args))
        return None if int(position) < 0 else (int(position), float(held))

    async def unreserve(self, scopes: Sequence[str], holder: str) -> None:
        if scopes:
            keys = [key for scope in scopes for key in self._hold_keys(scope)]
            await self._call(self._unreserve(keys=keys, args=[holder]))

    async def ping(self) -> None:
        """Raise :class:`StateUnavailable` unless the store answers."""
        await self._call(self._client.ping())

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._client.connection_pool.disconnect()
