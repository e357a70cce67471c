"""Helpers for relay-mcp's tests (a module of its own: every plugin's tests folder has a
conftest.py, and only one of them can be imported as ``conftest``)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from relay_core import AuditEvent, Hub, hookimpl

SERVER = Path(__file__).with_name("mcp_fixture_server.py")
STDIO_COMMAND = json.dumps([sys.executable, str(SERVER), "stdio"])
SHARED_SECRET = "sv-" + secrets.token_hex(16)

MakeHub = Callable[..., Hub]


def stdio_catalog(**servers: str) -> str:
    """A catalog whose MCP servers (name → extra YAML settings) run the fixture server."""
    lines = ["plugins:", "  mcp:", "    servers:"]
    for name, extra in servers.items():
        lines.append(f"      {name}: {{command: {STDIO_COMMAND}{', ' + extra if extra else ''}}}")
    return "\n".join(lines) + "\n"


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Audit:
    """An audit sink keeping every event."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    @hookimpl
    def relay_audit(self, event: AuditEvent) -> None:
        self.events.append(event)
