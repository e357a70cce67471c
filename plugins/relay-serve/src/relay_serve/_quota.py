"""Per-key limits, counted in the shared state so that every worker and replica enforces
one limit: requests and tokens per minute (fixed one-minute windows of wall-clock time)
and requests being answered at once (leases).

A request is admitted by :meth:`Quota.admit`, in this order: refused when the key's
tokens this minute already reach ``tokens_per_minute`` (a request's tokens are known
only once answered); a place among its ``max_concurrent`` leased; one of its
``requests_per_minute`` taken (the lease given back when that is refused). The
:class:`Admission` it returns is closed when the answer or stream ends, or the client
leaves: it gives back the lease and counts the tokens the answer used (the prompt's
estimate plus what was streamed, for a stream cut short).

Leases lapse ``lease_ttl`` seconds after they were last renewed; one background task
per worker renews every lease of its requests in flight each ``lease_ttl / 3``, so a
worker that is killed gives its places back within ``lease_ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from relay_core.plugin import (
    Usage,
    estimate_tokens,
)
from relay_serve._state import LocalState, SharedState, StateUnavailable, window_start
from relay_serve._tally import StreamTally

if TYPE_CHECKING:
    from relay_core.plugin import Request
    from relay_serve._settings import ApiKey, ServeSettings

__all__ = ["Admission", "Quota", "RateLimited", "open_state"]

WINDOW = 60.0
LEASE_TTL = 10.0
# What a client refused for concurrency is told to wait: a place frees up when one of
# its own requests ends, which nobody can predict; a second does not invite a stampede.
_CONCURRENCY_RETRY = 1.0


class RateLimited(Exception):
    """The key is over one of its limits. ``kind`` is OpenAI's error type (``requests``
    or ``tokens``); ``headers`` are the ``retry-after`` and ``x-ratelimit-*`` headers
    OpenAI sends with such a refusal."""

    def __init__(self, message: str, kind: str, retry_after: float, headers: dict[str, str]):
        super().__init__(message)
        self.kind = kind
        self.retry_after = max(1.0, float(math.ceil(retry_after)))
        self.headers = {"retry-after": str(int(self.retry_after)), **headers}


def open_state(settings: ServeSettings) -> SharedState:
    """The shared state ``settings`` ask for: Redis behind the outage policy, or this
    process's own."""
    if settings.state is None:
        return LocalState()
    from relay_serve._failover import Failover
    from relay_serve._redis_state import RedisState, where

    store = RedisState(settings.state, timeout=settings.state_timeout)
    return Failover(store, settings.on_state_error, where=where(settings.state))


