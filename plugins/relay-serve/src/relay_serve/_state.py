"""The state workers must agree on: rate windows, concurrency leases, spend counters.

One :class:`SharedState` per server process. :class:`LocalState` keeps it in the process
(one worker: the default); ``relay_serve._redis_state`` keeps it in Redis, so every worker
of every replica counts against the same limits (``plugins.serve.state: redis://...``).

Scopes are plain strings chosen by the caller (``rpm:key:ci``, ``spend:team:ml:day:2026-12-06``).
Every operation is atomic in the store, so two workers never both take the last unit.
A store that cannot be reached raises :class:`StateUnavailable`; what the server does
then is ``plugins.serve.on_state_error``'s business, not the store's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

__all__ = ["LocalState", "SharedState", "StateUnavailable", "window_start"]


class StateUnavailable(Exception):
    """The shared store did not answer (down, unreachable, timed out)."""


def window_start(now: float, window: float) -> float:
    """The start of the fixed window holding ``now``: a multiple of ``window`` seconds of
    wall-clock time, so that every worker and replica agrees on it without talking."""
    return math.floor(now / window) * window


class SharedState(Protocol):
    async def take(self, scope: str, amount: int, limit: int, window: float) -> float:
        """Count ``amount`` units against ``limit`` per fixed window of ``window``
        seconds: 0.0 when they fit (and are counted), else the seconds until the
        window ends (and nothing is counted)."""
        ...

    async def add(self, scope: str, amount: int, window: float) -> None:
        """Count ``amount`` units in the current window whatever the limit (tokens,
        known only once the answer is in)."""
        ...

    async def used(self, scope: str, window: float) -> int:
        """The units counted in the current window."""
        ...

    async def lease(self, scope: str, limit: int, holder: str, ttl: float) -> bool:
        """Hold one of ``limit`` places for ``holder``: False when all are held. A lease
        lapses ``ttl`` seconds after it was taken or last renewed, so places held by a
        worker that died come back."""
        ...

    async def renew(self, scope: str, holders: Sequence[str], ttl: float) -> None:
        """Extend the leases of ``holders`` by ``ttl`` seconds from now."""
        ...

    async def release(self, scope: str, holder: str) -> None:
        """Give back ``holder``'s place (nothing if it holds none)."""
        ...

    async def held(self, scope: str) -> int:
        """The places held now (lapsed leases not counted)."""
        ...

    async def add_once(self, once: str, amounts: Mapping[str, float], ttl: float) -> bool:
        """Add each amount to its counter, unless ``once`` was used before (within
        ``ttl`` seconds): True when added. Spend is recorded once per answered request,
        whichever worker or retry reports it. A counter the store does not hold stays
        unheld (its next :meth:`totals` is None, and the caller seeds it from the
        durable record, which holds this amount too)."""
        ...

    async def totals(self, scopes: Sequence[str]) -> list[float | None]:
        """The counters' values; None for a counter the store does not hold (never
        set, expired, or lost with a restarted store): the caller seeds it from the
        durable record with :meth:`seed`."""
        ...

    async def seed(self, scope: str, value: float, ttl: float | None) -> None:
        """Set the counter to ``value`` unless it is held already; it expires after
        ``ttl`` seconds (None: never)."""
        ...

    async def reserve(
        self, limits: Mapping[str, float], holder: str, amount: float, ttl: float
    ) -> tuple[int, float] | None:
        """Hold ``amount`` for ``holder`` on each counter of ``limits`` if, on every one,
        the counter (0 when not held), what is held on it and ``amount`` together stay
        within its limit: None when held. Else nothing is held, and the answer is the
        position in ``limits`` of the first counter it would pass, with what is held on
        it. A hold lapses ``ttl`` seconds after it was taken, so a dead worker's holds
        come back."""
        ...

    async def unreserve(self, scopes: Sequence[str], holder: str) -> None:
        """Drop ``holder``'s hold on each counter of ``scopes`` (nothing if it has none)."""
        ...

    async def aclose(self) -> None: ...


