"""Streamable HTTP servers: headers carry credential references, resolved when the
session starts; a refusal or an unreachable server is a typed error without the secret."""

from __future__ import annotations

import logging

import pytest
from mcp_support import MakeHub

from relay_core import CredentialError
from relay_mcp import McpServerError


def catalog(url: str, header: str) -> str:
    return f"""
plugins:
  mcp:
    servers:
      remote:
        url: {url}
        headers: {{Authorization: "{header}"}}
        connect_timeout: 10
"""


def test_a_wrong_token_is_an_error_naming_the_server_not_the_token(
    make_hub: MakeHub,
    http_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "tok-" + "0123456789abcdef" * 2
    monkeypatch.setenv("RELAY_MCP_TOKEN", wrong)
    hub = make_hub(catalog(http_url, "Bearer $env.RELAY_MCP_TOKEN"))

    with pytest.raises(McpServerError) as caught:
        hub.run_tools("mock/echo", "Add.", toolsets=["remote"])

    assert caught.value.server == "remote"
    assert str(caught.value).startswith("MCP server 'remote' could not be started")
    assert wrong not in str(caught.value)
    output = capsys.readouterr()
    assert wrong not in output.out + output.err + caplog.text


def test_an_unset_credential_is_a_credential_error_with_its_catalog_line(
    make_hub: MakeHub, http_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELAY_MCP_UNSET", raising=False)
    hub = make_hub(catalog(http_url, "Bearer $env.RELAY_MCP_UNSET"))

    with pytest.raises(CredentialError, match=r"\$env\.RELAY_MCP_UNSET") as caught:
        hub.run_tools("mock/echo", "Add.", toolsets=["remote"])
    assert caught.value.line == 7


def test_a_server_nobody_answers_at_is_an_error(make_hub: MakeHub) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hub = make_hub(catalog(f"http://127.0.0.1:{port}/mcp", "Bearer $env.HOME"))

    with pytest.raises(McpServerError, match="could not be started: ConnectError"):
        hub.run_tools("mock/echo", "Add.", toolsets=["remote"])
