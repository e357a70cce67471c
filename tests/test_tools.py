"""The tool loop: the hub calls the model, runs the tools it asks for on their toolsets,
sends the results back, and stops at an answer, a tool it cannot run, or the bound."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs
import pytest

from relay_core import (
    ConfigError,
    Hub,
    Response,
    Tool,
    ToolCallPart,
    ToolResultPart,
    Usage,
    hookimpl,
)
from relay_core.testing import AuditRecorder
from relay_core.tools import FunctionToolset, ToolOutput, Toolset, function_tool

CATALOG = """
models:
  smart:
    target: scripted/smart
    pricing: {input: 1.0, output: 2.0}
  other: {target: scripted/other}
groups:
  either: {strategy: fallback, members: [smart, other]}
"""


def calls(*calls: ToolCallPart) -> Response:
    return Response(content=calls, model="smart", finish_reason="tool_calls", usage=Usage(10, 5))


def text(answer: str) -> Response:
    return Response(content=answer, model="smart", usage=Usage(20, 3))


def add(a: int, b: int) -> int:
    """Add two integers.

    Only integers."""
    return a + b


async def shout(text: str, times: int = 1) -> str:
    """Say it louder."""
    return text.upper() * times


def broken(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"cannot: {reason} (token sk-proj-abcdefghijklmnopqrstuvwx)")


MATH = FunctionToolset("math", add, shout, broken)


def test_tools_run_and_their_results_go_back(make_hub: Callable[..., Hub], scripted: Any) -> None:
    scripted.script["smart"] = [
        calls(
            ToolCallPart("c1", "add", {"a": 2, "b": 40}),
            ToolCallPart("c2", "shout", {"text": "hi"}),
        ),
        text("The answer is 42."),
    ]
    hub = make_hub(CATALOG)

    answer = hub.run_tools("smart", "What is 2 + 40?", toolsets=[MATH])

    assert answer.text == "The answer is 42."
    # The model was offered the toolset's tools, then got both results in one tool message.
    assert [tool.name for tool in scripted.received[0].tools] == ["add", "shout", "broken"]
    second = scripted.received[1].messages
    assert [m.role for m in second] == ["user", "assistant", "tool"]
    assert second[2].content == (
        ToolResultPart("c1", "42", name="add"),
        ToolResultPart("c2", "HI", name="shout"),
    )
    [step] = answer.steps
    assert step.response.tool_calls[0].name == "add"
    assert [(run.toolset, run.tool, run.result.content) for run in step.runs] == [
        ("math", "add", "42"),
        ("math", "shout", "HI"),
    ]
    # Usage and cost are the whole loop's: both model calls.
    assert answer.usage == Usage(30, 8)
    assert answer.cost.amount == pytest.approx((30 * 1.0 + 8 * 2.0) / 1e6)
    assert answer.cost.source == "user_override"  # the catalog's price, for both calls
    assert [step.response.cost.amount for step in answer.steps] == [
        pytest.approx((10 * 1.0 + 5 * 2.0) / 1e6)
    ]
    assert answer.metadata["tool_loop"]["stopped"] == "answer"
    assert answer.metadata["tool_loop"]["model_calls"] == 2


async def test_async_form_and_a_failing_tool(make_hub: Callable[..., Hub], scripted: Any) -> None:
    scripted.script["smart"] = [
        calls(ToolCallPart("c1", "broken", {"reason": "disk full"})),
        calls(ToolCallPart("c2", "add", {"a": "two"})),
        text("Sorry."),
    ]
    hub = make_hub(CATALOG)

    answer = await hub.arun_tools("smart", "Go", toolsets=[MATH])

    failed, refused = (step.runs[0].result for step in answer.steps)
    # The model hears what went wrong, without the secret the exception carried.
    assert failed.is_error
    assert "cannot: disk full" in failed.content
    assert "sk-proj" not in failed.content
    # Arguments the function cannot take are refused before it runs.
    assert refused.is_error
    assert "bad arguments for 'add'" in refused.content
    assert answer.text == "Sorry."


def test_the_bound_on_steps(make_hub: Callable[..., Hub], scripted: Any) -> None:
    scripted.script["smart"] = [
        calls(ToolCallPart(f"c{i}", "add", {"a": i, "b": 1})) for i in range(5)
    ]
    hub = make_hub(CATALOG)

    answer = hub.run_tools("smart", "Loop", toolsets=[MATH], max_steps=3)

    # Three model calls: two rounds of tools run, the third answer's calls left unrun.
    assert len(scripted.received) == 3
    assert len(answer.steps) == 2
    assert answer.tool_calls[0].id == "c2"
    assert answer.metadata["tool_loop"]["stopped"] == "max_steps"
    with pytest.raises(Exception, match="max_steps must be 1 or more"):
        hub.run_tools("smart", "Loop", toolsets=[MATH], max_steps=0)


def test_a_tool_only_the_caller_can_run_ends_the_loop(
    make_hub: Callable[..., Hub], scripted: Any
) -> None:
    lookup = Tool("lookup", "Look it up.", {"type": "object", "properties": {}})
    scripted.script["smart"] = [
        calls(ToolCallPart("c1", "add", {"a": 1, "b": 1})),
        calls(ToolCallPart("c2", "lookup", {})),
    ]
    hub = make_hub(CATALOG)

    answer = hub.run_tools("smart", "Go", toolsets=[MATH], tools=[lookup])

    assert [tool.name for tool in scripted.received[0].tools] == [
        "lookup",
        "add",
        "shout",
        "broken",
    ]
    assert answer.tool_calls == (ToolCallPart("c2", "lookup", {}),)
    assert answer.metadata["tool_loop"]["stopped"] == "caller_tool"
    assert len(answer.steps) == 1


def test_a_tool_name_given_twice_is_refused(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(CATALOG)
    with pytest.raises(
        ConfigError, match="'add' of toolset 'math' has the name of a tool of the request"
    ):
        hub.run_tools("smart", "Go", toolsets=[MATH], tools=[Tool("add")])


class RecordingToolset:
    """A toolset that records which provider it compiled for, and whether it was closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.compiled_for: list[str | None] = []

    async def list_tools(self, provider: str | None) -> Sequence[Tool]:
        self.compiled_for.append(provider)
        return [Tool(f"{self.name}_echo")]

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolOutput:
        # Its own name has a dot the providers' alphabets refuse: the model sees "_".
        return ToolOutput(json.dumps({"tool": name, **arguments}), tool=f"{self.name}.echo")


