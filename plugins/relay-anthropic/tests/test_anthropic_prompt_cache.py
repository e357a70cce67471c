"""Prompt-cache breakpoints as Anthropic's ``cache_control``: where each mark lands in the
body (chat, batch lines), the limit of four, and the cache reads and writes read back
and priced."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml
from anthropic_support import CASSETTES, KEY, MODEL, message, ok

from relay_anthropic._adapter import AnthropicProvider
from relay_anthropic.messages import breakpoints
from relay_core import (
    Hub,
    InvalidRequestError,
    Message,
    ProviderSettings,
    Request,
    ResponseSchema,
    Secret,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from relay_core.testing import FakeServer, json_answer

Cassette = Callable[[str], AbstractContextManager[Any]]
TARGET = f"anthropic/{MODEL}"
EPHEMERAL = {"type": "ephemeral"}
CLAUSES = Tool(
    "find_clause",
    "The text of a numbered clause of the contract.",
    {"type": "object", "properties": {"number": {"type": "integer"}}, "required": ["number"]},
)
CONTRACT = "<contract>1. Parties. 2. Term: twelve months. 3. Fees.</contract>"
# Anthropic's list prices for Claude Sonnet 4.5: a cache write costs 1.25 times the
# input price, a cache read 0.1 times.
PRICED = f"""
models:
  reviewer:
    target: {TARGET}
    pricing: {{input: 3.0, output: 15.0, cached_input: 0.3, cache_write: 3.75}}
"""


def sent(make_hub: Callable[..., Hub], prompt: Any, **options: Any) -> Any:
    server = FakeServer(ok())
    make_hub(server).chat(TARGET, prompt, **options)
    return server.payload


def test_marks_reach_the_wire_and_cache_usage_is_priced(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("cache_breakpoints") as tape:
        answer = make_hub(catalog=PRICED).chat(
            "reviewer",
            [Message.user(TextPart(CONTRACT, cache=True), "What is the term?")],
            system="You review contracts. Quote the clause you rely on.",
            cache_system=True,
            tools=[CLAUSES],
            cache_tools=True,
        )
    sent_body = json.loads(tape.requests[0].body)
    recorded = yaml.safe_load((CASSETTES / "cache_breakpoints.yaml").read_text())
    assert sent_body == json.loads(recorded["interactions"][0]["request"]["body"])
    assert sent_body["system"][-1]["cache_control"] == EPHEMERAL
    assert sent_body["tools"][-1]["cache_control"] == EPHEMERAL
    assert sent_body["messages"][0]["content"][0]["cache_control"] == EPHEMERAL
    assert "cache_control" not in sent_body["messages"][0]["content"][1]
    # Anthropic's input_tokens (9) leave out the 2048 read and the 1310 written.
    assert answer.usage == Usage(
        input_tokens=3367, output_tokens=12, cached_input_tokens=2048, cache_write_tokens=1310
    )
    expected = (9 * 3.0 + 2048 * 0.3 + 1310 * 3.75 + 12 * 15.0) / 1e6
    assert answer.cost.amount == pytest.approx(expected)
    assert answer.cost.source == "user_override"


def test_a_message_mark_lands_on_its_last_block(make_hub: Callable[..., Hub]) -> None:
    body = sent(
        make_hub,
        [
            Message.user("Read this.", CONTRACT, cache=True),
            Message.assistant("Read."),
            Message.user("What is the term?"),
        ],
    )
    first, answer, question = body["messages"]
    assert [block.get("cache_control") for block in first["content"]] == [None, EPHEMERAL]
    assert "cache_control" not in answer["content"][0]
    assert "cache_control" not in question["content"][0]


def test_a_marked_tool_result_keeps_its_mark_in_the_merged_user_turn(
    make_hub: Callable[..., Hub],
) -> None:
    body = sent(
        make_hub,
        [
            Message.user("Clause 2?"),
            Message.assistant(ToolCallPart("toolu_1", "find_clause", {"number": 2})),
            Message.tool(ToolResultPart("toolu_1", "2. Term: twelve months.", cache=True)),
            Message.user("Quote it."),
        ],
        tools=[CLAUSES],
    )
    # The tool result and the next user turn travel in one user turn.
    result, follow_up = body["messages"][2]["content"]
    assert result["type"] == "tool_result"
    assert result["cache_control"] == EPHEMERAL
    assert "cache_control" not in follow_up
    assert "cache_control" not in body["tools"][-1]


def test_a_mark_on_a_part_the_api_does_not_see_moves_to_the_block_before(
    make_hub: Callable[..., Hub],
) -> None:
    body = sent(make_hub, Message.user(CONTRACT, TextPart("", cache=True)))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": CONTRACT, "cache_control": EPHEMERAL}
    ]


def test_without_marks_nothing_is_cached_and_the_system_stays_a_string(
    make_hub: Callable[..., Hub],
) -> None:
    body = sent(make_hub, CONTRACT, system="Be brief.", tools=[CLAUSES])
    assert body["system"] == "Be brief."
    assert "cache_control" not in json.dumps(body)


def test_cache_tools_marks_the_structured_output_tool_sent_last(
    make_hub: Callable[..., Hub],
) -> None:
    schema = ResponseSchema({"type": "object", "properties": {"term": {"type": "string"}}})
    answer = message(
        [{"type": "tool_use", "id": "toolu_1", "name": "response", "input": {"term": "1y"}}],
        stop_reason="tool_use",
    )
    server = FakeServer(json_answer(answer))
    said = make_hub(server).chat(
        TARGET, CONTRACT, tools=[CLAUSES], response_schema=schema, cache_tools=True
    )
    assert said.text == '{"term": "1y"}'
    tools = server.payload["tools"]
    assert [tool["name"] for tool in tools] == ["find_clause", "response"]
    assert [tool.get("cache_control") for tool in tools] == [None, EPHEMERAL]


def test_more_than_four_breakpoints_are_refused_before_the_call(
    make_hub: Callable[..., Hub],
) -> None:
    server = FakeServer(ok())
    turns = [Message.user(f"Part {i}.", cache=True) for i in range(3)]
    with pytest.raises(InvalidRequestError) as caught:
        make_hub(server).chat(
            TARGET,
            [*turns, Message.user(TextPart("a", cache=True), "b")],
            system="Be brief.",
            cache_system=True,
            custom_id="review-7",
        )
    message = str(caught.value)
    assert "at most 4 prompt-cache breakpoints" in message
    assert "has 5: system, messages[0], messages[1], messages[2], messages[3].content[0]" in (
        message
    )
    assert caught.value.custom_id == "review-7"
    assert server.requests == []


def test_a_message_mark_and_its_last_parts_mark_are_one_breakpoint() -> None:
    request = Request(
        messages=[Message.user("a", TextPart("b", cache=True), cache=True)],
        system="s",
        cache_system=True,
        cache_tools=True,  # no tools: nothing to mark
    )
    assert breakpoints(request) == ["system", "messages[0]"]


def test_a_batch_line_carries_the_same_marks() -> None:
    provider = AnthropicProvider(ProviderSettings(name="anthropic", api_key=Secret(KEY)))
    request = Request(
        messages=[Message.user(CONTRACT, cache=True)],
        model=MODEL,
        system="You review contracts.",
        cache_system=True,
        custom_id="c1",
    )
    params = provider.batch_line(request)["params"]
    assert params["system"] == [
        {"type": "text", "text": "You review contracts.", "cache_control": EPHEMERAL}
    ]
    assert params["messages"][0]["content"][0]["cache_control"] == EPHEMERAL
