"""The Messages API stream: server-sent events (``message_start``, ``content_block_*``,
``message_delta``, ``message_stop``, ``error``) as Relay's stream events. Reads the
events it is given and does no I/O of its own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from relay_anthropic.messages.parse import (
    ERROR_STATUS,
    SERVER_CALLS,
    citation,
    is_server_result,
    parse_message,
    server_result,
    usage,
)
from relay_anthropic.messages.structured import StructuredOutput
from relay_core.plugin import (
    CitationDelta,
    EndEvent,
    ErrorRule,
    MalformedResponse,
    ProviderError,
    ServerToolCallDelta,
    ServerToolResultDelta,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    UsageEvent,
    classify_stream_error,
)

if TYPE_CHECKING:
    from relay_core.plugin import SSEEvent

__all__ = ["message_events", "stream_error"]


async def message_events(
    events: AsyncIterator[SSEEvent],
    structured: StructuredOutput | None,
    *,
    provider: str,
    model: str,
    rules: Sequence[ErrorRule],
) -> AsyncIterator[StreamEvent]:
    """Relay's events for the stream ``events`` answering a call of ``model`` (the last
    one ends it, at ``message_stop``); an ``error`` event raises the error ``rules``
    classify it as."""
    # The answer is rebuilt as the Message JSON the non-streaming call returns and read
    # by the same parser, so the end event equals chat's answer, raw included, by
    # construction (StreamAssembler could not give raw, and would join consecutive
    # text blocks that chat keeps apart; see the README).
    message: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    arguments: dict[int, list[str]] = {}
    async for sse in events:
        data = sse.json()
        kind = data.get("type", sse.event) if isinstance(data, dict) else sse.event
        if kind == "message_start":
            message = dict(data["message"])
            message["usage"] = dict(message.get("usage") or {})
            yield UsageEvent(usage(message["usage"]))
        elif kind == "content_block_start":
            index, block = data["index"], dict(data["content_block"])
            blocks[index] = block
            for event in _block_started(index, block, arguments, structured):
                yield event
        elif kind == "content_block_delta":
            piece = _delta(data["index"], data["delta"], blocks, arguments, structured)
            if piece is not None:
                yield piece
        elif kind == "content_block_stop":
            index = data["index"]
            if index in arguments:
                blocks[index]["input"] = _arguments(arguments.pop(index), blocks[index])
        elif kind == "message_delta":
            message.update(data.get("delta") or {})
            message.setdefault("usage", {}).update(data.get("usage") or {})
            yield UsageEvent(usage(message["usage"]))
        elif kind == "message_stop":
            message["content"] = [blocks[i] for i in sorted(blocks)]
            response = parse_message(message, structured, provider=provider)
            if structured is not None and response.text:
                # Held back until complete: only checked JSON leaves the adapter.
                yield TextDelta(response.text)
            yield EndEvent(response)
            return
        elif kind == "error":
            raise stream_error(data, provider=provider, model=model, rules=rules)
        # ping, and event types added later, carry nothing to map.


def stream_error(
    data: Any, *, provider: str, model: str, rules: Sequence[ErrorRule]
) -> ProviderError:
    """An ``error`` event mid-stream, classified by the core as the same error would
    be as an HTTP answer."""
    error = data.get("error") if isinstance(data, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return classify_stream_error(
        ERROR_STATUS.get(str(kind), 500),
        data,
        rules=rules,
        provider=provider,
        model=model,
    )


def _block_started(
    index: int,
    block: dict[str, Any],
    arguments: dict[int, list[str]],
    structured: StructuredOutput | None,
) -> list[StreamEvent]:
    kind = block.get("type")
    if kind == "tool_use":
        arguments[index] = []
        if structured is not None and block["name"] == structured.name:
            return []
        return [ToolCallDelta(index, id=block["id"], name=block["name"])]
    if kind in SERVER_CALLS:
        arguments[index] = []
        return [
            ServerToolCallDelta(
                index, id=block["id"], name=block["name"], server=block.get("server_name")
            )
        ]
    if is_server_result(block):
        result = server_result(block)
        return [
            ServerToolResultDelta(result.tool_call_id, result.kind, result.content, result.is_error)
        ]
    if kind == "text" and block.get("text"):
        return [TextDelta(block["text"])]
    if kind == "thinking" and block.get("thinking"):
        return [ThinkingDelta(block["thinking"], signature=block.get("signature"))]
    if kind == "redacted_thinking":
        return [ThinkingDelta("", signature=block["data"], redacted=True)]
    return []


def _delta(
    index: int,
    delta: Mapping[str, Any],
    blocks: dict[int, dict[str, Any]],
    arguments: dict[int, list[str]],
    structured: StructuredOutput | None,
) -> StreamEvent | None:
    block = blocks[index]
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta["text"]
        return TextDelta(delta["text"])
    if kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta["thinking"]
        return ThinkingDelta(delta["thinking"])
    if kind == "signature_delta":
        block["signature"] = delta["signature"]
        return ThinkingDelta("", signature=delta["signature"])
    if kind == "input_json_delta":
        arguments.setdefault(index, []).append(delta["partial_json"])
        if block.get("type") in SERVER_CALLS:
            return ServerToolCallDelta(index, arguments=delta["partial_json"])
        if structured is not None and block.get("name") == structured.name:
            return None
        return ToolCallDelta(index, arguments=delta["partial_json"])
    if kind == "citations_delta":
        # Kept on the block too, so the end response (read from the rebuilt message)
        # has the citations chat has.
        if block.get("citations") is None:
            block["citations"] = []
        block["citations"].append(delta["citation"])
        return CitationDelta(citation(delta["citation"]))
    return None  # later delta types: kept out of the unified events


def _arguments(pieces: list[str], block: Mapping[str, Any]) -> Any:
    text = "".join(pieces).strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedResponse(
            f"tool call {block.get('name')!r} streamed input that is not JSON: {error}"
        ) from error
