"""Streaming: the same answer as chat, in typed pieces, ending in an equal response."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from relay_core import (
    EndEvent,
    GenerationConfig,
    MalformedResponse,
    Message,
    Request,
    ResponseSchema,
    TextDelta,
    ThinkingDelta,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    UsageEvent,
)

WEATHER = Tool(
    "get_weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "minLength": 40}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
)
PARALLEL = {
    "mock": {
        "tool_calls": [
            {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}},
            {"name": "get_weather", "arguments": {"city": "Rome, the eternal city", "days": 1}},
        ]
    }
}
CITY = ResponseSchema(
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
)
RESULTS = (
    Message.user("Weather?"),
    Message.assistant(ToolCallPart("call_1", "get_weather", {"city": "Oslo", "days": 1})),
    Message.tool(ToolResultPart("call_1", "sunny", name="get_weather")),
)
REQUESTS = {
    "echo": Request.from_prompt("Streaming sends the answer piece by piece", model="echo"),
    "think": Request.from_prompt("Why is the sky blue?", model="think", system="Be brief."),
    "tool": Request.from_prompt("Weather in Oslo?", model="echo", tools=[WEATHER]),
    "parallel": Request.from_prompt(
        "Paris and Rome?", model="think", tools=[WEATHER], provider_kwargs=PARALLEL
    ),
    "schema": Request.from_prompt("Describe Paris", model="echo", response_schema=CITY),
    "length": Request.from_prompt(
        "one two three four five", model="think", config=GenerationConfig(max_tokens=30)
    ),
    "stop": Request.from_prompt(
        "alpha beta. gamma", model="echo", config=GenerationConfig(stop=(".",))
    ),
    "results": Request(messages=RESULTS, model="echo", tools=[WEATHER]),
    "empty": Request.from_prompt("", model="echo"),
}


async def _collect(mock: Any, request: Request) -> list[Any]:
    return [event async for event in mock.stream(request)]


@pytest.mark.parametrize("name", list(REQUESTS))
async def test_the_end_response_equals_chat(mock: Any, name: str) -> None:
    adapter = mock()
    request = REQUESTS[name]
    events = await _collect(adapter, request)
    assert isinstance(events[-1], EndEvent)
    assert isinstance(events[-2], UsageEvent)
    assert sum(isinstance(e, EndEvent) for e in events) == 1
    chat = await adapter.chat(request)
    # Below the hub nothing differs at all: content, usage, finish reason, id and raw.
    assert events[-1].response == chat
    assert events[-2].usage == chat.usage


async def test_through_the_hub_the_end_response_matches_chat(make_hub: Any) -> None:
    hub = make_hub()
    for request in REQUESTS.values():
        request = attrs.evolve(request, model="mock/" + request.model)
        events = [event async for event in hub.astream(request)]
        end = events[-1].response
        chat = await hub.achat(request)
        assert (end.content, end.usage, end.finish_reason, end.model, end.provider) == (
            chat.content,
            chat.usage,
            chat.finish_reason,
            chat.model,
            chat.provider,
        )
        assert end.cost == chat.cost
        assert end.cost.source == "snapshot"
    await hub.aclose()


async def test_text_streams_word_by_word(mock: Any) -> None:
    events = await _collect(mock(), REQUESTS["echo"])
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Streaming", " sends", " the", " answer", " piece", " by", " piece"]
    assert [type(e) for e in events] == [TextDelta] * 7 + [UsageEvent, EndEvent]


async def test_thinking_streams_first_and_its_last_piece_carries_the_signature(mock: Any) -> None:
    events = await _collect(mock(), REQUESTS["think"])
    kinds = [type(e) for e in events]
    first_text = kinds.index(TextDelta)
    assert set(kinds[:first_text]) == {ThinkingDelta}
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert len(thinking) > 3
    assert [e.signature is not None for e in thinking] == [False] * (len(thinking) - 1) + [True]
    assert thinking[-1].signature == events[-1].response.content[0].signature
    assert "".join(e.text for e in thinking) == events[-1].response.thinking


async def test_tool_calls_stream_by_index_in_pieces(mock: Any) -> None:
    events = await _collect(mock(), REQUESTS["parallel"])
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    for index in (0, 1):
        mine = [e for e in calls if e.index == index]
        head, *pieces = mine
        assert (head.id, head.name, head.arguments) == (
            events[-1].response.tool_calls[index].id,
            "get_weather",
            "",
        )
        assert len(pieces) > 1  # the arguments JSON arrives split
        assert all(e.id is None and e.name is None for e in pieces)
    assert [c.arguments for c in events[-1].response.tool_calls] == [
        {"city": "Paris", "days": 3},
        {"city": "Rome, the eternal city", "days": 1},
    ]
    assert events[-1].response.finish_reason == "tool_calls"
    # Order: thinking, then the calls one after another, then usage and end.
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolCallDelta") > max(
        i for i, k in enumerate(kinds) if k == "ThinkingDelta"
    )


async def test_an_empty_answer_streams_only_usage_and_end(mock: Any) -> None:
    events = await _collect(mock(), REQUESTS["empty"])
    assert [type(e) for e in events] == [UsageEvent, EndEvent]
    assert events[-1].response.content == ()


async def test_a_malformed_answer_fails_before_the_first_event(mock: Any) -> None:
    request = Request.from_prompt(
        "x", model="echo", provider_kwargs={"mock": {"fault": {"kind": "malformed"}}}
    )
    stream = mock().stream(request)
    with pytest.raises(MalformedResponse, match="answer is not JSON"):
        await stream.__anext__()


async def test_the_hub_retries_a_stream_that_fails_before_its_first_event(
    make_hub: Any, waits: list[float]
) -> None:
    hub = make_hub()
    fault = {"kind": "rate_limit", "times": 2, "retry_after": 0.01}
    events = [
        event
        async for event in hub.astream(
            "mock/echo", "hello again", provider_kwargs={"mock": {"fault": fault}}
        )
    ]
    assert events[-1].response.text == "hello again"
    assert waits == [0.01, 0.01]
    await hub.aclose()
