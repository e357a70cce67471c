"""relay-openai passes the core's provider conformance suite (Chat Completions)."""

from __future__ import annotations

from typing import Any

import httpx

import relay_openai
from relay_core.testing import (
    CONFORMANCE_KEY,
    CONFORMANCE_TEXT,
    ProviderConformance,
    json_answer,
    sse_answer,
)
from relay_openai._adapter import OpenAIProvider

USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def _completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-conformance",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "conformance-model",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": USAGE,
    }


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-conformance",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "conformance-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def _error(status: int, message: str, kind: str, code: str, **headers: str) -> httpx.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json_answer(body, status, **headers)


class TestConformance(ProviderConformance):
    plugin = relay_openai
    provider = "openai"
    adapter = OpenAIProvider
    not_applicable = {  # noqa: RUF012 - read-only
        "unkeyed_adapter": "without a key it sends no authorization and lets the server refuse"
    }

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        if scenario == "text" and stream:
            usage_chunk = {**_chunk({}), "choices": [], "usage": USAGE}
            return sse_answer(
                [
                    _chunk({"role": "assistant", "content": ""}),
                    _chunk({"content": "Conformance "}),
                    _chunk({"content": "answer."}),
                    _chunk({}, "stop"),
                    usage_chunk,
                ],
                done=True,
            )
        if scenario == "text":
            message = {"role": "assistant", "content": CONFORMANCE_TEXT, "refusal": None}
            return json_answer(_completion(message, "stop"))
        if scenario == "tool_call":
            call = {
                "id": "call_conformance1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}
            return json_answer(_completion(message, "tool_calls"))
        if scenario == "rate_limit":
            return _error(
                429,
                "Rate limit reached for requests",
                "requests",
                "rate_limit_exceeded",
                retry_after="3",
            )
        return _error(
            401,
            f"Incorrect API key provided: {CONFORMANCE_KEY}.",
            "invalid_request_error",
            "invalid_api_key",
        )
