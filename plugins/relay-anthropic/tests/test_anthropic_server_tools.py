"""Tools Anthropic runs itself (web search, code execution, web fetch, MCP connector)
and the citations on text grounded in them: their own parts and events, never client
tool calls, in chat and stream alike, and sent back unchanged in the next turn.

The cassettes follow real recordings (see cassettes/relay-anthropic/README.md); the
other answers are built here in the same shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import yaml
from anthropic_support import CASSETTES, MODEL, message, streamed

from relay_core import (
    Citation,
    CitationDelta,
    EndEvent,
    Hub,
    Message,
    Request,
    ServerToolCallDelta,
    ServerToolCallPart,
    ServerToolResultDelta,
    ServerToolResultPart,
    StreamAssembler,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
)
from relay_core.testing import FakeServer, assert_stream_equals_chat, json_answer

Cassette = Callable[[str], AbstractContextManager[Any]]
TARGET = f"anthropic/{MODEL}"
QUESTION = "What is the weather in Paris today?"
# Server tools are asked for in the Messages API's own words: Relay's Tool is a function
# the caller runs, so these travel in provider_kwargs.
WEB_SEARCH = {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]}
CALL_ID = "srvtoolu_01Relay0WebSearch000000001"


def recorded(name: str, index: int = 0) -> tuple[Any, Any]:
    """The request body and the answer of a cassette's interaction."""
    interaction = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"][index]
    return json.loads(interaction["request"]["body"]), interaction["response"]["body"]["string"]


