"""What the adapter makes of Mistral's answers: content, thinking chunks, tool calls,
finish reasons and usage, plain and streamed; a stream ends with what chat returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mistral_support import MODEL, call, chunk, completion

from relay_core import (
    EndEvent,
    Hub,
    MalformedResponse,
    Message,
    Response,
    StreamEvent,
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

MakeHub = Callable[..., Hub]
TARGET = f"mistral/{MODEL}"
WEATHER = Tool("get_weather", "", {"type": "object", "properties": {"city": {"type": "string"}}})


def answer(make_hub: MakeHub, body: Any, **options: Any) -> Response:
    return make_hub(FakeServer(json_answer(body))).chat(TARGET, "Hi", **options)


def streamed(make_hub: MakeHub, events: list[Any], **options: Any) -> list[StreamEvent]:
    return list(make_hub(FakeServer(sse_answer(events, done=True))).stream(TARGET, "Hi", **options))


def test_a_text_answer(make_hub: MakeHub) -> None:
    body = completion(
        "Paris.",
        usage={
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 8},
        },
    )
    response = answer(make_hub, body)
    assert response.content == (TextPart("Paris."),)
    assert response.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=12, output_tokens=3, cached_input_tokens=8)
    assert (response.id, response.model, response.provider) == (
        "cmpl-0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5",
        MODEL,
        "mistral",
    )
    assert response.raw == body


@pytest.mark.parametrize(
    ("wire", "relay"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("model_length", "length"),
        ("tool_calls", "tool_calls"),
        ("error", "error"),
        ("something_new", "unknown"),
    ],
)
def test_finish_reasons(make_hub: MakeHub, wire: str, relay: str) -> None:
    assert answer(make_hub, completion("x", finish_reason=wire)).finish_reason == relay


def test_thinking_chunks_become_thinking_parts_in_order(make_hub: MakeHub) -> None:
    content = [
        {
            "type": "thinking",
            "thinking": [{"type": "text", "text": "17*20=340. "}, {"type": "text", "text": "+51"}],
        },
        {"type": "text", "text": "17 * 23 = "},
        {"type": "text", "text": "391."},
        {"type": "reference", "reference_ids": [1]},
    ]
    response = answer(make_hub, completion(content), reasoning="high")
    assert response.content == (ThinkingPart("17*20=340. +51"), TextPart("17 * 23 = 391."))
    assert response.thinking == "17*20=340. +51"
    assert response.text == "17 * 23 = 391."


def test_a_thinking_signature_is_kept(make_hub: MakeHub) -> None:
    content = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "t"}], "signature": "s1"},
        {"type": "text", "text": "a"},
    ]
    response = answer(make_hub, completion(content))
    assert response.content[0] == ThinkingPart("t", signature="s1")


def test_tool_calls(make_hub: MakeHub) -> None:
    body = completion(
        "",
        tool_calls=[
            call("D681PevKs", "get_weather", {"city": "Paris"}),
            # The schema also allows arguments as an object.
            {"id": "T0ky0Call", "function": {"name": "get_weather", "arguments": {"city": "T"}}},
        ],
        finish_reason="tool_calls",
    )
    response = answer(make_hub, body, tools=[WEATHER])
    assert response.content == (
        ToolCallPart("D681PevKs", "get_weather", {"city": "Paris"}),
        ToolCallPart("T0ky0Call", "get_weather", {"city": "T"}),
    )
    assert response.finish_reason == "tool_calls"
    assert response.to_message() == Message("assistant", response.content)


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_bad_tool_arguments_are_malformed(make_hub: MakeHub, arguments: str) -> None:
    body = completion("", tool_calls=[call("D681PevKs", "f", arguments)])
    hub = make_hub(FakeServer(json_answer(body)), "providers:\n  mistral: {max_retries: 0}\n")
    with pytest.raises(MalformedResponse):
        hub.chat(TARGET, "Hi", tools=[WEATHER])


def test_an_answer_without_choices_is_malformed(make_hub: MakeHub) -> None:
    hub = make_hub(
        FakeServer(json_answer({"id": "x"})), "providers:\n  mistral: {max_retries: 0}\n"
    )
    with pytest.raises(MalformedResponse, match="no choices"):
        hub.chat(TARGET, "Hi")


# ---------------------------------------------------------------------------- streaming


USAGE = {"prompt_tokens": 19, "completion_tokens": 7, "total_tokens": 26}


def test_a_text_stream(make_hub: MakeHub) -> None:
    events = streamed(
        make_hub,
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "3"}),
            chunk({"content": "84"}),
            chunk({"content": "400"}, "stop", USAGE),
        ],
    )
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["3", "84", "400"]
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [Usage(19, 7)]
    assert isinstance(events[-1], EndEvent)
    assert sum(isinstance(e, EndEvent) for e in events) == 1
    end = events[-1].response
    assert end.content == (TextPart("384400"),)
    assert (end.finish_reason, end.usage, end.provider) == ("stop", Usage(19, 7), "mistral")


def test_a_thinking_stream_changes_shape_as_documented(make_hub: MakeHub) -> None:
    # Thinking as lists of chunks, one transition list, then plain strings.
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "Let me see. "}]}
    events = streamed(
        make_hub,
        [
            chunk({"role": "assistant", "content": [thinking]}),
            chunk(
                {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "OK."}]}]}
            ),
            chunk(
                {
                    "content": [
                        {"type": "thinking", "thinking": [], "closed": True},
                        {"type": "text", "text": "17 * 23"},
                    ]
                }
            ),
            chunk({"content": " = 391."}, "stop", USAGE),
        ],
        reasoning="high",
    )
    assert [e.text for e in events if isinstance(e, ThinkingDelta)] == ["Let me see. ", "OK."]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["17 * 23", " = 391."]
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.content == (ThinkingPart("Let me see. OK."), TextPart("17 * 23 = 391."))


def test_parallel_tool_calls_in_one_chunk(make_hub: MakeHub) -> None:
    events = streamed(
        make_hub,
        [
            chunk({"role": "assistant", "content": ""}),
            chunk(
                {
                    "tool_calls": [
                        call("D681PevKs", "get_weather", {"city": "Paris"}, index=0),
                        call("T0ky0Call", "get_weather", {"city": "Tokyo"}, index=1),
                    ]
                },
                "tool_calls",
                USAGE,
            ),
        ],
        tools=[WEATHER],
    )
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(d.index, d.id) for d in deltas] == [(0, "D681PevKs"), (1, "T0ky0Call")]
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.tool_calls == (
        ToolCallPart("D681PevKs", "get_weather", {"city": "Paris"}),
        ToolCallPart("T0ky0Call", "get_weather", {"city": "Tokyo"}),
    )
    assert end.response.finish_reason == "tool_calls"


def test_calls_sharing_index_zero_are_not_merged(make_hub: MakeHub) -> None:
    events = streamed(
        make_hub,
        [
            chunk({"tool_calls": [call("AAAAAAAAA", "get_weather", {"city": "A"})]}),
            chunk({"tool_calls": [call("BBBBBBBBB", "get_weather", {"city": "B"})]}, "tool_calls"),
        ],
        tools=[WEATHER],
    )
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert [c.arguments for c in end.response.tool_calls] == [{"city": "A"}, {"city": "B"}]


def test_a_stream_cut_before_its_finish_is_malformed(make_hub: MakeHub) -> None:
    hub = make_hub(
        FakeServer(sse_answer([chunk({"content": "Hel"})])),
        "providers:\n  mistral: {max_retries: 0}\n",
    )
    with pytest.raises(MalformedResponse):
        list(hub.stream(TARGET, "Hi"))


def _equal(chat: Response, stream: Response) -> None:
    for field in ("content", "usage", "finish_reason", "id", "model", "provider"):
        assert getattr(stream, field) == getattr(chat, field), field


@pytest.mark.parametrize(
    ("body", "events"),
    [
        (
            completion("Hello there.", usage=USAGE),
            [
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Hello"}),
                chunk({"content": " there."}, "stop", USAGE),
            ],
        ),
        (
            completion(
                [
                    {"type": "thinking", "thinking": [{"type": "text", "text": "Hmm, 2+2."}]},
                    {"type": "text", "text": "4"},
                ],
                usage=USAGE,
            ),
            [
                chunk(
                    {
                        "content": [
                            {"type": "thinking", "thinking": [{"type": "text", "text": "Hmm, "}]}
                        ]
                    }
                ),
                chunk(
                    {
                        "content": [
                            {"type": "thinking", "thinking": [{"type": "text", "text": "2+2."}]},
                            {"type": "text", "text": "4"},
                        ]
                    },
                    "stop",
                    USAGE,
                ),
            ],
        ),
        (
            completion(
                "",
                tool_calls=[call("D681PevKs", "get_weather", {"city": "Paris"})],
                finish_reason="tool_calls",
                usage=USAGE,
            ),
            [
                chunk({"role": "assistant", "content": ""}),
                chunk(
                    {"tool_calls": [call("D681PevKs", "get_weather", {"city": "Paris"})]},
                    "tool_calls",
                    USAGE,
                ),
            ],
        ),
        (
            completion("Cut", finish_reason="length", usage=USAGE),
            [chunk({"content": "Cu"}), chunk({"content": "t"}, "length", USAGE)],
        ),
    ],
    ids=["text", "thinking", "tool_call", "length"],
)
def test_a_stream_ends_with_what_chat_returns(
    make_hub: MakeHub, body: Any, events: list[Any]
) -> None:
    hub = make_hub(FakeServer(json_answer(body), sse_answer(events, done=True)))
    chat = hub.chat(TARGET, "Hi", tools=[WEATHER])
    end = list(hub.stream(TARGET, "Hi", tools=[WEATHER]))[-1]
    assert isinstance(end, EndEvent)
    _equal(chat, end.response)
