"""Assembling a streamed answer, and parsing server-sent events.

Adapters feed provider deltas to a :class:`StreamAssembler` and yield them on; at the end
``assembler.response(...)`` builds the :class:`~relay_core.Response` for the ``end`` event,
the same one the non-streaming call would return. :func:`parse_sse` turns a byte stream
into :class:`SSEEvent` values following the WHATWG rules (multi-line ``data``, comments,
``event``/``id``/``retry`` fields, CR/LF/CRLF line ends).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from attrs import define, field, frozen

from relay_core.errors import MalformedResponse
from relay_core.types import (
    Citation,
    CitationDelta,
    EndEvent,
    FinishReason,
    Part,
    Response,
    ServerToolCallDelta,
    ServerToolCallPart,
    ServerToolResultDelta,
    ServerToolResultPart,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
)

__all__ = [
    "SSEDecoder",
    "SSEEvent",
    "StreamAssembler",
    "closing_stream",
    "parse_sse",
    "replay",
]

T = TypeVar("T")


@define
class _ToolCallBuffer:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(factory=list)
    signature: str | None = None
    server: str | None = None
    on_server: bool = False


class StreamAssembler:
    """Collects stream events into content parts, in the order the model produced them.

    Consecutive text deltas join into one text part, consecutive thinking deltas into one
    thinking part, and tool-call deltas join by ``index`` into one call each (server
    tool calls likewise, apart from the caller's). A delta carrying a signature ends its
    text or thinking part with that signature (providers sign each part they want back
    whole); a redacted thinking delta is a part of its own. Citations go to the text
    part being built; one that follows uncited text starts a new part, so a citation
    never claims text it was not given for. A server tool's result is a part of its own.
    """

    def __init__(self, *, provider: str = "") -> None:
        self._provider = provider
        self._parts: list[Part | _ToolCallBuffer] = []
        self._text: list[str] | None = None
        self._citations: list[Citation] = []
        self._thinking: list[str] | None = None
        self._signature: str | None = None
        self._tool_calls: dict[int, _ToolCallBuffer] = {}
        self._server_calls: dict[int, _ToolCallBuffer] = {}
        self.usage = Usage()

    def feed(self, event: StreamEvent) -> StreamEvent:
        """Take one event into the answer and return it, for ``yield assembler.feed(e)``."""
        if isinstance(event, TextDelta):
            self._close_thinking()
            if self._text is None:
                self._text = []
            self._text.append(event.text)
            if event.signature:
                self._close_text(event.signature)
        elif isinstance(event, ThinkingDelta):
            self._close_text()
            if event.redacted:
                self._close_thinking()
                self._parts.append(
                    ThinkingPart(event.text, signature=event.signature, redacted=True)
                )
                return event
            if self._thinking is None:
                self._thinking = []
            self._thinking.append(event.text)
            if event.signature:
                self._signature = event.signature
                self._close_thinking()
        elif isinstance(event, ToolCallDelta):
            buffer = self._call_buffer(self._tool_calls, event.index)
            buffer.id = event.id or buffer.id
            buffer.name = event.name or buffer.name
            buffer.arguments.append(event.arguments)
            buffer.signature = event.signature or buffer.signature
        elif isinstance(event, CitationDelta):
            self._close_thinking()
            if self._text is not None and not self._citations and "".join(self._text):
                self._close_text()
            if self._text is None:
                self._text = []
            self._citations.append(event.citation)
        elif isinstance(event, ServerToolCallDelta):
            buffer = self._call_buffer(self._server_calls, event.index)
            buffer.on_server = True
            buffer.id = event.id or buffer.id
            buffer.name = event.name or buffer.name
            buffer.server = event.server or buffer.server
            buffer.arguments.append(event.arguments)
        elif isinstance(event, ServerToolResultDelta):
            self._close_text()
            self._close_thinking()
            self._parts.append(
                ServerToolResultPart(
                    event.tool_call_id, event.kind, event.content, is_error=event.is_error
                )
            )
        elif isinstance(event, UsageEvent):
            # Providers send usage once at the end, or cumulatively: the last report wins.
            self.usage = event.usage
        return event

    def _call_buffer(self, buffers: dict[int, _ToolCallBuffer], index: int) -> _ToolCallBuffer:
        self._close_text()
        self._close_thinking()
        buffer = buffers.get(index)
        if buffer is None:
            buffer = buffers[index] = _ToolCallBuffer()
            self._parts.append(buffer)
        return buffer

    def _close_text(self, signature: str | None = None) -> None:
        if self._text is not None:
            text = "".join(self._text)
            self._parts.append(TextPart(text, signature=signature, citations=self._citations))
            self._text = None
            self._citations = []

    def _close_thinking(self) -> None:
        if self._thinking is not None:
            self._parts.append(ThinkingPart("".join(self._thinking), signature=self._signature))
            self._thinking = None
            self._signature = None

    def content(self) -> tuple[Part, ...]:
        """The parts so far; tool-call arguments are parsed as JSON here."""
        self._close_text()
        self._close_thinking()
        parts: list[Part] = []
        for part in self._parts:
            if isinstance(part, _ToolCallBuffer) and part.on_server:
                arguments = self._arguments(part)
                parts.append(ServerToolCallPart(part.id, part.name, arguments, server=part.server))
            elif isinstance(part, _ToolCallBuffer):
                parts.append(self._tool_call(part))
            else:
                parts.append(part)
        return tuple(parts)

    def _tool_call(self, buffer: _ToolCallBuffer) -> ToolCallPart:
        arguments = self._arguments(buffer)
        return ToolCallPart(buffer.id, buffer.name, arguments, signature=buffer.signature)

    def _arguments(self, buffer: _ToolCallBuffer) -> dict[str, Any]:
        text = "".join(buffer.arguments).strip() or "{}"
        try:
            arguments = json.loads(text)
        except json.JSONDecodeError as error:
            raise MalformedResponse(
                f"tool call {buffer.name!r} streamed arguments that are not JSON: {error}",
                provider=self._provider,
            ) from error
        if not isinstance(arguments, dict):
            raise MalformedResponse(
                f"tool call {buffer.name!r} arguments are not a JSON object",
                provider=self._provider,
            )
        return arguments

    def response(
        self,
        *,
        model: str,
        finish_reason: FinishReason | None = None,
        id: str | None = None,
        raw: Any = None,
    ) -> Response:
        """The assembled response. ``finish_reason`` defaults to ``tool_calls`` when the
        answer holds tool calls, else ``stop``."""
        content = self.content()
        if finish_reason is None:
            has_calls = any(isinstance(p, ToolCallPart) for p in content)
            finish_reason = "tool_calls" if has_calls else "stop"
        return Response(
            content=content,
            model=model,
            id=id,
            finish_reason=finish_reason,
            usage=self.usage,
            raw=raw,
        )


# ---------------------------------------------------------------------------- SSE


@frozen
class SSEEvent:
    """One server-sent event. ``event`` defaults to ``"message"`` as the spec says."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The ``data`` parsed as JSON; :class:`MalformedResponse` when it is not JSON."""
        try:
            return json.loads(self.data)
        except json.JSONDecodeError as error:
            raise MalformedResponse(
                f"server-sent event is not JSON: {self.data[:200]!r}"
            ) from error


class SSEDecoder:
    """The event-stream format's state across chunks: :meth:`feed` takes each chunk of
    bytes as it arrives and gives the events it completes, lazily, one at a time.

    Chunks may split lines and UTF-8 sequences anywhere. An event is dispatched at a
    blank line, as soon as it is found: a chunk holding a whole answer gives its first
    event before the rest of the chunk is looked at. A trailing event with no blank line
    after it is dropped, as the spec requires (a stream cut mid-event must not yield half
    an event). Each :meth:`feed` must be read to its end before the next.
    """

    def __init__(self) -> None:
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self._buffer = ""
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes, *, final: bool = False) -> Iterator[SSEEvent]:
        """The events ``chunk`` completes; ``final`` for the end of the stream (with
        ``b""``), where a last line ended by a lone CR still counts."""
        text = self._decode(chunk, final)
        if not self._started and text:
            text = text.removeprefix("\ufeff")
            self._started = True
        buffer = self._buffer + text if self._buffer else text
        # The state in locals while a chunk is walked: this loop runs once per line.
        data, event, last_id, retry = self._data, self._event, self._id, self._retry
        size = len(buffer)
        start = 0
        # Where the next LF and CR are, found again only once passed: one scan of the
        # buffer for each, however many lines it holds (a stream may use only one kind).
        lf = cr = -1
        while True:
            if lf < start:
                lf = buffer.find("\n", start)
                if lf < 0:
                    lf = size
            if cr < start:
                cr = buffer.find("\r", start)
                if cr < 0:
                    cr = size
            if lf < cr:
                end = lf
                after = lf + 1
            elif cr < size:
                if cr + 1 == size and not final:
                    break  # its "\n" may be in the next chunk
                end = cr
                after = cr + 2 if cr + 1 < size and buffer[cr + 1] == "\n" else cr + 1
            else:
                break  # a line still arriving (or, at the end, cut off: dropped)
            line = buffer[start:end]
            start = after
            if not line:
                if data:
                    yield SSEEvent("\n".join(data), event or "message", last_id, retry)
                    data = self._data = []
                event = ""
                continue
            if line.startswith("data:"):
                # The common line first, without the general split below.
                data.append(line[6:] if line.startswith(" ", 5) else line[5:])
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id" and "\0" not in value:
                last_id = value
            elif name == "retry" and value.isdigit():
                retry = int(value)
        self._buffer = buffer[start:]
        self._event, self._id, self._retry = event, last_id, retry


