"""The sync API's bridge: a private event loop on a daemon thread that runs the hub's
coroutines and async generators for callers that are not async."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from relay_core.streaming import closing_stream

__all__ = ["LoopThread", "SyncBridge"]

T = TypeVar("T")


def _unclosed_is_quiet(loop: Any, context: dict[str, Any]) -> None:
    # A sync hub dropped without close() leaves its aiohttp sessions to the garbage
    # collector, most often at exit, and each would print "Unclosed client session";
    # their sockets close with them. Anything else is reported as asyncio would.
    if "client_session" in context or "connector" in context:
        return
    loop.default_exception_handler(context)


class LoopThread:
    """A private event loop on a daemon thread, for the sync API."""

    def __init__(self) -> None:
        import asyncio  # loaded with the first sync call: asyncio costs a cold start

        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(_unclosed_is_quiet)
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="relay-hub-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro``'s result, run to its end on the loop; its error raised here.

        The hop costs one wake-up each way: a task started by ``call_soon_threadsafe``
        whose done callback releases a lock the caller waits on.
        ``run_coroutine_threadsafe`` chains an asyncio future to a
        ``concurrent.futures.Future`` and its condition variable, which costs as much
        again on every sync call. Interrupted while waiting (Ctrl-C), the caller
        cancels the task rather than leave it running unseen."""
        import asyncio

        if threading.current_thread() is self._thread:
            coro.close()
            raise self._on_own_loop("await hub.achat(...)")
        finished = threading.Lock()
        finished.acquire()
        started: list[asyncio.Task[T]] = []
        abandoned = False

        def start() -> None:
            if abandoned:  # the caller stopped waiting before the loop got here
                coro.close()
                return
            started.append(self.loop.create_task(coro))
            started[0].add_done_callback(lambda _: finished.release())

        try:
            self.loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop is closed: the hub was closed
            coro.close()
            raise
        try:
            finished.acquire()
        except BaseException:
            abandoned = True

            def cancel() -> None:
                if started:
                    started[0].cancel()

            with contextlib.suppress(RuntimeError):  # a closed loop runs nothing anyway
                self.loop.call_soon_threadsafe(cancel)
            raise
        return started[0].result()

    @staticmethod
    def _on_own_loop(async_form: str) -> RuntimeError:
        # Waiting on the loop we are running on would never return.
        return RuntimeError(
            "a sync Hub method was called on the hub's own event loop (from a hook or "
            f"an adapter); use the async form ({async_form}) there"
        )

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """The items of ``agen``, which runs on the loop and hands them over through a
        queue: a round trip between the threads per item would cost more than most
        stream events take to parse. Leaving the loop early cancels ``agen``."""
        import asyncio
        import queue

        if threading.current_thread() is self._thread:
            raise self._on_own_loop("hub.astream(...)")
        handed: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

        async def pump() -> None:
            try:
                async with closing_stream(agen):
                    async for item in agen:
                        handed.put((True, item))
            except BaseException as error:
                handed.put((False, error))
                raise
            handed.put((False, None))

        future = asyncio.run_coroutine_threadsafe(pump(), self.loop)
        try:
            while True:
                more, value = handed.get()
                if more:
                    yield value
                elif value is None:
                    return
                else:
                    raise value
        finally:
            if not future.done():
                future.cancel()
                with contextlib.suppress(BaseException):
                    future.result(timeout=5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class SyncBridge:
    """One hub's :class:`LoopThread`: started by the first sync call (a hub used only
    async never starts one), stopped by closing the hub, and started again by a sync
    call after that."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: LoopThread | None = None

    def __repr__(self) -> str:
        return f"SyncBridge(running={self._thread is not None})"

    def thread(self) -> LoopThread:
        """The running loop thread, started if there is none."""
        with self._lock:
            if self._thread is None:
                self._thread = LoopThread()
            return self._thread

    def detach(self) -> LoopThread | None:
        """The running loop thread, or ``None``, which the caller now owns (to close
        what runs on it and stop it); the next sync call starts another."""
        with self._lock:
            thread, self._thread = self._thread, None
            return thread

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro``'s result, run on the loop thread (see :meth:`LoopThread.run`)."""
        return self.thread().run(coro)

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """``agen``'s items, produced on the loop thread (see :meth:`LoopThread.iterate`)."""
        return self.thread().iterate(agen)
