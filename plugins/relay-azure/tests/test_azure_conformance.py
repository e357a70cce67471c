"""relay-azure passes the core's provider conformance suite."""

from __future__ import annotations

import httpx
import pytest
from azure_support import (
    ENDPOINT,
    PROMPT_FILTER_CHUNK,
    RATE_LIMITED,
    UNAUTHORIZED,
    chunk,
    completion,
    sse,
    tool_call,
)

import relay_azure
from relay_core.testing import CONFORMANCE_KEY, CONFORMANCE_TEXT, ProviderConformance

USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


class TestConformance(ProviderConformance):
    plugin = relay_azure
    provider = "azure"
    settings = {"base_url": ENDPOINT}  # noqa: RUF012 - read-only

    @pytest.fixture(autouse=True)
    def _conformance_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The adapter reads AZURE_OPENAI_API_KEY itself (api_key_env is None, so that
        # Entra ID needs no key): give it the suite's key, which must never show.
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", CONFORMANCE_KEY)

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        assert request.url.path == "/openai/deployments/conformance-model/chat/completions"
        assert request.headers["api-key"] == CONFORMANCE_KEY
        if scenario == "text" and stream:
            text = sse(
                [
                    PROMPT_FILTER_CHUNK,
                    chunk({"role": "assistant", "content": ""}),
                    chunk({"content": "Conformance "}),
                    chunk({"content": "answer."}),
                    chunk({}, "stop"),
                    chunk(None, usage=USAGE),
                ]
            )
            return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
        if scenario == "text":
            return httpx.Response(200, json=completion(CONFORMANCE_TEXT, usage=USAGE))
        if scenario == "tool_call":
            call = tool_call("get_weather", {"city": "Paris"})
            return httpx.Response(
                200, json=completion(None, tool_calls=[call], finish_reason="tool_calls")
            )
        if scenario == "rate_limit":
            return httpx.Response(429, json=RATE_LIMITED, headers={"retry-after": "3"})
        body = {"error": {**UNAUTHORIZED["error"], "message": f"bad key {CONFORMANCE_KEY}"}}
        return httpx.Response(401, json=body)
