"""Wire-format tests: Cohere answers written by hand from Cohere's documented v2 format
(cassettes/relay-cohere), replayed with no network. Each cassette also holds the exact
request body, so a change to what the adapter sends fails here too."""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from cohere_support import CASSETTES, KEY, MODEL, TARGET

from relay_core import (
    AuthenticationError,
    ContextWindowExceeded,
    EndEvent,
    Hub,
    ImagePart,
    Message,
    ProviderUnavailable,
    ResponseSchema,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageEvent,
)

MakeHub = Callable[..., Hub]
Cassette = Callable[[str], AbstractContextManager[Any]]
VISION = "cohere/command-a-vision-07-2025"
REASONING = "cohere/command-a-reasoning-08-2025"
# A real 1x1 white PNG: small enough to read in a cassette.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAsTj2FAAAAABJRU5ErkJggg=="
)
WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def _same_answer(streamed: EndEvent, answer: Any) -> None:
    for field in ("content", "usage", "finish_reason", "id", "model", "provider"):
        assert getattr(streamed.response, field) == getattr(answer, field), field


def test_a_chat_answer(make_hub: MakeHub, cassette: Cassette) -> None:
    with cassette("chat"):
        answer = make_hub().chat(
            TARGET, "What is the capital of France?", system="Be brief.", temperature=0
        )
    assert answer.content == (TextPart("Paris."),)
    assert answer.finish_reason == "stop"
    assert (answer.id, answer.model, answer.provider) == (
        "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        MODEL,
        "cohere",
    )
    # Billed units, not the raw token counts (510 input with Cohere's prompt template).
    assert answer.usage == Usage(input_tokens=12, output_tokens=3)
    assert answer.raw["usage"]["tokens"] == {"input_tokens": 510, "output_tokens": 3}


def test_a_stream_ends_with_what_chat_returns(make_hub: MakeHub, cassette: Cassette) -> None:
    hub = make_hub()
    with cassette("stream"):
        answer = hub.chat(TARGET, "Count to three.")
        events = list(hub.stream(TARGET, "Count to three."))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["One", ",", " two", ",", " three", "."]
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [Usage(5, 7)]
    assert sum(isinstance(e, EndEvent) for e in events) == 1
    end = events[-1]
    assert isinstance(end, EndEvent)
    _same_answer(end, answer)
    assert [e["type"] for e in end.response.raw][:2] == ["message-start", "content-start"]


def test_parallel_tool_calls_and_their_results(make_hub: MakeHub, cassette: Cassette) -> None:
    hub = make_hub()
    ask = Message.user("What is the weather in Paris and in Tokyo?")
    with cassette("tool_calls"):
        first = hub.chat(TARGET, ask, tools=[WEATHER], tool_choice="auto")
        assert first.finish_reason == "tool_calls"
        # The tool plan is the text the model says before its calls.
        assert first.content == (
            TextPart("I will look up the weather in Paris and in Tokyo."),
            ToolCallPart("get_weather_1byjy32y4hvq", "get_weather", {"city": "Paris"}),
            ToolCallPart("get_weather_e1y6q0xskbkb", "get_weather", {"city": "Tokyo"}),
        )
        results = Message.tool(
            ToolResultPart.from_value(first.tool_calls[0].id, {"sky": "clear", "celsius": 21}),
            ToolResultPart.from_value(first.tool_calls[1].id, {"sky": "rain", "celsius": 17}),
        )
        # The cassette holds the second request: plan and calls sent back as Cohere
        # gave them, each result as a tool message.
        second = hub.chat(TARGET, [ask, first.to_message(), results], tools=[WEATHER])
    assert second.text == "Paris is clear at 21 °C; Tokyo has rain at 17 °C."
    assert second.finish_reason == "stop"
    assert second.raw["message"]["citations"][0]["text"] == "clear at 21 °C"


