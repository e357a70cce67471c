"""Wire-format tests: answers written by hand from Together's, Groq's and DeepSeek's
documented formats (cassettes/relay-openai-compat), replayed with no network. Each
cassette also holds the exact request body, so a change to what is sent fails here too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relay_core import (
    AuthenticationError,
    EndEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Usage,
    UsageEvent,
)


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


def test_deepseek_insufficient_balance_fails_fast(
    make_hub: Any, cassette: Any, waits: list[float]
) -> None:
    with cassette("deepseek_insufficient_balance"), pytest.raises(AuthenticationError) as caught:
        make_hub(network=True).chat("deepseek/deepseek-reasoner", "9.11 and 9.8, which is greater?")
    assert caught.value.status_code == 402
    assert caught.value.provider_message == "Insufficient Balance"
    assert waits == []


def test_cassettes_hold_no_credentials(fake_key: str) -> None:
    folder = Path(__file__).resolve().parents[3] / "cassettes" / "relay-openai-compat"
    texts = [path.read_text() for path in sorted(folder.glob("*.yaml"))]
    assert len(texts) >= 5
    for text in texts:
        assert fake_key not in text
        assert "authorization" not in text.lower()
        assert "Bearer" not in text
