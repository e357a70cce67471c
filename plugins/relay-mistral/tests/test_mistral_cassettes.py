"""Wire-format tests: Mistral answers written by hand from Mistral's documented format
(cassettes/relay-mistral), replayed with no network. Each cassette also holds the exact
request body, so a change to what the adapter sends fails here too."""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from mistral_support import CASSETTES, KEY

from relay_core import (
    AuthenticationError,
    DocumentPart,
    EndEvent,
    Hub,
    ImagePart,
    InvalidRequestError,
    Message,
    ProviderUnavailable,
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

MakeHub = Callable[..., Hub]
Cassette = Callable[[str], AbstractContextManager[Any]]
SMALL = "mistral/mistral-small-latest"
# A real 1x1 white PNG and a minimal PDF: small enough to read in a cassette.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAsTj2FAAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_a_chat_answer(make_hub: MakeHub, cassette: Cassette) -> None:
    with cassette("chat"):
        answer = make_hub().chat(
            "mistral/mistral-small-latest",
            "What is the capital of France?",
            system="Be brief.",
            temperature=0,
        )
    assert answer.content == (TextPart("Paris."),)
    assert answer.finish_reason == "stop"
    assert (answer.id, answer.model, answer.provider) == (
        "bed9481e857e40fab7c7eea4232f294a",
        "mistral-small-latest",
        "mistral",
    )
    assert answer.usage == Usage(input_tokens=15, output_tokens=4)
    assert answer.raw["object"] == "chat.completion"


def test_a_reasoning_answer_with_a_thinking_chunk(make_hub: MakeHub, cassette: Cassette) -> None:
    with cassette("reasoning"):
        answer = make_hub().chat("mistral/mistral-medium-3-5", "What is 17 * 23?", reasoning="high")
    assert answer.content == (
        ThinkingPart("17 times 20 is 340 and 17 times 3 is 51, so 340 + 51 = 391."),
        TextPart("17 * 23 = 391."),
    )
    assert answer.usage == Usage(input_tokens=12, output_tokens=66)


def test_a_stream_with_usage_ends_with_what_chat_returns(
    make_hub: MakeHub, cassette: Cassette
) -> None:
    hub = make_hub()
    with cassette("stream"):
        answer = hub.chat("mistral/mistral-small-latest", "Count to three.")
        events = list(hub.stream("mistral/mistral-small-latest", "Count to three."))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["One", ",", " two", ",", " three", "."]
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [Usage(8, 6)]
    assert sum(isinstance(e, EndEvent) for e in events) == 1
    end = events[-1]
    assert isinstance(end, EndEvent)
    for field in ("content", "usage", "finish_reason", "id", "model", "provider"):
        assert getattr(end.response, field) == getattr(answer, field), field
    assert end.response.text == "One, two, three."


def test_parallel_tool_calls_and_their_results(make_hub: MakeHub, cassette: Cassette) -> None:
    hub = make_hub()
    ask = Message.user("What is the weather in Paris and in Tokyo?")
    with cassette("tool_calls"):
        first = hub.chat("mistral/mistral-small-latest", ask, tools=[WEATHER], tool_choice="auto")
        assert first.finish_reason == "tool_calls"
        assert first.content == (
            ToolCallPart("D681PevKs", "get_weather", {"city": "Paris"}),
            ToolCallPart("q9Rt2XbLm", "get_weather", {"city": "Tokyo"}),
        )
        results = Message.tool(
            ToolResultPart.from_value(first.tool_calls[0].id, {"sky": "clear", "celsius": 21}),
            ToolResultPart.from_value(first.tool_calls[1].id, {"sky": "rain", "celsius": 17}),
        )
        second = hub.chat(
            "mistral/mistral-small-latest",
            [ask, first.to_message(), results],
            tools=[WEATHER],
            tool_choice="auto",
        )
    assert second.text == "Paris is clear at 21 °C; Tokyo has rain at 17 °C."
    assert second.finish_reason == "stop"


def test_structured_output(make_hub: MakeHub, cassette: Cassette) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"title": "Name", "type": "string"},
            "authors": {"title": "Authors", "type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "authors"],
        "additionalProperties": False,
    }
    with cassette("structured_output"):
        answer = make_hub().chat(
            "mistral/mistral-small-latest",
            "I recently read To Kill a Mockingbird by Harper Lee.",
            system="Extract the book information.",
            response_schema=ResponseSchema(schema, name="book"),
        )
    assert answer.json() == {"name": "To Kill a Mockingbird", "authors": ["Harper Lee"]}


def test_system_prompt_stop_seed_and_sampling(make_hub: MakeHub, cassette: Cassette) -> None:
    with cassette("generation_config"):
        answer = make_hub().chat(
            SMALL,
            "Name the three primary colours, one per line.",
            system="Answer with bare words.",
            temperature=0.2,
            top_p=0.9,
            max_tokens=40,
            stop=["\n\n"],
            seed=42,
        )
    assert answer.text == "Red\nYellow\nBlue"
    assert answer.finish_reason == "stop"
    assert answer.usage == Usage(input_tokens=22, output_tokens=6)


def test_images_by_url_and_by_bytes(make_hub: MakeHub, cassette: Cassette) -> None:
    hub = make_hub()
    tower = ImagePart(url="https://docs.mistral.ai/img/eiffel-tower-paris.jpg")
    with cassette("vision"):
        by_url = hub.chat(SMALL, [Message.user("What is in this image?", tower)])
        pixel = ImagePart(data=PNG, media_type="image/png")
        by_bytes = hub.chat(SMALL, [Message.user("What colour is this image?", pixel)])
    assert by_url.text == "The Eiffel Tower in Paris, seen from the Champ de Mars."
    assert by_bytes.text == "White."
    assert by_bytes.usage == Usage(input_tokens=14, output_tokens=3)


