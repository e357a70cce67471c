"""Parsing answers and streams: text, tool calls, refusals, finish reasons, usage, and
streams that end with exactly what chat returns."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from relay_core import (
    EndEvent,
    MalformedResponse,
    ProviderUnavailable,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)


def completion(message: dict[str, Any], finish: str = "stop", usage: Any = None) -> Any:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


def chunk(delta: Any = None, finish: str | None = None, usage: Any = None) -> Any:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4.1-2025-04-14",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": usage,
    }


USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 50,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 64},
    "completion_tokens_details": {"reasoning_tokens": 32},
}


def both(server: Any, hub: Any, answer: Any, chunks: list[Any], **kwargs: Any) -> Any:
    """chat() over ``answer`` and stream() over ``chunks``; the two responses."""
    server.reply(answer)
    said = hub.chat("openai/gpt-4.1", "Hi", **kwargs)
    server.reply_sse([*chunks, "[DONE]"])
    server.answers.pop(0)
    events = list(hub.stream("openai/gpt-4.1", "Hi", **kwargs))
    ends = [e for e in events if isinstance(e, EndEvent)]
    assert len(ends) == 1
    assert events[-1] is ends[0]
    return said, ends[0].response, events


def assert_same(said: Any, streamed: Any) -> None:
    for field in ("content", "usage", "finish_reason", "id", "model", "provider"):
        assert getattr(streamed, field) == getattr(said, field), field


def test_usage_details_are_mapped(server: Any, make_hub: Any) -> None:
    said, streamed, _ = both(
        server,
        make_hub(),
        completion({"role": "assistant", "content": "Hello"}, usage=USAGE),
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hello"}),
            chunk({}, "stop"),
            chunk(usage=USAGE),
        ],
    )
    expected = Usage(
        input_tokens=100, output_tokens=50, cached_input_tokens=64, reasoning_tokens=32
    )
    assert said.usage == expected
    assert_same(said, streamed)


def test_parallel_tool_calls_stream_by_index(server: Any, make_hub: Any) -> None:
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    chunks = [
        chunk({"role": "assistant", "content": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city"'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        chunk(usage=USAGE),
    ]
    said, streamed, events = both(
        server,
        make_hub(),
        completion(
            {"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls", USAGE
        ),
        chunks,
    )
    assert said.content == (
        ToolCallPart("call_a", "get_weather", {"city": "Paris"}),
        ToolCallPart("call_b", "get_time", {}),
    )
    assert said.finish_reason == "tool_calls"
    assert [e.index for e in events if isinstance(e, ToolCallDelta)] == [0, 0, 1, 0, 1]
    assert_same(said, streamed)


def test_a_refusal_is_content_filter_with_its_text(server: Any, make_hub: Any) -> None:
    refusal = "I'm sorry, I can't help with that."
    said, streamed, _ = both(
        server,
        make_hub(),
        completion({"role": "assistant", "content": None, "refusal": refusal}, usage=USAGE),
        [
            chunk({"role": "assistant", "refusal": ""}),
            chunk({"refusal": "I'm sorry, "}),
            chunk({"refusal": "I can't help with that."}),
            chunk({}, "stop"),
            chunk(usage=USAGE),
        ],
    )
    assert (said.text, said.finish_reason) == (refusal, "content_filter")
    assert_same(said, streamed)


@pytest.mark.parametrize(
    ("wire", "finish"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("content_filter", "content_filter"),
        ("something_new", "unknown"),
    ],
)
def test_finish_reasons(server: Any, make_hub: Any, wire: str, finish: str) -> None:
    said, streamed, _ = both(
        server,
        make_hub(),
        completion({"role": "assistant", "content": "x"}, wire),
        [chunk({"content": "x"}), chunk({}, wire)],
    )
    assert said.finish_reason == finish
    assert_same(said, streamed)


def test_tool_arguments_that_are_not_json_are_malformed(server: Any, make_hub: Any) -> None:
    server.reply(
        completion(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                ],
            },
            "tool_calls",
        )
    )
    hub = make_hub("providers:\n  openai: {max_retries: 0}\n")
    with pytest.raises(MalformedResponse, match="not JSON"):
        hub.chat("openai/gpt-4.1", "Hi")


def test_an_answer_without_choices_is_malformed(server: Any, make_hub: Any) -> None:
    server.reply({"id": "x", "choices": []})
    with pytest.raises(MalformedResponse, match="no choices"):
        make_hub("providers:\n  openai: {max_retries: 0}\n").chat("openai/gpt-4.1", "Hi")


def test_an_error_inside_a_chat_stream_is_raised(server: Any, make_hub: Any) -> None:
    server.reply_sse(
        [
            chunk({"content": "Hel"}),
            {
                "error": {
                    "message": "The server had an error",
                    "type": "server_error",
                    "param": None,
                    "code": "server_error",
                }
            },
        ]
    )
    hub = make_hub("providers:\n  openai: {max_retries: 0}\n")
    with pytest.raises(ProviderUnavailable, match="server had an error"):
        list(hub.stream("openai/gpt-4.1", "Hi"))


# ---------------------------------------------------------------------------- Responses API

RESPONSE = {
    "id": "resp_9",
    "object": "response",
    "status": "completed",
    "model": "o4-mini-2025-04-16",
    "output": [
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [
                {"type": "summary_text", "text": "First."},
                {"type": "summary_text", "text": "Second."},
            ],
        },
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Calling.", "annotations": []}],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "call_id": "call_a",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
            "status": "completed",
        },
        {
            "id": "fc_2",
            "type": "function_call",
            "call_id": "call_b",
            "name": "get_time",
            "arguments": "{}",
            "status": "completed",
        },
    ],
    "usage": {
        "input_tokens": 40,
        "input_tokens_details": {"cached_tokens": 8},
        "output_tokens": 90,
        "output_tokens_details": {"reasoning_tokens": 60},
        "total_tokens": 130,
    },
}


def responses_events(final: Any) -> list[Any]:
    created = {**final, "status": "in_progress", "output": [], "usage": None}
    return [
        {"type": "response.created", "sequence_number": 0, "response": created},
        {
            "type": "response.output_item.added",
            "sequence_number": 1,
            "output_index": 0,
            "item": {"id": "rs_1", "type": "reasoning", "summary": []},
        },
        {
            "type": "response.reasoning_summary_part.added",
            "sequence_number": 2,
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 0,
            "part": {"type": "summary_text", "text": ""},
        },
        {
            "type": "response.reasoning_summary_text.delta",
            "sequence_number": 3,
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 0,
            "delta": "First.",
        },
        {
            "type": "response.reasoning_summary_part.added",
            "sequence_number": 4,
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 1,
            "part": {"type": "summary_text", "text": ""},
        },
        {
            "type": "response.reasoning_summary_text.delta",
            "sequence_number": 5,
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 1,
            "delta": "Second.",
        },
        {
            "type": "response.output_item.added",
            "sequence_number": 6,
            "output_index": 1,
            "item": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [],
                "status": "in_progress",
            },
        },
        {
            "type": "response.output_text.delta",
            "sequence_number": 7,
            "item_id": "msg_1",
            "output_index": 1,
            "content_index": 0,
            "delta": "Call",
        },
        {
            "type": "response.output_text.delta",
            "sequence_number": 8,
            "item_id": "msg_1",
            "output_index": 1,
            "content_index": 0,
            "delta": "ing.",
        },
        {
            "type": "response.output_item.added",
            "sequence_number": 9,
            "output_index": 2,
            "item": {
                "id": "fc_1",
                "type": "function_call",
                "call_id": "call_a",
                "name": "get_weather",
                "arguments": "",
                "status": "in_progress",
            },
        },
        {
            "type": "response.function_call_arguments.delta",
            "sequence_number": 10,
            "item_id": "fc_1",
            "output_index": 2,
            "delta": '{"city": ',
        },
        {
            "type": "response.output_item.added",
            "sequence_number": 11,
            "output_index": 3,
            "item": {
                "id": "fc_2",
                "type": "function_call",
                "call_id": "call_b",
                "name": "get_time",
                "arguments": "",
                "status": "in_progress",
            },
        },
        {
            "type": "response.function_call_arguments.delta",
            "sequence_number": 12,
            "item_id": "fc_1",
            "output_index": 2,
            "delta": '"Paris"}',
        },
        {
            "type": "response.function_call_arguments.delta",
            "sequence_number": 13,
            "item_id": "fc_2",
            "output_index": 3,
            "delta": "{}",
        },
        {"type": "response.completed", "sequence_number": 14, "response": final},
    ]


def responses_both(server: Any, make_hub: Any, final: Any) -> Any:
    hub = make_hub("providers:\n  openai:\n    options: {api: responses}\n")
    server.reply(final)
    said = hub.chat("openai/o4-mini", "Hi")
    server.reply_sse(responses_events(final), named=True)
    server.answers.pop(0)
    events = list(hub.stream("openai/o4-mini", "Hi"))
    assert sum(isinstance(e, EndEvent) for e in events) == 1
    assert isinstance(events[-1], EndEvent)
    return said, events[-1].response, events


def test_responses_reasoning_text_and_parallel_calls(server: Any, make_hub: Any) -> None:
    said, streamed, events = responses_both(server, make_hub, RESPONSE)
    assert said.content == (
        ThinkingPart("First.\n\nSecond."),
        TextPart("Calling."),
        ToolCallPart("call_a", "get_weather", {"city": "Paris"}),
        ToolCallPart("call_b", "get_time", {}),
    )
    assert said.finish_reason == "tool_calls"
    assert said.usage == Usage(40, 90, cached_input_tokens=8, reasoning_tokens=60)
    assert (said.id, said.model) == ("resp_9", "o4-mini-2025-04-16")
    assert any(isinstance(e, ThinkingDelta) for e in events)
    assert_same(said, streamed)
    assert streamed.raw == said.raw


def test_responses_incomplete_is_length(server: Any, make_hub: Any) -> None:
    final = copy.deepcopy(RESPONSE)
    final["status"] = "incomplete"
    final["incomplete_details"] = {"reason": "max_output_tokens"}
    said, streamed, _ = responses_both(server, make_hub, final)
    assert said.finish_reason == "length"
    assert_same(said, streamed)


def test_responses_refusal(server: Any, make_hub: Any) -> None:
    final = {
        "id": "resp_r",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1",
        "output": [
            {
                "id": "msg_r",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "refusal", "refusal": "I can't help with that."}],
            }
        ],
        "usage": {"input_tokens": 5, "output_tokens": 6, "total_tokens": 11},
    }
    server.reply(final)
    hub = make_hub("providers:\n  openai:\n    options: {api: responses}\n")
    said = hub.chat("openai/gpt-4.1", "Hi")
    assert (said.text, said.finish_reason) == ("I can't help with that.", "content_filter")
    server.reply_sse(
        [
            {
                "type": "response.refusal.delta",
                "sequence_number": 1,
                "item_id": "msg_r",
                "output_index": 0,
                "content_index": 0,
                "delta": "I can't help with that.",
            },
            {"type": "response.completed", "sequence_number": 2, "response": final},
        ],
        named=True,
    )
    server.answers.pop(0)
    [*_, end] = hub.stream("openai/gpt-4.1", "Hi")
    assert_same(said, end.response)


def test_a_failed_responses_stream_raises(server: Any, make_hub: Any) -> None:
    server.reply_sse(
        [
            {"type": "response.created", "sequence_number": 0, "response": {"id": "r"}},
            {
                "type": "response.failed",
                "sequence_number": 1,
                "response": {
                    "id": "r",
                    "status": "failed",
                    "error": {"code": "server_error", "message": "Something went wrong"},
                },
            },
        ],
        named=True,
    )
    hub = make_hub("providers:\n  openai:\n    options: {api: responses}\n    max_retries: 0\n")
    with pytest.raises(ProviderUnavailable, match="Something went wrong"):
        list(hub.stream("openai/gpt-4.1", "Hi"))


def test_a_responses_stream_cut_before_completion_is_malformed(server: Any, make_hub: Any) -> None:
    server.reply_sse(
        [
            {
                "type": "response.output_text.delta",
                "sequence_number": 1,
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hi",
            },
        ],
        named=True,
    )
    hub = make_hub("providers:\n  openai:\n    options: {api: responses}\n    max_retries: 0\n")
    with pytest.raises(MalformedResponse, match=r"response\.completed"):
        list(hub.stream("openai/gpt-4.1", "Hi"))
