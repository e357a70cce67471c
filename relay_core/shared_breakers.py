"""Circuit breakers whose state lives in a store shared by several hubs and processes.

A hub's breakers are in-process by default (:mod:`relay_core.breakers`). A server that
runs as several workers and replicas gives the hub a :class:`BreakerStore`
(``hub.pipeline.breakers.share(store)``) so that they behave as one: failures are
counted across workers, a breaker one worker opens is open for every worker, and the
half-open probes are limited across all of them. relay-serve keeps the state in Redis;
:class:`MemoryBreakerStore` is the same contract in one process (tests, and the
reference for a store's semantics).

A store answers three atomic operations per breaker, each by the store's own clock so
processes' clocks need not agree; :class:`SharedBreaker` keeps what the store last said
for :data:`FRESH_FOR` seconds, so a call through a closed breaker asks the store nothing
and a success is written only when there are failures to reset. Failures "in a row"
are therefore counted across workers until a success reaches the store, which it does
at most :data:`FRESH_FOR` seconds after a worker learns of them.

When the store fails (its server down), each process falls back to a breaker of its own,
starting closed, logs ``breaker.store_unavailable`` once, and tries the store again
after :data:`RETRY_AFTER` seconds; ``breaker.store_recovered`` when it answers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Literal, Protocol

from attrs import frozen

from relay_core.breakers import BreakerState, CircuitBreaker, counts_as_failure
from relay_core.config import BreakerSettings
from relay_core.errors import CircuitOpen

__all__ = [
    "FRESH_FOR",
    "RETRY_AFTER",
    "BreakerStore",
    "BreakerView",
    "MemoryBreakerStore",
    "SharedBreaker",
]

# How long a store's answer is trusted: a breaker another worker opened is seen open
# within this many seconds, and a closed breaker costs one store round trip this often.
FRESH_FOR = 0.5
# After a store failure, calls use the local breaker this long before asking again.
RETRY_AFTER = 1.0

Pass = Literal["local", "shared", "probe"]
"""How :meth:`SharedBreaker.acquire` let a call through, handed back to ``record``."""


@frozen
class BreakerView:
    """What a store says of one breaker: its ``state``, the ``failures`` counted since
    the last success, and for an open breaker the seconds until a probe may go
    (``retry_in``; 0 otherwise)."""

    state: BreakerState
    failures: int = 0
    retry_in: float = 0.0


class BreakerStore(Protocol):
    """Where the state of circuit breakers lives when hubs share it.

    ``name`` is the breaker's (``provider/model``), ``settings`` its catalog settings.
    Each method is one atomic step on that breaker's state, by the store's clock; it
    raises whatever its client raises when the store does not answer (the breaker then
    falls back to local state). The semantics are :class:`MemoryBreakerStore`'s.
    """

    async def acquire(self, name: str, settings: BreakerSettings) -> tuple[bool, BreakerView]:
        """Move an open breaker whose ``reset_after`` has passed to half open; then let
        the call through (``True``) if closed, or if half open with fewer than
        ``half_open_probes`` probes out (taking one); else refuse it (``False``)."""

    async def record(
        self, name: str, settings: BreakerSettings, *, failed: bool, probe: bool
    ) -> BreakerView:
        """The verdict on a call let through (``probe``: it took a probe slot, which is
        freed). A failure counts, and opens the breaker when half open or when
        ``failures`` is reached; a success resets the count and closes it."""

    async def release(self, name: str, settings: BreakerSettings) -> None:
        """A probe ended without a verdict (cancelled): free its slot."""

    async def aclose(self) -> None:
        """Release connections; called when the server shuts down."""


class SharedBreaker:
    """The breaker of one provider and model, its state in a :class:`BreakerStore`."""

    def __init__(
        self,
        settings: BreakerSettings,
        store: BreakerStore,
        *,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState, BreakerState], None] | None = None,
        log: Callable[..., None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.name = name
        self._clock = clock
        self._on_change = on_change
        self._log = log
        self._view = BreakerView("closed")
        self._seen_at = -math.inf
        self._open_until = 0.0
        self._down_until = -math.inf
        self._down = False
        self.local = self._fresh_local()

    @property
    def state(self) -> BreakerState:
        """The state last seen (the local breaker's while the store is down)."""
        if self._down:
            return self.local.state
        if self._view.state == "open" and self._clock() >= self._open_until:
            return "half_open"
        return self._view.state

    @property
    def available(self) -> bool:
        """False from a store failure until the store answers again."""
        return not self._down

    async def acquire(self, *, provider: str, model: str, custom_id: str | None = None) -> Pass:
        """Let a call through, or raise :class:`CircuitOpen`; hand what this returns to
        :meth:`record` or :meth:`release`."""
        now = self._clock()
        if self._down and now < self._down_until:
            self.local.acquire(provider=provider, model=model, custom_id=custom_id)
            return "local"
        if now - self._seen_at < FRESH_FOR:
            if self._view.state == "closed":
                return "shared"
            if self._view.state == "open" and now < self._open_until:
                raise self._refusal(now, provider, model, custom_id)
        try:
            allowed, view = await self.store.acquire(self.name, self.settings)
        except Exception as error:  # the store's client raises its own errors
            self._failed(error)
            self.local.acquire(provider=provider, model=model, custom_id=custom_id)
            return "local"
        self._see(view, now)
        if not allowed:
            if view.state != "open":  # half open, every probe out: ask again soon
                self._view = BreakerView("open", view.failures)
                self._open_until = now + min(FRESH_FOR, self.settings.reset_after)
            raise self._refusal(now, provider, model, custom_id)
        return "probe" if view.state == "half_open" else "shared"

    async def record(self, passed: Pass, error: BaseException | None) -> None:
        """The verdict on a call let through: ``None`` for a success, else its error."""
        if passed == "local":
            self.local.record(error)
            return
        failed = error is not None and counts_as_failure(error)
        if not failed and passed == "shared" and self._view.failures == 0:
            return  # a success with no failures to reset changes nothing in the store
        try:
            view = await self.store.record(
                self.name, self.settings, failed=failed, probe=passed == "probe"
            )
        except Exception as failure:
            self._failed(failure)
            self.local.record(error)
            return
        self._see(view, self._clock())

    async def release(self, passed: Pass) -> None:
        """A call let through ended with no verdict (cancelled): free its probe slot."""
        if passed == "local":
            self.local.release()
        elif passed == "probe":
            try:
                await self.store.release(self.name, self.settings)
            except Exception as error:
                self._failed(error)

    def _see(self, view: BreakerView, now: float) -> None:
        old = self.state
        self._view, self._seen_at = view, now
        self._open_until = now + view.retry_in
        if self._down:
            self._down = False
            if self._log is not None:
                self._log("breaker.store_recovered", target=self.name)
        if old != view.state and self._on_change is not None:
            self._on_change(self.name, old, view.state)

    def _failed(self, error: BaseException) -> None:
        self._down_until = self._clock() + RETRY_AFTER
        if not self._down:
            self._down = True
            # What the store last said is no evidence of what happens next; the local
            # breaker counts afresh.
            self.local = self._fresh_local()
            if self._log is not None:
                self._log(
                    "breaker.store_unavailable",
                    target=self.name,
                    error=f"{type(error).__name__}: {error}",
                    note="this process counts failures on its own until the store answers",
                )

    def _fresh_local(self) -> CircuitBreaker:
        return CircuitBreaker(
            self.settings, name=self.name, clock=self._clock, on_change=self._on_change
        )

    def _refusal(self, now: float, provider: str, model: str, custom_id: str | None) -> CircuitOpen:
        wait = max(0.0, self._open_until - now)
        return CircuitOpen(
            f"{self._view.failures} calls in a row failed; the next probe goes through "
            f"in {wait:.1f}s",
            retry_after=wait if wait > 0 else None,
            provider=provider,
            model=model,
            custom_id=custom_id,
        )


@frozen
class _Entry:
    state: BreakerState = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probes: int = 0
    probe_at: float = 0.0


class MemoryBreakerStore:
    """:class:`BreakerStore` in this process: what hubs sharing it (two workers' worth,
    in tests) see, and the reference semantics for a store on a server.

    A probe slot taken and never given back (its process killed) lapses after
    ``reset_after``, so a lost probe cannot keep a breaker half open forever.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    async def acquire(self, name: str, settings: BreakerSettings) -> tuple[bool, BreakerView]:
        """Whether a call through ``name`` may go, and the breaker's state after asking: as
        :meth:`BreakerStore.acquire`, the probe slots taken lapsing ``reset_after`` seconds
        after the last of them was taken."""
        with self._lock:
            now = self._clock()
            entry = _advance(self._entries.get(name, _Entry()), settings, now)
            allowed = entry.state == "closed"
            if entry.state == "half_open" and entry.probes < settings.half_open_probes:
                entry = _Entry("half_open", entry.failures, entry.opened_at, entry.probes + 1, now)
                allowed = True
            self._entries[name] = entry
            return allowed, _view(entry, settings, now)

    async def record(
        self, name: str, settings: BreakerSettings, *, failed: bool, probe: bool
    ) -> BreakerView:
        """Count a call's verdict and return the breaker's state: as
        :meth:`BreakerStore.record`."""
        with self._lock:
            now = self._clock()
            entry = _advance(self._entries.get(name, _Entry()), settings, now)
            probes = max(0, entry.probes - 1) if probe else entry.probes
            if failed:
                failures = entry.failures + 1
                if entry.state == "half_open" or failures >= settings.failures:
                    entry = _Entry("open", failures, now)
                else:
                    entry = _Entry(entry.state, failures, entry.opened_at, probes, entry.probe_at)
            else:
                entry = _Entry("closed")
            self._entries[name] = entry
            return _view(entry, settings, now)

    async def release(self, name: str, settings: BreakerSettings) -> None:
        """Free the probe slot of a call that ended without a verdict, when the breaker
        is still half open: as :meth:`BreakerStore.release`."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and entry.state == "half_open":
                probes = max(0, entry.probes - 1)
                self._entries[name] = _Entry(
                    "half_open", entry.failures, entry.opened_at, probes, entry.probe_at
                )

    async def aclose(self) -> None:
        """Nothing to release: the state lives in this object."""
        return None


def _advance(entry: _Entry, settings: BreakerSettings, now: float) -> _Entry:
    if entry.state == "open" and now - entry.opened_at >= settings.reset_after:
        return _Entry("half_open", entry.failures, entry.opened_at)
    if entry.state == "half_open" and entry.probes and now - entry.probe_at >= settings.reset_after:
        return _Entry("half_open", entry.failures, entry.opened_at)  # lost probes lapse
    return entry


def _view(entry: _Entry, settings: BreakerSettings, now: float) -> BreakerView:
    wait = entry.opened_at + settings.reset_after - now if entry.state == "open" else 0.0
    return BreakerView(entry.state, entry.failures, max(0.0, wait))
