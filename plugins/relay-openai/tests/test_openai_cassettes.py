"""Wire-format tests: recorded OpenAI answers (cassettes/relay-openai) replayed with no
network. Each cassette also holds the exact request body, so a change to what the adapter
sends fails here too."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core import (
    AuthenticationError,
    ContextWindowExceeded,
    EndEvent,
    Message,
    RateLimitError,
    TextDelta,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageEvent,
)

WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_a_chat_answer(make_hub: Any, cassette: Any) -> None:
    with cassette("chat_answer"):
        answer = make_hub(network=True).chat(
            "openai/gpt-4.1-mini", "What is 2+2?", system="Be brief.", temperature=0
        )
    assert answer.content == (TextPart("4."),)
    assert answer.finish_reason == "stop"
    assert answer.id == "chatcmpl-BeQ1a2b3c4d5e6f7g8h9i0jKlMnOp"
    assert (answer.model, answer.provider) == ("gpt-4.1-mini-2025-04-14", "openai")
    assert answer.usage == Usage(input_tokens=21, output_tokens=3)
    assert answer.raw["object"] == "chat.completion"


def test_a_streamed_answer_ends_with_what_chat_returns(make_hub: Any, cassette: Any) -> None:
    hub = make_hub(network=True)
    with cassette("chat_stream"):
        answer = hub.chat("openai/gpt-4.1-mini", "Count to three.")
        events = list(hub.stream("openai/gpt-4.1-mini", "Count to three."))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["One", ",", " two", ",", " three", "."]
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [Usage(12, 6)]
    assert isinstance(events[-1], EndEvent)
    assert sum(isinstance(e, EndEvent) for e in events) == 1
    streamed = events[-1].response
    for field in ("content", "usage", "finish_reason", "id", "model", "provider"):
        assert getattr(streamed, field) == getattr(answer, field), field
    assert streamed.text == "One, two, three."


def test_parallel_tool_calls_and_their_results(make_hub: Any, cassette: Any) -> None:
    hub = make_hub(network=True)
    ask = Message.user("What is the weather in Paris and in Tokyo?")
    with cassette("chat_tool_calls"):
        first = hub.chat("openai/gpt-4.1-mini", ask, tools=[WEATHER], tool_choice="auto")
        assert first.finish_reason == "tool_calls"
        assert first.tool_calls == (
            ToolCallPart("call_Qx7dV1pZk9R2aL4mN6bT8cY0", "get_weather", {"city": "Paris"}),
            ToolCallPart("call_Hf3sJ5uW7eG9iK1oM2qS4vX6", "get_weather", {"city": "Tokyo"}),
        )
        results = Message.tool(
            ToolResultPart.from_value(first.tool_calls[0].id, {"sky": "clear", "celsius": 21}),
            ToolResultPart.from_value(first.tool_calls[1].id, {"sky": "rain", "celsius": 17}),
        )
        second = hub.chat(
            "openai/gpt-4.1-mini",
            [ask, first.to_message(), results],
            tools=[WEATHER],
            tool_choice="auto",
        )
    assert second.text == "Paris is clear at 21 °C; Tokyo has rain at 17 °C."
    assert second.finish_reason == "stop"


def test_structured_output_with_a_strict_schema(make_hub: Any, cassette: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}, "unit": {"type": "string"}},
        "required": ["answer", "unit"],
        "additionalProperties": False,
    }
    from relay_core import ResponseSchema

    with cassette("chat_structured_output"):
        answer = make_hub(network=True).chat(
            "openai/gpt-4.1-mini",
            "How many legs does a spider have?",
            response_schema=ResponseSchema(schema, name="legs", strict=True),
        )
    assert answer.json() == {"answer": 8, "unit": "legs"}


def test_a_responses_api_answer_with_reasoning(make_hub: Any, cassette: Any) -> None:
    with cassette("responses_answer"):
        answer = make_hub(network=True).chat(
            "openai/o4-mini",
            "What is the capital of France?",
            system="Be brief.",
            max_tokens=400,
            provider_kwargs={
                "openai": {"api": "responses"},
                "reasoning": {"effort": "low", "summary": "auto"},
            },
        )
    assert answer.content == (
        ThinkingPart("**Answering a simple fact**\n\nThe capital of France is Paris."),
        TextPart("Paris."),
    )
    assert answer.usage == Usage(input_tokens=19, output_tokens=84, reasoning_tokens=64)
    assert (answer.id, answer.model) == (
        "resp_6840a1b2c3d4e5f60718293a4b5c6d7e",
        "o4-mini-2025-04-16",
    )
    assert answer.finish_reason == "stop"


def test_a_responses_api_stream_equals_its_answer(make_hub: Any, cassette: Any) -> None:
    hub = make_hub("providers:\n  openai:\n    options: {api: responses}\n", network=True)
    with cassette("responses_stream"):
        answer = hub.chat("openai/gpt-4.1-mini", "Say hello.")
        events = list(hub.stream("openai/gpt-4.1-mini", "Say hello."))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello! How can I help?"
    [end] = [e for e in events if isinstance(e, EndEvent)]
    assert events[-1] is end
    for field in ("content", "usage", "finish_reason", "id", "model"):
        assert getattr(end.response, field) == getattr(answer, field), field
    assert answer.usage == Usage(10, 8)


def test_a_429_waits_the_retry_after_then_succeeds(
    make_hub: Any, cassette: Any, waits: list[float]
) -> None:
    with cassette("error_rate_limit"):
        answer = make_hub(network=True).chat("openai/gpt-4.1-mini", "hi")
    assert waits == [2.0]
    assert answer.text == "Hello! How can I help you today?"
    assert answer.metadata["retries"] == ["RateLimitError"]


def test_a_429_past_the_retries_is_a_rate_limit_error(
    make_hub: Any, cassette: Any, waits: list[float]
) -> None:
    hub = make_hub("providers:\n  openai: {max_retries: 0}\n", network=True)
    with cassette("error_rate_limit"), pytest.raises(RateLimitError) as caught:
        hub.chat("openai/gpt-4.1-mini", "hi")
    assert caught.value.retry_after == 2.0
    assert caught.value.status_code == 429
    assert "Rate limit reached for gpt-4.1-mini" in caught.value.provider_message
    assert waits == []


def test_context_length_exceeded(make_hub: Any, cassette: Any, waits: list[float]) -> None:
    with cassette("error_context_length"), pytest.raises(ContextWindowExceeded) as caught:
        make_hub(network=True).chat("openai/gpt-4.1-mini", "Summarise: " + "lorem " * 40)
    assert caught.value.status_code == 400
    assert "maximum context length" in str(caught.value)
    assert waits == []  # not retried


def test_a_wrong_key_fails_fast_without_showing_it(
    make_hub: Any, cassette: Any, waits: list[float], fake_key: str
) -> None:
    with cassette("error_authentication"), pytest.raises(AuthenticationError) as caught:
        make_hub(network=True).chat("openai/gpt-4.1-mini", "hi")
    assert caught.value.status_code == 401
    assert "Incorrect API key provided" in str(caught.value)
    assert fake_key not in str(caught.value)
    assert waits == []


def test_no_cassette_holds_a_key_or_an_account_header(cassette_dir: Any) -> None:
    files = sorted(cassette_dir.glob("*.yaml"))
    assert len(files) >= 9
    for path in files:
        text = path.read_text()
        for needle in ("sk-", "Bearer", "authorization", "openai-organization", "openai-project"):
            assert needle.lower() not in text.lower(), (path.name, needle)
        assert "cookie" not in text.lower(), path.name