def test_a_web_search_answer_has_server_tool_parts_and_citations_not_tool_calls(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("web_search") as tape:
        answer = make_hub().chat(TARGET, QUESTION, provider_kwargs=WEB_SEARCH)
    assert json.loads(tape.requests[0].body) == recorded("web_search")[0]
    assert answer.tool_calls == ()
    assert answer.finish_reason == "stop"
    assert answer.server_tool_calls == (
        ServerToolCallPart(CALL_ID, "web_search", {"query": "Paris weather today"}),
    )
    [result] = [p for p in answer.content if isinstance(p, ServerToolResultPart)]
    assert (result.tool_call_id, result.kind, result.is_error) == (
        CALL_ID,
        "web_search_tool_result",
        False,
    )
    assert [(r["title"], r["url"]) for r in result.content] == [
        (
            "Paris, France Weather Forecast | AccuWeather",
            "https://www.accuweather.com/en/fr/paris/623/weather-forecast/623",
        ),
        (
            "Météo Paris - Prévisions - Météo-France",
            "https://meteofrance.com/previsions-meteo-france/paris/75000",
        ),
    ]
    assert answer.text == (
        "I'll look up today's weather in Paris.Today in Paris it is partly cloudy with a "
        "high of 18°C and a low of 11°C, and showers are possible in the evening."
    )
    cited = [p for p in answer.content if isinstance(p, TextPart) and p.citations]
    assert [p.text for p in cited] == [
        "partly cloudy with a high of 18°C and a low of 11°C",
        "showers are possible in the evening",
    ]
    first = cited[0].citations[0]
    assert (first.url, first.title, first.cited_text) == (
        "https://www.accuweather.com/en/fr/paris/623/weather-forecast/623",
        "Paris, France Weather Forecast | AccuWeather",
        "Paris: partly cloudy, high 18°C, low 11°C. ",
    )
    assert first.data["type"] == "web_search_result_location"
    assert len(answer.citations) == 2
    assert answer.usage == Usage(input_tokens=9180, output_tokens=196)


def test_a_streamed_web_search_yields_server_tool_events_and_no_tool_call_delta(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    hub = make_hub()
    with cassette("web_search"):
        whole = hub.chat(TARGET, QUESTION, provider_kwargs=WEB_SEARCH)
    with cassette("stream_web_search") as tape:
        events = list(hub.stream(TARGET, QUESTION, provider_kwargs=WEB_SEARCH))
    assert json.loads(tape.requests[0].body) == recorded("stream_web_search")[0]
    assert not [e for e in events if isinstance(e, ToolCallDelta)]
    calls = [e for e in events if isinstance(e, ServerToolCallDelta)]
    assert (calls[0].id, calls[0].name, calls[0].server) == (CALL_ID, "web_search", None)
    assert json.loads("".join(e.arguments for e in calls)) == {"query": "Paris weather today"}
    [result] = [e for e in events if isinstance(e, ServerToolResultDelta)]
    assert result.tool_call_id == CALL_ID
    assert [r["url"] for r in result.content] == [
        "https://www.accuweather.com/en/fr/paris/623/weather-forecast/623",
        "https://meteofrance.com/previsions-meteo-france/paris/75000",
    ]
    citations = [e.citation for e in events if isinstance(e, CitationDelta)]
    assert [c.title for c in citations] == [
        "Paris, France Weather Forecast | AccuWeather",
        "Météo Paris - Prévisions - Météo-France",
    ]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == whole.text
    end = events[-1]
    assert isinstance(end, EndEvent)
    # The stream's answer is chat's: the same parts (citations included), usage with the
    # input tokens of the search results that only message_delta reports, and finish.
    assert_stream_equals_chat(end.response, whole)
    assert end.response.usage.input_tokens == 9180
    # The events alone are enough for a consumer that assembles its own answer.
    assembler = StreamAssembler()
    for event in events[:-1]:
        assembler.feed(event)
    assert [p for p in assembler.content() if not isinstance(p, TextPart)] == [
        p for p in whole.content if not isinstance(p, TextPart)
    ]
    assert assembler.response(model=MODEL).citations == whole.citations


def test_a_web_search_answer_goes_back_unchanged_in_the_next_turn(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    hub = make_hub()
    with cassette("web_search") as tape:
        answer = hub.chat(TARGET, QUESTION, provider_kwargs=WEB_SEARCH)
        conversation = [
            Message.user(QUESTION),
            answer.to_message(),
            Message.user("Should I take an umbrella?"),
        ]
        follow_up = hub.chat(TARGET, conversation, provider_kwargs=WEB_SEARCH)
    assert follow_up.text == "Yes: the search found showers possible this evening."
    sent = json.loads(tape.requests[1].body)
    assert sent == recorded("web_search", 1)[0]
    # Exactly the blocks Anthropic answered with: server_tool_use, its result with the
    # encrypted content, the text blocks with their citations.
    assert sent["messages"][1]["content"] == json.loads(recorded("web_search")[1])["content"]


# ---------------------------------------------------------------------------- MCP, code execution

MCP_AND_CODE = message(
    [
        {
            "type": "mcp_tool_use",
            "id": "mcptoolu_01FZmJ5UspaX5BB9uU339UT1",
            "name": "ask_question",
            "server_name": "deepwiki",
            "input": {"repoName": "pydantic/pydantic-ai", "question": "What is it?"},
        },
        {
            "type": "mcp_tool_result",
            "tool_use_id": "mcptoolu_01FZmJ5UspaX5BB9uU339UT1",
            "is_error": False,
            "content": [{"type": "text", "text": "An agent framework."}],
        },
        {
            "type": "server_tool_use",
            "id": "srvtoolu_01Y5A969cu9rsnDkHF6brfKF",
            "name": "bash_code_execution",
            "input": {"command": "echo $((3 * 12390))"},
        },
        {
            "type": "bash_code_execution_tool_result",
            "tool_use_id": "srvtoolu_01Y5A969cu9rsnDkHF6brfKF",
            "content": {
                "type": "bash_code_execution_result",
                "stdout": "37170\n",
                "stderr": "",
                "return_code": 0,
                "content": [],
            },
        },
        {
            "type": "server_tool_use",
            "id": "srvtoolu_016pLxxM63EiNXuNu4xif3v6",
            "name": "text_editor_code_execution",
            "input": {"command": "view", "path": "/tmp/hello.txt"},
        },
        {
            "type": "text_editor_code_execution_tool_result",
            "tool_use_id": "srvtoolu_016pLxxM63EiNXuNu4xif3v6",
            "content": {
                "type": "text_editor_code_execution_tool_result_error",
                "error_code": "unavailable",
            },
        },
        {"type": "text", "text": "An agent framework; 3 × 12390 = 37170."},
    ],
    usage={
        "input_tokens": 3042,
        "output_tokens": 354,
        "server_tool_use": {"web_search_requests": 0},
    },
)


def test_mcp_and_code_execution_blocks_are_server_tool_parts(
    make_hub: Callable[..., Hub],
) -> None:
    answer = make_hub(FakeServer(json_answer(MCP_AND_CODE))).chat(TARGET, "Tell me")
    assert answer.tool_calls == ()
    assert answer.finish_reason == "stop"
    mcp, bash, editor = answer.server_tool_calls
    assert (mcp.name, mcp.server) == ("ask_question", "deepwiki")
    assert (bash.name, bash.server, bash.arguments) == (
        "bash_code_execution",
        None,
        {"command": "echo $((3 * 12390))"},
    )
    results = [p for p in answer.content if isinstance(p, ServerToolResultPart)]
    assert [(r.kind, r.is_error) for r in results] == [
        ("mcp_tool_result", False),
        ("bash_code_execution_tool_result", False),
        ("text_editor_code_execution_tool_result", True),
    ]
    assert results[1].content["stdout"] == "37170\n"
    assert editor.name == "text_editor_code_execution"


def test_mcp_and_code_execution_stream_as_chat_and_go_back_unchanged(
    make_hub: Callable[..., Hub],
) -> None:
    server = FakeServer(json_answer(MCP_AND_CODE), streamed(MCP_AND_CODE), json_answer(message([])))
    hub = make_hub(server)
    whole = hub.chat(TARGET, "Tell me")
    events = list(hub.stream(TARGET, "Tell me"))
    assert not [e for e in events if isinstance(e, ToolCallDelta)]
    assert {e.server for e in events if isinstance(e, ServerToolCallDelta) and e.id} == {
        "deepwiki",
        None,
    }
    assert len([e for e in events if isinstance(e, ServerToolResultDelta)]) == 3
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert_stream_equals_chat(end.response, whole)
    hub.chat(TARGET, [Message.user("Tell me"), end.response.to_message(), Message.user("More")])
    assert server.payloads[2]["messages"][1]["content"] == MCP_AND_CODE["content"]


def test_another_providers_citations_are_not_sent_to_anthropic(
    make_hub: Callable[..., Hub],
) -> None:
    server = FakeServer(json_answer(message([{"type": "text", "text": "ok"}])))
    foreign = Citation(
        url="https://example.com", data={"type": "url_citation", "url": "https://example.com"}
    )
    conversation = [
        Message.user("Hi"),
        Message.assistant(TextPart("Cited.", citations=[foreign])),
        Message.user("More"),
    ]
    make_hub(server).chat(TARGET, Request(messages=conversation))
    assert server.payloads[0]["messages"][1]["content"] == [{"type": "text", "text": "Cited."}]
