"""Tool calls: the automatic call, tool_choice, scripted parallel calls, and the turn after
the tool results arrive."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from relay_core import InvalidRequestError, Message, TextPart, Tool, ToolResultPart

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 2},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
)
CLOCK = Tool(
    name="get_time",
    description="The time in a timezone.",
    parameters={
        "type": "object",
        "properties": {
            "timezone": {"type": "string"},
            "when": {"type": "string", "format": "date"},
        },
        "required": ["timezone"],
    },
)


def _valid(arguments: dict[str, Any], tool: Tool) -> None:
    jsonschema.validate(
        arguments, tool.parameters, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_a_tool_request_gets_one_call_with_valid_arguments(make_hub: Any) -> None:
    answer = make_hub().chat("mock/echo", "What's the weather in Paris?", tools=[WEATHER, CLOCK])
    [call] = answer.tool_calls
    assert call.name == "get_weather"  # named by nobody: the first tool
    assert call.id.startswith("call_")
    _valid(call.arguments, WEATHER)
    assert answer.finish_reason == "tool_calls"
    assert answer.text == ""
    assert answer.raw["stop_reason"] == "tool_use"


def test_the_tool_the_prompt_names_is_called(make_hub: Any) -> None:
    answer = make_hub().chat(
        "mock/echo", "Use get_time for Tokyo, not get_weather.", tools=[WEATHER, CLOCK]
    )
    [call] = answer.tool_calls
    assert call.name == "get_time"
    _valid(call.arguments, CLOCK)


def test_tool_choice_names_or_forbids_the_call(make_hub: Any) -> None:
    hub = make_hub()
    forced = hub.chat(
        "mock/echo", "Use get_weather", tools=[WEATHER, CLOCK], tool_choice="get_time"
    )
    assert [c.name for c in forced.tool_calls] == ["get_time"]
    none = hub.chat("mock/echo", "Use get_weather", tools=[WEATHER], tool_choice="none")
    assert none.tool_calls == ()
    assert (none.text, none.finish_reason) == ("Use get_weather", "stop")
    with pytest.raises(InvalidRequestError, match="tool_choice 'get_news' names none"):
        hub.chat("mock/echo", "x", tools=[WEATHER], tool_choice="get_news")


def test_arguments_are_deterministic_and_vary_with_the_request(make_hub: Any) -> None:
    hub = make_hub()
    cities = [
        hub.chat("mock/echo", f"Weather {n}?", tools=[WEATHER]).tool_calls[0].arguments
        for n in range(6)
    ]
    again = hub.chat("mock/echo", "Weather 0?", tools=[WEATHER]).tool_calls[0]
    assert again.arguments == cities[0]
    assert len({str(c) for c in cities}) > 1


def test_scripted_parallel_calls_are_returned_exactly(make_hub: Any) -> None:
    script = {
        "tool_calls": [
            {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
            {"name": "get_weather", "arguments": {"city": "Rome", "unit": "celsius"}},
            {"name": "get_time", "arguments": {"timezone": "Europe/Rome"}, "id": "mine"},
        ]
    }
    answer = make_hub().chat(
        "mock/echo", "Paris and Rome?", tools=[WEATHER, CLOCK], provider_kwargs={"mock": script}
    )
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [
        (s["name"], s["arguments"]) for s in script["tool_calls"]
    ]
    ids = [c.id for c in answer.tool_calls]
    assert ids[2] == "mine"
    assert len(set(ids)) == 3
    assert answer.finish_reason == "tool_calls"


def test_after_the_tool_results_the_answer_reports_them(make_hub: Any) -> None:
    hub = make_hub()
    question = Message.user("Weather in Paris and Rome?")
    script = {
        "tool_calls": [
            {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
            {"name": "get_weather", "arguments": {"city": "Rome", "unit": "celsius"}},
        ]
    }
    first = hub.chat("mock/echo", [question], tools=[WEATHER], provider_kwargs={"mock": script})
    paris, rome = first.tool_calls
    results = Message.tool(
        ToolResultPart.from_value(paris.id, {"sky": "clear", "celsius": 21}),
        ToolResultPart(rome.id, "station offline", is_error=True),
    )
    final = hub.chat("mock/echo", [question, first.to_message(), results], tools=[WEATHER])
    assert final.tool_calls == ()
    assert final.finish_reason == "stop"
    assert final.text == (
        'Based on the tool results: get_weather returned {"sky": "clear", "celsius": 21}; '
        "get_weather failed with station offline."
    )
    # The scripted calls are not repeated once their results are in.
    again = hub.chat(
        "mock/echo", [question, first.to_message(), results], provider_kwargs={"mock": script}
    )
    assert again.tool_calls == ()


def test_a_new_user_turn_calls_tools_again(make_hub: Any) -> None:
    hub = make_hub()
    first = hub.chat("mock/echo", "Weather?", tools=[WEATHER])
    [call] = first.tool_calls
    conversation = [
        Message.user("Weather?"),
        first.to_message(),
        Message.tool(ToolResultPart(call.id, "sunny", name="get_weather")),
    ]
    answered = hub.chat("mock/echo", conversation, tools=[WEATHER])
    assert answered.text == "Based on the tool results: get_weather returned sunny."
    conversation += [answered.to_message(), Message.user("And the time? get_time please")]
    follow_up = hub.chat("mock/echo", conversation, tools=[WEATHER, CLOCK])
    assert [c.name for c in follow_up.tool_calls] == ["get_time"]


def test_results_inside_a_user_message_count_too(make_hub: Any) -> None:
    hub = make_hub()
    first = hub.chat("mock/echo", "Weather?", tools=[WEATHER])
    [call] = first.tool_calls
    anthropic_style = Message("user", (ToolResultPart(call.id, "rain"),))
    answer = hub.chat(
        "mock/echo",
        [Message.user("Weather?"), first.to_message(), anthropic_style],
        tools=[WEATHER],
    )
    assert answer.content == (TextPart("Based on the tool results: get_weather returned rain."),)


def test_structured_output_after_tool_results(make_hub: Any) -> None:
    hub = make_hub()
    schema = {
        "type": "object",
        "properties": {"summary": {"type": "string"}},
        "required": ["summary"],
    }
    first = hub.chat("mock/echo", "Weather?", tools=[WEATHER])
    [call] = first.tool_calls
    final = hub.chat(
        "mock/echo",
        [Message.user("Weather?"), first.to_message(), Message.tool(ToolResultPart(call.id, "ok"))],
        tools=[WEATHER],
        response_schema=schema,
    )
    jsonschema.validate(final.json(), schema)


def test_a_tool_without_parameters_is_called_with_no_arguments(make_hub: Any) -> None:
    answer = make_hub().chat("mock/echo", "ping", tools=[Tool("ping")])
    [call] = answer.tool_calls
    assert (call.name, call.arguments) == ("ping", {})


def test_max_tokens_drops_a_call_that_does_not_fit(make_hub: Any) -> None:
    answer = make_hub().chat("mock/echo", "Weather?", tools=[WEATHER], max_tokens=2)
    assert answer.tool_calls == ()
    assert answer.finish_reason == "length"


def test_a_scripted_reply_and_calls_come_together(make_hub: Any) -> None:
    script = {"reply": "Let me check.", "tool_calls": [{"name": "get_time", "arguments": {}}]}
    answer = make_hub().chat("mock/echo", "Time?", tools=[CLOCK], provider_kwargs={"mock": script})
    assert answer.text == "Let me check."
    assert [c.name for c in answer.tool_calls] == ["get_time"]
    assert answer.finish_reason == "tool_calls"


def test_free_text_arguments_come_from_the_prompts_proper_nouns(make_hub: Any) -> None:
    hub = make_hub()
    answer = hub.chat("mock/echo", "What is the weather in New York? Use a tool.", tools=[WEATHER])
    (call,) = answer.tool_calls
    assert call.arguments["city"] == "New York"
    # Constrained strings keep a generated value that the schema allows.
    assert call.arguments["unit"] in {"celsius", "fahrenheit"}
    jsonschema.validate(call.arguments, WEATHER.parameters)

    short = Tool(
        "f",
        parameters={
            "type": "object",
            "properties": {"code": {"type": "string", "maxLength": 3}},
            "required": ["code"],
        },
    )
    (too_long,) = hub.chat("mock/echo", "Look up Amsterdam", tools=[short]).tool_calls
    assert too_long.arguments["code"] != "Amsterdam"
    jsonschema.validate(too_long.arguments, short.parameters)
