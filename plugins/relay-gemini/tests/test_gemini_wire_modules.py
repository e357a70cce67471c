"""The wire format as pure public modules: a plugin that speaks Gemini's wire (as
relay-vertex does) builds requests and reads answers, streams and batches with plain
functions, without an adapter, an HTTP client or httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import relay_gemini.wire
from relay_core.plugin import (
    ContentPolicyError,
    EndEvent,
    GenerationConfig,
    Message,
    Request,
    SSEEvent,
    TextPart,
    ToolCallPart,
)
from relay_gemini import batches, events, parse, payload, rpc


def test_the_names_relay_vertex_takes_stay_published() -> None:
    assert relay_gemini.wire.__all__ == ["GeminiProvider", "http_status", "timestamp_seconds"]
    assert relay_gemini.wire.http_status is rpc.http_status
    assert rpc.http_status({"code": 8, "status": "RESOURCE_EXHAUSTED"}) == 429
    assert rpc.timestamp_seconds("1970-01-01T00:01:00.123456789Z") == pytest.approx(60.123456)


def test_a_request_and_its_answer_without_an_adapter() -> None:
    request = Request(
        model="gemini-2.5-flash", messages=(Message("user", (TextPart("Hi"),)),), system="Be brief"
    )
    assert payload.payload(request) == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief"}]},
    }
    assert payload.method_path("gemini-2.5-flash", "generateContent") == (
        "/models/gemini-2.5-flash:generateContent"
    )
    body = {
        "candidates": [
            {
                "content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
    }
    response = parse.response(body, "gemini-2.5-flash", "acme")
    (call,) = response.content
    assert isinstance(call, ToolCallPart)
    assert call.id.startswith(parse.GENERATED_ID_PREFIX)
    assert (response.finish_reason, response.usage.output_tokens) == ("tool_calls", 2)
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}}
    with pytest.raises(ContentPolicyError, match="blocked") as caught:
        parse.response(blocked, "gemini-2.5-flash", "acme")
    assert caught.value.provider == "acme"


async def test_a_stream_without_an_adapter() -> None:
    async def chunks() -> AsyncIterator[SSEEvent]:
        yield SSEEvent(data='{"candidates": [{"content": {"parts": [{"text": "He"}]}}]}')
        yield SSEEvent(
            data='{"candidates": [{"content": {"parts": [{"text": "llo"}]},'
            ' "finishReason": "STOP"}], "responseId": "r1"}'
        )

    seen = [e async for e in events.stream_events(chunks(), model="m", provider="acme", rules=())]
    assert isinstance(seen[-1], EndEvent)
    end = seen[-1].response
    assert (end.text, end.id, end.finish_reason) == ("Hello", "r1", "stop")


def test_a_batch_operation_and_line_without_an_adapter() -> None:
    operation = {
        "name": "batches/b1",
        "metadata": {
            "state": "BATCH_STATE_SUCCEEDED",
            "displayName": batches.display_name({"run": "7"}),
            "batchStats": {"requestCount": "1", "successfulRequestCount": "1"},
        },
    }
    batch = batches.batch(operation, "acme")
    assert (batch.id, batch.state, batch.metadata, batch.counts.total) == (
        "batches/b1",
        "completed",
        {"run": "7"},
        1,
    )
    line = {"key": "k1", "error": {"code": 8, "message": "quota"}}
    item = batches.batch_item(line, model="m", provider="acme", rules=())
    assert (item.custom_id, item.error and item.error.status_code) == ("k1", 429)


def test_camel_case_renames_the_apis_fields_and_keeps_the_callers_json() -> None:
    """The SDK's snake_case body, in the form Relay's payload takes, for comparing."""
    sdk_body = {
        "contents": [{"role": "user", "parts": [{"file_data": {"file_uri": "gs://b/a.pdf"}}]}],
        "generation_config": {"thinking_config": {"thinking_budget": 512}},
        "tools": [
            {
                "function_declarations": [
                    {"name": "f", "parameters_json_schema": {"properties": {"city_name": {}}}}
                ]
            }
        ],
    }
    assert payload.camel_case(sdk_body) == {
        "contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "gs://b/a.pdf"}}]}],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 512}},
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "f", "parametersJsonSchema": {"properties": {"city_name": {}}}}
                ]
            }
        ],
    }
    request = Request(messages=(Message.user("Hi"),), config=GenerationConfig(reasoning=512))
    sent = payload.payload(request)
    assert payload.camel_case(sent) == sent  # what Relay writes is already in that form
