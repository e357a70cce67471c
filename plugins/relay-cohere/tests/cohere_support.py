"""Shared helpers of relay-cohere's tests: Cohere answer bodies and stream events. A
module of its own name, so that tests of other plugins run in the same session never
import these under the name ``conftest``. The fake server is the core's
(``relay_core.testing``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from relay_core.testing import FakeServer, json_answer

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-cohere"
# Shaped like a Cohere key (40 letters and digits) so masking is exercised; never valid.
KEY = "TESTONLYcohere0123456789abcdefABCDEFGHIJ"
MODEL = "command-a-03-2025"
TARGET = f"cohere/{MODEL}"
NO_RETRY = "providers:\n  cohere: {max_retries: 0}\n"


def usage(billed: tuple[int, int] = (5, 3), tokens: tuple[int, int] = (71, 3)) -> dict[str, Any]:
    """A usage object as Cohere reports it: billed units and raw tokens."""
    return {
        "billed_units": {"input_tokens": billed[0], "output_tokens": billed[1]},
        "tokens": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
    }


def answer(
    content: list[dict[str, Any]] | None = None,
    *,
    tool_plan: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "COMPLETE",
    id: str = "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
) -> dict[str, Any]:
    """A non-streamed v2 chat answer."""
    message: dict[str, Any] = {"role": "assistant"}
    if content is not None:
        message["content"] = content
    if tool_plan is not None:
        message["tool_plan"] = tool_plan
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {"id": id, "finish_reason": finish_reason, "message": message, "usage": usage()}


def text(value: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": value}]


def call(id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def ok_server() -> FakeServer:
    """A fake Cohere answering every request with a short text."""
    return FakeServer(json_answer(answer(text("ok"))))


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """One stream event: ``{"type": kind, ...fields}``."""
    return {"type": kind, **fields}


def text_stream(*pieces: str, finish: str = "COMPLETE") -> list[dict[str, Any]]:
    """The events of a streamed text answer."""
    start = event("message-start", id="29f14a5a-11de-4cae-9800-25e4747408ea")
    start["delta"] = {
        "message": {
            "role": "assistant",
            "content": [],
            "tool_plan": "",
            "tool_calls": [],
            "citations": [],
        }
    }
    return [
        start,
        event(
            "content-start", index=0, delta={"message": {"content": {"type": "text", "text": ""}}}
        ),
        *(
            event("content-delta", index=0, delta={"message": {"content": {"text": piece}}})
            for piece in pieces
        ),
        event("content-end", index=0),
        event("message-end", delta={"finish_reason": finish, "usage": usage()}),
    ]
