"""relay-openai-compat passes the core's provider conformance suite, as the Groq preset
and as the generic entry in front of a local server."""

from __future__ import annotations

from typing import Any

import httpx

import relay_openai_compat
from relay_core.testing import (
    CONFORMANCE_KEY,
    CONFORMANCE_TEXT,
    ProviderConformance,
    json_answer,
    sse_answer,
)

USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def _completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-conformance",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "conformance-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": USAGE,
    }


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-conformance",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "conformance-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def serve_openai_style(scenario: str, stream: bool) -> httpx.Response:
    """The OpenAI-compatible wire answers every server of the family gives."""
    if scenario == "text" and stream:
        chunks = [
            _chunk({"role": "assistant", "content": ""}),
            _chunk({"content": "Conformance "}),
            _chunk({"content": "answer."}),
            _chunk({}, "stop"),
            {**_chunk({}), "choices": [], "usage": USAGE},
        ]
        return sse_answer(chunks, done=True)
    if scenario == "text":
        message = {"role": "assistant", "content": CONFORMANCE_TEXT}
        return json_answer(_completion(message, "stop"))
    if scenario == "tool_call":
        call = {
            "id": "call_conformance1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return json_answer(_completion(message, "tool_calls"))
    if scenario == "rate_limit":
        body = {
            "error": {
                "message": "Rate limit reached",
                "type": "tokens",
                "code": "rate_limit_exceeded",
            }
        }
        return json_answer(body, 429, retry_after="3")
    body = {
        "error": {
            "message": f"Invalid API Key {CONFORMANCE_KEY}",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    return json_answer(body, 401)


class TestGroqConformance(ProviderConformance):
    plugin = relay_openai_compat
    provider = "groq"
    entry_point = "openai-compat"
    not_applicable = {  # noqa: RUF012 - read-only
        "unkeyed_adapter": "without a key it sends no authorization and lets the server refuse"
    }

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        assert request.url.host == "api.groq.com"
        return serve_openai_style(scenario, stream)


class TestLocalServerConformance(ProviderConformance):
    plugin = relay_openai_compat
    provider = "local"
    entry_point = "openai-compat"
    settings = {"plugin": "openai-compat", "base_url": "http://127.0.0.1:8000/v1"}  # noqa: RUF012
    not_applicable = {"authentication": "a local server with no key configured rejects none"}  # noqa: RUF012

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        assert "authorization" not in request.headers
        return serve_openai_style(scenario, stream)