class Quota:
    """Admits requests under their key's limits, counted in ``state``."""

    def __init__(
        self,
        state: SharedState,
        *,
        lease_ttl: float = LEASE_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.lease_ttl = lease_ttl
        self._clock = clock
        # Lease holders must be unique across workers and requests: the request id is
        # the client's to choose, and two requests sharing one must not share a place.
        self._worker = uuid.uuid4().hex[:12]
        self._serial = itertools.count()
        self._held: dict[str, str] = {}  # holder -> scope, for the renewer
        self._renewer: asyncio.Task[None] | None = None

    async def admit(
        self, key: ApiKey | None, request_id: str, *, concurrent: bool = True
    ) -> Admission:
        """Count a request of ``key`` (None: an open server, unlimited). Raises
        :class:`RateLimited`, or :class:`StateUnavailable` when the store is down and
        the policy is ``closed``. ``concurrent=False`` for requests that end at once
        (listing models): they take no place among ``max_concurrent``."""
        if key is None:
            return Admission(self, None, None)
        limits = key.limits
        if limits.tokens_per_minute is not None:
            used = await self.state.used(_scope("tpm", key), WINDOW)
            if used >= limits.tokens_per_minute:
                raise RateLimited(
                    f"Rate limit reached for key {key.name!r} on tokens per minute: "
                    f"limit {limits.tokens_per_minute}, used {used}.",
                    "tokens",
                    self._window_left(),
                    await self._headers(key, tokens_used=used),
                )
        holder = None
        if limits.max_concurrent is not None and concurrent:
            holder = f"{request_id}/{self._worker}/{next(self._serial)}"
            scope = _scope("concurrent", key)
            if not await self.state.lease(scope, limits.max_concurrent, holder, self.lease_ttl):
                raise RateLimited(
                    f"Rate limit reached for key {key.name!r} on requests at once: "
                    f"limit {limits.max_concurrent}.",
                    "requests",
                    _CONCURRENCY_RETRY,
                    await self._headers(key),
                )
            self._held[holder] = scope
            self._start_renewer()
        admission = Admission(self, key, holder)
        if holder is not None:
            # An admission dropped without close (a stream response never started, so
            # its generator's cleanup never ran) must not be renewed for ever: its
            # place then lapses within the ttl.
            weakref.finalize(admission, self._held.pop, holder, None)
        if limits.requests_per_minute is not None:
            try:
                wait = await self.state.take(
                    _scope("rpm", key), 1, limits.requests_per_minute, WINDOW
                )
            except BaseException:
                await admission.close()
                raise
            if wait:
                await admission.close()
                raise RateLimited(
                    f"Rate limit reached for key {key.name!r} on requests per minute: "
                    f"limit {limits.requests_per_minute}.",
                    "requests",
                    wait,
                    await self._headers(key, requests_left=0),
                )
        return admission

    async def _headers(
        self, key: ApiKey, *, requests_left: int | None = None, tokens_used: int | None = None
    ) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers for a refusal of ``key`` (best effort: a
        count the store cannot give now is left out)."""
        limits = key.limits
        headers: dict[str, str] = {}
        with contextlib.suppress(StateUnavailable):
            rpm = limits.requests_per_minute
            if rpm is not None:
                if requests_left is None:
                    requests_left = rpm - await self.state.used(_scope("rpm", key), WINDOW)
                headers["x-ratelimit-limit-requests"] = str(rpm)
                headers["x-ratelimit-remaining-requests"] = str(max(0, requests_left))
            tpm = limits.tokens_per_minute
            if tpm is not None:
                if tokens_used is None:
                    tokens_used = await self.state.used(_scope("tpm", key), WINDOW)
                headers["x-ratelimit-limit-tokens"] = str(tpm)
                headers["x-ratelimit-remaining-tokens"] = str(max(0, tpm - tokens_used))
        return headers

    def _window_left(self) -> float:
        now = self._clock()
        return window_start(now, WINDOW) + WINDOW - now

    def _start_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while self._held:
            await asyncio.sleep(self.lease_ttl / 3)
            by_scope: dict[str, list[str]] = {}
            for holder, scope in list(self._held.items()):
                by_scope.setdefault(scope, []).append(holder)
            for scope, holders in by_scope.items():
                # A store that is down now is logged by the outage policy; the leases
                # may lapse meanwhile, which errs towards admitting, never towards
                # refusing for good.
                with contextlib.suppress(StateUnavailable):
                    await self.state.renew(scope, holders, self.lease_ttl)

    async def _release(self, holder: str) -> None:
        scope = self._held.pop(holder, None)
        if scope is not None:
            with contextlib.suppress(StateUnavailable):
                await self.state.release(scope, holder)

    async def add_tokens(self, key: ApiKey, tokens: int) -> None:
        if key.limits.tokens_per_minute is not None and tokens > 0:
            with contextlib.suppress(StateUnavailable):
                await self.state.add(_scope("tpm", key), tokens, WINDOW)

    async def aclose(self) -> None:
        """Stop renewing leases (the state itself belongs to the server, which closes it)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer


class Admission:
    """One admitted request's hold on its key's limits, until :meth:`close`."""

    def __init__(self, quota: Quota, key: ApiKey | None, holder: str | None) -> None:
        self._quota = quota
        self._key = key
        self._holder = holder
        self._usage: Usage | None = None
        self._tally: StreamTally | None = None
        self._request: Request | None = None
        self._closed = False

    def answered(self, usage: Usage) -> None:
        """The answer's usage, counted against ``tokens_per_minute`` on :meth:`close`."""
        self._usage = usage

    def streaming(self, request: Request, tally: StreamTally) -> None:
        """A stream for ``request`` began, ``tally`` counting what it sends: if it is
        cut short, its tokens are estimated from the prompt and what was streamed."""
        self._request = request
        self._tally = tally

    def _tokens(self) -> int:
        usage = self._usage or (self._tally.usage if self._tally is not None else None)
        if usage is not None:
            return usage.total_tokens
        if self._request is None or self._tally is None:
            return 0  # no answer: nothing was generated for it
        # About four characters a token, as relay_core.estimate_text_tokens counts.
        return estimate_tokens(self._request) + -(-self._tally.chars // 4)

    async def close(self) -> None:
        """Give back the request's place and count its tokens (once), even while the
        request is being cancelled (its client left): each store operation is bounded
        by the store's timeout, so this cannot hold a cancelled request for long."""
        if self._closed or self._key is None:
            return
        self._closed = True
        # A cancelled request's stream closes inside a cancelled scope, where every
        # await is cancelled again; and asyncio.shield lets the work finish even if the
        # task itself is cancelled meanwhile.
        with anyio.CancelScope(shield=True):
            await asyncio.shield(self._settle(self._key))

    async def _settle(self, key: ApiKey) -> None:
        if self._holder is not None:
            await self._quota._release(self._holder)
        await self._quota.add_tokens(key, self._tokens())


def _scope(kind: str, key: ApiKey) -> str:
    return f"{kind}:key:{key.name}"