def test_more_images_than_mistral_takes_is_an_invalid_request(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    # Mistral's vision FAQ: at most 8 images per request.
    images = [ImagePart(url=f"https://example.com/photo-{n}.jpg") for n in range(9)]
    with cassette("vision_error"), pytest.raises(InvalidRequestError) as caught:
        make_hub().chat(SMALL, [Message.user("Which photo is the sharpest?", *images)])
    assert caught.value.status_code == 400
    assert "images" in str(caught.value)
    assert waits == []


def test_pdf_documents_by_url_and_by_bytes(make_hub: MakeHub, cassette: Cassette) -> None:
    hub = make_hub()
    paper = DocumentPart(url="https://arxiv.org/pdf/1805.04770")
    with cassette("documents"):
        by_url = hub.chat(SMALL, [Message.user("What is the title of the document?", paper)])
        pdf = DocumentPart(data=PDF, name="empty.pdf")
        by_bytes = hub.chat(SMALL, [Message.user("Is this document empty?", pdf)])
    assert by_url.text == "Born-Again Neural Networks."
    assert by_bytes.text == "Yes: the document has no text."
    assert by_url.usage == Usage(input_tokens=13704, output_tokens=6)


def test_a_document_mistral_cannot_fetch_is_an_invalid_request(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    private = DocumentPart(url="https://intranet.example.com/report.pdf")
    with cassette("documents_error"), pytest.raises(InvalidRequestError) as caught:
        make_hub().chat(SMALL, [Message.user("Summarise the report.", private)])
    assert caught.value.status_code == 400
    assert "intranet.example.com" in str(caught.value)
    assert waits == []


def test_an_error_inside_a_stream_ends_it_with_a_typed_error(
    make_hub: MakeHub, cassette: Cassette
) -> None:
    events: list[Any] = []
    with cassette("stream_error"), pytest.raises(ProviderUnavailable) as caught:
        events.extend(make_hub().stream(SMALL, "Tell me a story."))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Once", " upon"]
    assert caught.value.status_code is None  # the HTTP answer itself was a 200
    assert "Service unavailable" in str(caught.value)


def test_a_tool_call_without_its_result_is_an_invalid_request(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    history = [
        Message.user("What is the weather in Paris?"),
        Message.assistant(ToolCallPart("D681PevKs", "get_weather", {"city": "Paris"})),
        Message.user("And in Tokyo?"),
    ]
    with cassette("tool_calls_error"), pytest.raises(InvalidRequestError) as caught:
        make_hub().chat(SMALL, history, tools=[WEATHER])
    assert caught.value.status_code == 400
    assert "function calls and responses" in str(caught.value)
    assert waits == []


def test_an_invalid_response_schema_is_an_invalid_request(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    schema = {"type": "object", "properties": {"count": {"type": "integr"}}}
    with cassette("structured_output_error"), pytest.raises(InvalidRequestError) as caught:
        make_hub().chat(
            SMALL, "Count the vowels in 'banana'.", response_schema=ResponseSchema(schema)
        )
    assert caught.value.status_code == 400
    assert "response_format" in str(caught.value)
    assert waits == []


def test_reasoning_on_a_model_without_it_is_an_invalid_request(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    with cassette("reasoning_error"), pytest.raises(InvalidRequestError) as caught:
        make_hub().chat("mistral/mistral-large-latest", "What is 17 * 23?", reasoning="high")
    assert caught.value.status_code == 400
    assert "reasoning_effort" in str(caught.value)
    assert waits == []


def test_a_429_waits_then_succeeds(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    with cassette("rate_limit"):
        answer = make_hub().chat("mistral/mistral-small-latest", "hi")
    assert waits == [2.0]
    assert answer.text == "Hello! How can I help you today?"
    assert answer.metadata["retries"] == ["RateLimitError"]


def test_a_429_past_the_retries_is_a_rate_limit_error(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    hub = make_hub(catalog="providers:\n  mistral: {max_retries: 0}\n")
    with cassette("rate_limit"), pytest.raises(RateLimitError) as caught:
        hub.chat("mistral/mistral-small-latest", "hi")
    assert (caught.value.retry_after, caught.value.status_code) == (2.0, 429)
    assert caught.value.provider_message == "Rate limit exceeded"
    assert waits == []


def test_a_wrong_key_fails_fast_without_showing_it(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    with cassette("unauthorized"), pytest.raises(AuthenticationError) as caught:
        make_hub().chat("mistral/mistral-small-latest", "hi")
    assert caught.value.status_code == 401
    assert "Unauthorized" in str(caught.value)
    assert KEY not in str(caught.value)
    assert waits == []


def test_a_422_validation_error_is_an_invalid_request(
    make_hub: MakeHub, cassette: Cassette, waits: list[float]
) -> None:
    with cassette("validation_error"), pytest.raises(InvalidRequestError) as caught:
        make_hub().chat("mistral/mistral-small-latest", "hi", provider_kwargs={"store": False})
    assert caught.value.status_code == 422
    assert "Extra inputs are not permitted" in str(caught.value)
    assert waits == []


def test_no_cassette_holds_a_key_or_an_account_header() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 22
    for path in files:
        text = path.read_text().lower()
        for needle in ("bearer", "authorization", "sk-", KEY.lower(), "cookie"):
            assert needle not in text, (path.name, needle)
