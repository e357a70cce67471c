"""The Messages API answer: a Message (``POST /messages``, a batch result, or one rebuilt
from a stream) as Relay's :class:`Response`, with thinking, tool calls, server tools and
citations. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from relay_anthropic.messages.structured import StructuredOutput
from relay_core.plugin import (
    Citation,
    FinishReason,
    MalformedResponse,
    Part,
    Response,
    ServerToolCallPart,
    ServerToolResultPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)

__all__ = [
    "CITATIONS",
    "ERROR_STATUS",
    "MCP_RESULT",
    "SERVER_CALLS",
    "citation",
    "is_server_result",
    "message_response",
    "parse_message",
    "server_call",
    "server_result",
    "timestamp_seconds",
    "usage",
]

FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # The server paused a long turn (server tools); send the answer back to continue.
    "pause_turn": "unknown",
}
# The HTTP status each documented error type comes with, so that an ``error`` event in
# a stream (which arrives after a 200) is classified like the same error as an answer.
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# The citation types the Messages API returns on text blocks and takes back.
CITATIONS = frozenset(
    {
        "char_location",
        "page_location",
        "content_block_location",
        "web_search_result_location",
        "search_result_location",
    }
)
MCP_RESULT = "mcp_tool_result"
# Blocks of a tool the server runs: their input streams like a tool call's, but the
# caller never runs them.
SERVER_CALLS = frozenset({"server_tool_use", "mcp_tool_use"})


def parse_message(body: Any, structured: StructuredOutput | None, *, provider: str) -> Response:
    """:func:`message_response`, with an answer of another shape reported as a
    :class:`MalformedResponse` from ``provider``."""
    try:
        return message_response(body, structured)
    except MalformedResponse as error:
        error.provider = error.provider or provider
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise MalformedResponse(
            f"answer has an unexpected shape: {type(error).__name__}: {error}",
            provider=provider,
            status_code=200,
        ) from error


def citation(data: Mapping[str, Any]) -> Citation:
    """A citation on a text block, kept whole in ``data`` so that it can go back."""
    title = data.get("title", data.get("document_title"))
    return Citation(
        url=data.get("url"),
        title=title if isinstance(title, str) else None,
        cited_text=data.get("cited_text"),
        data=dict(data),
    )


def is_server_result(block: Mapping[str, Any]) -> bool:
    """A server tool's result: ``web_search_tool_result``, ``code_execution_tool_result``,
    ``bash_code_execution_tool_result``, ``web_fetch_tool_result``, ``mcp_tool_result``
    and those added later (each names the call it answers)."""
    kind = str(block.get("type"))
    return kind.endswith("_tool_result") and kind != "tool_result" and "tool_use_id" in block


def server_result(block: Mapping[str, Any]) -> ServerToolResultPart:
    """A server tool's result block, failed when it says so."""
    content = block.get("content")
    if block["type"] == MCP_RESULT:
        failed = bool(block.get("is_error"))
    else:
        failed = isinstance(content, dict) and str(content.get("type", "")).endswith("_error")
    return ServerToolResultPart(block["tool_use_id"], block["type"], content, is_error=failed)


def server_call(block: Mapping[str, Any]) -> ServerToolCallPart:
    """A call of a tool the server runs (built in, or on an MCP server)."""
    if not isinstance(block["input"], dict):
        raise MalformedResponse(f"server tool call {block['name']!r} input is not an object")
    return ServerToolCallPart(
        block["id"], block["name"], block["input"], server=block.get("server_name")
    )


def usage(counts: Mapping[str, Any]) -> Usage:
    """A Message's ``usage`` as Relay's."""
    # Anthropic's input_tokens leave out cache reads and writes; Relay's include them.
    read = int(counts.get("cache_read_input_tokens") or 0)
    written = int(counts.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(counts.get("input_tokens") or 0) + read + written,
        output_tokens=int(counts.get("output_tokens") or 0),
        cached_input_tokens=read,
        cache_write_tokens=written,
    )


def message_response(body: Any, structured: StructuredOutput | None) -> Response:
    """A Message as a response; a structured-output call becomes the answer's text."""
    stop_reason = body.get("stop_reason")
    finish: FinishReason = FINISH.get(stop_reason, "unknown")
    content: list[Part] = []
    answer: str | None = None
    for block in body["content"]:
        kind = block["type"]
        if kind == "text":
            citations = [citation(c) for c in block.get("citations") or ()]
            content.append(TextPart(block["text"], citations=citations))
        elif kind == "thinking":
            content.append(ThinkingPart(block["thinking"], signature=block.get("signature")))
        elif kind == "redacted_thinking":
            # The encrypted thinking goes where Relay keeps what must be sent back as is.
            content.append(ThinkingPart("", signature=block["data"], redacted=True))
        elif kind == "tool_use":
            if structured is not None and block["name"] == structured.name:
                answer = structured.text(block["input"], check=finish != "length")
                continue
            if not isinstance(block["input"], dict):
                raise MalformedResponse(f"tool call {block['name']!r} input is not an object")
            content.append(ToolCallPart(block["id"], block["name"], block["input"]))
        elif kind in SERVER_CALLS:
            content.append(server_call(block))
        elif is_server_result(block):
            content.append(server_result(block))
        # Other new block types stay in ``raw``.
    if structured is not None:
        content, finish = structured.settle(content, answer, finish, f"stop_reason {stop_reason!r}")
    return Response(
        content=tuple(content),
        model=body["model"],
        id=body["id"],
        finish_reason=finish,
        usage=usage(body.get("usage") or {}),
        raw=body,
    )


def timestamp_seconds(value: Any) -> float | None:
    """RFC 3339 (``2024-09-24T18:37:24.100435Z``) as Unix seconds. Python 3.10's
    ``fromisoformat`` takes neither ``Z`` nor fractions other than 3 or 6 digits."""
    if not value:
        return None
    text = re.sub(r"\.(\d+)", lambda m: "." + m[1][:6].ljust(6, "0"), str(value))
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
