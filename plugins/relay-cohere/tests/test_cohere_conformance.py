"""relay-cohere passes the core's provider conformance suite."""

from __future__ import annotations

import json

import httpx
from cohere_support import answer, call, text, text_stream

import relay_cohere
from relay_cohere import CohereProvider
from relay_core.testing import CONFORMANCE_KEY, CONFORMANCE_TEXT, ProviderConformance


class TestConformance(ProviderConformance):
    plugin = relay_cohere
    provider = "cohere"
    adapter = CohereProvider

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        if scenario == "text" and stream:
            events = text_stream("Conformance ", "answer.")
            body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
            return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
        if scenario == "text":
            return httpx.Response(200, json=answer(text(CONFORMANCE_TEXT)))
        if scenario == "tool_call":
            body = answer(
                tool_plan="I will look up the weather in Paris.",
                tool_calls=[call("get_weather_8p4mdq3nzt6e", "get_weather", '{"city":"Paris"}')],
                finish_reason="TOOL_CALL",
            )
            return httpx.Response(200, json=body)
        if scenario == "rate_limit":
            body = {
                "id": "5b0b3e4e-4c2b-4d0c-9b57-6a0c1d2e3f40",
                "message": "You are past the per minute request limit, please wait and "
                "try again later.",
            }
            return httpx.Response(429, json=body, headers={"retry-after": "3"})
        return httpx.Response(401, json={"message": f"invalid api token {CONFORMANCE_KEY}"})