class ToolsetPlugin:
    """What relay-mcp does: a configured object per hub offering that hub's toolsets."""

    def __init__(self, *names: str) -> None:
        self.names = names
        self.configured: list[Configured] = []

    @hookimpl
    def relay_configure(self, catalog: Any) -> object:
        configured = Configured([RecordingToolset(name) for name in self.names])
        self.configured.append(configured)
        return configured


class Configured:
    def __init__(self, toolsets: list[RecordingToolset]) -> None:
        self.sets = toolsets
        self.closed = False

    @hookimpl
    def relay_toolsets(self) -> Sequence[Toolset]:
        return self.sets

    async def aclose(self) -> None:
        self.closed = True


def test_plugins_offer_toolsets_by_name(make_hub: Callable[..., Hub], scripted: Any) -> None:
    plugin = ToolsetPlugin("files", "web")
    hub = make_hub(CATALOG)
    hub.plugins.register(plugin, name="toolsets")
    scripted.script["smart"] = [calls(ToolCallPart("c1", "web_echo", {"q": 1})), text("done")]

    assert sorted(hub.toolsets()) == ["files", "web"]
    answer = hub.run_tools("smart", "Go", toolsets=["web"])

    assert [tool.name for tool in scripted.received[0].tools] == ["web_echo"]
    run = answer.steps[0].runs[0]
    assert run.result.content == '{"tool": "web_echo", "q": 1}'
    assert (run.call.name, run.toolset, run.tool) == ("web_echo", "web", "web.echo")
    # Compiled for the provider of the model about to be called.
    assert plugin.configured[0].sets[1].compiled_for == ["scripted"]
    with pytest.raises(ConfigError, match=r"no toolset named 'mail'; the hub has: files, web"):
        hub.run_tools("smart", "Go", toolsets=["mail"])
    hub.close()
    assert plugin.configured[0].closed


def test_every_offered_toolset_by_default_and_a_group_compiles_for_any_provider(
    make_hub: Callable[..., Hub], scripted: Any
) -> None:
    plugin = ToolsetPlugin("files", "web")
    hub = make_hub(CATALOG)
    hub.plugins.register(plugin, name="toolsets")
    scripted.script["smart"] = [text("no tools needed")]

    answer = hub.run_tools("either", "Go")

    assert [tool.name for tool in scripted.received[0].tools] == ["files_echo", "web_echo"]
    assert [s.compiled_for for s in plugin.configured[0].sets] == [[None], [None]]
    assert answer.steps == ()
    assert answer.metadata["route"]["member"] == "smart"


