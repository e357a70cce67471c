"""Circuit breakers shared through Redis by every worker and replica of relay-serve.

With ``plugins.serve.state: redis://...`` the hub's breakers keep their state here
(``relay_core.plugin.BreakerStore``; the core's ``SharedBreaker`` caches what Redis says
for 0.5 s and falls back to in-process breakers while Redis does not answer). Each
operation is one Lua script, run atomically by Redis on Redis's own clock, so workers
never race on a read-modify-write and replicas' clocks need not agree.

A breaker is one hash, ``relay:breaker:<provider/model>``: state, failures, when it
opened, probes out and when the last was taken (milliseconds of Redis's clock). It
expires after an hour without calls (or twice ``reset_after``, if longer): an idle
breaker is closed, and names that stop being used do not pile up.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from relay_core.plugin import BreakerView

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from relay_core import BreakerSettings, Hub

__all__ = ["PREFIX", "RedisBreakerStore", "share_breakers", "state_url"]

PREFIX = "relay:breaker:"
# A breaker store slower than this is treated as down for the call (the local breaker
# decides): a breaker must never add more than a fraction of a call's latency.
TIMEOUT = 0.25
_IDLE = 3600

# Shared by the three scripts: load the hash, move an open breaker whose time is up to
# half open, and let probes lost with their process lapse after reset_after.
_LOAD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 's', 'f', 'o', 'p', 'pa')
local s = h[1] or 'closed'
local f = tonumber(h[2] or '0')
local o = tonumber(h[3] or '0')
local p = tonumber(h[4] or '0')
local pa = tonumber(h[5] or '0')
local reset = tonumber(ARGV[1])
if s == 'open' and now - o >= reset then s = 'half_open'; p = 0 end
if s == 'half_open' and p > 0 and now - pa >= reset then p = 0 end
"""
_SAVE = """
redis.call('HSET', KEYS[1], 's', s, 'f', f, 'o', o, 'p', p, 'pa', pa)
redis.call('EXPIRE', KEYS[1], ARGV[2])
local wait = 0
if s == 'open' then wait = o + reset - now end
"""
# ARGV: reset_after ms, expiry s, half_open_probes.
_ACQUIRE = (
    _LOAD
    + """
local allowed = 0
if s == 'closed' then
  allowed = 1
elseif s == 'half_open' and p < tonumber(ARGV[3]) then
  p = p + 1
  pa = now
  allowed = 1
end
"""
    + _SAVE
    + "return {allowed, s, f, wait}"
)
# ARGV: reset_after ms, expiry s, failures, failed (0/1), probe (0/1).
_RECORD = (
    _LOAD
    + """
if ARGV[5] == '1' and p > 0 then p = p - 1 end
if ARGV[4] == '1' then
  f = f + 1
  if s == 'half_open' or f >= tonumber(ARGV[3]) then
    s = 'open'
    o = now
    p = 0
  end
else
  s = 'closed'
  f = 0
  p = 0
end
"""
    + _SAVE
    + "return {s, f, wait}"
)
# ARGV: reset_after ms, expiry s.
_RELEASE = (
    _LOAD
    + """
if s == 'half_open' and p > 0 then p = p - 1 end
"""
    + _SAVE
    + "return 1"
)


def state_url(settings: object) -> str | None:
    """The Redis URL of ``plugins.serve.state`` when it names one, else ``None``
    (in-process state). Read through ``getattr`` so that this module does not depend
    on how the setting is spelled beyond its name."""
    state = getattr(settings, "state", None)
    url = getattr(state, "url", state)  # a parsed setting, or the URL itself
    if isinstance(url, str) and url.startswith(("redis://", "rediss://", "unix://")):
        return url
    return None


def share_breakers(hub: Hub, url: str | None) -> RedisBreakerStore | None:
    """Keep ``hub``'s circuit breakers in the Redis at ``url`` (``None``: leave them in
    this process). The caller closes the store it gets back when it shuts down."""
    if url is None:
        return None
    store = RedisBreakerStore(url)
    hub.pipeline.breakers.share(store)
    return store


class RedisBreakerStore:
    """``BreakerStore`` on Redis (``redis.asyncio``, imported on first use). A client
    belongs to one event loop, so the store keeps one per loop it is used from."""

    def __init__(self, url: str, *, prefix: str = PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._clients: dict[asyncio.AbstractEventLoop, tuple[Redis, dict[str, AsyncScript]]] = {}

    async def acquire(self, name: str, settings: BreakerSettings) -> tuple[bool, BreakerView]:
        allowed, state, failures, wait = await self._run(
            "acquire", name, settings, settings.half_open_probes
        )
        return bool(allowed), _view(state, failures, wait)

    async def record(
        self, name: str, settings: BreakerSettings, *, failed: bool, probe: bool
    ) -> BreakerView:
        state, failures, wait = await self._run(
            "record", name, settings, settings.failures, int(failed), int(probe)
        )
        return _view(state, failures, wait)

    async def release(self, name: str, settings: BreakerSettings) -> None:
        await self._run("release", name, settings)

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        loop = asyncio.get_running_loop()
        mine = clients.pop(loop, None)
        if mine is not None:
            await mine[0].aclose()
        for other, (client, _) in clients.items():
            if other.is_running():
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(client.aclose(), other))

    async def _run(self, script: str, name: str, settings: BreakerSettings, *args: int) -> Any:
        scripts = self._scripts()
        expiry = max(_IDLE, int(settings.reset_after * 2))
        reset_ms = max(1, round(settings.reset_after * 1000))
        return await scripts[script](keys=[self.prefix + name], args=[reset_ms, expiry, *args])

    def _scripts(self) -> dict[str, AsyncScript]:
        loop = asyncio.get_running_loop()
        known = self._clients.get(loop)
        if known is None:
            for gone in [other for other in self._clients if other.is_closed()]:
                del self._clients[gone]
            client = _connect(self.url)
            scripts = {
                "acquire": client.register_script(_ACQUIRE),
                "record": client.register_script(_RECORD),
                "release": client.register_script(_RELEASE),
            }
            known = self._clients[loop] = (client, scripts)
        return known[1]


def _connect(url: str) -> Redis:
    try:
        from redis.asyncio import Redis
    except ImportError:
        from relay_core.plugin import PluginNotInstalled

        raise PluginNotInstalled(
            "redis",
            "'relay-serve[redis]'",
            what="the redis client library (for plugins.serve.state: redis://...)",
        ) from None
    return Redis.from_url(
        url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, retry_on_timeout=False
    )


def _view(state: bytes | str, failures: int, wait_ms: int) -> BreakerView:
    text = state.decode() if isinstance(state, bytes) else state
    if text not in ("closed", "open", "half_open"):
        raise ValueError(f"Redis holds an unknown breaker state {text!r}")
    return BreakerView(text, int(failures), max(0, int(wait_ms)) / 1000)  # type: ignore[arg-type]
