"""The tool loop over real MCP servers (stdio and streamable HTTP) with relay-mock as
the model: tools run on the server, results go back, every step is kept and audited."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from mcp_support import SHARED_SECRET, Audit, MakeHub, alive, stdio_catalog

from relay_core import ConfigError, Hub

Shared = tuple[Hub, Audit]


def calls(*scripted: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """provider_kwargs making the mock model call these tools in its first answer."""
    return {"mock": {"tool_calls": [{"name": name, "arguments": args} for name, args in scripted]}}


def test_stdio_tools_run_and_the_answer_reports_them(shared: Shared) -> None:
    hub, audit = shared
    audit.events.clear()

    answer = hub.run_tools(
        "mock/echo",
        "What is 2 + 40, and 1 + 1?",
        toolsets=["calc"],
        provider_kwargs=calls(("add", {"a": 2, "b": 40}), ("add", {"a": 1, "b": 1})),
    )

    assert answer.text == "Based on the tool results: add returned 42; add returned 2."
    [step] = answer.steps
    assert [(run.toolset, run.tool, run.result.content) for run in step.runs] == [
        ("calc", "add", "42"),
        ("calc", "add", "2"),
    ]
    assert answer.metadata["tool_loop"]["model_calls"] == 2
    assert answer.metadata["tool_loop"]["stopped"] == "answer"
    # Audit: both model calls, each tool run with the server and tool, the loop's end.
    assert [event.kind for event in audit.events] == [
        "call.succeeded",
        "tool.succeeded",
        "tool.succeeded",
        "call.succeeded",
        "tool_loop.finished",
    ]
    runs = [event for event in audit.events if event.kind == "tool.succeeded"]
    assert {(e.metadata["toolset"], e.metadata["tool"], e.metadata["step"]) for e in runs} == {
        ("calc", "add", 1)
    }
    assert [e.metadata["step"] for e in audit.events if e.kind == "call.succeeded"] == [1, 2]


async def test_http_tools_run_through_the_async_form(
    make_hub: MakeHub, http_url: str, http_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_MCP_TOKEN", http_token)
    hub = make_hub(
        f"""
plugins:
  mcp:
    servers:
      remote:
        url: {http_url}
        headers: {{Authorization: "Bearer $env.RELAY_MCP_TOKEN"}}
