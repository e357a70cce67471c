"""Servers that cannot start: a typed error naming the server, saying why, with the end
of the server's standard error, and no process left behind."""

from __future__ import annotations

import json
import sys

import pytest
from mcp_support import MakeHub

from relay_mcp import McpServerError


def catalog(command: list[str], extra: str = "") -> str:
    return (
        "plugins:\n  mcp:\n    servers:\n"
        f"      broken: {{command: {json.dumps(command)}{', ' + extra if extra else ''}}}\n"
    )


def test_a_command_that_is_not_there(make_hub: MakeHub) -> None:
    hub = make_hub(catalog(["/nonexistent/mcp-server", "--stdio"]))
    with pytest.raises(McpServerError) as caught:
        hub.run_tools("mock/echo", "Go", toolsets=["broken"])
    assert caught.value.server == "broken"
    assert str(caught.value) == (
        "MCP server 'broken' could not be started: command '/nonexistent/mcp-server' was not found"
    )


def test_a_server_that_exits_at_once_shows_its_standard_error(make_hub: MakeHub) -> None:
    script = "import sys; sys.stderr.write('missing setting: ROOT\\n'); sys.exit(2)"
    hub = make_hub(catalog([sys.executable, "-c", script]))
    with pytest.raises(McpServerError) as caught:
        hub.run_tools("mock/echo", "Go", toolsets=["broken"])
    assert str(caught.value).startswith("MCP server 'broken' could not be started")
    assert str(caught.value).endswith("the end of its standard error:\nmissing setting: ROOT")


def test_a_server_that_never_answers_the_handshake(make_hub: MakeHub) -> None:
    script = (
        "import sys, time; sys.stderr.write('thinking...\\n'); sys.stderr.flush(); time.sleep(60)"
    )
    hub = make_hub(catalog([sys.executable, "-c", script], "connect_timeout: 1"))
    with pytest.raises(McpServerError) as caught:
        hub.run_tools("mock/echo", "Go", toolsets=["broken"])
    assert str(caught.value) == (
        "MCP server 'broken' did not complete the MCP handshake within 1 s; "
        "the end of its standard error:\nthinking..."
    )
