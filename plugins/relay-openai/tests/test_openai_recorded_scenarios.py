"""Scenarios that public recordings of OpenAI's API show and the first cassettes lacked:
several tool calls in one stream, cached prompt tokens, and a streamed reasoning summary
in several parts. Each cassette follows the
recording that cassettes/relay-openai/README.md names for it."""

from __future__ import annotations

from typing import Any

from relay_core import (
    EndEvent,
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

WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_two_tool_calls_in_one_stream_with_cached_prompt_tokens(
    make_hub: Any, cassette: Any
) -> None:
    with cassette("chat_stream_parallel_tools"):
        events = list(
            make_hub(network=True).stream(
                "openai/gpt-4.1-mini", "Weather in Paris and in Tokyo?", tools=[WEATHER]
            )
        )
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    # The stream interleaves nothing here, but each piece names the call it belongs to.
    assert [(d.index, d.id, d.name) for d in deltas if d.id] == [
        (0, "call_Pq4nW8sLk2Vx6Zr1Ty9Bc3Hd", "get_weather"),
        (1, "call_Jm7uE5gRf0Xa2Yb4Nc6Vd8Kq", "get_weather"),
    ]
    assert "".join(d.arguments for d in deltas if d.index == 1) == '{"city": "Tokyo"}'
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.finish_reason == "tool_calls"
    assert end.response.tool_calls == (
        ToolCallPart("call_Pq4nW8sLk2Vx6Zr1Ty9Bc3Hd", "get_weather", {"city": "Paris"}),
        ToolCallPart("call_Jm7uE5gRf0Xa2Yb4Nc6Vd8Kq", "get_weather", {"city": "Tokyo"}),
    )
    # The usage chunk (empty choices) carries prompt_tokens_details.cached_tokens.
    usage = Usage(input_tokens=2086, output_tokens=46, cached_input_tokens=1920)
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [usage]
    assert end.response.usage == usage


def test_a_reasoning_summary_in_two_parts_streams_as_thinking(make_hub: Any, cassette: Any) -> None:
    with cassette("responses_reasoning_summary_stream"):
        events = list(
            make_hub(network=True).stream(
                "openai/o4-mini",
                "What is the capital of France?",
                provider_kwargs={
                    "openai": {"api": "responses"},
                    "reasoning": {"effort": "low", "summary": "detailed"},
                },
            )
        )
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    first = "**Recalling the capital**\n\nThe user asks for the capital of France, which is Paris."
    second = "**Keeping it short**\n\nOne word answers the question."
    # Summary parts are separate paragraphs: the stream says so with summary_index.
    assert thinking == f"{first}\n\n{second}"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris."
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.content == (ThinkingPart(f"{first}\n\n{second}"), TextPart("Paris."))
    assert end.response.usage == Usage(input_tokens=13, output_tokens=212, reasoning_tokens=192)
    assert end.response.finish_reason == "stop"
