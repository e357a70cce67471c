"""Shared helpers of relay-anthropic's tests: Anthropic answer bodies and their SSE form
(the fake server itself is relay_core.testing's). A module of its own name, so that tests
of other plugins run in the same session never import these under the name ``conftest``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from relay_core.testing import json_answer, sse_answer

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-anthropic"
# Shaped like a real key so the core's masking has to recognise it; never valid.
KEY = "sk-ant-api03-TESTONLY0123456789abcdefghijklmnopqrstuvwxyz"
MODEL = "claude-sonnet-4-5-20250929"


def message(
    content: list[dict[str, Any]],
    stop_reason: str | None = "end_turn",
    usage: dict[str, Any] | None = None,
    id: str = "msg_01TestMessage0000000001",
) -> dict[str, Any]:
    """A Messages API answer body."""
    return {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 10, "output_tokens": 5},
    }


def ok() -> httpx.Response:
    """The plainest answer, for tests that look only at what is sent."""
    return json_answer(message([{"type": "text", "text": "ok"}]))


def streamed(body: dict[str, Any]) -> httpx.Response:
    """``body`` as Anthropic streams it (see :func:`stream_of`)."""
    return sse_answer(stream_of(body), named=True)


def _pieces(text: str, size: int = 5) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stream_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE events Anthropic sends for ``body``: the message with empty content and
    the input usage first, each block as start/deltas/stop, then the stop reason and
    the output usage."""
    usage = dict(body["usage"])
    output = usage.pop("output_tokens", 0)
    start = {**body, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**usage, "output_tokens": 1}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(body["content"]):
        kind = block["type"]
        deltas: list[dict[str, Any]] = []
        if kind == "text":
            # A cited block starts with an empty citations list; each citation comes as a
            # citations_delta before the text (as real web-search streams show).
            first = {"type": "text", "text": ""}
            deltas = []
            if block.get("citations"):
                first = {"citations": [], **first}
                deltas = [{"type": "citations_delta", "citation": c} for c in block["citations"]]
            deltas += [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        elif kind == "thinking":
            first = {"type": "thinking", "thinking": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
            first = {**block, "input": {}}
            text = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(text, 7)]
        else:  # redacted_thinking, server tools' results and the like arrive whole
            first = block
        events.append({"type": "content_block_start", "index": index, "content_block": first})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": body["stop_reason"], "stop_sequence": body["stop_sequence"]},
            "usage": {"output_tokens": output},
        }
    )
    events.append({"type": "message_stop"})
    return events
