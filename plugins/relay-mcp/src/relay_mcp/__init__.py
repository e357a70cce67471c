"""relay-mcp: the tools of MCP servers (stdio and streamable HTTP), declared in the
catalog's ``plugins.mcp.servers``, offered to any provider's model through Relay's tool
loop (``hub.run_tools(..., toolsets=["files"])``).

This module is imported whenever plugins load, so it only registers: the MCP SDK, the
settings checks and the sessions load when a catalog has ``plugins.mcp`` or a command
needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relay_core.plugin import hookimpl, lazy_exports

if TYPE_CHECKING:
    from collections.abc import Callable

    from relay_core.plugin import Catalog
    from relay_mcp._compile import RULES, Compiled, NameRule, Rules, compile_tools, rules_for
    from relay_mcp._content import output_of
    from relay_mcp._session import McpServerError
    from relay_mcp._settings import ServerSettings
    from relay_mcp._toolset import McpServers, McpToolset

__all__ = [
    "RULES",
    "Compiled",
    "McpServerError",
    "McpServers",
    "McpToolset",
    "NameRule",
    "Rules",
    "ServerSettings",
    "compile_tools",
    "output_of",
    "rules_for",
]

__version__ = "0.1.0"

_MODULE_OF = {
    "RULES": "relay_mcp._compile",
    "Compiled": "relay_mcp._compile",
    "McpServerError": "relay_mcp._session",
    "McpServers": "relay_mcp._toolset",
    "McpToolset": "relay_mcp._toolset",
    "NameRule": "relay_mcp._compile",
    "Rules": "relay_mcp._compile",
    "ServerSettings": "relay_mcp._settings",
    "compile_tools": "relay_mcp._compile",
    "output_of": "relay_mcp._content",
    "rules_for": "relay_mcp._compile",
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULE_OF)


@hookimpl
def relay_configure(catalog: Catalog) -> object | None:
    if "mcp" not in catalog.plugins:
        return None
    from relay_mcp._settings import parse
    from relay_mcp._toolset import McpServers

    servers = parse(catalog)
    return McpServers(servers) if servers else None


@hookimpl
def relay_register_commands(cli: Any) -> None:
    from relay_mcp._cli import mcp

    cli.add_command(mcp)


@hookimpl
def relay_register_settings(register: Callable[..., None]) -> None:
    register("mcp", fields=("servers",))
