"""relay-anthropic passes the core's provider conformance suite."""

from __future__ import annotations

from typing import Any

import httpx

import relay_anthropic
from relay_anthropic._adapter import AnthropicProvider
from relay_core.testing import (
    CONFORMANCE_KEY,
    CONFORMANCE_TEXT,
    ProviderConformance,
    json_answer,
    sse_answer,
)


def _message(content: list[dict[str, Any]], stop_reason: str) -> dict[str, Any]:
    return {
        "id": "msg_conformance",
        "type": "message",
        "role": "assistant",
        "model": "conformance-model",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 3},
    }


def _error(status: int, kind: str, message: str, **headers: str) -> httpx.Response:
    return json_answer(
        {"type": "error", "error": {"type": kind, "message": message}}, status, **headers
    )


class TestConformance(ProviderConformance):
    plugin = relay_anthropic
    provider = "anthropic"
    adapter = AnthropicProvider

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        if scenario == "text" and stream:
            start = _message([], "end_turn") | {"stop_reason": None}
            start["usage"] = {"input_tokens": 9, "output_tokens": 1}
            return sse_answer(
                [
                    {"type": "message_start", "message": start},
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": "Conformance "},
                    },
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": "answer."},
                    },
                    {"type": "content_block_stop", "index": 0},
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": 3},
                    },
                    {"type": "message_stop"},
                ],
                named=True,
            )
        if scenario == "text":
            return json_answer(_message([{"type": "text", "text": CONFORMANCE_TEXT}], "end_turn"))
        if scenario == "tool_call":
            call = {
                "type": "tool_use",
                "id": "toolu_conformance1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            }
            return json_answer(_message([call], "tool_use"))
        if scenario == "rate_limit":
            return _error(
                429,
                "rate_limit_error",
                "Number of requests has exceeded your rate limit.",
                retry_after="3",
            )
        return _error(401, "authentication_error", f"invalid x-api-key {CONFORMANCE_KEY}")
