"""Wire-format tests: Vertex's documented answers, replayed from the hand-written
cassettes in ``cassettes/relay-vertex``. The token is fetched before a cassette plays
(from the test's token endpoint on 127.0.0.1), so the cassette holds Vertex's exchanges
only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from vertex_support import MODEL, PROJECT

from relay_core import (
    AuthenticationError,
    ContentPolicyError,
    ContextWindowExceeded,
    Hub,
    NotFoundError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    TextDelta,
    Tool,
)
from relay_core.types import EndEvent

Cassette = Callable[[str], AbstractContextManager[Any]]
LLAMA = "meta/llama-3.3-70b-instruct-maas"


@pytest.fixture
def hub(make_hub: Callable[..., Hub], catalog: Callable[..., str]) -> Hub:
    """A hub whose two adapters already hold a token (the cassettes play Vertex only)."""
    hub = make_hub(catalog(project=PROJECT))
    for target in (f"vertex/{MODEL}", f"vertex-openai/{LLAMA}"):
        asyncio.run(hub.get(target).adapter.auth.token())  # type: ignore[attr-defined]
    return hub


def test_chat(hub: Hub, cassette: Cassette) -> None:
    with cassette("chat"):
        answer = hub.chat(
            f"vertex/{MODEL}", "What is the capital of France? One word.", system="You are terse."
        )
    assert answer.text == "Paris"
    assert answer.finish_reason == "stop"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (14, 27)
    assert answer.usage.reasoning_tokens == 26
    assert answer.provider == "vertex"


def test_count_tokens_sends_the_request_unwrapped(hub: Hub, cassette: Cassette) -> None:
    weather = Tool(
        "get_weather",
        "Current weather for a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    with cassette("count_tokens"):
        count = hub.count_tokens(
            f"vertex/google/{MODEL}",
            "What is the weather in Paris?",
            system="You are terse.",
            tools=[weather],
        )
    assert (count.tokens, count.exact, count.method) == (57, True, "provider")
    assert count.provider == "vertex"


def test_stream(hub: Hub, cassette: Cassette) -> None:
    with cassette("stream"):
        events = list(hub.stream(f"vertex/{MODEL}", "Count to three."))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "One, two, three."
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.text == "One, two, three."
    assert end.response.usage.output_tokens == 9 + 26


def test_tool_call_keeps_its_signature(hub: Hub, cassette: Cassette) -> None:
    weather = Tool(
        "get_weather",
        "Current weather for a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    with cassette("tool_call"):
        answer = hub.chat(f"vertex/{MODEL}", "Weather in Paris?", tools=[weather])
    (call,) = answer.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert call.signature == "CtgBAdHtim9mZ2Vy"
    assert answer.finish_reason == "tool_calls"


def test_structured_output(hub: Hub, cassette: Cassette) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    with cassette("structured_output"):
        answer = hub.chat(f"vertex/{MODEL}", "Capital of France, as JSON.", response_schema=schema)
    assert json.loads(answer.text) == {"city": "Paris", "country": "France"}


def test_a_blocked_prompt_is_a_content_policy_error(hub: Hub, cassette: Cassette) -> None:
    with cassette("blocked_prompt"), pytest.raises(ContentPolicyError, match="PROHIBITED_CONTENT"):
        hub.chat(f"vertex/{MODEL}", "Something the filters refuse.")


@pytest.mark.parametrize(
    ("name", "prompt", "model", "error"),
    [
        ("rate_limit", "hi", MODEL, RateLimitError),
        ("permission_denied", "hi", MODEL, AuthenticationError),
        ("billing_disabled", "hi", MODEL, QuotaExceeded),
        ("model_not_found", "hi", "gemini-0.9-nonexistent", NotFoundError),
        ("token_limit", "(a very long document)", MODEL, ContextWindowExceeded),
        ("unavailable", "hi", MODEL, ProviderUnavailable),
    ],
)
def test_errors_are_typed(
    hub: Hub, cassette: Cassette, name: str, prompt: str, model: str, error: type[Exception]
) -> None:
    with cassette(name), pytest.raises(error) as caught:
        hub.chat(f"vertex/{model}", prompt)
    if isinstance(caught.value, RateLimitError):
        assert caught.value.retry_after == 7  # google.rpc.RetryInfo's retryDelay
    assert type(caught.value) is error  # the most specific class, not a parent


def test_model_garden_chat(hub: Hub, cassette: Cassette) -> None:
    with cassette("openai_chat"):
        answer = hub.chat(
            f"vertex-openai/{LLAMA}",
            "What is the capital of France? One word.",
            system="You are terse.",
        )
    assert answer.text == "Paris"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (27, 2)
    assert answer.provider == "vertex-openai"


def test_model_garden_stream(hub: Hub, cassette: Cassette) -> None:
    with cassette("openai_stream"):
        events = list(hub.stream(f"vertex-openai/{LLAMA}", "Count to three."))
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.text == "One, two, three."
    assert end.response.finish_reason == "stop"
    assert end.response.usage.output_tokens == 6
