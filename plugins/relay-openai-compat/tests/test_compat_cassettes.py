"""Wire-format tests: answers written by hand from Together's, Groq's and DeepSeek's
documented formats (cassettes/relay-openai-compat), replayed with no network. Each
cassette also holds the exact request body, so a change to what is sent fails here too."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from relay_core import (
    DocumentPart,
    EndEvent,
    ImagePart,
    InvalidRequestError,
    Message,
    ProviderUnavailable,
    QuotaExceeded,
    ResponseSchema,
    TextDelta,
    TextPart,
    ThinkingDelta,
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
CAPITAL = ResponseSchema(
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    },
    name="capital",
)
# A 1x1 PNG and a few bytes of PDF: the cassettes hold them base64-encoded.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
PDF = b"%PDF-1.7\n% Invoice 2025-06: total 42.00 EUR\n%%EOF\n"


def same(streamed: Any, said: Any) -> None:
    for field in ("content", "usage", "finish_reason", "model", "provider"):
        assert getattr(streamed, field) == getattr(said, field), field


def test_together_chat_and_stream(make_hub: Any, cassette: Any) -> None:
    hub = make_hub(network=True)
    target = "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"
    options = {"system": "Be brief.", "temperature": 0, "max_tokens": 20}
    with cassette("together_chat_and_stream"):
        said = hub.chat(target, "Count to three.", **options)
        events = list(hub.stream(target, "Count to three.", **options))
    assert said.content == (TextPart("1, 2, 3."),)
    assert (said.provider, said.finish_reason) == ("together", "stop")
    assert said.usage == Usage(45, 9)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["1", ",", " 2", ",", " 3", "."]
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [Usage(45, 9)]
    same(events[-1].response, said)


def test_groq_parsed_reasoning(make_hub: Any, cassette: Any) -> None:
    hub = make_hub(network=True)
    kwargs = {"provider_kwargs": {"reasoning_format": "parsed"}, "max_tokens": 512}
    with cassette("groq_reasoning"):
        said = hub.chat("groq/qwen/qwen3-32b", "Is 17 prime? Answer yes or no.", **kwargs)
        events = list(hub.stream("groq/qwen/qwen3-32b", "Is 17 prime? Answer yes or no.", **kwargs))
    thought = "17 has no divisors between 2 and 4 (sqrt 17 < 5), so it is prime."
    assert said.content == (ThinkingPart(thought), TextPart("Yes."))
    assert said.usage == Usage(19, 41)
    assert [e.text for e in events if isinstance(e, ThinkingDelta)] == [
        "17 has no divisors between 2 and 4",
        " (sqrt 17 < 5), so it is prime.",
    ]
    assert isinstance(events[-1], EndEvent)
    same(events[-1].response, said)  # usage too: Groq's stream carries it in x_groq


def test_deepseek_reasoner(make_hub: Any, cassette: Any) -> None:
    hub = make_hub(network=True)
    with cassette("deepseek_reasoner"):
        said = hub.chat("deepseek/deepseek-reasoner", "9.11 and 9.8, which is greater?")
        events = list(hub.stream("deepseek/deepseek-reasoner", "9.11 and 9.8, which is greater?"))
    thought = "Compare the decimals: 9.80 against 9.11. 80 hundredths is more than 11 hundredths."
    assert said.content == (ThinkingPart(thought), TextPart("9.8 is greater than 9.11."))
    assert said.usage == Usage(18, 120, reasoning_tokens=112)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["ThinkingDelta"] * 2 + ["TextDelta"] * 2 + ["UsageEvent", "EndEvent"]
    same(events[-1].response, said)


def test_deepseek_json_output_fallback(make_hub: Any, cassette: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["question", "answer"],
        "additionalProperties": False,
    }
    with cassette("deepseek_json_output"):
        said = make_hub(network=True).chat(
            "deepseek/deepseek-chat",
            "Which is the longest river in the world? The Nile River.",
            system="Parse the question and the answer from the user's exam text.",
            response_schema=schema,
        )
    assert said.json() == {
        "question": "Which is the longest river in the world?",
        "answer": "The Nile River",
    }
    assert said.usage == Usage(96, 24, cached_input_tokens=64)


def test_deepseek_insufficient_balance_is_quota_exceeded_and_not_retried(
    make_hub: Any, cassette: Any, waits: list[float]
) -> None:
    with cassette("deepseek_insufficient_balance"), pytest.raises(QuotaExceeded) as caught:
        make_hub(network=True).chat("deepseek/deepseek-reasoner", "9.11 and 9.8, which is greater?")
    assert caught.value.status_code == 402
    assert caught.value.provider_message == "Insufficient Balance"
    assert waits == []


def test_groq_parallel_tool_calls_and_their_results(make_hub: Any, cassette: Any) -> None:
    hub = make_hub(network=True)
    target = "groq/llama-3.3-70b-versatile"
    ask = Message.user("What is the weather in Paris and in Tokyo?")
    with cassette("groq_tool_calls") as recorded:
        first = hub.chat(target, ask, tools=[WEATHER], tool_choice="auto")
        assert first.finish_reason == "tool_calls"
        assert first.tool_calls == (
            ToolCallPart("call_k3vd", "get_weather", {"city": "Paris"}),
            ToolCallPart("call_w8pz", "get_weather", {"city": "Tokyo"}),
        )
        results = Message.tool(
            ToolResultPart.from_value("call_k3vd", {"sky": "clear", "celsius": 21}),
            ToolResultPart.from_value("call_w8pz", {"sky": "rain", "celsius": 17}),
        )
        second = hub.chat(
            target, [ask, first.to_message(), results], tools=[WEATHER], tool_choice="auto"
        )
    assert second.text == "Paris is clear at 21 °C; Tokyo has rain at 17 °C."
    # Tools go loose to compatible servers: unchanged, with no `strict` field.
    sent = json.loads(recorded.requests[0].body)["tools"][0]["function"]
    assert sent == {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": WEATHER.parameters,
    }


def test_groq_tool_use_failed_inside_a_stream(
    make_hub: Any, cassette: Any, waits: list[float]
) -> None:
    hub = make_hub(network=True)
    with cassette("groq_stream_tool_use_failed"), pytest.raises(InvalidRequestError) as caught:
        list(hub.stream("groq/llama-3.3-70b-versatile", "Weather in Paris?", tools=[WEATHER]))
    assert "Failed to call a function" in caught.value.provider_message
    assert caught.value.status_code is None  # the stream itself answered 200
    assert waits == []


def test_groq_json_schema_structured_output(make_hub: Any, cassette: Any) -> None:
    with cassette("groq_json_schema"):
        said = make_hub(network=True).chat(
            "groq/openai/gpt-oss-20b",
            "Which city is the capital of Japan?",
            response_schema=CAPITAL,
        )
    assert said.json() == {"city": "Tokyo", "country": "Japan"}


def test_groq_json_that_fails_the_schema(make_hub: Any, cassette: Any, waits: list[float]) -> None:
    with cassette("groq_json_validate_failed"), pytest.raises(InvalidRequestError) as caught:
        make_hub(network=True).chat(
            "groq/openai/gpt-oss-20b",
            "Which city is the capital of Japan?",
            response_schema=CAPITAL,
        )
    assert caught.value.status_code == 400
    assert "does not match the expected schema" in caught.value.provider_message
    assert waits == []


def test_together_images_by_url_and_by_bytes(make_hub: Any, cassette: Any) -> None:
    with cassette("together_vision") as recorded:
        said = make_hub(network=True).chat(
            "together/meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8",
            Message.user(
                "What is in these two images?",
                ImagePart(url="https://images.example.com/apple.jpg"),
                ImagePart(data=PNG, media_type="image/png"),
            ),
        )
    assert said.text.startswith("The first image is a red apple")
    assert said.usage == Usage(1210, 20)
    content = json.loads(recorded.requests[0].body)["messages"][0]["content"]
    assert content[2]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")


def test_openrouter_pdf_document(make_hub: Any, cassette: Any) -> None:
    with cassette("openrouter_document"):
        said = make_hub(network=True).chat(
            "openrouter/anthropic/claude-sonnet-4.5",
            Message.user(DocumentPart(data=PDF, name="invoice.pdf"), "What is the invoice total?"),
        )
    assert said.text == "The invoice total is 42.00 EUR."
    assert said.usage == Usage(1562, 13)


def test_together_an_image_that_cannot_be_downloaded(
    make_hub: Any, cassette: Any, waits: list[float]
) -> None:
    image = ImagePart(url="https://images.example.com/missing.jpg")
    with cassette("together_vision_invalid_image"), pytest.raises(InvalidRequestError) as caught:
        make_hub(network=True).chat(
            "together/meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8",
            Message.user("Describe this image.", image),
        )
    assert caught.value.status_code == 400
    assert "missing.jpg" in caught.value.provider_message
    assert waits == []


def test_openrouter_a_document_the_upstream_provider_refuses(
    make_hub: Any, cassette: Any, waits: list[float]
) -> None:
    document = DocumentPart(data=b"not a pdf", name="broken.pdf")
    with cassette("openrouter_document_invalid"), pytest.raises(InvalidRequestError) as caught:
        make_hub(network=True).chat(
            "openrouter/anthropic/claude-sonnet-4.5", Message.user(document, "Summarise.")
        )
    assert caught.value.status_code == 400
    assert caught.value.provider_message == "Provider returned error"
    assert waits == []


def test_groq_parsed_reasoning_asked_of_a_model_without_it(make_hub: Any, cassette: Any) -> None:
    with cassette("groq_reasoning_unsupported"), pytest.raises(InvalidRequestError) as caught:
        make_hub(network=True).chat(
            "groq/llama-3.3-70b-versatile",
            "Is 17 prime?",
            provider_kwargs={"reasoning_format": "parsed"},
        )
    assert "reasoning_format is not supported" in caught.value.provider_message


def test_openrouter_error_mid_stream(make_hub: Any, cassette: Any, waits: list[float]) -> None:
    events: list[Any] = []
    with cassette("openrouter_stream_error"), pytest.raises(ProviderUnavailable) as caught:
        events.extend(
            make_hub(network=True).stream("openrouter/openai/gpt-4o-mini", "Tell me a story.")
        )
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Once", " upon"]
    assert caught.value.provider_message == "Provider disconnected unexpectedly"
    assert waits == []


def test_xai_system_prompt_stop_and_seed(make_hub: Any, cassette: Any) -> None:
    with cassette("xai_stop_seed") as recorded:
        said = make_hub(network=True).chat(
            "xai/grok-3",
            "Name the capital of France, then explain why.",
            system="Answer with the name only.",
            stop=["."],
            seed=7,
            temperature=0,
            max_tokens=20,
        )
    assert (said.text, said.finish_reason) == ("Paris", "stop")
    sent = json.loads(recorded.requests[0].body)
    assert sent["messages"][0] == {"role": "system", "content": "Answer with the name only."}
    assert (sent["stop"], sent["seed"], sent["max_tokens"]) == (["."], 7, 20)


def test_cassettes_hold_no_credentials(fake_key: str) -> None:
    folder = Path(__file__).resolve().parents[3] / "cassettes" / "relay-openai-compat"
    texts = [path.read_text() for path in sorted(folder.glob("*.yaml"))]
    assert len(texts) >= 5
    for text in texts:
        assert fake_key not in text
        assert "authorization" not in text.lower()
        assert "Bearer" not in text


def test_openrouter_streams_without_a_finish_reason_are_whole(
    make_hub: Any, cassette: Any, waits: list[float]
) -> None:
    # OpenRouter relaying Novita and Moonshot ends whole answers (usage chunk, [DONE])
    # with no finish_reason, as simonw/llm's test_tools_streaming cassettes recorded: the
    # answer is complete, so the reason is inferred and the paid call is not sent again.
    version = Tool(
        "llm_version", "Return the installed version of llm", {"type": "object", "properties": {}}
    )
    hub = make_hub(network=True)
    target = "openrouter/moonshotai/kimi-k2"
    question = "What is the current llm version?"
    with cassette("openrouter_stream_no_finish_reason") as recorded:
        first = list(hub.stream(target, question, tools=[version]))
        called = first[-1].response
        second = list(
            hub.stream(
                target,
                [
                    Message.user(question),
                    Message.assistant(*called.tool_calls),
                    Message.user(ToolResultPart("0", "0.fixed-version")),
                ],
                tools=[version],
            )
        )
    assert len(recorded.requests) == 2  # nothing sent twice
    assert waits == []
    assert called.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in called.tool_calls] == [("0", "llm_version", {})]
    assert called.usage == Usage(57, 17)
    answered = second[-1].response
    assert (answered.text, answered.finish_reason) == (
        "The current version of llm is 0.fixed-version.",
        "stop",
    )
    assert answered.usage == Usage(107, 15)
