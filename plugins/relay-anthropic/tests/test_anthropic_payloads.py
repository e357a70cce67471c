"""The exact JSON the adapter sends for every mapping, and the headers around it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from anthropic_support import KEY, MODEL, message, ok, streamed

from relay_anthropic.messages import DEFAULT_MAX_TOKENS
from relay_core import (
    ConfigError,
    DocumentPart,
    Hub,
    ImagePart,
    InvalidRequestError,
    Message,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    UnsupportedSetting,
)
from relay_core.plugin import REASONING_BUDGETS
from relay_core.testing import FakeServer

TARGET = f"anthropic/{MODEL}"
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def sent(make_hub: Callable[..., Hub], *args: Any, catalog: str = "", **options: Any) -> Any:
    server = FakeServer(ok())
    make_hub(server, catalog).chat(TARGET, *args, **options)
    return server


def test_a_prompt_becomes_the_minimal_messages_payload(make_hub: Callable[..., Hub]) -> None:
    server = sent(make_hub, "Hello")
    assert server.payload == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
    }
    request = server.requests[-1]
    assert (request.method, str(request.url)) == ("POST", "https://api.anthropic.com/v1/messages")
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in request.headers
    assert "authorization" not in request.headers


def test_options_set_the_default_max_tokens_the_version_and_beta_headers(
    make_hub: Callable[..., Hub],
) -> None:
    catalog = """
providers:
  anthropic:
    options:
      default_max_tokens: 1000
      anthropic_version: "2023-01-01"
      beta: [interleaved-thinking-2025-05-14, files-api-2025-04-14]
"""
    server = sent(make_hub, "Hello", catalog=catalog)
    assert server.payload["max_tokens"] == 1000
    headers = server.requests[-1].headers
    assert headers["anthropic-version"] == "2023-01-01"
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,files-api-2025-04-14"


@pytest.mark.parametrize(
    ("options", "wrong"),
    [
        ({"default_max_tokens": 0}, "default_max_tokens"),
        ({"default_max_tokens": "many"}, "default_max_tokens"),
        ({"beta": 3}, "beta"),
        ({"anthropic_version": ""}, "anthropic_version"),
        ({"max_token": 5}, r"unknown option\(s\) max_token"),
    ],
)
def test_wrong_options_are_config_errors(
    adapter: Callable[..., Any], options: dict[str, Any], wrong: str
) -> None:
    with pytest.raises(ConfigError, match=wrong):
        adapter(FakeServer(ok()), **options)


def test_generation_config_maps_and_seed_is_not_sent(make_hub: Callable[..., Hub]) -> None:
    server = sent(
        make_hub,
        "Hello",
        system="Be brief.",
        temperature=0.2,
        top_p=0.9,
        max_tokens=300,
        stop_sequences=["END", "STOP"],
        seed=42,
        top_k=40,
    )
    assert server.payload == {
        "model": MODEL,
        "max_tokens": 300,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        "system": "Be brief.",
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["END", "STOP"],
    }


@pytest.mark.parametrize(
    "setting", [{"frequency_penalty": 0.5}, {"presence_penalty": 0.5}, {"logprobs": True}]
)
def test_settings_the_api_lacks_are_refused_before_the_call(
    make_hub: Callable[..., Hub], setting: dict[str, Any]
) -> None:
    server = FakeServer(ok())
    with pytest.raises(UnsupportedSetting, match=f"'{next(iter(setting))}' setting"):
        make_hub(server).chat(TARGET, "Hi", **setting)
    assert server.requests == []


def test_catalog_params_and_provider_kwargs_reach_the_payload(
    make_hub: Callable[..., Hub],
) -> None:
    catalog = f"""
models:
  claude:
    target: {TARGET}
    params: {{temperature: 0.5, max_tokens: 50}}
    provider_kwargs: {{metadata: {{user_id: u-1}}}}
