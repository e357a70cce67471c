"""Token counts through Anthropic's count endpoint, replayed from cassettes."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from anthropic_support import MODEL

from relay_anthropic.messages import (
    AnthropicProvider,
    count_payload,
    message_payload,
    parse_count,
)
from relay_core import (
    Capability,
    GenerationConfig,
    Hub,
    MalformedResponse,
    Message,
    NotFoundError,
    Request,
    TokenCount,
    Tool,
)

Cassette = Callable[[str], AbstractContextManager[Any]]
NO_RETRY = "providers:\n  anthropic: {max_retries: 0}\n"
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_a_count_is_exact_and_counts_the_system_prompt_and_tools(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("count_tokens") as tape:
        count = make_hub().count_tokens(
            f"anthropic/{MODEL}",
            "What is the weather in Paris?",
            system="You are terse.",
            tools=[WEATHER],
            max_tokens=100,
            temperature=0.5,
        )
    assert count == TokenCount(
        tokens=412, exact=True, method="provider", model=MODEL, provider="anthropic"
    )
    # The cassette's matcher compares the body: max_tokens and temperature, which the
    # endpoint refuses, are not sent; the system prompt and the tools are.
    sent = json.loads(tape.requests[0].body)
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["system"] == "You are terse."
    assert not {"max_tokens", "temperature"} & set(sent)


def test_an_unknown_model_is_a_typed_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("count_tokens_unknown_model"), pytest.raises(NotFoundError) as caught:
        make_hub(NO_RETRY).count_tokens("anthropic/claude-does-not-exist", "hello")
    assert caught.value.status_code == 404
    assert "claude-does-not-exist" in str(caught.value)


def test_the_count_body_is_the_messages_body_without_generation_settings() -> None:
    request = Request(
        messages=[Message.user("hi")],
        model=MODEL,
        config=GenerationConfig(max_tokens=4000, stop=("x",), reasoning=2048),
        provider_kwargs={"metadata": {"user_id": "u1"}},
    )
    body, _ = message_payload(request, default_max_tokens=4096, provider="anthropic")
    counted = count_payload(body)
    assert set(counted) == {"model", "messages", "thinking"}
    assert counted["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_an_answer_without_input_tokens_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="input_tokens"):
        parse_count({"tokens": 3})


def test_anthropic_declares_exact_counts() -> None:
    assert AnthropicProvider.capabilities >= {Capability.TOKEN_COUNT}
