"""relay_openai.chat and relay_openai.responses as pure wire functions: a plugin that
speaks OpenAI's formats builds bodies and reads answers and streams with them, with no
adapter, no HTTP and no settings, and gets what the adapter sends and returns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import relay_openai
from relay_core.plugin import (
    EndEvent,
    MalformedResponse,
    ProviderSettings,
    RateLimitError,
    Request,
    SSEEvent,
    StreamEvent,
    TextDelta,
    TokenLogprob,
    Tool,
    ToolCallPart,
)
from relay_openai import chat, responses

# Optional "unit": strict mode sends it required and nullable, and the answer's null
# must come back as "absent".
WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
)
REQUEST = Request.from_prompt("Weather in Paris?", model="gpt-4.1", system="Be brief.")
TOOL_REQUEST = Request.from_prompt("Weather in Paris?", model="gpt-4.1", tools=(WEATHER,))
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather"}}
CALL_ARGUMENTS = json.dumps({"city": "Paris", "unit": None})


def _adapter(api: str = "chat") -> Any:
    settings = ProviderSettings(name="openai", options={"api": api})
    return relay_openai.chat.OpenAIProvider(settings)


def _events(*payloads: Any) -> AsyncIterator[SSEEvent]:
    async def events() -> AsyncIterator[SSEEvent]:
        for payload in payloads:
            yield SSEEvent(payload if isinstance(payload, str) else json.dumps(payload))

    return events()


def _collect(stream: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    async def collect() -> list[StreamEvent]:
        return [event async for event in stream]

    return asyncio.run(collect())


def test_the_public_modules_export_exactly_what_they_document() -> None:
    assert set(chat.__all__) == {
        "FINISH_REASONS",
        "MODEL_FAMILIES",
        "ModelFamily",
        "OpenAIProvider",
        "events",
        "function_tool",
        "logprobs",
        "model_family",
        "parse",
        "payload",
        "usage",
    }
    assert set(responses.__all__) == {
        "events",
        "finish_reason",
        "function_tool",
        "parse",
        "payload",
        "usage",
    }
    for module in (chat, responses):
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_the_adapter_subclassed_from_chat_is_the_registered_one() -> None:
    from relay_openai._adapter import OpenAIProvider

    assert chat.OpenAIProvider is OpenAIProvider
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        chat.Nothing  # noqa: B018


@pytest.mark.parametrize("request_", [REQUEST, TOOL_REQUEST])
def test_chat_payload_is_what_the_adapter_sends(request_: Request) -> None:
    path, sent = _adapter().build_payload(request_)
    assert path == "/chat/completions"
    assert chat.payload(request_, provider="openai") == sent


@pytest.mark.parametrize("request_", [REQUEST, TOOL_REQUEST])
def test_responses_payload_is_what_the_adapter_sends(request_: Request) -> None:
    path, sent = _adapter("responses").build_payload(request_)
    assert path == "/responses"
    assert responses.payload(request_, provider="openai") == sent


def test_chat_payload_maps_tools_with_the_function_it_is_given() -> None:
    body = chat.payload(TOOL_REQUEST, provider="openai", tool=lambda tool: {"name": tool.name})
    assert body["tools"] == [{"name": "get_weather"}]
    loose = chat.function_tool(WEATHER, strict_tools=False)["function"]
    assert loose["strict"] is False
    assert loose["parameters"] == WEATHER.parameters


def test_chat_parse_drops_the_nulls_strict_mode_asked_for() -> None:
    body = {
        "id": "chatcmpl-1",
        "model": "gpt-4.1",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "tool_calls": [
                        {**CALL, "function": {**CALL["function"], "arguments": CALL_ARGUMENTS}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }
    response = chat.parse(body, TOOL_REQUEST, provider="openai")
    assert response.content == (ToolCallPart("call_1", "get_weather", {"city": "Paris"}),)
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (3, 2)
    assert response == _adapter()._parse_chat(body, TOOL_REQUEST)


def test_chat_events_assemble_a_stream_and_stop_at_done() -> None:
    chunk = {"id": "chatcmpl-1", "model": "gpt-4.1"}
    stream = _events(
        {**chunk, "choices": [{"delta": {"content": "Hel"}}]},
        {**chunk, "choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]},
        "[DONE]",
        "never read",
    )
    events = _collect(chat.events(stream, REQUEST, provider="openai"))
    assert events[:2] == [TextDelta("Hel"), TextDelta("lo")]
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert (end.response.text, end.response.finish_reason, end.response.id) == (
        "Hello",
        "stop",
        "chatcmpl-1",
    )


def test_chat_events_need_a_finish_reason_unless_done_ends_the_stream() -> None:
    def chunks() -> AsyncIterator[SSEEvent]:
        return _events({"choices": [{"delta": {"content": "Hi"}}]}, "[DONE]")

    with pytest.raises(MalformedResponse, match="before a finish_reason"):
        _collect(chat.events(chunks(), REQUEST, provider="openai"))
    events = _collect(chat.events(chunks(), REQUEST, provider="openai", done_ends_stream=True))
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.finish_reason == "stop"


def test_an_error_inside_a_stream_is_classified_by_its_code() -> None:
    stream = _events({"error": {"code": "rate_limit_exceeded", "message": "slow down"}})
    with pytest.raises(RateLimitError, match="slow down"):
        _collect(chat.events(stream, REQUEST, provider="openai"))


def test_responses_parse_and_events_agree() -> None:
    final = {
        "id": "resp_1",
        "status": "completed",
        "model": "gpt-4.1",
        "output": [
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": CALL_ARGUMENTS,
            }
        ],
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }
    parsed = responses.parse(final, TOOL_REQUEST, provider="openai")
    assert parsed.content == (ToolCallPart("call_1", "get_weather", {"city": "Paris"}),)
    assert parsed.finish_reason == "tool_calls"
    stream = _events(
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"type": "function_call", "call_id": "call_1", "name": "get_weather"},
        },
        {
            "type": "response.function_call_arguments.delta",
            "output_index": 0,
            "delta": CALL_ARGUMENTS,
        },
        {"type": "response.completed", "response": final},
    )
    end = _collect(responses.events(stream, TOOL_REQUEST, provider="openai"))[-1]
    assert isinstance(end, EndEvent)
    assert (end.response.content, end.response.finish_reason, end.response.usage) == (
        parsed.content,
        parsed.finish_reason,
        parsed.usage,
    )


def test_chat_events_gather_the_logprobs_of_every_chunk() -> None:
    chunk = {"id": "chatcmpl-1", "model": "gpt-4.1"}

    def token(text: str, logprob: float) -> dict[str, Any]:
        return {"content": [{"token": text, "logprob": logprob, "top_logprobs": []}]}

    stream = _events(
        {**chunk, "choices": [{"delta": {"content": "Hel"}, "logprobs": token("Hel", -0.5)}]},
        {
            **chunk,
            "choices": [
                {"delta": {"content": "lo"}, "logprobs": token("lo", -0.1), "finish_reason": "stop"}
            ],
        },
        "[DONE]",
    )
    end = _collect(chat.events(stream, REQUEST, provider="openai"))[-1]
    assert isinstance(end, EndEvent)
    assert end.response.logprobs == (TokenLogprob("Hel", -0.5), TokenLogprob("lo", -0.1))