def test_two_toolsets_of_one_name_are_refused(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(CATALOG)
    hub.plugins.register(ToolsetPlugin("files"), name="one")
    hub.plugins.register(ToolsetPlugin("files"), name="two")
    with pytest.raises(ConfigError, match="two toolsets are named 'files'"):
        hub.toolsets()


def test_audit_sees_every_model_call_and_tool_run(
    make_hub: Callable[..., Hub], scripted: Any
) -> None:
    audit = AuditRecorder()
    hub = make_hub(CATALOG)
    hub.plugins.register(audit, name="audit")
    scripted.script["smart"] = [
        calls(
            ToolCallPart("c1", "add", {"a": 1, "b": 2}),
            ToolCallPart("c2", "broken", {"reason": "x"}),
        ),
        text("ok"),
    ]

    answer = hub.run_tools("smart", "Go", toolsets=[MATH])

    loop = answer.metadata["tool_loop"]["id"]
    assert audit.kinds() == [
        "call.succeeded",
        "tool.succeeded",
        "tool.failed",
        "call.succeeded",
        "tool_loop.finished",
    ] or audit.kinds() == [
        "call.succeeded",
        "tool.failed",
        "tool.succeeded",
        "call.succeeded",
        "tool_loop.finished",
    ]
    first_call, *_, second_call, finished = audit.events
    assert (first_call.metadata["loop"], first_call.metadata["step"]) == (loop, 1)
    assert (second_call.metadata["loop"], second_call.metadata["step"]) == (loop, 2)
    runs = {e.metadata["tool"]: e for e in audit.events if e.kind.startswith("tool.")}
    assert runs["add"].metadata == {
        "loop": loop,
        "step": 1,
        "toolset": "math",
        "tool": "add",
        "call_id": "c1",
    }
    assert runs["add"].tool_run is not None
    assert runs["add"].tool_run.result.content == "3"
    assert runs["broken"].error is not None
    assert runs["broken"].error.kind == "RuntimeError"
    assert "sk-proj" not in runs["broken"].error.message
    assert finished.metadata == {"loop": loop, "model_calls": 2, "stopped": "answer"}


def test_a_loop_costs_what_its_least_sure_call_costs() -> None:
    from relay_core import Cost
    from relay_core.tools import _total_cost

    sure = Cost(1.0, source="user_override", priced_by="catalog")
    listed = Cost(2.0, source="snapshot", priced_by="relay-pricing-snapshot", as_of="2026-11-01")
    total = _total_cost([sure, listed])
    assert (total.amount, total.source, total.priced_by) == (3.0, "snapshot", None)
    assert _total_cost([listed, listed]).as_of == "2026-11-01"
    assert _total_cost([sure, Cost.unknown()]).amount is None


def test_function_tool_describes_a_function() -> None:
    def search(
        query: str,
        limit: int = 10,
        mode: Literal["fast", "deep"] = "fast",
        tags: list[str] | None = None,
    ) -> str:
        """Search the index.

        Longer explanation the model does not need."""
        return query

    tool = function_tool(search)

    assert tool.name == "search"
    assert tool.description == "Search the index."
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer"},
            "mode": {"enum": ["fast", "deep"]},
            "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        },
        "required": ["query"],
        "additionalProperties": False,
    }


@attrs.frozen
class Point:
    x: float
    y: float


def test_function_tool_takes_attrs_classes() -> None:
    def distance(a: Point, b: Point) -> float:
        """Distance between points."""
        return float(((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5)

    schema = function_tool(distance).parameters
    assert schema["required"] == ["a", "b"]
    point = schema["properties"]["a"]
    assert point == schema["properties"]["b"]
    # However the class is described (inline or by reference), x and y are its numbers.
    if "$ref" in point:
        point = schema["$defs"][point["$ref"].rsplit("/", 1)[-1]]
    assert point["properties"] == {"x": {"type": "number"}, "y": {"type": "number"}}


async def test_function_arguments_arrive_as_their_annotated_types() -> None:
    def distance(a: Point, b: Point) -> float:
        """Distance between points."""
        return float(((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5)

    geometry = FunctionToolset("geometry", distance)
    output = await geometry.call_tool("distance", {"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}})
    assert output == ToolOutput("5.0")
    refused = await geometry.call_tool("distance", {"a": {"x": "far"}, "b": {"x": 3, "y": 4}})
    assert refused.is_error
    assert "bad arguments for 'distance': a:" in refused.content


def test_a_toolset_refuses_two_functions_of_one_name() -> None:
    def add(a: int) -> int:
        return a

    with pytest.raises(Exception, match="two tools named 'add'"):
        FunctionToolset("math", globals()["add"], add)


def test_the_deadline_bounds_the_whole_loop_tools_included(
    make_hub: Callable[..., Hub], scripted: Any
) -> None:
    import asyncio

    from relay_core import Timeout

    finished: list[str] = []

    async def slow(seconds: float) -> str:
        """Take its time."""
        await asyncio.sleep(seconds)
        finished.append("slow")
        return "done"

    audit = AuditRecorder()
    hub = make_hub(CATALOG)
    hub.plugins.register(audit, name="audit")
    scripted.script["smart"] = [calls(ToolCallPart("c1", "slow", {"seconds": 30})), text("late")]

    with pytest.raises(Timeout, match="deadline"):
        hub.run_tools("smart", "Go", toolsets=[FunctionToolset("waits", slow)], deadline=0.5)

    # The tool was cut at the deadline and reported as such; no second model call ran.
    assert finished == []
    [failed] = [e for e in audit.events if e.kind == "tool.failed"]
    assert failed.error is not None
    assert failed.error.kind == "Timeout"
    assert len(scripted.received) == 1
