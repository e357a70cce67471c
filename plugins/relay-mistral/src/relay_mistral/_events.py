"""Mistral's streamed chat completion (SSE chunks) as Relay's stream events, and the
errors Mistral reports inside a 200 stream. Pure: the events come from the caller's HTTP
stream; nothing here reads or writes anywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from relay_core.plugin import (
    EndEvent,
    ErrorRule,
    FinishReason,
    MalformedResponse,
    ProviderError,
    StreamAssembler,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ToolCallDelta,
    UsageEvent,
    classify_stream_error,
)
from relay_mistral._parse import arguments_text, content_parts, finish_reason, usage

if TYPE_CHECKING:
    from relay_core.plugin import SSEEvent

__all__ = ["stream_error", "stream_events"]

# The HTTP status each of Mistral's error types comes with when it fails a whole request,
# so that an error inside a 200 stream is classified as that answer would be: the error
# glossary's four categories, and the other types Mistral's error bodies carry.
_ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "invalid_model": 400,
    "invalid_function_call": 400,
    "authentication_error": 401,
    "rate_limit_error": 429,
    "rate_limited": 429,
    "server_error": 500,
    "internal_server_error": 500,
    "service_unavailable": 503,
}


async def stream_events(
    events: AsyncIterator[SSEEvent], *, model: str, provider: str, rules: Sequence[ErrorRule]
) -> AsyncIterator[StreamEvent]:
    """The stream events of one answer, ending in the assembled response; an error
    inside the stream raises as the HTTP answer its type stands for."""
    assembler = StreamAssembler(provider=provider)
    chunks: list[Any] = []
    finish: FinishReason | None = None
    response_id: str | None = None
    answered_model = model
    # Mistral sends each tool call whole, and parallel calls have been seen sharing
    # index 0: a new id always opens a new call, so calls are never merged.
    slots: dict[str, int] = {}
    last_slot: dict[int, int] = {}
    async for event in events:
        if event.data.strip() == "[DONE]":
            break
        chunk = event.json()
        if not isinstance(chunk, dict):
            continue
        if chunk.get("object") == "error" or "error" in chunk:
            raise stream_error(chunk, model=model, provider=provider, rules=rules)
        chunks.append(chunk)
        response_id = chunk.get("id") or response_id
        answered_model = chunk.get("model") or answered_model
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            for part in content_parts(delta.get("content")):
                if isinstance(part, TextPart):
                    yield assembler.feed(TextDelta(part.text))
                elif part.text or part.signature:
                    yield assembler.feed(ThinkingDelta(part.text, signature=part.signature))
            for call in delta.get("tool_calls") or ():
                wire_index = call.get("index") or 0
                call_id = call.get("id")
                if call_id and call_id not in slots:
                    slots[call_id] = len(slots)
                slot = slots[call_id] if call_id else last_slot.get(wire_index, wire_index)
                last_slot[wire_index] = slot
                function = call.get("function") or {}
                yield assembler.feed(
                    ToolCallDelta(
                        slot,
                        id=call_id,
                        name=function.get("name"),
                        arguments=arguments_text(function.get("arguments")),
                    )
                )
            if choice.get("finish_reason"):
                finish = finish_reason(choice["finish_reason"])
        if chunk.get("usage"):
            yield assembler.feed(UsageEvent(usage(chunk["usage"])))
    if finish is None:
        raise MalformedResponse(
            "stream ended before a finish_reason",
            provider=provider,
            model=model,
        )
    yield EndEvent(
        assembler.response(model=answered_model, finish_reason=finish, id=response_id, raw=chunks)
    )


def stream_error(
    chunk: dict[str, Any], *, model: str, provider: str, rules: Sequence[ErrorRule]
) -> ProviderError:
    """An error Mistral reported inside a 200 stream, classified as the HTTP answer
    its type stands for; an error with no known type but an HTTP status as its
    ``code`` as that status, and any other as a 500 (Mistral failed on its side)."""
    error = chunk.get("error", chunk)
    error = error if isinstance(error, dict) else {}
    status = _ERROR_STATUS.get(str(error.get("type")))
    code = error.get("code")
    if status is None and str(code).isdecimal() and 400 <= int(str(code)) < 600:
        status = int(str(code))
    return classify_stream_error(
        status or 500,
        chunk,
        rules=rules,
        provider=provider,
        model=model,
    )
