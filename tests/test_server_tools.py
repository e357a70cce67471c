"""Tools a provider runs itself (web search, code execution, MCP) and citations: their
own parts and stream events, never client tool calls; kept through serialisation, the
assembler and the cache's replay; left out for providers that cannot take them back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from relay_core import (
    Citation,
    CitationDelta,
    EndEvent,
    Hub,
    Message,
    Response,
    ServerToolCallDelta,
    ServerToolCallPart,
    ServerToolResultDelta,
    ServerToolResultPart,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
)
from relay_core.hub import without_server_tools
from relay_core.serialize import dumps, loads, unstructure
from relay_core.streaming import StreamAssembler, replay
from relay_core.tools import FunctionToolset
from relay_core.types import Part, Request, StreamEvent

SEARCH = ServerToolCallPart("srvtoolu_1", "web_search", {"query": "Paris weather"})
RESULTS = [
    {"type": "web_search_result", "title": "Paris weather", "url": "https://example.com/paris"}
]
FOUND = ServerToolResultPart("srvtoolu_1", "web_search_tool_result", RESULTS)
SOURCE = Citation(
    url="https://example.com/paris",
    title="Paris weather",
    cited_text="18°C",
    data={"type": "web_search_result_location", "url": "https://example.com/paris"},
)
CITED = TextPart("It is 18°C.", citations=[SOURCE])
ANSWER = Response(
    content=(TextPart("Let me look."), SEARCH, FOUND, CITED),
    model="smart",
    usage=Usage(100, 20),
)


def test_server_tool_calls_are_not_tool_calls() -> None:
    assert ANSWER.tool_calls == ()
    assert ANSWER.server_tool_calls == (SEARCH,)
    assert ANSWER.citations == (SOURCE,)
    assert ANSWER.text == "Let me look.It is 18°C."
    assert ANSWER.to_message().tool_calls == ()


def test_parts_and_events_keep_stable_tags_through_json() -> None:
    values: list[Part | StreamEvent] = [
        SEARCH,
        FOUND,
        CITED,
        ServerToolCallPart("mcptoolu_1", "ask", {"q": "x"}, server="deepwiki"),
        ServerToolCallDelta(2, id="srvtoolu_1", name="web_search", arguments='{"q'),
        ServerToolResultDelta("srvtoolu_1", "web_search_tool_result", RESULTS),
        CitationDelta(SOURCE),
    ]
    tags = [unstructure(value)["type"] for value in values]
    assert tags == [
        "server_tool_call",
        "server_tool_result",
        "text",
        "server_tool_call",
        "server_tool_call_delta",
        "server_tool_result_delta",
        "citation_delta",
    ]
    for value in values[:4]:
        assert loads(dumps(value), Part) == value  # type: ignore[arg-type]
    for value in values[4:]:
        assert loads(dumps(value), StreamEvent) == value  # type: ignore[arg-type]
    # A text part without citations is written as before: stored JSONL and
    # fingerprints made before citations existed do not change.
    assert unstructure(TextPart("hi")) == {"type": "text", "text": "hi"}


def test_the_assembler_builds_server_tool_parts_and_cited_text() -> None:
    events: list[StreamEvent] = [
        TextDelta("Let me look."),
        ServerToolCallDelta(1, id="srvtoolu_1", name="web_search"),
        ServerToolCallDelta(1, arguments='{"query": '),
        ServerToolCallDelta(1, arguments='"Paris weather"}'),
        ServerToolResultDelta("srvtoolu_1", "web_search_tool_result", RESULTS),
        CitationDelta(SOURCE),
        TextDelta("It is "),
        TextDelta("18°C."),
    ]
    assembler = StreamAssembler()
    for event in events:
        assembler.feed(event)
    response = assembler.response(model="smart")
    assert response.content == ANSWER.content
    assert response.finish_reason == "stop"  # a server tool is no call for the caller
    assert response.tool_calls == ()


def test_a_citation_after_uncited_text_starts_a_part_of_its_own() -> None:
    assembler = StreamAssembler()
    for event in (TextDelta("Today "), CitationDelta(SOURCE), TextDelta("it is 18°C.")):
        assembler.feed(event)
    assert assembler.content() == (TextPart("Today "), TextPart("it is 18°C.", citations=[SOURCE]))


def test_a_replayed_answer_assembles_to_the_same_parts() -> None:
    events = list(replay(ANSWER))
    assert not any(isinstance(e, ToolCallDelta) for e in events)
    assembler = StreamAssembler()
    for event in events[:-1]:
        assembler.feed(event)
    assert assembler.content() == ANSWER.content
    assert events[-1] == EndEvent(ANSWER)


def test_without_server_tools_keeps_the_text_and_drops_emptied_turns() -> None:
    request = Request(
        messages=[
            Message.user("Weather?"),
            Message.assistant(SEARCH, FOUND),
            Message.assistant(CITED),
            Message.user("Umbrella?"),
        ]
    )
    stripped = without_server_tools(request)
    assert [m.role for m in stripped.messages] == ["user", "assistant", "user"]
    assert stripped.messages[1].content == (CITED,)
    plain = Request(messages=[Message.user("Hi")])
    assert without_server_tools(plain) is plain


def test_a_provider_without_server_tools_never_receives_their_parts(
    make_hub: Callable[..., Hub], scripted: Any
) -> None:
    hub = make_hub("models:\n  smart: {target: scripted/smart}\n")
    conversation = [Message.user("Weather?"), ANSWER.to_message(), Message.user("Umbrella?")]
    hub.chat("smart", conversation)
    [received] = scripted.received
    assert [m.role for m in received.messages] == ["user", "assistant", "user"]
    assert received.messages[1].content == (TextPart("Let me look."), CITED)


def test_the_tool_loop_never_runs_a_server_tool(
    make_hub: Callable[..., Hub], scripted: Any
) -> None:
    ran: list[str] = []

    def web_search(query: str) -> str:
        """A client tool of the same name as the server's: it must not run."""
        ran.append(query)
        return "no"

    scripted.script["smart"] = [ANSWER]
    hub = make_hub("models:\n  smart: {target: scripted/smart}\n")
    answer = hub.run_tools("smart", "Weather?", toolsets=[FunctionToolset("f", web_search)])
    assert ran == []
    assert answer.steps == ()
    assert answer.server_tool_calls == (SEARCH,)
    assert answer.metadata["tool_loop"]["stopped"] == "answer"
    assert json.loads(json.dumps(unstructure(answer.content[2])))["content"] == RESULTS