async def parse_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[SSEEvent]:
    """Parse a byte stream of ``text/event-stream`` into events, as :class:`SSEDecoder`
    does (the WHATWG rules: multi-line ``data``, comments, ``event``/``id``/``retry``,
    CR/LF/CRLF line ends)."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.feed(b"", final=True):
        yield event


def replay(response: Response) -> Iterator[StreamEvent]:
    """A finished answer as the events a stream of it would have produced: one delta per
    part (a tool call in one piece), the usage, then the ``end`` event carrying
    ``response`` itself. Feeding them to a :class:`StreamAssembler` gives the same
    content back. The response cache uses it to serve streaming calls."""
    tool_index = 0
    for part in response.content:
        if isinstance(part, ThinkingPart):
            yield ThinkingDelta(part.text, signature=part.signature, redacted=part.redacted)
        elif isinstance(part, TextPart):
            for citation in part.citations:
                yield CitationDelta(citation)
            yield TextDelta(part.text, signature=part.signature)
        elif isinstance(part, ServerToolCallPart):
            yield ServerToolCallDelta(
                tool_index,
                id=part.id,
                name=part.name,
                arguments=json.dumps(part.arguments, ensure_ascii=False),
                server=part.server,
            )
            tool_index += 1
        elif isinstance(part, ServerToolResultPart):
            yield ServerToolResultDelta(
                part.tool_call_id, part.kind, part.content, is_error=part.is_error
            )
        elif isinstance(part, ToolCallPart):
            yield ToolCallDelta(
                tool_index,
                id=part.id,
                name=part.name,
                arguments=json.dumps(part.arguments, ensure_ascii=False),
                signature=part.signature,
            )
            tool_index += 1
    yield UsageEvent(response.usage)
    yield EndEvent(response)


class closing_stream(Generic[T]):
    """``async with closing_stream(events) as events:``: ``events`` closed (its
    ``aclose()`` awaited) when the block ends, however it ends, as ``contextlib.aclosing``
    does, for any async iterator (one with no ``aclose`` is left as it is).

    A generator that reads another generator and may stop before its end (at ``[DONE]``,
    at the end event, or because its own reader stopped) must close what it reads:
    otherwise the inner one is left suspended for the event loop's finalizer, its HTTP
    connection held until garbage collection, and a loop that ends first reports "Task
    was destroyed but it is pending!". Adapters wrap ``self.http.stream_sse(...)`` and
    any parser generator they hand it to.
    """

    def __init__(self, events: AsyncIterator[T]) -> None:
        self._events = events

    async def __aenter__(self) -> AsyncIterator[T]:
        return self._events

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()
