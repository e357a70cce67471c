"""Load shedding: at most ``max_concurrency`` upstream calls at once, at most
``max_queue`` requests waiting for one, and a prompt refusal beyond that."""

from __future__ import annotations

import asyncio
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
        self._slots: asyncio.Semaphore | None = None

    async def acquire(self) -> None:
        """Take an upstream slot, waiting in the queue if need be; raises
        :class:`Overloaded` at once when no slot is free and the queue is full. Every
        successful ``acquire`` needs one :meth:`release`."""
        if self._slots is None:  # made on first use, inside the server's event loop
            self._slots = asyncio.Semaphore(self.max_concurrency)
        # Counting both together bounds what the server holds even in the instant
        # between a release and the next waiter taking the slot.
        if self.in_flight + self.waiting >= self.max_concurrency + self.max_queue:
            raise Overloaded(self.max_concurrency, self.max_queue)
        self._count(waiting=1)
        try:
            await self._slots.acquire()
        finally:
            self._count(waiting=-1)
        self._count(in_flight=1)

    def release(self) -> None:
        """Give back a slot taken with :meth:`acquire`."""
        assert self._slots is not None, "release() without acquire()"
        self._count(in_flight=-1)
        self._slots.release()

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