"""
    server = FakeServer(ok())
    make_hub(server, catalog).chat("claude", "Hi", provider_kwargs={"top_k": 5, "max_tokens": 77})
    payload = server.payload
    assert payload["temperature"] == 0.5
    assert payload["metadata"] == {"user_id": "u-1"}
    assert payload["top_k"] == 5
    assert payload["max_tokens"] == 77  # provider_kwargs go in untouched, last


def test_thinking_budget_is_sent_and_max_tokens_leaves_room_for_the_answer(
    make_hub: Callable[..., Hub],
) -> None:
    server = sent(make_hub, "Think", reasoning=3000)
    assert server.payload["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    assert server.payload["max_tokens"] == 3000 + DEFAULT_MAX_TOKENS
    server = sent(make_hub, "Think", reasoning=3000, max_tokens=5000)
    assert server.payload["max_tokens"] == 5000


@pytest.mark.parametrize(
    ("effort", "budget"), [("minimal", 1024), ("low", 2048), ("medium", 8192), ("high", 16384)]
)
def test_reasoning_effort_maps_to_the_budget_the_readme_gives(
    make_hub: Callable[..., Hub], effort: str, budget: int
) -> None:
    server = sent(make_hub, "Think", reasoning=effort)
    assert server.payload["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert REASONING_BUDGETS[effort] == budget  # the table the adapter publishes


def test_a_budget_is_sent_as_given_and_zero_leaves_thinking_off(
    make_hub: Callable[..., Hub],
) -> None:
    server = sent(make_hub, "Think", reasoning=1500)
    assert server.payload["thinking"]["budget_tokens"] == 1500
    assert "thinking" not in sent(make_hub, "Think", reasoning=0).payload


def test_max_tokens_not_above_the_budget_is_refused_before_sending(
    make_hub: Callable[..., Hub],
) -> None:
    server = FakeServer(ok())
    with pytest.raises(InvalidRequestError, match="larger than the thinking budget"):
        make_hub(server).chat(TARGET, "Think", reasoning=2048, max_tokens=2048)
    assert server.requests == []


def test_tools_and_every_tool_choice(make_hub: Callable[..., Hub]) -> None:
    spec = {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "input_schema": WEATHER.parameters,
    }
    expected = {
        "auto": {"type": "auto"},
        "required": {"type": "any"},
        "none": {"type": "none"},
        "get_weather": {"type": "tool", "name": "get_weather"},
    }
    for choice, wire in expected.items():
        server = sent(make_hub, "Weather?", tools=[WEATHER], tool_choice=choice)
        assert server.payload["tools"] == [spec]
        assert server.payload["tool_choice"] == wire
    server = sent(make_hub, "Weather?", tools=[Tool("ping")])
    assert server.payload["tools"] == [
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}}
    ]
    assert "tool_choice" not in server.payload


def test_images_by_url_and_by_bytes(make_hub: Callable[..., Hub]) -> None:
    server = sent(
        make_hub,
        Message.user(
            "What is this?",
            ImagePart(url="https://example.com/cat.jpg"),
            ImagePart(data=b"\x89PNG", media_type="image/png"),
        ),
    )
    assert server.payload["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="},
        },
    ]


def test_image_bytes_without_a_media_type_are_refused(make_hub: Callable[..., Hub]) -> None:
    with pytest.raises(InvalidRequestError, match="media_type"):
        sent(make_hub, Message.user(ImagePart(data=b"\x89PNG")))


def test_documents_pdf_bytes_url_and_plain_text(make_hub: Callable[..., Hub]) -> None:
    server = sent(
        make_hub,
        Message.user(
            DocumentPart(data=b"%PDF-1.7", name="report.pdf"),
            DocumentPart(url="https://example.com/paper.pdf"),
            DocumentPart(data="notes é".encode(), media_type="text/plain"),
            "Summarise.",
        ),
    )
    assert server.payload["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjc="},
            "title": "report.pdf",
        },
        {"type": "document", "source": {"type": "url", "url": "https://example.com/paper.pdf"}},
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "notes é"},
        },
        {"type": "text", "text": "Summarise."},
    ]


def test_documents_anthropic_cannot_read_are_refused(make_hub: Callable[..., Hub]) -> None:
    with pytest.raises(InvalidRequestError, match="application/msword"):
        sent(make_hub, Message.user(DocumentPart(data=b"x", media_type="application/msword")))


def test_a_tool_conversation_maps_calls_results_and_merges_turns(
    make_hub: Callable[..., Hub],
) -> None:
    conversation = [
        Message.user("Weather in Paris and London?"),
        Message.assistant(
            "Looking.",
            ToolCallPart("toolu_1", "get_weather", {"city": "Paris"}),
            ToolCallPart("toolu_2", "get_weather", {"city": "London"}),
        ),
        Message.tool(ToolResultPart("toolu_1", "18°C")),
        Message.tool(ToolResultPart("toolu_2", "station offline", is_error=True)),
        Message.user("And in short?"),
    ]
    server = sent(make_hub, conversation, tools=[WEATHER])
    assert server.payload["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and London?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "London"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "station offline",
                    "is_error": True,
                },
                {"type": "text", "text": "And in short?"},
            ],
        },
    ]


def test_consecutive_user_and_assistant_turns_are_merged(make_hub: Callable[..., Hub]) -> None:
    server = sent(
        make_hub,
        [Message.user("a"), Message.user("b"), Message.assistant("c"), Message.assistant("d")],
    )
    assert server.payload["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}],
        },
    ]


def test_thinking_goes_back_signed_redacted_kept_and_unsigned_dropped(
    make_hub: Callable[..., Hub],
) -> None:
    server = sent(
        make_hub,
        [
            Message.user("Is 1001 prime?"),
            Message.assistant(
                ThinkingPart("7 × 143", signature="EuYBsig=="),
                ThinkingPart("", signature="EmwKAhgBEgy3va3p", redacted=True),
                ThinkingPart("from another provider"),
                "No.",
            ),
            Message.user("Why?"),
        ],
        reasoning=1024,
    )
    assert server.payload["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "7 × 143", "signature": "EuYBsig=="},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"},
        {"type": "text", "text": "No."},
    ]


def test_empty_text_parts_are_not_sent(make_hub: Callable[..., Hub]) -> None:
    server = sent(make_hub, Message.user("", "Hi"))
    assert server.payload["messages"][0]["content"] == [{"type": "text", "text": "Hi"}]


def test_stream_adds_stream_true(make_hub: Callable[..., Hub]) -> None:
    server = FakeServer(streamed(message([{"type": "text", "text": "ok"}])))
    list(make_hub(server).stream(TARGET, "Hi"))
    assert server.payload["stream"] is True
    assert server.requests[-1].headers["accept"] == "text/event-stream"


def _dropped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "sampling settings dropped" in r.getMessage()]


def test_sampling_settings_thinking_refuses_are_dropped_with_one_warning(
    make_hub: Callable[..., Hub], caplog: pytest.LogCaptureFixture
) -> None:
    # A catalog's defaults meant for other calls, then a call that turns thinking on:
    # Anthropic answers temperature 0.2, top_p 0.5 or any top_k with a 400.
    catalog = """
