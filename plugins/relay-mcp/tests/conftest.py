"""Fixtures for relay-mcp's tests: MCP servers the tests start themselves (the SDK's
MCPServer over stdio, and over streamable HTTP on a free port of 127.0.0.1), and hubs
that load no entry points (relay-mock and relay-mcp registered in code)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
from mcp_support import SERVER, SHARED_SECRET, Audit, MakeHub, stdio_catalog

import relay_mcp
import relay_mock
from relay_core import Hub
from relay_core.testing import hub_for


@pytest.fixture
def make_hub() -> Iterator[MakeHub]:
    hubs: list[Hub] = []

    def make(catalog_text: str, *plugins: object) -> Hub:
        hub = hub_for(catalog_text, relay_mock, relay_mcp, *plugins)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture(scope="session")
def shared() -> Iterator[tuple[Hub, Audit]]:
    """One hub for the tests that do not stop or kill a server (starting a server
    process takes a second or two), with an audit sink to read. Servers: ``calc`` (every
    tool, 3 s per call, a secret in its environment) and ``geo`` (two tools allowed)."""
    os.environ["RELAY_MCP_SHARED_SECRET"] = SHARED_SECRET
    audit = Audit()
    hub = hub_for(
        stdio_catalog(
            calc="timeout: 3, env: {SERVER_SECRET: $env.RELAY_MCP_SHARED_SECRET}",
            geo="tools: [geo.distance-v2, add]",
        ),
        relay_mock,
        relay_mcp,
        audit,
    )
    yield hub, audit
    hub.close()
    del os.environ["RELAY_MCP_SHARED_SECRET"]


@pytest.fixture(scope="session")
def http_token() -> str:
    return "tok-" + secrets.token_hex(16)


@pytest.fixture(scope="session")
def http_url(http_token: str) -> Iterator[str]:
    """The URL of the fixture server over streamable HTTP, which requires the token."""
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "http"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RELAY_MCP_TEST_TOKEN": http_token},
        text=True,
    )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    try:
        assert port.isdigit(), "the HTTP fixture server did not start"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
