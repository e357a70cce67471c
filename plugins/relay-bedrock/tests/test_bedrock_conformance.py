"""relay-bedrock passes the core's provider conformance suite (Converse, signed with the
fake profile of ``conftest``)."""

from __future__ import annotations

import httpx
from bedrock_support import aws_error, converse, stream_answer, text_stream

import relay_bedrock
from relay_core.testing import CONFORMANCE_TEXT, ProviderConformance


class TestConformance(ProviderConformance):
    plugin = relay_bedrock
    provider = "bedrock"
    not_applicable = {"response_id": "Converse and ConverseStream answers carry no id"}  # noqa: RUF012

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
        streaming = request.url.path.endswith("/converse-stream")
        if scenario == "text" and streaming:
            return stream_answer(text_stream("Conformance ", "answer."))
        if scenario == "text":
            return httpx.Response(200, json=converse({"text": CONFORMANCE_TEXT}))
        if scenario == "tool_call":
            call = {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather"}
            return httpx.Response(
                200,
                json=converse({"toolUse": {**call, "input": {"city": "Paris"}}}, stop="tool_use"),
            )
        if scenario == "rate_limit":
            return aws_error(429, "ThrottlingException", "Too many requests", retry_after="3")
        return aws_error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