models:
  claude:
    target: anthropic/claude-sampling-drop
    params: {temperature: 0.2, top_p: 0.5}
    provider_kwargs: {top_k: 5, metadata: {user_id: u-1}}
"""
    caplog.set_level(logging.WARNING, logger="relay")
    server = FakeServer(ok(), ok(), ok())
    hub = make_hub(server, catalog)
    hub.chat("claude", "Think", reasoning="low")
    payload = server.payload
    assert payload["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert not {"temperature", "top_p", "top_k"} & set(payload)
    assert payload["metadata"] == {"user_id": "u-1"}  # other provider_kwargs untouched
    (warning,) = _dropped(caplog)
    for word in ("anthropic", "claude-sampling-drop", "temperature", "top_p", "top_k"):
        assert word in warning
    assert "extended thinking" in warning
    hub.chat("claude", "Think again", reasoning="low")
    assert len(_dropped(caplog)) == 1  # once per process, not once per request
    # Without thinking the same settings are sent.
    hub.chat("claude", "Hi")
    assert (server.payload["temperature"], server.payload["top_p"], server.payload["top_k"]) == (
        0.2,
        0.5,
        5,
    )


def test_sampling_settings_thinking_accepts_are_kept(
    make_hub: Callable[..., Hub], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="relay")
    server = sent(make_hub, "Think", reasoning="low", temperature=1.0, top_p=0.95)
    assert (server.payload["temperature"], server.payload["top_p"]) == (1.0, 0.95)
    assert _dropped(caplog) == []


def test_adaptive_thinking_through_provider_kwargs_drops_them_too(
    make_hub: Callable[..., Hub], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="relay")
    server = FakeServer(streamed(message([{"type": "text", "text": "ok"}])))
    list(
        make_hub(server).stream(
            "anthropic/claude-sampling-adaptive",
            "Think",
            temperature=0.3,
            provider_kwargs={"thinking": {"type": "adaptive"}},
        )
    )
    assert "temperature" not in server.payload
    assert server.payload["thinking"] == {"type": "adaptive"}
    assert len(_dropped(caplog)) == 1


@pytest.mark.parametrize("choice", ["required", "get_weather"])
def test_a_forced_tool_choice_with_thinking_is_refused_before_sending(
    make_hub: Callable[..., Hub], choice: str
) -> None:
    server = FakeServer(ok())
    with pytest.raises(InvalidRequestError, match="does not allow with extended thinking"):
        make_hub(server).chat(
            TARGET, "Weather?", tools=[WEATHER], tool_choice=choice, reasoning=2000
        )
    assert server.requests == []


@pytest.mark.parametrize("choice", ["auto", "none"])
def test_a_free_tool_choice_with_thinking_is_sent(
    make_hub: Callable[..., Hub], choice: str
) -> None:
    server = sent(make_hub, "Weather?", tools=[WEATHER], tool_choice=choice, reasoning=2000)
    assert server.payload["tool_choice"] == {"type": choice}
