"""Wire-format tests: recorded OpenAI answers (cassettes/relay-openai) replayed with no
network. Each cassette also holds the exact request body, so a change to what the adapter
sends fails here too."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from relay_core import (
    AuthenticationError,
    ContextWindowExceeded,
    DocumentPart,
    EndEvent,
    ImagePart,
    InvalidRequestError,
    Message,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    ResponseSchema,
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


FORECAST = Tool(
    "get_forecast",
    "Weather forecast for a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city's name."},
            "days": {"type": "integer", "description": "Days ahead; tomorrow when left out."},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
)
# A 1x1 PNG and a few bytes of PDF: the cassettes hold them base64-encoded.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
PDF = b"%PDF-1.7\n% Invoice 2025-06: total 42.00 EUR\n%%EOF\n"


def test_a_strict_tool_call_comes_back_without_the_nulls_strict_mode_forced(
    make_hub: Any, cassette: Any
) -> None:
    hub = make_hub(network=True)
    ask = Message.user("What is the forecast for Oslo, in celsius?")
    with cassette("chat_strict_tool") as recorded:
        first = hub.chat("openai/gpt-4.1-mini", ask, tools=[FORECAST], tool_choice="required")
        # The model had to fill "days" (strict mode made it required): it sent null,
        # which means "left out" in the caller's schema, so the call has no "days".
        assert first.tool_calls == (
            ToolCallPart(
                "call_Vb2nL8qW4eR6tY1uI3oP5aS7", "get_forecast", {"city": "Oslo", "unit": "celsius"}
            ),
        )
        result = ToolResultPart.from_value(first.tool_calls[0].id, {"sky": "snow", "celsius": -3})
        second = hub.chat(
            "openai/gpt-4.1-mini", [ask, first.to_message(), Message.tool(result)], tools=[FORECAST]
        )
    assert second.text == "Tomorrow in Oslo: snow, around -3 °C."
    sent_tool = json.loads(recorded.requests[0].body)["tools"][0]["function"]
    assert sent_tool["strict"] is True
    assert sent_tool["parameters"]["required"] == ["city", "days", "unit"]


def test_images_by_url_and_by_bytes(make_hub: Any, cassette: Any) -> None:
    with cassette("chat_vision") as recorded:
        answer = make_hub(network=True).chat(
            "openai/gpt-4.1-mini",
            Message.user(
                "What is in these two images?",
                ImagePart(url="https://images.example.com/apple.jpg", detail="low"),
                ImagePart(data=PNG, media_type="image/png"),
            ),
        )
    assert answer.text.startswith("The first image is a red apple")
    assert answer.usage == Usage(1143, 21)
    content = json.loads(recorded.requests[0].body)["messages"][0]["content"]
    assert [part["type"] for part in content] == ["text", "image_url", "image_url"]


def test_an_image_that_cannot_be_downloaded(
    make_hub: Any, cassette: Any, waits: list[float]
) -> None:
    image = ImagePart(url="https://images.example.com/missing.jpg")
    with cassette("error_invalid_image"), pytest.raises(InvalidRequestError) as caught:
        make_hub(network=True).chat(
            "openai/gpt-4.1-mini", Message.user("Describe this image.", image)
        )
    assert caught.value.status_code == 400
    assert "Error while downloading" in caught.value.provider_message
    assert waits == []


def test_pdf_documents_by_bytes_and_by_url(make_hub: Any, cassette: Any) -> None:
    hub = make_hub(network=True)
    question = "What is the invoice total?"
    with cassette("chat_documents"):
        by_bytes = hub.chat(
            "openai/gpt-4.1-mini",
            Message.user(DocumentPart(data=PDF, name="invoice.pdf"), question),
        )
        # Chat Completions takes no file URL: the Responses API does.
        by_url = hub.chat(
            "openai/gpt-4.1-mini",
            Message.user(DocumentPart(url="https://files.example.com/invoice.pdf"), question),
            provider_kwargs={"openai": {"api": "responses"}},
        )
    assert by_bytes.text == by_url.text == "The total is 42.00 EUR."
    assert by_url.id == "resp_6841b2c3d4e5f60718293a4b5c6d7e8f"


def test_a_document_url_that_cannot_be_downloaded(make_hub: Any, cassette: Any) -> None:
    document = DocumentPart(url="https://files.example.com/missing.pdf")
    with cassette("error_document_url"), pytest.raises(InvalidRequestError) as caught:
        make_hub(network=True).chat(
            "openai/gpt-4.1-mini",
            Message.user(document, "Summarise."),
            provider_kwargs={"openai": {"api": "responses"}},
        )
    assert caught.value.status_code == 400
    assert "missing.pdf" in caught.value.provider_message


def test_system_prompt_stop_and_seed(make_hub: Any, cassette: Any) -> None:
    with cassette("chat_stop_seed") as recorded:
        answer = make_hub(network=True).chat(
            "openai/gpt-4.1-mini",
            "Name the capital of France, then explain why.",
            system="Answer with the name only.",
            stop=["."],
            seed=7,
            temperature=0,
            max_tokens=20,
        )
    assert (answer.text, answer.finish_reason) == ("Paris", "stop")
    assert answer.raw["system_fingerprint"] == "fp_38647f5e19"  # what a seed is paired with
    sent = json.loads(recorded.requests[0].body)
    assert (sent["stop"], sent["seed"], sent["max_completion_tokens"]) == (["."], 7, 20)


def test_insufficient_quota_is_quota_exceeded_and_not_retried(
    make_hub: Any, cassette: Any, waits: list[float]
) -> None:
    # The cassette holds one answer: a retry would find none and fail differently.
    with cassette("error_insufficient_quota"), pytest.raises(QuotaExceeded) as caught:
        make_hub(network=True).chat("openai/gpt-4.1-mini", "hi")
    assert caught.value.status_code == 429
    assert not caught.value.retryable
    assert "You exceeded your current quota" in caught.value.provider_message
    assert waits == []


def test_an_error_inside_a_200_stream(make_hub: Any, cassette: Any, waits: list[float]) -> None:
    events: list[Any] = []
    with cassette("error_stream"), pytest.raises(ProviderUnavailable) as caught:
        events.extend(make_hub(network=True).stream("openai/gpt-4.1-mini", "Tell me a story."))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Once", " upon"]
    assert caught.value.status_code is None  # the HTTP answer was a 200
    assert "The server had an error" in caught.value.provider_message
    assert waits == []


def test_a_tool_schema_openai_refuses(make_hub: Any, cassette: Any, waits: list[float]) -> None:
    tool = Tool(
        "get_weather",
        "Current weather in a city.",
        {"type": "object", "properties": {"city": {"type": "strin"}}, "required": ["city"]},
    )
    with cassette("error_tool_schema"), pytest.raises(InvalidRequestError) as caught:
        make_hub(network=True).chat("openai/gpt-4.1-mini", "Weather in Paris?", tools=[tool])
    assert "Invalid schema for function 'get_weather'" in caught.value.provider_message
    assert waits == []


def test_a_response_schema_openai_refuses(make_hub: Any, cassette: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "intger"}},
        "required": ["answer"],
    }
    with cassette("error_response_schema"), pytest.raises(InvalidRequestError) as caught:
        make_hub(network=True).chat(
            "openai/gpt-4.1-mini",
            "How many legs does a spider have?",
            response_schema=ResponseSchema(schema, name="legs"),
        )
    assert "Invalid schema for response_format 'legs'" in caught.value.provider_message


def test_reasoning_asked_of_a_model_without_it(make_hub: Any, cassette: Any) -> None:
    with cassette("error_reasoning"), pytest.raises(InvalidRequestError) as caught:
        make_hub(network=True).chat("openai/gpt-4.1-mini", "What is 17 * 23?", reasoning="low")
    assert caught.value.status_code == 400
    assert "'reasoning_effort' is not supported" in caught.value.provider_message


def test_no_cassette_holds_a_key_or_an_account_header(cassette_dir: Any) -> None:
    files = sorted(cassette_dir.glob("*.yaml"))
    assert len(files) >= 9
    for path in files:
        text = path.read_text()
        for needle in ("sk-", "Bearer", "authorization", "openai-organization", "openai-project"):
            assert needle.lower() not in text.lower(), (path.name, needle)
        assert "cookie" not in text.lower(), path.name