"""
    )

    answer = await hub.arun_tools(
        "mock/echo",
        "Add them.",
        toolsets=["remote"],
        provider_kwargs=calls(("add", {"a": 5, "b": 6})),
    )

    assert answer.steps[0].runs[0].result.content == "11"
    assert answer.text == "Based on the tool results: add returned 11."
    await hub.aclose()


def test_the_model_sees_tools_compiled_for_its_provider(shared: Shared) -> None:
    hub, _ = shared

    # mock takes OpenAI's names: the dot is rewritten, and the call finds the MCP tool.
    answer = hub.run_tools(
        "mock/echo",
        "How far?",
        toolsets=["geo"],
        provider_kwargs=calls(("geo_distance-v2", {"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}})),
    )

    assert answer.steps[0].runs[0].result.content == "5.0"
    # The allow list kept two of the server's tools.
    toolset = hub.toolsets()["geo"]
    assert toolset.mcp_name("geo_distance-v2") == "geo.distance-v2"  # type: ignore[attr-defined]
    assert toolset.mcp_name("pid") is None  # type: ignore[attr-defined]


def test_the_bound_on_model_calls(shared: Shared) -> None:
    hub, _ = shared

    answer = hub.run_tools(
        "mock/echo",
        "Add.",
        toolsets=["calc"],
        max_steps=1,
        provider_kwargs=calls(("add", {"a": 1, "b": 2})),
    )

    # One model call; its tool call was left unrun.
    assert answer.metadata["tool_loop"]["stopped"] == "max_steps"
    assert answer.steps == ()
    assert answer.tool_calls[0].name == "add"


def test_tool_errors_reach_the_model_as_error_results(shared: Shared) -> None:
    hub, audit = shared
    audit.events.clear()

    answer = hub.run_tools(
        "mock/echo",
        "Try everything.",
        toolsets=["calc"],
        provider_kwargs=calls(
            ("refuse", {"reason": "not today"}),
            ("explode", {}),
            ("protocol_error", {}),
            ("add", {"a": "two", "b": 2}),
            ("slow", {"seconds": 4}),
            ("picture", {}),
        ),
    )

    results = {run.tool: run.result for run in answer.steps[0].runs}
    # isError from the tool itself: its message, as an error.
    assert results["refuse"].is_error
    assert results["refuse"].content == "Error executing tool refuse: refused: not today"
    # A tool that raised: the server reports it as an error result.
    assert results["explode"].is_error
    assert results["explode"].content == "Error executing tool explode"
    # A JSON-RPC error: the model hears that the server refused, and why.
    assert results["protocol_error"].is_error
    assert results["protocol_error"].content == (
        "tool 'protocol_error' of MCP server 'calc' refused the call: "
        "this tool takes no requests today (MCP error -32602)"
    )
    # Arguments that do not fit the input schema never reach the server.
    assert results["add"].is_error
    assert results["add"].content == (
        "bad arguments for 'add': 'two' is not of type 'integer' (at a)"
    )
    # The per-call timeout.
    assert results["slow"].is_error
    assert results["slow"].content == "tool 'slow' of MCP server 'calc' did not answer within 3 s"
    # Content that is not text is described.
    assert not results["picture"].is_error
    assert results["picture"].content == (
        "a tiny picture\n\n[image image/png, 2.0 kB: not shown, tool results carry text only]"
    )
    failed = {e.metadata["tool"] for e in audit.events if e.kind == "tool.failed"}
    assert failed == {"refuse", "explode", "protocol_error", "add", "slow"}
    # The server is still there for the next loop.
    again = hub.run_tools(
        "mock/echo", "Add.", toolsets=["calc"], provider_kwargs=calls(("add", {"a": 1, "b": 1}))
    )
    assert again.steps[0].runs[0].result.content == "2"


def test_env_secrets_reach_the_server_and_never_a_log(
    shared: Shared, capsys: pytest.CaptureFixture[str]
) -> None:
    hub, audit = shared

    answer = hub.run_tools(
        "mock/echo",
        "digest",
        toolsets=["calc"],
        provider_kwargs=calls(("env_digest", {"name": "SERVER_SECRET"})),
    )

    assert (
        answer.steps[0].runs[0].result.content == hashlib.sha256(SHARED_SECRET.encode()).hexdigest()
    )
    output = capsys.readouterr()
    assert SHARED_SECRET not in output.out + output.err
    assert SHARED_SECRET not in repr(audit.events)


def pid_of(hub: Hub) -> int:
    answer = hub.run_tools(
        "mock/echo", "pid", toolsets=["calc"], provider_kwargs=calls(("pid", {}))
    )
    return int(answer.steps[0].runs[0].result.content)


def test_a_server_that_dies_mid_loop_is_an_error_result_then_restarted(
    make_hub: MakeHub,
) -> None:
    hub = make_hub(stdio_catalog(calc=""))
    old_pid = pid_of(hub)

    crashed = hub.run_tools(
        "mock/echo", "crash", toolsets=["calc"], provider_kwargs=calls(("crash", {}))
    )

    result = crashed.steps[0].runs[0].result
    assert result.is_error
    assert result.content.startswith(
        "tool 'crash' of MCP server 'calc' failed: the server closed the connection"
    )
    assert "it is started again on the next use" in result.content
    assert result.content.endswith("the end of its standard error:\ncrashing on purpose")
    assert crashed.text.startswith("Based on the tool results: crash failed with tool 'crash'")
    assert not alive(old_pid)

    # The next loop starts the server again; closing the hub stops it.
    new_pid = pid_of(hub)
    assert new_pid != old_pid
    assert alive(new_pid)
    hub.close()
    assert not alive(new_pid)


async def test_one_process_for_sync_and_async_use_and_aclose_stops_it(
    make_hub: MakeHub,
) -> None:
    hub = make_hub(stdio_catalog(calc=""))
    # The sync form runs on the hub's loop thread, the async one on this test's loop:
    # both reach the same session, so the same process.
    sync_pid = await asyncio.to_thread(pid_of, hub)
    answer = await hub.arun_tools(
        "mock/echo", "pid", toolsets=["calc"], provider_kwargs=calls(("pid", {}))
    )
    assert int(answer.steps[0].runs[0].result.content) == sync_pid

    await hub.aclose()

    assert not alive(sync_pid)


def test_two_servers_offering_one_tool_name_need_a_prefix(make_hub: MakeHub) -> None:
    catalog = stdio_catalog(one="tools: [add]", two="tools: [add]")
    hub = make_hub(catalog)
    with pytest.raises(
        ConfigError, match="'add' of toolset 'two' has the name of a tool of toolset 'one'"
    ):
        hub.run_tools("mock/echo", "Add.", toolsets=["one", "two"])

    prefixed = make_hub(stdio_catalog(one="tools: [add]", two="tools: [add], prefix: true"))
    answer = prefixed.run_tools(
        "mock/echo",
        "Add.",
        toolsets=["one", "two"],
        provider_kwargs=calls(("add", {"a": 1, "b": 2}), ("two_add", {"a": 3, "b": 4})),
    )
    # The model called "two_add"; the run names the server's own tool.
    runs = answer.steps[0].runs
    assert [(r.call.name, r.toolset, r.tool, r.result.content) for r in runs] == [
        ("add", "one", "add", "3"),
        ("two_add", "two", "add", "7"),
    ]
