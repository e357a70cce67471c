"""relay-gemini passes the core's provider conformance suite."""

from __future__ import annotations

from typing import Any

import httpx
from gemini_support import sse_answer

import relay_gemini
from relay_core.testing import (
    CONFORMANCE_KEY,
    CONFORMANCE_TEXT,
    ProviderConformance,
    json_answer,
)
from relay_gemini._adapter import GeminiProvider

USAGE = {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12}


def _answer(parts: list[dict[str, Any]], finish: str | None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "modelVersion": "conformance-model",
        "responseId": "conformance",
        **extra,
    }


def _error(code: int, status: str, message: str, details: list[Any]) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "status": status, "details": details}}
    return json_answer(body, code)


class TestConformance(ProviderConformance):
    plugin = relay_gemini
    provider = "gemini"
    adapter = GeminiProvider

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        assert CONFORMANCE_KEY not in str(request.url)
        if scenario == "text" and stream:
            return sse_answer(
                [
                    _answer([{"text": "Conformance "}], None),
                    _answer([{"text": "answer."}], "STOP", usageMetadata=USAGE),
                ]
            )
        if scenario == "text":
            return json_answer(_answer([{"text": CONFORMANCE_TEXT}], "STOP", usageMetadata=USAGE))
        if scenario == "tool_call":
            call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
            return json_answer(_answer([call], "STOP", usageMetadata=USAGE))
        if scenario == "rate_limit":
            retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}
            return _error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", [retry])
        reason = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
        }
        return _error(
            400,
            "INVALID_ARGUMENT",
            f"API key not valid. Please pass a valid API key. ({CONFORMANCE_KEY})",
            [reason],
        )
