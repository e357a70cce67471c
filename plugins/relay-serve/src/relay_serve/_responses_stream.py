"""Relay's stream events as the Responses API's server-sent events.

The sequence OpenAI sends and the SDKs' stream helpers assemble: ``response.created``
and ``response.in_progress``; for the answer's text, a message item
(``response.output_item.added``, ``response.content_part.added``, then
``response.output_text.delta`` per piece, ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done``); for each tool call, a
``function_call`` item (``response.function_call_arguments.delta`` per piece, then
``.done``); and last ``response.completed`` (or ``response.incomplete``) with the whole
response object, as the non-streaming call returns it. Every event carries its
``sequence_number``. An error after the 200 is sent is an ``error`` event.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from relay_core.plugin import EndEvent, StreamEvent, TextDelta, ToolCallDelta
from relay_serve._responses_object import call_item, message_item, response_object, text_part
from relay_serve._responses_wire import ResponsesCall
from relay_serve._wire import ErrorAnswer

__all__ = ["ResponsesFrames"]


@attrs.define
class _Call:
    """A function call being streamed: its output index and what arrived so far."""

    output_index: int
    index: int
    call_id: str
    name: str
    arguments: str = ""


@attrs.define
class ResponsesFrames:
    """The SSE frames of one streamed response (see the module's docstring)."""

    call: ResponsesCall
    id: str
    created_at: int
    _sequence: int = attrs.field(default=0, init=False)
    _outputs: int = attrs.field(default=0, init=False)
    # The output index and text of the message item while it is open.
    _message: tuple[int, list[str]] | None = attrs.field(default=None, init=False)
    _calls: dict[int, _Call] = attrs.field(factory=dict, init=False)
    _open_call: _Call | None = attrs.field(default=None, init=False)
    _started: bool = attrs.field(default=False, init=False)

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        body = json.dumps(data, ensure_ascii=False)
        return f"event: {kind}\ndata: {body}\n\n".encode()

    def encode(self, event: StreamEvent) -> list[bytes]:
        """The frames for one event (none for events this API has no place for)."""
        frames: list[bytes] = []
        if not self._started:
            self._started = True
            snapshot = response_object(self.call, id=self.id, created_at=self.created_at)
            frames.append(self._event("response.created", response=snapshot))
            frames.append(self._event("response.in_progress", response=snapshot))
        if isinstance(event, TextDelta) and event.text:
            frames += self._text(event.text)
        elif isinstance(event, ToolCallDelta):
            frames += self._tool_call(event)
        elif isinstance(event, EndEvent):
            frames += self._close_message() + self._close_call()
            final = response_object(
                self.call, id=self.id, created_at=self.created_at, answer=event.response
            )
            kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
            frames.append(self._event(kind, response=final))
        return frames

    def failed(self, answer: ErrorAnswer) -> bytes:
        # ``error`` is what the SDKs raise from (as APIError); the flat fields are the
        # Responses API's own error event.
        error = answer.body["error"]
        return self._event(
            "error",
            code=error.get("code"),
            message=error.get("message"),
            param=error.get("param"),
            error=error,
        )

    # -- items ------------------------------------------------------------------------

    def _text(self, text: str) -> list[bytes]:
        frames = self._close_call()
        if self._message is None:
            index = self._outputs
            self._outputs += 1
            self._message = (index, [])
            item = message_item(self.id, None, "in_progress")
            frames.append(self._event("response.output_item.added", output_index=index, item=item))
            frames.append(
                self._event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part=text_part(""),
                )
            )
        index, pieces = self._message
        pieces.append(text)
        frames.append(
            self._event(
                "response.output_text.delta",
                item_id=message_item(self.id, None, "")["id"],
                output_index=index,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return frames

    def _close_message(self) -> list[bytes]:
        if self._message is None:
            return []
        index, pieces = self._message
        self._message = None
        text = "".join(pieces)
        item = message_item(self.id, text, "completed")
        where = {"item_id": item["id"], "output_index": index}
        return [
            self._event(
                "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
            ),
            self._event(
                "response.content_part.done", **where, content_index=0, part=text_part(text)
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _tool_call(self, event: ToolCallDelta) -> list[bytes]:
        frames: list[bytes] = []
        call = self._calls.get(event.index)
        if call is None:
            frames += self._close_message() + self._close_call()
            # The call's number among calls, as output_items numbers them.
            number = len(self._calls)
            call = _Call(
                self._outputs, number, event.id or f"call_{self.id}_{number}", event.name or ""
            )
            self._outputs += 1
            self._calls[event.index] = call
            self._open_call = call
            item = self._call_item(call, "in_progress", arguments="")
            frames.append(
                self._event("response.output_item.added", output_index=call.output_index, item=item)
            )
        if event.arguments:
            call.arguments += event.arguments
            frames.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=self._call_item(call, "")["id"],
                    output_index=call.output_index,
                    delta=event.arguments,
                )
            )
        return frames

    def _close_call(self) -> list[bytes]:
        call = self._open_call
        if call is None:
            return []
        self._open_call = None
        item = self._call_item(call, "completed")
        return [
            self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=call.output_index,
                name=call.name,
                arguments=call.arguments,
            ),
            self._event("response.output_item.done", output_index=call.output_index, item=item),
        ]

    def _call_item(self, call: _Call, status: str, arguments: str | None = None) -> dict[str, Any]:
        given = call.arguments if arguments is None else arguments
        return call_item(self.id, call.index, call.call_id, call.name, given, status)
