"""Streamed answers: the response that sends a stream's frames as they come, and ends
it (slot, key's hold, spend, metrics) exactly once however it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from relay_core.plugin import EndEvent, StreamEvent
from relay_serve._coalesce import send_body
from relay_serve._tally import StreamTally

if TYPE_CHECKING:
    from relay_core.plugin import Request as RelayRequest
    from relay_serve._app import Exchange, _Server
    from relay_serve._wire import ErrorAnswer

__all__ = ["CLIENT_GONE", "EventStream", "Frames", "close_events", "event_stream"]

# nginx's "client closed request": logged and counted, never sent (nobody is listening).
CLIENT_GONE = 499


class Frames(Protocol):
    """How one API writes a stream: the SSE frames for each event (the last ones with
    the :class:`EndEvent`), and the frame for an error after the 200 was sent."""

    def encode(self, event: StreamEvent) -> list[bytes]: ...

    def failed(self, answer: ErrorAnswer) -> bytes: ...


def event_stream(
    server: _Server,
    exchange: Exchange,
    frames: Frames,
    head: StreamEvent,
    events: AsyncIterator[StreamEvent],
    asked: RelayRequest,
) -> EventStream:
    """The response sending a stream the server opened (``_Server._open``) in ``frames``' format.
    However it ends (sent whole, cut by the client, or never started because the
    client left first), its slot, the exchange's admission and its budgets' hold (which
    the stream takes over) are given back and its outcome counted exactly once."""
    admission, exchange.admission = exchange.admission, None
    hold, exchange.hold = exchange.hold, None
    tally = StreamTally()
    if admission is not None:
        admission.streaming(asked, tally)
    finished = False

    async def finish(status: int) -> None:
        nonlocal finished
        if finished:
            return
        finished = True
        if status == CLIENT_GONE:
            server.metrics.cancelled(exchange.route)
            if not tally.recorded:
                tally.recorded = True
                server.spending.cut(
                    exchange.request_id, exchange.label, exchange.key, asked, tally, hold
                )
        if not tally.recorded:  # failed before its end: no cost to count
            server.spending.release(hold)
        server.gate.release()
        await close_events(events)
        if admission is not None:
            await admission.close()
        server._done(exchange.request_id, exchange.label, status, exchange.started, exchange.route)

    async def sse() -> AsyncIterator[bytes]:
        status = CLIENT_GONE
        try:
            event: StreamEvent | None = head
            while event is not None:
                tally.feed(event)
                if isinstance(event, EndEvent):  # whole, so spent, even if unread
                    tally.recorded = True
                    server.spending.answered(
                        exchange.request_id, exchange.label, exchange.key, event.response, hold
                    )
                for frame in frames.encode(event):
                    yield frame
                if isinstance(event, EndEvent):
                    status = 200
                    return
                event = await anext(events, None)
            raise RuntimeError("the hub's stream ended without its end event")
        except Exception as error:
            # The 200 is sent: the error travels as the stream's last event.
            answer = server._failed(error, exchange.request_id, exchange.label)
            status = answer.status
            yield frames.failed(answer)
        finally:
            await finish(status)

    return EventStream(sse(), exchange.request_id, finish)


async def close_events(events: AsyncIterator[Any]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


async def until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStream(StreamingResponse):
    """``text/event-stream`` from an async iterator of ready-made SSE frames, cancelled
    as soon as the client disconnects (not at the next write, which for a slow upstream
    may be minutes away)."""

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        request_id: str,
        finish: Callable[[int], Awaitable[None]],
    ) -> None:
        super().__init__(
            frames,
            media_type="text/event-stream",
            headers={"x-request-id": request_id, "cache-control": "no-cache"},
        )
        self.frames = frames
        # Closing an async generator that never began skips its finally: a client gone
        # before the first frame would otherwise keep the stream's slot for good.
        self.finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def pump(cancel: Callable[[], None]) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send_body(self.frames, send)
            cancel()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(pump, group.cancel_scope.cancel)
                await until_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            # Outside the cancelled scope, so the hub's stream can close cleanly.
            await close_events(self.frames)
            await self.finish(CLIENT_GONE)
