"""Shared helpers of relay-mistral's tests: Mistral answer bodies and stream chunks. A
module of its own name, so that tests of other plugins run in the same session never
import these under the name ``conftest``. The fake server and its answers are the core's
(``relay_core.testing``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from relay_core.testing import FakeServer, json_answer

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-mistral"
# Shaped like a real Mistral key (32 letters and digits) so masking is exercised; never valid.
KEY = "sk-mistral-TESTONLY0123456789abcdefABCDEF"
MODEL = "mistral-small-latest"


def ok_server() -> FakeServer:
    """A fake Mistral that answers every request with a short completion."""
    return FakeServer(json_answer(completion("ok")))


def completion(
    content: Any = "ok",
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
    id: str = "cmpl-0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5",
) -> dict[str, Any]:
    """A chat completion body as Mistral returns it."""
    return {
        "id": id,
        "object": "chat.completion",
        "model": MODEL,
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "created": 1764257531,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "tool_calls": tool_calls,
                    "prefix": False,
                },
                "finish_reason": finish_reason,
            }
        ],
    }


def call(id: str, name: str, arguments: Any, index: int = 0) -> dict[str, Any]:
    """One tool call as Mistral writes it (``arguments`` as JSON text unless given as-is)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": id,
        "type": "function",
        "function": {"name": name, "arguments": text},
        "index": index,
    }


def chunk(
    delta: dict[str, Any],
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    id: str = "cmpl-0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5",
) -> dict[str, Any]:
    """One streamed chunk."""
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": 1764258570,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        "usage": usage,
    }