class LocalState:
    """:class:`SharedState` in this process: right for one worker, and the fallback for
    ``on_state_error: open``. Runs on one event loop; nothing here awaits, so every
    operation is atomic."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._counters: dict[str, tuple[float, float | None]] = {}
        self._once: dict[str, float] = {}
        self._prune_at = 1024
        self._holds: dict[str, dict[str, tuple[float, float]]] = {}  # holder: amount, until

    def _window(self, scope: str, window: float) -> tuple[float, int]:
        start = window_start(self._clock(), window)
        began, count = self._windows.get(scope, (start, 0))
        return (start, 0) if began != start else (began, count)

    async def take(self, scope: str, amount: int, limit: int, window: float) -> float:
        start, count = self._window(scope, window)
        if count + amount > limit:
            return max(start + window - self._clock(), 0.001)
        self._windows[scope] = (start, count + amount)
        return 0.0

    async def add(self, scope: str, amount: int, window: float) -> None:
        start, count = self._window(scope, window)
        self._windows[scope] = (start, count + amount)

    async def used(self, scope: str, window: float) -> int:
        return self._window(scope, window)[1]

    def _live(self, scope: str) -> dict[str, float]:
        now = self._clock()
        leases = self._leases.setdefault(scope, {})
        for holder in [h for h, until in leases.items() if until <= now]:
            del leases[holder]
        return leases

    async def lease(self, scope: str, limit: int, holder: str, ttl: float) -> bool:
        leases = self._live(scope)
        if holder not in leases and len(leases) >= limit:
            return False
        leases[holder] = self._clock() + ttl
        return True

    async def renew(self, scope: str, holders: Sequence[str], ttl: float) -> None:
        leases = self._live(scope)
        for holder in holders:
            if holder in leases:
                leases[holder] = self._clock() + ttl

    async def release(self, scope: str, holder: str) -> None:
        self._live(scope).pop(holder, None)

    async def held(self, scope: str) -> int:
        return len(self._live(scope))

    def _counter(self, scope: str) -> float | None:
        value, until = self._counters.get(scope, (0.0, 0.0))
        if scope not in self._counters or (until is not None and until <= self._clock()):
            self._counters.pop(scope, None)
            return None
        return value

    async def add_once(self, once: str, amounts: Mapping[str, float], ttl: float) -> bool:
        now = self._clock()
        if self._once.get(once, 0.0) > now:
            return False
        if len(self._once) >= self._prune_at:  # one mark per answer: drop the lapsed
            self._once = {mark: until for mark, until in self._once.items() if until > now}
            self._prune_at = max(1024, 2 * len(self._once))
        self._once[once] = now + ttl
        for scope, amount in amounts.items():
            value = self._counter(scope)
            if value is not None:
                self._counters[scope] = (value + amount, self._counters[scope][1])
        return True

    async def totals(self, scopes: Sequence[str]) -> list[float | None]:
        return [self._counter(scope) for scope in scopes]

    async def seed(self, scope: str, value: float, ttl: float | None) -> None:
        if self._counter(scope) is None:
            self._counters[scope] = (value, None if ttl is None else self._clock() + ttl)

    def _held(self, scope: str) -> float:
        now = self._clock()
        holds = self._holds.get(scope, {})
        for holder in [h for h, (_, until) in holds.items() if until <= now]:
            del holds[holder]
        return sum(amount for amount, _ in holds.values())

    async def reserve(
        self, limits: Mapping[str, float], holder: str, amount: float, ttl: float
    ) -> tuple[int, float] | None:
        for position, (scope, limit) in enumerate(limits.items()):
            held = self._held(scope)
            if (self._counter(scope) or 0.0) + held + amount > limit:
                return position, held
        until = self._clock() + ttl
        for scope in limits:
            self._holds.setdefault(scope, {})[holder] = (amount, until)
        return None

    async def unreserve(self, scopes: Sequence[str], holder: str) -> None:
        for scope in scopes:
            holds = self._holds.get(scope)
            if holds is not None:
                holds.pop(holder, None)
                if not holds:
                    del self._holds[scope]

    async def aclose(self) -> None:
        self._windows.clear()
        self._leases.clear()
