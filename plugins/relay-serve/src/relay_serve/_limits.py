"""Load shedding: at most ``max_concurrency`` upstream calls at once, at most
``max_queue`` requests waiting for one, and a prompt refusal beyond that."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

__all__ = ["Gate", "Overloaded"]

# What a refused client is told to wait. Slots free up as calls finish, which takes
# about one upstream call; a second is a fair guess that does not invite a stampede.
_RETRY_AFTER = 1.0


class Overloaded(Exception):
    """Every slot is busy and the queue is full."""

    retry_after = _RETRY_AFTER

    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        super().__init__(
            f"The server is at capacity ({max_concurrency} calls running, {max_queue} "
            "waiting); retry shortly."
        )


class Gate:
    """A semaphore that refuses instead of queueing without bound.

    Both bounds hold at every instant: a finished call hands its slot straight to the
    first waiter, so no newcomer slips into the queue while that waiter wakes up.
    ``on_change(in_flight, waiting)`` is called whenever either count changes (for the
    metrics gauges). A waiter cancelled while queued (its client went away) leaves the
    queue and takes no slot.
    """

    def __init__(
        self,
        max_concurrency: int,
        max_queue: int,
        on_change: Callable[[int, int], None] = lambda in_flight, waiting: None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.in_flight = 0
        self.waiting = 0
        self._on_change = on_change
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        """Take an upstream slot, waiting in the queue if need be; raises
        :class:`Overloaded` at once when no slot is free and the queue is full. Every
        successful ``acquire`` needs one :meth:`release`."""
        if self.in_flight < self.max_concurrency and not self._waiters:
            self._count(in_flight=1)
            return
        if len(self._waiters) >= self.max_queue:
            raise Overloaded(self.max_concurrency, self.max_queue)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        self._count(waiting=1)
        try:
            await turn  # release() moves us from waiting to in flight
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            else:
                if turn in self._waiters:  # release() may have dropped it already
                    self._waiters.remove(turn)
                self._count(waiting=-1)
            raise

    def release(self) -> None:
        """Give back a slot taken with :meth:`acquire`: to the first waiter, if any."""
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                self._count(waiting=-1)
                turn.set_result(None)
                return
        self._count(in_flight=-1)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one upstream slot for the block (see :meth:`acquire`)."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def _count(self, *, in_flight: int = 0, waiting: int = 0) -> None:
        self.in_flight += in_flight
        self.waiting += waiting
        self._on_change(self.in_flight, self.waiting)
