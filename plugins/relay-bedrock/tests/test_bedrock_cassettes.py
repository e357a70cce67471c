"""Wire-format tests: the cassettes of ``cassettes/relay-bedrock`` (written from Bedrock's
API reference by ``make_cassettes.py``) replayed through a hub, requests signed with the
fake profile of ``conftest`` (vcrpy matches method, URL and body, never credentials)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any

import pytest
from bedrock_support import ACCOUNT, MODEL, ROLE_ARN

from relay_bedrock._adapter import BedrockProvider
from relay_core import (
    AuthenticationError,
    ContextWindowExceeded,
    EndEvent,
    Hub,
    Message,
    ProviderUnavailable,
    RateLimitError,
    Request,
    TextDelta,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    ToolCallPart,
    Usage,
)

Cassette = Callable[[str], AbstractContextManager[Any]]
TARGET = f"bedrock/{MODEL}"
QUESTION = "What is the capital of France?"
NO_RETRIES = "providers:\n  bedrock: {max_retries: 0}\n"
INVOKE = "providers:\n  bedrock:\n    options: {api: invoke}\n"
BATCH = (
    "providers:\n  bedrock:\n    options:\n      batch:\n"
    f"        s3_uri: s3://amzn-s3-demo-bucket/relay\n        role_arn: {ROLE_ARN}\n"
    "        min_records: 2\n        timeout_hours: 24\n"
)
JOB_ARN = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-invocation-job/a1b2c3d4e5f6"
METADATA = {"relay_job": "eval-1", "relay_tag": "eval-1.0.9f8e7d6c"}
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_converse(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("converse"):
        answer = make_hub().chat(TARGET, QUESTION, system="Be brief.", temperature=0)
    assert (answer.text, answer.finish_reason) == ("Paris.", "stop")
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (19, 4)


def test_converse_stream(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("converse_stream"):
        events = list(make_hub().stream(TARGET, QUESTION, system="Be brief."))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Par", "is."]
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert (end.response.text, end.response.usage.total_tokens) == ("Paris.", 16)


def test_tools(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("tools"):
        answer = make_hub().chat(TARGET, "Weather in Paris?", tools=[WEATHER])
    assert answer.tool_calls == (
        ToolCallPart("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather", {"city": "Paris"}),
    )
    assert (answer.text, answer.finish_reason) == ("I'll check.", "tool_calls")


def test_thinking(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("thinking"):
        events = list(make_hub().stream(TARGET, QUESTION, reasoning=1024))
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == (
        "France's capital is Paris."
    )
    response = events[-1].response  # type: ignore[union-attr]
    assert response.content[0] == ThinkingPart(
        "France's capital is Paris.", signature="EqoBCkgIARABGAIiQExAMPLEsignature"
    )
    assert response.text == "Paris."


def test_invoke(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("invoke"):
        answer = make_hub(catalog=INVOKE).chat(TARGET, QUESTION, system="Be brief.")
    assert (answer.text, answer.id) == ("Paris.", "msg_bdrk_01XFDUDYJgAACzvnptvVoYEL")


def test_invoke_stream(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("invoke_stream"):
        events = list(make_hub(catalog=INVOKE).stream(TARGET, QUESTION, system="Be brief."))
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert (end.response.text, end.response.usage.output_tokens) == ("Paris.", 4)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("error_throttled", RateLimitError),
        ("error_too_long", ContextWindowExceeded),
        ("error_access_denied", AuthenticationError),
    ],
)
def test_errors(
    make_hub: Callable[..., Hub], cassette: Cassette, name: str, error: type[Exception]
) -> None:
    with cassette(name), pytest.raises(error):
        make_hub(catalog=NO_RETRIES).chat(TARGET, QUESTION)


def test_an_exception_mid_stream(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with (
        cassette("error_stream_exception"),
        pytest.raises(ProviderUnavailable, match="interrupted"),
    ):
        list(make_hub(catalog=NO_RETRIES).stream(TARGET, QUESTION))


def _run(
    make_hub: Callable[..., Hub], call: Callable[[BedrockProvider], Coroutine[Any, Any, Any]]
) -> Any:
    adapter = make_hub(catalog=BATCH).get(TARGET).adapter
    assert isinstance(adapter, BedrockProvider)
    return asyncio.run(call(adapter))


def test_batch_submit(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    requests = [
        Request.from_prompt(f"Question {i}?", model=MODEL, custom_id=f"q{i}") for i in range(2)
    ]
    with cassette("batch_submit"):
        batch = _run(make_hub, lambda p: p.submit_batch(requests, metadata=METADATA))
    assert (batch.id, batch.state, batch.metadata) == (JOB_ARN, "validating", METADATA)


def test_batch_status(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("batch_status"):
        batch = _run(make_hub, lambda p: p.batch_status(JOB_ARN))
    assert (batch.state, batch.counts.completed, batch.counts.failed) == ("completed", 1, 1)
    assert batch.metadata == METADATA


def test_batch_results(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    async def items(provider: BedrockProvider) -> list[Any]:
        return [item async for item in provider.batch_results(JOB_ARN)]

    with cassette("batch_results"):
        ok, failed = _run(make_hub, items)
    assert (ok.custom_id, ok.response.text) == ("q0", "Answer 0.")
    assert (failed.custom_id, failed.error.kind) == ("q1", "ContextWindowExceeded")


def test_batch_cancel(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("batch_cancel"):
        batch = _run(make_hub, lambda p: p.cancel_batch(JOB_ARN))
    assert batch.state == "cancelling"


def test_batch_list(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("batch_list"):
        (batch,) = _run(make_hub, lambda p: p.list_batches())
    assert (batch.id, batch.metadata) == (JOB_ARN, METADATA)


def test_cache_points_reach_converse_and_cache_usage_is_priced(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    # Bedrock's list prices for Claude 3.5 Haiku: writes 1.25 times input, reads 0.1.
    catalog = (
        f"models:\n  haiku:\n    target: {TARGET}\n    pricing: "
        "{input: 0.8, output: 4.0, cached_input: 0.08, cache_write: 1.0}\n"
    )
    with cassette("converse_cache") as tape:
        answer = make_hub(catalog=catalog).chat(
            "haiku",
            Message.user(QUESTION, cache=True),
            system="Be brief.",
            cache_system=True,
            tools=[WEATHER],
            cache_tools=True,
        )
    assert tape.play_count == 1
    # Converse's inputTokens (3) leave out the 1024 read and the 310 written.
    assert answer.usage == Usage(
        input_tokens=1337, output_tokens=4, cached_input_tokens=1024, cache_write_tokens=310
    )
    expected = (3 * 0.8 + 1024 * 0.08 + 310 * 1.0 + 4 * 4.0) / 1e6
    assert answer.cost.amount == pytest.approx(expected)
