"""Parsing answers and streams: text, tool calls, refusals, finish reasons, usage, and
streams that end with exactly what chat returns."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from relay_core import (
    AuthenticationError,
    ContentPolicyError,
    ContextWindowExceeded,
    EndEvent,
    InvalidRequestError,
    MalformedResponse,
    Message,
    NotFoundError,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    Request,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Timeout,
    Tool,
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


def test_a_chat_stream_cut_before_its_finish_reason_is_malformed(
    server: Any, make_hub: Any
) -> None:
    # The connection closed cleanly mid-answer: no finish_reason, no usage, no [DONE].
    server.reply_sse([{"choices": [{"index": 0, "delta": {"content": "The first half"}}]}])
    hub = make_hub("providers:\n  openai:\n    max_retries: 0\n")
    with pytest.raises(MalformedResponse, match="finish_reason"):
        list(hub.stream("openai/gpt-4.1", "Hi"))


def test_an_openai_stream_at_done_without_a_finish_reason_is_malformed(
    server: Any, make_hub: Any
) -> None:
    # OpenAI always sends a finish_reason: [DONE] without one is a broken stream, retried.
    server.reply_sse([chunk({"content": "Hi"}), chunk(usage={"prompt_tokens": 1}), "[DONE]"])
    hub = make_hub("providers:\n  openai:\n    max_retries: 0\n")
    with pytest.raises(MalformedResponse, match="finish_reason") as caught:
        list(hub.stream("openai/gpt-4.1", "Hi"))
    assert caught.value.retryable


# The Responses API's answer for a model it does not know (Chat Completions answers 404).
MODEL_NOT_FOUND = {
    "error": {
        "message": "The requested model 'gpt-nope' does not exist.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
}


@pytest.mark.parametrize("stream", [False, True])
def test_a_group_moves_on_from_a_responses_model_that_does_not_exist(
    server: Any, make_hub: Any, stream: bool
) -> None:
    server.reply(MODEL_NOT_FOUND, 400)
    if stream:
        server.reply_sse(responses_events(RESPONSE), named=True)
    else:
        server.reply(RESPONSE)
    hub = make_hub(
        "providers:\n  openai:\n    options: {api: responses}\n    max_retries: 0\n"
        "models:\n  nope: openai/gpt-nope\n  real: openai/o4-mini\n"
        "groups:\n  smart: {strategy: fallback, members: [nope, real]}\n"
    )
    answer = _end(list(hub.stream("smart", "Hi"))) if stream else hub.chat("smart", "Hi")
    assert answer.model == "o4-mini-2025-04-16"
    route = answer.metadata["route"]
    assert route["member"] == "real"
    assert [f["member"] for f in route["failed"]] == ["nope"]
    assert [p["model"] for p in server.payloads] == ["gpt-nope", "o4-mini"]
    server.reply(MODEL_NOT_FOUND, 400)
    with pytest.raises(NotFoundError, match="does not exist"):
        hub.chat("nope", "Hi")


def _end(events: list[Any]) -> Any:
    assert isinstance(events[-1], EndEvent)
    return events[-1].response


# ---------------------------------------------------------------------------- errors in streams

STREAM_ERRORS = [
    # (code, type, the error it is)
    ("rate_limit_exceeded", "tokens", RateLimitError),
    ("insufficient_quota", "insufficient_quota", QuotaExceeded),
    ("context_length_exceeded", "invalid_request_error", ContextWindowExceeded),
    ("invalid_prompt", None, InvalidRequestError),
    ("invalid_api_key", "invalid_request_error", AuthenticationError),
    ("server_error", "server_error", ProviderUnavailable),
    ("server_is_overloaded", None, ProviderUnavailable),
    ("slow_down", None, ProviderUnavailable),
    ("vector_store_timeout", None, Timeout),
    ("invalid_image_url", None, InvalidRequestError),
    ("image_content_policy_violation", None, ContentPolicyError),
    # No code: the type decides (OpenAI's own stream errors often carry only a type).
    (None, "server_error", ProviderUnavailable),
    (None, "invalid_request_error", InvalidRequestError),
    # Unknown: classified as the service's trouble, as an HTTP 500 would be.
    ("something_new", None, ProviderUnavailable),
    (None, None, ProviderUnavailable),
]


@pytest.mark.parametrize(("code", "kind", "error"), STREAM_ERRORS)
def test_errors_inside_a_chat_stream_are_classified_by_code(
    server: Any, make_hub: Any, code: Any, kind: Any, error: type
) -> None:
    body = {"message": "It went wrong.", "type": kind, "param": None, "code": code}
    server.reply_sse([chunk({"content": "Hel"}), {"error": body}])
    hub = make_hub("providers:\n  openai: {max_retries: 0}\n")
    with pytest.raises(ProviderError) as caught:
        list(hub.stream("openai/gpt-4.1", "Hi"))
    assert type(caught.value) is error
    assert caught.value.provider_message == "It went wrong."
    assert caught.value.status_code is None  # the HTTP answer itself was a 200
    assert (caught.value.provider, caught.value.model) == ("openai", "gpt-4.1")


@pytest.mark.parametrize(("code", "kind", "error"), STREAM_ERRORS)
def test_errors_inside_a_responses_stream_are_classified_by_code(
    server: Any, make_hub: Any, code: Any, kind: Any, error: type
) -> None:
    failed = {"code": code, "message": "It went wrong."}
    if kind is not None:
        failed["type"] = kind
    server.reply_sse(
        [
            {"type": "response.created", "sequence_number": 0, "response": {"id": "r"}},
            {
                "type": "response.failed",
                "sequence_number": 1,
                "response": {"id": "r", "status": "failed", "error": failed},
            },
        ],
        named=True,
    )
    hub = make_hub("providers:\n  openai:\n    options: {api: responses}\n    max_retries: 0\n")
    with pytest.raises(ProviderError) as caught:
        list(hub.stream("openai/gpt-4.1", "Hi"))
    assert type(caught.value) is error
    assert caught.value.status_code is None


def test_an_error_event_in_a_responses_stream(server: Any, make_hub: Any) -> None:
    server.reply_sse(
        [
            {
                "type": "error",
                "code": "rate_limit_exceeded",
                "message": "Rate limit reached for gpt-4.1.",
                "param": None,
                "sequence_number": 1,
            }
        ],
        named=True,
    )
    hub = make_hub("providers:\n  openai:\n    options: {api: responses}\n    max_retries: 0\n")
    with pytest.raises(RateLimitError, match="Rate limit reached"):
        list(hub.stream("openai/gpt-4.1", "Hi"))


def test_a_failed_responses_answer_is_classified_as_a_stream_error_is(
    server: Any, make_hub: Any
) -> None:
    server.reply(
        {
            "id": "resp_f",
            "object": "response",
            "status": "failed",
            "model": "gpt-4.1",
            "error": {"code": "insufficient_quota", "message": "You exceeded your current quota."},
            "output": [],
        }
    )
    hub = make_hub("providers:\n  openai:\n    options: {api: responses}\n")
    with pytest.raises(QuotaExceeded):
        hub.chat("openai/gpt-4.1", "Hi")
    assert len(server.requests) == 1  # not retried


# ---------------------------------------------------------------------------- strict tools

FORECAST = Tool(
    "get_forecast",
    "Weather forecast for a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "place": {
                "type": "object",
                "properties": {"lat": {"type": "number"}, "label": {"type": "string"}},
                "required": ["lat"],
            },
        },
        "required": ["city"],
    },
)
# What strict mode made the model send: every argument, the optional ones null.
FILLED = '{"city": "Paris", "days": null, "place": {"lat": 48.85, "label": null}}'
DROPPED = {"city": "Paris", "place": {"lat": 48.85}}


def forecast_call(arguments: str = FILLED) -> Any:
    return completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_f",
                    "type": "function",
                    "function": {"name": "get_forecast", "arguments": arguments},
                }
            ],
        },
        "tool_calls",
        USAGE,
    )


def test_strict_tool_calls_lose_the_nulls_strict_mode_forced_and_go_back_without(
    server: Any, make_hub: Any
) -> None:
    chunks = [
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_f",
                        "type": "function",
                        "function": {"name": "get_forecast", "arguments": FILLED[:20]},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": FILLED[20:]}}]}),
        chunk({}, "tool_calls"),
        chunk(usage=USAGE),
    ]
    hub = make_hub()
    said, streamed, _ = both(server, hub, forecast_call(), chunks, tools=[FORECAST])
    assert server.payloads[0]["tools"][0]["function"]["strict"] is True
    assert said.tool_calls == (ToolCallPart("call_f", "get_forecast", DROPPED),)
    assert_same(said, streamed)

    # Sent back, the call carries the arguments the caller's schema describes.
    server.reply(completion({"role": "assistant", "content": "Sunny."}))
    hub.chat("openai/gpt-4.1", [Message.user("Hi"), said.to_message()], tools=[FORECAST])
    sent_call = server.payload["messages"][1]["tool_calls"][0]
    assert json.loads(sent_call["function"]["arguments"]) == DROPPED


def test_a_required_null_and_a_loose_tools_nulls_are_kept(server: Any, make_hub: Any) -> None:
    nullable = Tool(
        "get_forecast",
        "",
        {
            "type": "object",
            "properties": {"city": {"type": ["string", "null"]}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    )
    server.reply(forecast_call('{"city": null, "days": null}'))
    said = make_hub().chat("openai/gpt-4.1", "Hi", tools=[nullable])
    assert said.tool_calls[0].arguments == {"city": None}  # city is required: its null stays

    loose = Tool("get_forecast", "", {"type": "object", "properties": {"x": {"allOf": [{}]}}})
    server.reply(forecast_call('{"x": null}'))
    server.answers.pop(0)
    said = make_hub().chat("openai/gpt-4.1", "Hi", tools=[loose])
    assert server.payload["tools"][0]["function"]["strict"] is False
    assert said.tool_calls[0].arguments == {"x": None}  # not strict: the model chose it


def test_strict_tool_calls_lose_their_nulls_in_the_responses_api(
    server: Any, make_hub: Any
) -> None:
    final = {
        "id": "resp_f",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1",
        "output": [
            {
                "id": "fc_1",
                "type": "function_call",
                "call_id": "call_f",
                "name": "get_forecast",
                "arguments": FILLED,
                "status": "completed",
            }
        ],
        "usage": {"input_tokens": 5, "output_tokens": 6, "total_tokens": 11},
    }
    hub = make_hub("providers:\n  openai:\n    options: {api: responses}\n")
    server.reply(final)
    said = hub.chat("openai/gpt-4.1", "Hi", tools=[FORECAST])
    assert server.payload["tools"][0]["strict"] is True
    assert said.tool_calls == (ToolCallPart("call_f", "get_forecast", DROPPED),)
    server.reply_sse(
        [
            {
                "type": "response.output_item.added",
                "sequence_number": 1,
                "output_index": 0,
                "item": {**final["output"][0], "arguments": "", "status": "in_progress"},
            },
            {
                "type": "response.function_call_arguments.delta",
                "sequence_number": 2,
                "item_id": "fc_1",
                "output_index": 0,
                "delta": FILLED,
            },
            {"type": "response.completed", "sequence_number": 3, "response": final},
        ],
        named=True,
    )
    server.answers.pop(0)
    [*_, end] = hub.stream("openai/gpt-4.1", "Hi", tools=[FORECAST])
    assert_same(said, end.response)


def test_batch_answers_lose_strict_nulls_with_their_request_in_hand(make_hub: Any) -> None:
    adapter = make_hub().get("openai/gpt-4.1").adapter
    # As batch_results parses a line: without the request, so with the nulls still in.
    parsed = adapter._parse_chat(forecast_call(), Request(messages=(), model="gpt-4.1"))
    assert parsed.tool_calls[0].arguments == json.loads(FILLED)
    request = Request.from_prompt("Hi", model="gpt-4.1", tools=[FORECAST])
    finished = adapter.finish_batch_response(request, parsed)
    assert finished.tool_calls == (ToolCallPart("call_f", "get_forecast", DROPPED),)
    assert adapter.finish_batch_response(Request.from_prompt("Hi", model="m"), parsed) is parsed
