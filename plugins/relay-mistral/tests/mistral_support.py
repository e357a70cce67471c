"""Shared helpers of relay-mistral's tests: Mistral answer bodies and their SSE form, and
a recording MockTransport handler. A module of its own name, so that tests of other
plugins run in the same session never import these under the name ``conftest``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-mistral"
# Shaped like a real Mistral key (32 letters and digits) so masking is exercised; never valid.
KEY = "sk-mistral-TESTONLY0123456789abcdefABCDEF"
MODEL = "mistral-small-latest"


class Recorder:
    """A MockTransport handler: records each request, answers with the next of
    ``answers`` (the last one repeats)."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers) or [json_answer(completion("ok"))]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        index = min(len(self.requests), len(self.answers)) - 1
        return self.answers[index]

    @property
    def payload(self) -> Any:
        return json.loads(self.requests[-1].content)

    @property
    def payloads(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


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


def json_answer(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def sse_answer(events: list[Any], *, done: bool = True) -> httpx.Response:
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    if done:
        text += "data: [DONE]\n\n"
    return httpx.Response(200, content=text.encode(), headers={"content-type": "text/event-stream"})
