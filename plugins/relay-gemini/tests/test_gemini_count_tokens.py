"""Token counts through Gemini's countTokens, replayed from a cassette."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from gemini_support import MODEL

from relay_core import Capability, Hub, MalformedResponse, TokenCount, Tool
from relay_gemini.count import count_payload, parse_count

Cassette = Callable[[str], AbstractContextManager[Any]]
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_a_count_wraps_the_whole_request_so_system_and_tools_count(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("count_tokens") as tape:
        count = make_hub().count_tokens(
            f"gemini/{MODEL}",
            "What is the weather in Paris?",
            system="You are terse.",
            tools=[WEATHER],
            max_tokens=100,
        )
    assert count == TokenCount(
        tokens=57, exact=True, method="provider", model=MODEL, provider="gemini"
    )
    sent = json.loads(tape.requests[0].body)["generateContentRequest"]
    assert sent["model"] == f"models/{MODEL}"
    assert sent["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


def test_a_tuned_model_keeps_its_resource_name() -> None:
    body = count_payload("tunedModels/mine", {"contents": []})
    assert body["generateContentRequest"]["model"] == "tunedModels/mine"


def test_an_answer_with_a_bad_total_is_malformed() -> None:
    assert parse_count({}) == 0
    with pytest.raises(MalformedResponse, match="totalTokens"):
        parse_count({"totalTokens": "57"})


def test_gemini_declares_exact_counts() -> None:
    from relay_gemini._adapter import GeminiProvider

    assert Capability.TOKEN_COUNT in GeminiProvider.capabilities
