"""Wire-format tests: Gemini's documented answers, replayed from the hand-written
cassettes in ``cassettes/relay-gemini`` (no network; see cassettes/README.md). Each
cassette also pins the request body: vcrpy matches it as JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml
from gemini_support import CASSETTES, KEY, MODEL

from relay_core import (
    AuthenticationError,
    ContentPolicyError,
    ContextWindowExceeded,
    EndEvent,
    GenerationConfig,
    Hub,
    Message,
    RateLimitError,
    Request,
    ResponseSchema,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from relay_core.secrets import mask
from relay_gemini._adapter import GENERATED_ID_PREFIX

Cassette = Callable[[str], AbstractContextManager[Any]]
TARGET = f"gemini/{MODEL}"
NO_RETRY = "providers:\n  gemini: {max_retries: 0}\n"
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def recorded(name: str, index: int = 0) -> dict[str, Any]:
    interactions = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"]
    return interactions[index]  # type: ignore[no-any-return]


def test_a_chat_answer(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("chat") as tape:
        got = make_hub().chat(
            TARGET, "What is the capital of France? One word.", system="You are terse."
        )
    assert tape.play_count == 1
    assert got.content == (TextPart("Paris"),)
    assert got.finish_reason == "stop"
    # Gemini 2.5 Flash thinks by default: the thoughts count as output.
    assert got.usage == Usage(input_tokens=14, output_tokens=27, reasoning_tokens=26)
    assert (got.id, got.model) == ("4Ij3aMPGLY6rz7IPpKjXuQo", MODEL)
    assert got.raw == json.loads(recorded("chat")["response"]["body"]["string"])


def test_a_streamed_answer_with_thoughts(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    request = Request.from_prompt(
        "Is 1001 prime?", model=TARGET, config=GenerationConfig(reasoning=1024)
    )
    with cassette("stream_thinking") as tape:
        events = list(make_hub().stream(request))
    assert tape.play_count == 1
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    thought = (
        "**Checking small primes**\n\n1001 ends in 1, so 2 and 5 are out. "
        "7 × 143 = 1001, and 143 = 11 × 13."
    )
    assert "".join(e.text for e in thinking) == thought
    [signature] = [e.signature for e in thinking if e.signature]
    assert signature.startswith("CuIBAdHtim9Q")
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "No. 1001 = 7 × 11 × 13, so it is not prime."
    end = events[-1]
    assert isinstance(end, EndEvent)
    # The signature came in an empty last piece: it belongs to the text before it.
    assert end.response.content == (
        ThinkingPart(thought),
        TextPart(text),
        ThinkingPart("", signature=signature),
    )
    assert end.response.usage == Usage(input_tokens=7, output_tokens=175, reasoning_tokens=154)
    assert end.response.finish_reason == "stop"
    assert end.response.id == "pZz3aKnbA5XhnsEPlP6X2A4"
    parts = end.response.raw["candidates"][0]["content"]["parts"]
    assert parts[-1] == {"text": text, "thoughtSignature": signature}


def test_parallel_function_calls_and_the_results_back(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    hub = make_hub()
    question = "Weather in Paris and in London?"
    with cassette("parallel_function_calls") as tape:
        first = hub.chat(TARGET, question, tools=[WEATHER], tool_choice="auto")
        paris, london = first.tool_calls
        assert first.content == (
            ToolCallPart(paris.id, "get_weather", {"city": "Paris"}),
            ThinkingPart("", signature=first.content[1].signature),  # type: ignore[union-attr]
            ToolCallPart(london.id, "get_weather", {"city": "London"}),
        )
        assert first.finish_reason == "tool_calls"
        assert paris.id.startswith(GENERATED_ID_PREFIX)
        assert first.usage == Usage(input_tokens=62, output_tokens=109, reasoning_tokens=79)
        conversation = [
            Message.user(question),
            first.to_message(),
            Message.tool(
                ToolResultPart.from_value(paris.id, {"temp_c": 18, "sky": "cloudy"}),
                ToolResultPart.from_value(london.id, {"temp_c": 12, "sky": "rain"}),
            ),
        ]
        second = hub.chat(TARGET, conversation, tools=[WEATHER], tool_choice="auto")
    # Both requests matched their recorded bodies: the signature went back on the call.
    assert tape.play_count == 2
    assert second.text == "Paris: 18 °C and cloudy. London: 12 °C with rain."
    assert second.finish_reason == "stop"


def test_structured_output(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    sent = json.loads(recorded("structured_output")["request"]["body"])
    schema = sent["generationConfig"]["responseJsonSchema"]
    with cassette("structured_output") as tape:
        got = make_hub().chat(
            TARGET,
            "Report the weather in Paris: 18 degrees, cloudy.",
            response_schema=ResponseSchema(schema, name="weather_report"),
        )
    assert tape.play_count == 1
    assert got.json() == {"city": "Paris", "temperature_c": 18, "conditions": "cloudy"}
    assert got.finish_reason == "stop"


def test_a_429_is_retried(
    make_hub: Callable[..., Hub], cassette: Cassette, waits: list[float]
) -> None:
    with cassette("rate_limit") as tape:
        got = make_hub().chat(TARGET, "Say hi.")
    assert got.text == "Hi!"
    assert tape.play_count == 2
    assert len(waits) == 1
    assert got.metadata["retries"] == ["RateLimitError"]


def test_a_429_waits_the_retry_delay_it_asks_for(
    make_hub: Callable[..., Hub], cassette: Cassette, waits: list[float]
) -> None:
    with cassette("rate_limit"):
        make_hub().chat(TARGET, "Say hi.")
    assert waits == [7.0]


def test_a_429_without_retries_is_a_rate_limit_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("rate_limit"), pytest.raises(RateLimitError) as caught:
        make_hub(catalog=NO_RETRY).chat(TARGET, "Say hi.")
    assert caught.value.status_code == 429
    assert "exceeded your current quota" in caught.value.provider_message


def test_an_invalid_key_is_an_authentication_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("invalid_key") as tape, pytest.raises(AuthenticationError) as caught:
        make_hub().chat(TARGET, "Say hi.")
    assert tape.play_count == 1  # not retried
    assert caught.value.status_code == 400
    assert caught.value.provider_message == "API key not valid. Please pass a valid API key."
    assert KEY not in str(caught.value)


def test_a_token_limit_is_a_context_window_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("token_limit"), pytest.raises(ContextWindowExceeded) as caught:
        make_hub().chat(TARGET, "Say hi.")
    assert caught.value.status_code == 400
    assert "exceeds the maximum number of tokens allowed (1048576)" in caught.value.provider_message
    assert not caught.value.retryable


def test_a_blocked_prompt_is_a_content_policy_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("blocked_prompt") as tape, pytest.raises(ContentPolicyError) as caught:
        make_hub().chat(TARGET, "Say hi.")
    assert tape.play_count == 1
    assert "PROHIBITED_CONTENT" in caught.value.provider_message


def test_cassettes_hold_no_key_and_follow_the_wire_format() -> None:
    # The batch cassettes have their own check, in test_gemini_batches.
    files = sorted(p for p in CASSETTES.glob("*.yaml") if not p.name.startswith("batch_"))
    assert len(files) >= 8
    for path in files:
        text = path.read_text()
        assert "AIza" not in text, path.name
        assert mask(text) == text, path.name
        for interaction in yaml.safe_load(text)["interactions"]:
            request, response = interaction["request"], interaction["response"]
            headers = {name.lower() for name in request["headers"]}
            assert not headers & {"x-goog-api-key", "authorization", "cookie"}, path.name
            assert "key=" not in request["uri"], path.name
            assert re.fullmatch(
                r"https://generativelanguage\.googleapis\.com/v1beta/models/[\w.-]+:"
                r"(generateContent|streamGenerateContent\?alt=sse)",
                request["uri"],
            ), path.name
            assert "set-cookie" not in {name.lower() for name in response["headers"]}
            body = response["body"]["string"]
            if request["uri"].endswith("?alt=sse"):
                assert response["headers"]["content-type"] == ["text/event-stream"]
                # Every event: one data line of JSON, ended by a blank line (CRLF framed).
                frames = body.split("\r\n\r\n")
                assert frames[-1] == ""
                for frame in frames[:-1]:
                    assert frame.startswith("data: "), frame
                    assert "\n" not in frame, frame
                    chunk = json.loads(frame.removeprefix("data: "))
                    assert set(chunk) <= {
                        "candidates",
                        "usageMetadata",
                        "modelVersion",
                        "responseId",
                        "promptFeedback",
                    }
            elif response["status"]["code"] >= 400:
                error = json.loads(body)["error"]
                assert error["code"] == response["status"]["code"]
                assert {"code", "message", "status"} <= set(error)
            else:
                answer = json.loads(body)
                assert {"usageMetadata", "modelVersion", "responseId"} <= set(answer)
                assert "candidates" in answer or "blockReason" in answer["promptFeedback"]
