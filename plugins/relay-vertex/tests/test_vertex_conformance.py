"""Both providers pass the core's provider conformance suite, signed with a
service-account key whose token endpoint runs on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from vertex_support import PROJECT, TokenServer, google_error, service_account

import relay_vertex
from relay_core.testing import CONFORMANCE_TEXT, ProviderConformance, json_answer, sse_answer

USAGE = {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12}
RETRY = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}


class _Signed(ProviderConformance):
    """The conformance suite with this test's service-account key in the catalog entry."""

    plugin = relay_vertex
    entry_point = "vertex"
    key_file: Path

    @pytest.fixture(autouse=True)
    def _key(self, tmp_path: Path, token_server: TokenServer, private_key: str) -> None:
        self.key_file = tmp_path / "sa.json"
        self.key_file.write_text(json.dumps(service_account(token_server.url, private_key)))

    @property  # type: ignore[override]
    def settings(self) -> dict[str, Any]:
        return {"api_key": f"file:{self.key_file}", "options": {"project": PROJECT}}

    def _checked(self, request: httpx.Request) -> None:
        assert request.headers["authorization"].startswith("Bearer vertex-token-")
        assert f"/projects/{PROJECT}/locations/" in str(request.url)


def _gemini(parts: list[dict[str, Any]], finish: str | None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "modelVersion": "conformance-model",
        "responseId": "conformance",
        **extra,
    }


class TestGeminiConformance(_Signed):
    provider = "vertex"

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        self._checked(request)
        if scenario == "text" and stream:
            assert str(request.url).endswith(":streamGenerateContent?alt=sse")
            return sse_answer(
                [
                    _gemini([{"text": "Conformance "}], None),
                    _gemini([{"text": "answer."}], "STOP", usageMetadata=USAGE),
                ]
            )
        if scenario == "text":
            return json_answer(_gemini([{"text": CONFORMANCE_TEXT}], "STOP", usageMetadata=USAGE))
        if scenario == "tool_call":
            call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
            return json_answer(_gemini([call], "STOP", usageMetadata=USAGE))
        if scenario == "rate_limit":
            body = google_error(
                429, "RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later.", [RETRY]
            )
            return json_answer(body, 429)
        message = "Request had invalid authentication credentials. Expected OAuth 2 access token."
        return json_answer(google_error(401, "UNAUTHENTICATED", message), 401)


class TestModelGardenConformance(_Signed):
    provider = "vertex-openai"
    model = "meta/llama-3.3-70b-instruct-maas"

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        self._checked(request)
        assert str(request.url).endswith("/endpoints/openapi/chat/completions")
        usage = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
        if scenario == "text" and stream:
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": self.model,
                "created": 1,
            }
            return sse_answer(
                [
                    {
                        **chunk,
                        "choices": [
                            {"index": 0, "delta": {"role": "assistant", "content": "Conformance "}}
                        ],
                    },
                    {
                        **chunk,
                        "choices": [
                            {"index": 0, "delta": {"content": "answer."}, "finish_reason": "stop"}
                        ],
                    },
                    {**chunk, "choices": [], "usage": usage},
                ],
                done=True,
            )
        message: dict[str, Any] = {"role": "assistant", "content": CONFORMANCE_TEXT}
        finish = "stop"
        if scenario == "tool_call":
            call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        if scenario == "rate_limit":
            body = google_error(
                429, "RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later."
            )
            return json_answer(body, 429, retry_after="3")
        if scenario == "authentication":
            return json_answer(
                google_error(
                    401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
                ),
                401,
            )
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
        return json_answer(body)
