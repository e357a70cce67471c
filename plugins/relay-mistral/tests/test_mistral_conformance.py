"""relay-mistral passes the core's provider conformance suite."""

from __future__ import annotations

import json
from typing import Any

import httpx

import relay_mistral
from relay_core.testing import CONFORMANCE_KEY, CONFORMANCE_TEXT, ProviderConformance
from relay_mistral._adapter import MistralProvider

USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def _completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "cmpl-conformance",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "conformance-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": USAGE,
    }


def _chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
    chunk = {
        "id": "cmpl-conformance",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "conformance-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }
    return f"data: {json.dumps(chunk)}\n\n"


class TestConformance(ProviderConformance):
    plugin = relay_mistral
    provider = "mistral"
    adapter = MistralProvider

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        if scenario == "text" and stream:
            text = (
                _chunk({"role": "assistant", "content": ""})
                + _chunk({"content": "Conformance "})
                + _chunk({"content": "answer."})
                + _chunk({"content": ""}, "stop", usage=USAGE)
                + "data: [DONE]\n\n"
            )
            return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
        if scenario == "text":
            message = {"role": "assistant", "content": CONFORMANCE_TEXT, "tool_calls": None}
            return httpx.Response(200, json=_completion(message, "stop"))
        if scenario == "tool_call":
            call = {
                "id": "D681PevKs",
                "type": "function",
                "index": 0,
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
            message = {"role": "assistant", "content": "", "tool_calls": [call]}
            return httpx.Response(200, json=_completion(message, "tool_calls"))
        if scenario == "rate_limit":
            body = {
                "object": "error",
                "message": "Requests rate limit exceeded",
                "type": "rate_limited",
                "param": None,
                "code": "1300",
            }
            return httpx.Response(429, json=body, headers={"retry-after": "3"})
        return httpx.Response(
            401,
            json={
                "message": f"Unauthorized key {CONFORMANCE_KEY}",
                "request_id": "req-conformance",
            },
        )
