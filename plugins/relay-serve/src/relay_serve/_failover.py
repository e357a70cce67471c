"""What the server does while its shared state is down (``plugins.serve.on_state_error``).

``closed`` (the default): every operation raises :class:`StateUnavailable`, which the
server answers with 503 ``state_unavailable``: no request passes limits nobody can count.
``open``: operations go to a :class:`LocalState` of this process instead, so requests
are admitted under per-process limits (each worker counts alone) until the store
answers again.

Either way an outage is noticed by the first operation that fails, logged once when it
starts and once when it ends, and the store is tried again at most once every
``probe_every`` seconds meanwhile (by the next operation after that), so a dead store
costs the requests in between no wait at all.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Literal, TypeVar

from relay_core.plugin import get_logger
from relay_serve._state import LocalState, SharedState, StateUnavailable

__all__ = ["Failover"]

T = TypeVar("T")

_log = get_logger("relay.serve")


class Failover:
    """:class:`SharedState` over ``primary`` with the ``policy`` for its outages."""

    def __init__(
        self,
        primary: SharedState,
        policy: Literal["closed", "open"] = "closed",
        *,
        where: str = "",
        probe_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.policy = policy
        self.local = LocalState()
        self._where = where
        self._probe_every = probe_every
        self._clock = clock
        self._down = False
        self._next_probe = 0.0
        self._error = ""

    @property
    def down(self) -> bool:
        """True from the first failed operation until one succeeds again."""
        return self._down

    async def _run(self, work: Callable[[SharedState], Awaitable[T]]) -> T:
        if self._down:
            now = self._clock()
            if now < self._next_probe:
                return await self._fallback(work)
            # This operation is the probe; those arriving meanwhile do not pile on.
            self._next_probe = now + self._probe_every
        try:
            result = await work(self.primary)
        except StateUnavailable as error:
            self._next_probe = self._clock() + self._probe_every
            self._error = str(error)
            if not self._down:
                self._down = True
                _log.warning(
                    "serve.state_unavailable",
                    state=self._where,
                    policy=self.policy,
                    detail=self._error,
                    meaning="refusing requests with 503"
                    if self.policy == "closed"
                    else "admitting requests under this process's own limits",
                )
            return await self._fallback(work)
        if self._down:
            self._down = False
            _log.warning("serve.state_recovered", state=self._where, policy=self.policy)
        return result

    async def _fallback(self, work: Callable[[SharedState], Awaitable[T]]) -> T:
        if self.policy == "open":
            return await work(self.local)
        raise StateUnavailable(self._error or f"the shared state at {self._where} is down")

    async def take(self, scope: str, amount: int, limit: int, window: float) -> float:
        return await self._run(lambda state: state.take(scope, amount, limit, window))

    async def add(self, scope: str, amount: int, window: float) -> None:
        await self._run(lambda state: state.add(scope, amount, window))

    async def used(self, scope: str, window: float) -> int:
        return await self._run(lambda state: state.used(scope, window))

    async def lease(self, scope: str, limit: int, holder: str, ttl: float) -> bool:
        return await self._run(lambda state: state.lease(scope, limit, holder, ttl))

    async def renew(self, scope: str, holders: Sequence[str], ttl: float) -> None:
        await self._run(lambda state: state.renew(scope, holders, ttl))

    async def release(self, scope: str, holder: str) -> None:
        await self._run(lambda state: state.release(scope, holder))

    async def held(self, scope: str) -> int:
        return await self._run(lambda state: state.held(scope))

    async def add_once(self, once: str, amounts: Mapping[str, float], ttl: float) -> bool:
        return await self._run(lambda state: state.add_once(once, amounts, ttl))

    async def totals(self, scopes: Sequence[str]) -> list[float | None]:
        return await self._run(lambda state: state.totals(scopes))

    async def seed(self, scope: str, value: float, ttl: float | None) -> None:
        await self._run(lambda state: state.seed(scope, value, ttl))

    async def reserve(
        self, limits: Mapping[str, float], holder: str, amount: float, ttl: float
    ) -> tuple[int, float] | None:
        return await self._run(lambda state: state.reserve(limits, holder, amount, ttl))

    async def unreserve(self, scopes: Sequence[str], holder: str) -> None:
        await self._run(lambda state: state.unreserve(scopes, holder))

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.local.aclose()