def test_a_streamed_tool_call_with_its_plan(make_hub: MakeHub, cassette: Cassette) -> None:
    hub = make_hub()
    ask = "What is the weather in Paris?"
    with cassette("stream_tools"):
        answer = hub.chat(TARGET, ask, tools=[WEATHER], tool_choice="required")
        events = list(hub.stream(TARGET, ask, tools=[WEATHER], tool_choice="required"))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == (
        "I will look up the weather in Paris."
    )
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert {e.index for e in deltas} == {0}
    assert deltas[0].id == "get_weather_nsz5zm3w56q3"
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.tool_calls == (
        ToolCallPart("get_weather_nsz5zm3w56q3", "get_weather", {"city": "Paris"}),
    )
    assert end.response.finish_reason == "tool_calls"
    _same_answer(end, answer)


def test_structured_output(make_hub: MakeHub, cassette: Cassette) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "author": {"type": "string"},
            "publication_year": {"type": "integer"},
        },
        "required": ["title", "author", "publication_year"],
    }
    with cassette("structured_output"):
        answer = make_hub().chat(
            TARGET,
            "Generate a JSON describing a book, with the fields 'title' and 'author' and "
            "'publication_year'",
            response_schema=ResponseSchema(schema, name="book"),
        )
    assert answer.json() == {
        "title": "The Great Gatsby",
        "author": "F. Scott Fitzgerald",
        "publication_year": 1925,
    }


def test_images_by_url_and_by_bytes(make_hub: MakeHub, cassette: Cassette) -> None:
    hub = make_hub()
    logo = ImagePart(url="https://cohere.com/favicon-32x32.png", detail="low")
    with cassette("vision"):
        by_url = hub.chat(VISION, [Message.user("What is in this image?", logo)])
        pixel = ImagePart(data=PNG, media_type="image/png")
        by_bytes = hub.chat(VISION, [Message.user("What colour is this image?", pixel)])
    assert by_url.text == "The Cohere logo."
    assert by_bytes.text == "White."
    assert by_bytes.usage == Usage(input_tokens=9, output_tokens=2)


def test_reasoning_thinks_within_its_budget(make_hub: MakeHub, cassette: Cassette) -> None:
    hub = make_hub()
    with cassette("reasoning"):
        answer = hub.chat(REASONING, "What is 17 * 23?", reasoning="low")
        events = list(hub.stream(REASONING, "What is 17 * 23?", reasoning="low"))
    assert answer.content == (
        ThinkingPart("17 times 20 is 340, and 17 times 3 is 51, so 340 + 51 = 391."),
        TextPart("17 * 23 = 391."),
    )
    assert len([e for e in events if isinstance(e, ThinkingDelta)]) == 3
    end = events[-1]
    assert isinstance(end, EndEvent)
    _same_answer(end, answer)


def test_a_429_is_retried_then_answers(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    with cassette("rate_limit"):
        answer = make_hub().chat(TARGET, "hi")
    assert answer.text == "Hello! How can I help you today?"
    assert answer.metadata["retries"] == ["RateLimitError"]
    assert len(waits) == 1  # no Retry-After in the answer: the core's own backoff


def test_a_rejected_key_fails_fast_without_showing_it(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    with cassette("unauthorized"), pytest.raises(AuthenticationError) as caught:
        make_hub().chat(TARGET, "hi")
    assert caught.value.status_code == 401
    assert "invalid api token" in str(caught.value)
    assert KEY not in str(caught.value)
    assert waits == []


def test_too_many_tokens_is_a_context_window_error(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    with cassette("context_window"), pytest.raises(ContextWindowExceeded) as caught:
        make_hub().chat("cohere/command-r7b-12-2024", "Summarise: " + "lorem ipsum " * 20)
    assert caught.value.status_code == 400
    assert "size limit exceeded" in str(caught.value)
    assert waits == []


def test_an_error_at_the_end_of_a_stream_is_a_typed_error(
    make_hub: MakeHub, cassette: Cassette
) -> None:
    events: list[Any] = []
    with cassette("stream_error"), pytest.raises(ProviderUnavailable) as caught:
        events.extend(make_hub().stream(TARGET, "Tell me a story."))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Once", " upon"]
    assert caught.value.status_code is None  # the HTTP answer itself was a 200
    assert "internal server error" in str(caught.value)


def test_no_cassette_holds_a_key_or_an_account_header() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 12
    for path in files:
        text = path.read_text().lower()
        for needle in ("bearer", "authorization", KEY.lower(), "cookie"):
            assert needle not in text, (path.name, needle)
