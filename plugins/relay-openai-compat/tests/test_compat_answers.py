"""Reading answers and streams: reasoning as thinking, usage variants, and the validation
of structured output in the json_object fallback."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core import (
    EndEvent,
    InvalidRequestError,
    MalformedResponse,
    Message,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    ToolCallPart,
    Usage,
    UsageEvent,
)

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


def completion(message: dict[str, Any], usage: Any = None, finish: str = "stop") -> Any:
    return {
        "id": "cmpl-7",
        "object": "chat.completion",
        "created": 1,
        "model": "deepseek-reasoner",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
        "usage": usage,
    }


def chunk(delta: Any = None, finish: str | None = None, **extra: Any) -> Any:
    return {
        "id": "cmpl-7",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "deepseek-reasoner",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def both(server: Any, hub: Any, target: str, answer: Any, chunks: list[Any], **kw: Any) -> Any:
    server.reply(answer)
    said = hub.chat(target, "Hi", **kw)
    server.reply_sse(chunks)
    server.answers.pop(0)
    events = list(hub.stream(target, "Hi", **kw))
    assert sum(isinstance(e, EndEvent) for e in events) == 1
    assert isinstance(events[-1], EndEvent)
    streamed = events[-1].response
    for field in ("content", "usage", "finish_reason", "id", "model", "provider"):
        assert getattr(streamed, field) == getattr(said, field), field
    return said, events


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_thinking_in_answers_and_streams(
    server: Any, make_hub: Any, field: str
) -> None:
    said, events = both(
        server,
        make_hub(),
        "deepseek/deepseek-reasoner",
        completion({field: "9.11 < 9.8 because 0.11 < 0.8.", "content": "9.8 is greater."}),
        [
            chunk({"role": "assistant", "content": None, field: ""}),
            chunk({field: "9.11 < 9.8 because "}),
            chunk({field: "0.11 < 0.8.", "content": None}),
            chunk({"content": "9.8 is "}),
            chunk({"content": "greater."}),
            chunk({}, finish="stop"),
        ],
    )
    assert said.content == (
        ThinkingPart("9.11 < 9.8 because 0.11 < 0.8."),
        TextPart("9.8 is greater."),
    )
    assert said.thinking == "9.11 < 9.8 because 0.11 < 0.8."
    assert said.text == "9.8 is greater."
    kinds = [(type(e).__name__, getattr(e, "text", None)) for e in events[:-1]]
    assert kinds == [
        ("ThinkingDelta", "9.11 < 9.8 because "),
        ("ThinkingDelta", "0.11 < 0.8."),
        ("TextDelta", "9.8 is "),
        ("TextDelta", "greater."),
    ]


def test_thinking_continues_in_the_next_turn_without_being_sent_back(
    server: Any, make_hub: Any
) -> None:
    server.reply(completion({"reasoning_content": "Think.", "content": "Answer."}))
    hub = make_hub()
    first = hub.chat("deepseek/deepseek-reasoner", "Q1")
    hub.chat(
        "deepseek/deepseek-reasoner", [Message.user("Q1"), first.to_message(), Message.user("Q2")]
    )
    # DeepSeek rejects reasoning_content in input messages: only the answer goes back.
    assert server.payload["messages"][1] == {"role": "assistant", "content": "Answer."}


def test_thinking_before_tool_calls_in_a_stream(server: Any, make_hub: Any) -> None:
    call = {"index": 0, "id": "call_1", "type": "function"}
    _, events = both(
        server,
        make_hub(),
        "vllm/qwen3",
        completion(
            {
                "reasoning_content": "Need the weather.",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            finish="tool_calls",
        ),
        [
            chunk({"reasoning_content": "Need the weather."}),
            chunk({"tool_calls": [{**call, "function": {"name": "weather", "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Oslo"}'}}]}),
            chunk({}, finish="tool_calls"),
        ],
        tools=[{"name": "weather", "parameters": {"type": "object"}}],
    )
    assert events[-1].response.content == (
        ThinkingPart("Need the weather."),
        ToolCallPart("call_1", "weather", {"city": "Oslo"}),
    )


def test_deepseek_cache_hits_count_as_cached_input(server: Any, make_hub: Any) -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 140,
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 36,
        "completion_tokens_details": {"reasoning_tokens": 30},
    }
    said, events = both(
        server,
        make_hub(),
        "deepseek/deepseek-reasoner",
        completion({"content": "ok"}, usage=usage),
        [chunk({"content": "ok"}), chunk({}, finish="stop"), chunk(usage=usage)],
    )
    assert said.usage == Usage(100, 40, cached_input_tokens=64, reasoning_tokens=30)
    assert said.raw["usage"] == usage  # raw stays as received
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [said.usage]


def test_groq_stream_usage_in_x_groq(server: Any, make_hub: Any) -> None:
    server.reply_sse(
        [
            chunk({"content": "Hi"}),
            chunk(
                {},
                finish="stop",
                x_groq={"id": "req_1", "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
            ),
        ]
    )
    events = list(make_hub().stream("groq/llama-3.3-70b-versatile", "Hi"))
    assert events[-1].response.usage == Usage(5, 1)


def test_a_fallback_answer_valid_against_the_schema_passes(server: Any, make_hub: Any) -> None:
    text = '{"city": "Oslo", "population": 709000}'
    said, events = both(
        server,
        make_hub(),
        "deepseek/deepseek-chat",
        completion({"content": text}),
        [chunk({"content": text[:10]}), chunk({"content": text[10:]}), chunk({}, finish="stop")],
        response_schema=SCHEMA,
    )
    assert said.json() == {"city": "Oslo", "population": 709000}
    assert [e.text for e in events if isinstance(e, TextDelta)] == [text[:10], text[10:]]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"city": "Oslo"}', "missing required property 'population'"),
        ('{"city": "Oslo", "population": -1}', "below the minimum 0"),
        ('{"city": "Oslo", "population": 1, "mayor": "x"}', "'mayor' is not allowed"),
        ("   ", "structured output is not JSON"),  # DeepSeek's documented blank answer
        ("Oslo, about 709k people", "structured output is not JSON"),
    ],
)
def test_a_fallback_answer_that_breaks_the_schema_is_malformed(
    server: Any, make_hub: Any, waits: list[float], text: str, reason: str
) -> None:
    server.reply(completion({"content": text}))
    hub = make_hub("providers:\n  deepseek: {max_retries: 1}\n")
    with pytest.raises(MalformedResponse, match=reason) as caught:
        hub.chat("deepseek/deepseek-chat", "Where?", response_schema=SCHEMA)
    assert caught.value.retryable
    assert len(server.requests) == 2  # retried once, as a malformed answer is
    server.reply_sse([chunk({"content": text}), chunk({}, finish="stop")])
    server.answers.pop(0)
    with pytest.raises(MalformedResponse, match=reason):
        list(hub.stream("deepseek/deepseek-chat", "Where?", response_schema=SCHEMA))


def test_json_schema_answers_are_left_to_the_server(server: Any, make_hub: Any) -> None:
    # Where the server enforces the schema, Relay does not second-guess it.
    server.reply(completion({"content": '{"city": "Oslo"}'}))
    said = make_hub().chat("groq/m", "Where?", response_schema=SCHEMA)
    assert said.json() == {"city": "Oslo"}


def test_streams_without_reasoning_are_unchanged(server: Any, make_hub: Any) -> None:
    said, events = both(
        server,
        make_hub(),
        "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        completion({"content": "Hello"}),
        [chunk({"content": "Hel"}), chunk({"content": "lo"}), chunk({}, finish="stop")],
    )
    assert said.content == (TextPart("Hello"),)
    assert not any(isinstance(e, ThinkingDelta) for e in events)


# ---------------------------------------------------------------------------- strict tools

FORECAST = Tool(
    "get_forecast",
    "",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)


def forecast_call(arguments: str) -> Any:
    call = {
        "id": "call_f",
        "type": "function",
        "function": {"name": "get_forecast", "arguments": arguments},
    }
    return completion({"content": None, "tool_calls": [call]}, finish="tool_calls")


def test_with_strict_tools_on_forced_nulls_are_dropped_in_answers_and_streams(
    server: Any, make_hub: Any
) -> None:
    filled = '{"city": "Oslo", "days": null}'
    said, _ = both(
        server,
        make_hub("providers:\n  vllm:\n    options: {strict_tools: true}\n"),
        "vllm/qwen3",
        forecast_call(filled),
        [
            chunk(
                {"tool_calls": [{"index": 0, "id": "call_f", "function": {"name": "get_forecast"}}]}
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": filled}}]}),
            chunk({}, finish="tool_calls"),
        ],
        tools=[FORECAST],
    )
    assert said.tool_calls == (ToolCallPart("call_f", "get_forecast", {"city": "Oslo"}),)
    assert server.payload["tools"][0]["function"]["strict"] is True


def test_loose_tools_keep_the_nulls_the_model_chose(server: Any, make_hub: Any) -> None:
    server.reply(forecast_call('{"city": "Oslo", "days": null}'))
    said = make_hub().chat("vllm/qwen3", "Hi", tools=[FORECAST])
    assert said.tool_calls[0].arguments == {"city": "Oslo", "days": None}
    assert "strict" not in server.payload["tools"][0]["function"]


# ---------------------------------------------------------------------------- errors in streams


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        # OpenRouter: error.code is the HTTP status the error stands for.
        ({"code": 502, "message": "Provider returned error"}, ProviderUnavailable),
        ({"code": 429, "message": "Rate limited upstream"}, RateLimitError),
        ({"code": 402, "message": "Insufficient credits"}, QuotaExceeded),
        ({"code": "server_error", "message": "Provider disconnected"}, ProviderUnavailable),
        # Groq: the status rides in status_code.
        (
            {
                "message": "Failed to call a function.",
                "code": "tool_use_failed",
                "status_code": 400,
            },
            InvalidRequestError,
        ),
        # vLLM and unknown servers: a bare message is the server's own trouble.
        ({"message": "Engine loop has died"}, ProviderUnavailable),
    ],
)
def test_errors_inside_a_stream_are_classified_as_the_status_they_carry(
    server: Any, make_hub: Any, error: Any, kind: type
) -> None:
    server.reply_sse([chunk({"content": "Hel"}), {"error": error}])
    hub = make_hub("providers:\n  openrouter: {max_retries: 0}\n")
    with pytest.raises(ProviderError) as caught:
        list(hub.stream("openrouter/m", "Hi"))
    assert type(caught.value) is kind
    assert caught.value.provider_message == error["message"]
    assert caught.value.status_code is None


def test_a_compat_stream_cut_before_done_is_still_malformed(server: Any, make_hub: Any) -> None:
    # Only [DONE] makes a stream without finish_reason whole: a body that just stops is
    # a cut connection.
    server.reply_sse(
        [{"choices": [{"index": 0, "delta": {"content": "The first half"}}]}], done=False
    )
    hub = make_hub("providers:\n  openrouter:\n    max_retries: 0\n")
    with pytest.raises(MalformedResponse, match="finish_reason"):
        list(hub.stream("openrouter/x/y", "Hi"))


def test_each_stream_chunk_is_parsed_once(
    server: Any, make_hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tap that takes reasoning out reads each chunk's JSON: relay-openai's parser
    # must get it from there rather than parse the chunk again, on every chunk.
    import json

    parsed: list[str] = []
    loads = json.loads

    def counting(text: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(text, str) and '"chat.completion.chunk"' in text:
            parsed.append(text)
        return loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counting)
    pieces = [chunk({"content": str(i)}) for i in range(5)] + [chunk({}, finish="stop")]
    _, events = both(
        server,
        make_hub(),
        "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        completion({"content": "01234"}),
        pieces,
    )
    assert [e.text for e in events if isinstance(e, TextDelta)] == list("01234")
    assert len(parsed) == len(pieces)
