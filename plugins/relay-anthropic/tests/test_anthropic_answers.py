"""Reading answers: content blocks, finish reasons, usage, structured output, and the
streamed answer equal to the whole one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from anthropic_support import MODEL, message, stream_of, streamed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay_anthropic._adapter import AnthropicProvider
from relay_core import (
    EndEvent,
    Hub,
    InvalidRequestError,
    MalformedResponse,
    Message,
    Request,
    Response,
    ResponseSchema,
    StreamAssembler,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
)
from relay_core.testing import FakeServer, json_answer, sse_answer

TARGET = f"anthropic/{MODEL}"
SIGNATURE = "EuYBCkQYAiJAgCs1le6/Pol5Z4/JMomVOouGrWdhYNsH3ukzUECbB6iWrSQ=="
THOUGHTFUL = message(
    [
        {"type": "thinking", "thinking": "1001 = 7 × 143.", "signature": SIGNATURE},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT"},
        {"type": "text", "text": "No, 1001 is not prime."},
        {"type": "tool_use", "id": "toolu_01", "name": "factor", "input": {"n": 1001}},
    ],
    stop_reason="tool_use",
    usage={
        "input_tokens": 20,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 1000,
        "output_tokens": 90,
    },
)
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"}},
    "required": ["city", "temperature_c"],
    "additionalProperties": False,
}


def run_chat(provider: AnthropicProvider, request: Request) -> Response:
    return asyncio.run(provider.chat(request))


def run_stream(provider: AnthropicProvider, request: Request) -> list[Any]:
    async def collect() -> list[Any]:
        return [event async for event in provider.stream(request)]

    return asyncio.run(collect())


def test_blocks_come_back_in_order_with_signatures_and_usage(
    make_hub: Callable[..., Hub],
) -> None:
    answer = make_hub(FakeServer(json_answer(THOUGHTFUL))).chat(TARGET, "Is 1001 prime?")
    assert answer.content == (
        ThinkingPart("1001 = 7 × 143.", signature=SIGNATURE),
        ThinkingPart("", signature="EmwKAhgBEgy3va3pzix/LafPsn4aDFIT", redacted=True),
        TextPart("No, 1001 is not prime."),
        ToolCallPart("toolu_01", "factor", {"n": 1001}),
    )
    assert answer.finish_reason == "tool_calls"
    # Anthropic's input_tokens leave the cache out; Relay's include it.
    assert answer.usage == Usage(
        input_tokens=1320, output_tokens=90, cached_input_tokens=1000, cache_write_tokens=300
    )
    assert (answer.id, answer.model, answer.provider) == (THOUGHTFUL["id"], MODEL, "anthropic")
    assert answer.raw == THOUGHTFUL
    assert answer.text == "No, 1001 is not prime."
    assert answer.thinking == "1001 = 7 × 143."


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "unknown"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "unknown"),
    ],
)
def test_stop_reasons(make_hub: Callable[..., Hub], stop_reason: str, finish: str) -> None:
    body = message([{"type": "text", "text": "x"}], stop_reason=stop_reason)
    assert make_hub(FakeServer(json_answer(body))).chat(TARGET, "Hi").finish_reason == finish


def test_unknown_blocks_stay_in_raw_only(make_hub: Callable[..., Hub]) -> None:
    body = message(
        [
            {"type": "container_upload", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"},
            {"type": "text", "text": "Found it."},
        ]
    )
    answer = make_hub(FakeServer(json_answer(body))).chat(TARGET, "Search")
    assert answer.content == (TextPart("Found it."),)
    assert answer.raw["content"][0]["type"] == "container_upload"


@pytest.mark.parametrize(
    "body",
    [
        {"id": "msg_1", "model": MODEL},  # no content
        message([{"type": "text"}]),  # a text block without text
        message([{"type": "tool_use", "id": "t", "name": "f", "input": [1]}]),
        ["not", "a", "message"],
    ],
)
def test_unexpected_shapes_are_malformed_responses(make_hub: Callable[..., Hub], body: Any) -> None:
    hub = make_hub(FakeServer(json_answer(body)), "providers:\n  anthropic: {max_retries: 0}\n")
    with pytest.raises(MalformedResponse) as caught:
        hub.chat(TARGET, "Hi")
    assert caught.value.provider == "anthropic"


# ---------------------------------------------------------------------------- streaming


def test_stream_events_and_the_end_event_equal_chat(adapter: Callable[..., Any]) -> None:
    request = Request.from_prompt("Is 1001 prime?", model=MODEL)
    whole = run_chat(adapter(FakeServer(json_answer(THOUGHTFUL))), request)
    events = run_stream(adapter(FakeServer(streamed(THOUGHTFUL))), request)
    assert [type(e) for e in events].count(EndEvent) == 1
    assert isinstance(events[-1], EndEvent)
    assert events[-1].response == whole
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "No, 1001 is not prime."
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert "".join(e.text for e in thinking) == "1001 = 7 × 143."
    assert [(e.signature, e.redacted) for e in thinking if e.signature] == [
        (SIGNATURE, False),
        ("EmwKAhgBEgy3va3pzix/LafPsn4aDFIT", True),
    ]
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert {e.index for e in calls} == {3}  # keyed by the content block's index
    assert (calls[0].id, calls[0].name) == ("toolu_01", "factor")
    assert json.loads("".join(e.arguments for e in calls)) == {"n": 1001}
    usages = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert usages[0].input_tokens == 1320
    assert usages[-1] == whole.usage
    # The deltas say all a consumer needs: the core's assembler rebuilds the same parts
    # (the signature ends its thinking part, the redacted block is a part of its own).
    assembler = StreamAssembler()
    for event in events[:-1]:
        assembler.feed(event)
    assert assembler.content() == whole.content


_TEXT = st.text(min_size=1, max_size=30)
_BLOCK = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, _TEXT),
    st.builds(
        lambda t, s: {"type": "thinking", "thinking": t, "signature": s},
        _TEXT,
        st.text("abcXYZ0123+/=", min_size=4, max_size=40),
    ),
    st.builds(lambda d: {"type": "redacted_thinking", "data": d}, st.text("abcXYZ09", min_size=4)),
    # Server tools: calls whose input streams like a tool call's, results whole, cited text.
    st.builds(
        lambda i, kind, q: {
            "type": kind,
            "id": f"srvtoolu_{i}",
            "name": "web_search",
            "input": {"query": q},
            **({"server_name": "deepwiki"} if kind == "mcp_tool_use" else {}),
        },
        st.integers(0, 999),
        st.sampled_from(["server_tool_use", "mcp_tool_use"]),
        _TEXT,
    ),
    st.builds(
        lambda i, u: {
            "type": "web_search_tool_result",
            "tool_use_id": f"srvtoolu_{i}",
            "content": [{"type": "web_search_result", "title": u, "url": f"https://x/{i}"}],
        },
        st.integers(0, 999),
        _TEXT,
    ),
    st.builds(
        lambda t, c: {
            "type": "text",
            "text": t,
            "citations": [{"type": "web_search_result_location", "cited_text": c, "url": "u"}],
        },
        _TEXT,
        _TEXT,
    ),
    st.builds(
        lambda i, n, a: {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": a},
        st.integers(0, 999),
        st.sampled_from(["f", "get_weather"]),
        st.dictionaries(
            st.text(max_size=5), st.one_of(st.integers(), _TEXT, st.none()), max_size=3
        ),
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    blocks=st.lists(_BLOCK, max_size=6),
    stop=st.sampled_from(["end_turn", "max_tokens", "tool_use", "refusal", "pause_turn"]),
    usage=st.fixed_dictionaries(
        {
            "input_tokens": st.integers(0, 10**6),
            "cache_read_input_tokens": st.integers(0, 10**6),
            "cache_creation_input_tokens": st.integers(0, 10**6),
            "output_tokens": st.integers(0, 10**5),
        }
    ),
)
def test_any_streamed_answer_equals_the_whole_answer(
    adapter: Callable[..., Any], blocks: list[dict[str, Any]], stop: str, usage: dict[str, int]
) -> None:
    body = message(blocks, stop_reason=stop, usage=usage)
    request = Request.from_prompt("Hi", model=MODEL)
    whole = run_chat(adapter(FakeServer(json_answer(body))), request)
    events = run_stream(adapter(FakeServer(streamed(body))), request)
    assert events[-1] == EndEvent(whole)


def test_a_stream_cut_before_message_stop_has_no_end_event(make_hub: Callable[..., Hub]) -> None:
    events = stream_of(message([{"type": "text", "text": "Hello there"}]))[:-2]
    hub = make_hub(
        FakeServer(sse_answer(events, named=True)), "providers:\n  anthropic: {max_retries: 0}\n"
    )
    with pytest.raises(MalformedResponse, match="end event"):
        list(hub.stream(TARGET, "Hi"))


# ---------------------------------------------------------------------------- thinking round trip


def test_thinking_signatures_round_trip_through_a_second_turn(
    make_hub: Callable[..., Hub],
) -> None:
    second = message([{"type": "text", "text": "Because 7 divides it."}])
    server = FakeServer(json_answer(THOUGHTFUL), json_answer(second))
    hub = make_hub(server)
    first = hub.chat(TARGET, "Is 1001 prime?", reasoning=1024)
    conversation = [
        Message.user("Is 1001 prime?"),
        first.to_message(),
        Message.tool(*[]),  # an empty turn is skipped
        Message.user("Why?"),
    ]
    hub.chat(TARGET, conversation, reasoning=1024)
    assert server.payloads[1]["messages"][1] == {
        "role": "assistant",
        "content": THOUGHTFUL["content"],  # exactly the blocks Anthropic sent
    }


def test_a_streamed_answer_round_trips_its_signature_too(make_hub: Callable[..., Hub]) -> None:
    server = FakeServer(streamed(THOUGHTFUL), json_answer(message([])))
    hub = make_hub(server)
    [end] = [e for e in hub.stream(TARGET, "Is 1001 prime?") if isinstance(e, EndEvent)]
    hub.chat(
        TARGET, [Message.user("Is 1001 prime?"), end.response.to_message(), Message.user("Why?")]
    )
    assert server.payloads[1]["messages"][1]["content"] == THOUGHTFUL["content"]


# ---------------------------------------------------------------------------- structured output


def test_structured_output_is_a_forced_tool_whose_input_becomes_the_text(
    make_hub: Callable[..., Hub],
) -> None:
    body = message(
        [
            {
                "type": "tool_use",
                "id": "toolu_9",
                "name": "weather",
                "input": {"city": "Paris", "temperature_c": 18},
            }
        ],
        stop_reason="tool_use",
    )
    server = FakeServer(json_answer(body))
    answer = make_hub(server).chat(
        TARGET,
        "Paris, 18 degrees",
        response_schema=ResponseSchema(SCHEMA, name="weather"),
        tool_choice="auto",  # the forced tool wins
    )
    assert server.payload["tools"] == [
        {
            "name": "weather",
            "description": "Answer with a value for weather, following its schema.",
            "input_schema": SCHEMA,
        }
    ]
    assert server.payload["tool_choice"] == {"type": "tool", "name": "weather"}
    assert answer.json() == {"city": "Paris", "temperature_c": 18}
    assert answer.tool_calls == ()
    assert answer.finish_reason == "stop"


def test_user_tools_travel_beside_the_schema_tool(make_hub: Callable[..., Hub]) -> None:
    body = message(
        [
            {
                "type": "tool_use",
                "id": "t",
                "name": "response",
                "input": {"city": "X", "temperature_c": 1},
            }
        ],
        stop_reason="tool_use",
    )
    server = FakeServer(json_answer(body))
    make_hub(server).chat(TARGET, "Hi", response_schema=SCHEMA, tools=[Tool("lookup")])
    assert [t["name"] for t in server.payload["tools"]] == ["lookup", "response"]


def test_a_non_object_schema_is_wrapped_and_unwrapped(make_hub: Callable[..., Hub]) -> None:
    schema = {
        "type": "array",
        "items": {"$ref": "#/$defs/city"},
        "$defs": {"city": {"type": "string"}},
    }
    body = message(
        [{"type": "tool_use", "id": "t", "name": "cities", "input": {"value": ["Paris", "Oslo"]}}],
        stop_reason="tool_use",
    )
    server = FakeServer(json_answer(body))
    answer = make_hub(server).chat(
        TARGET, "Two cities", response_schema=ResponseSchema(schema, name="cities")
    )
    assert server.payload["tools"][0]["input_schema"] == {
        "type": "object",
        "properties": {"value": {"type": "array", "items": {"$ref": "#/$defs/city"}}},
        "required": ["value"],
        "$defs": {"city": {"type": "string"}},
    }
    assert answer.json() == ["Paris", "Oslo"]


def test_structured_output_that_breaks_the_schema_is_malformed(
    make_hub: Callable[..., Hub],
) -> None:
    body = message(
        [{"type": "tool_use", "id": "t", "name": "response", "input": {"city": 3}}],
        stop_reason="tool_use",
    )
    hub = make_hub(FakeServer(json_answer(body)), "providers:\n  anthropic: {max_retries: 0}\n")
    with pytest.raises(MalformedResponse, match="temperature_c") as caught:
        hub.chat(TARGET, "Hi", response_schema=SCHEMA)
    assert "$.city: expected string" in str(caught.value)


def test_structured_output_without_the_tool_call_is_malformed_unless_cut_short(
    make_hub: Callable[..., Hub],
) -> None:
    no_call = message([{"type": "text", "text": "I can't."}])
    hub = make_hub(FakeServer(json_answer(no_call)), "providers:\n  anthropic: {max_retries: 0}\n")
    with pytest.raises(MalformedResponse, match="no call of the structured-output tool"):
        hub.chat(TARGET, "Hi", response_schema=SCHEMA)
    cut = message(
        [{"type": "tool_use", "id": "t", "name": "response", "input": {"city": "Pa"}}],
        stop_reason="max_tokens",
    )
    answer = make_hub(FakeServer(json_answer(cut))).chat(TARGET, "Hi", response_schema=SCHEMA)
    assert (answer.finish_reason, answer.text) == ("length", '{"city": "Pa"}')


def test_structured_output_streams_as_one_checked_text_delta_equal_to_chat(
    adapter: Callable[..., Any],
) -> None:
    body = message(
        [
            {
                "type": "tool_use",
                "id": "t",
                "name": "response",
                "input": {"city": "Paris", "temperature_c": 18.5},
            }
        ],
        stop_reason="tool_use",
    )
    request = Request.from_prompt("Hi", model=MODEL, response_schema=ResponseSchema(SCHEMA))
    whole = run_chat(adapter(FakeServer(json_answer(body))), request)
    events = run_stream(adapter(FakeServer(streamed(body))), request)
    assert [e for e in events if isinstance(e, ToolCallDelta)] == []
    assert [e.text for e in events if isinstance(e, TextDelta)] == [whole.text]
    assert events[-1] == EndEvent(whole)


def test_structured_output_cannot_be_combined_with_thinking(make_hub: Callable[..., Hub]) -> None:
    with pytest.raises(InvalidRequestError, match="extended thinking"):
        make_hub(FakeServer()).chat(TARGET, "Hi", response_schema=SCHEMA, reasoning=2048)


def test_a_schema_named_like_a_tool_is_refused(make_hub: Callable[..., Hub]) -> None:
    with pytest.raises(InvalidRequestError, match="also a tool's name"):
        make_hub(FakeServer()).chat(TARGET, "Hi", response_schema=SCHEMA, tools=[Tool("response")])
