"""streamGenerateContent's SSE chunks as Relay's stream events.

Each chunk's parts are read by :func:`relay_gemini.parse.parts` and fed to the core's
assembler as deltas: a piece that carries a signature ends its part (Gemini signs a
part's last piece), calls arrive whole. Top-level fields are the last chunk's. Pure: the
events come from the caller's HTTP stream, nothing here reads or writes anywhere.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from relay_core.plugin import (
    EndEvent,
    ErrorRule,
    MalformedResponse,
    Part,
    ProviderError,
    StreamAssembler,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    TokenLogprob,
    ToolCallDelta,
    ToolCallPart,
    UsageEvent,
    classify_stream_error,
)
from relay_gemini.parse import (
    SHAPE_ERRORS,
    finish_reason,
    logprobs,
    malformed,
    parts,
    raise_if_blocked,
    usage,
)
from relay_gemini.rpc import STATUS_CODES

if TYPE_CHECKING:
    from relay_core.plugin import SSEEvent

__all__ = ["delta", "stream_error", "stream_events"]


async def stream_events(
    events: AsyncIterator[SSEEvent], *, model: str, provider: str, rules: Sequence[ErrorRule]
) -> AsyncIterator[StreamEvent]:
    """The stream events of one answer, ending in the assembled response; an error
    object mid-stream raises as the same error would as an HTTP answer."""
    assembler = StreamAssembler(provider=provider)
    chunks: list[dict[str, Any]] = []
    top: dict[str, Any] = {}
    reason: str | None = None
    calls = 0
    token_logprobs: list[TokenLogprob] = []
    async for sse in events:
        chunk = sse.json()
        if not isinstance(chunk, dict):
            raise malformed(f"a stream chunk is not a JSON object: {sse.data[:200]!r}", provider)
        if "error" in chunk:
            raise stream_error(chunk, model=model, provider=provider, rules=rules)
        raise_if_blocked(chunk, provider, model)
        chunks.append(chunk)
        top.update(chunk)
        try:
            candidate = (chunk.get("candidates") or [{}])[0]
            reason = candidate.get("finishReason") or reason
            token_logprobs.extend(logprobs(candidate))
            wire = (candidate.get("content") or {}).get("parts") or []
            pieces = list(parts(wire, chunk.get("responseId"), calls))
        except MalformedResponse as error:
            error.provider = error.provider or provider
            raise
        except SHAPE_ERRORS as error:
            raise malformed(f"{type(error).__name__}: {error}", provider) from error
        for part in pieces:
            yield assembler.feed(delta(part, calls))
            calls += isinstance(part, ToolCallPart)
        if "usageMetadata" in chunk:
            yield assembler.feed(UsageEvent(usage(chunk["usageMetadata"])))
    if not reason:
        raise malformed("the stream ended before the answer had a finishReason", provider)
    response = assembler.response(
        model=top.get("modelVersion") or model,
        finish_reason=finish_reason(reason, calls > 0),
        id=top.get("responseId"),
        raw=chunks,
    )
    yield EndEvent(attrs.evolve(response, logprobs=token_logprobs))


def delta(part: Part, index: int) -> StreamEvent:
    """A streamed part as the delta StreamAssembler makes it back from."""
    if isinstance(part, ToolCallPart):
        arguments = json.dumps(part.arguments, ensure_ascii=False)
        return ToolCallDelta(index, part.id, part.name, arguments, signature=part.signature)
    if isinstance(part, ThinkingPart):
        return ThinkingDelta(part.text, signature=part.signature)
    assert isinstance(part, TextPart)
    return TextDelta(part.text, signature=part.signature)


def stream_error(
    chunk: Mapping[str, Any], *, model: str, provider: str, rules: Sequence[ErrorRule]
) -> ProviderError:
    """An error object mid-stream, classified by the core as the same error would be
    as an HTTP answer."""
    error = chunk.get("error")
    status = 500
    if isinstance(error, dict):
        code = error.get("code")
        status = code if isinstance(code, int) else STATUS_CODES.get(str(error.get("status")), 500)
    return classify_stream_error(status, chunk, rules=rules, provider=provider, model=model)
