"""``relay mcp``: added to the ``relay`` command by the plugin."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from relay_core.plugin import ConfigError, RelayError, catalog_path

__all__ = ["mcp"]


@click.group()
def mcp() -> None:
    """MCP servers declared in the catalog (plugins.mcp.servers)."""


@mcp.command()
@click.argument("server", required=False)
@click.option(
    "-c", "--config", type=click.Path(dir_okay=False), help="Catalog file (as relay --config)."
)
@click.option(
    "--provider",
    default=None,
    help="Show names as compiled for this provider plugin (openai, gemini...); "
    "default: for any provider.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per tool.")
def tools(server: str | None, config: str | None, provider: str | None, as_json: bool) -> None:
    """List the tools of each configured MCP server (or of SERVER): the name the model
    sees, the server's own name when it differs, and the description. Starts stdio
    servers, and stops them before it exits."""
    try:
        import asyncio  # here, not at import: `relay --help` must stay light

        rows = asyncio.run(_rows(catalog_path(config), server, provider))
    except RelayError as error:
        # ConfigErrors render as file:line:column: like the rest of relay; 2 = bad usage.
        click.echo(f"error: {error}", err=True)
        sys.exit(2 if isinstance(error, ConfigError) else 1)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            renamed = f" (MCP: {row['mcp_name']})" if row["mcp_name"] != row["name"] else ""
            description = row["description"].split("\n")[0]
            click.echo(f"{row['server']}  {row['name']}{renamed}  {description}".rstrip())


async def _rows(path: str | None, server: str | None, provider: str | None) -> list[dict[str, Any]]:
    from relay_core import load_catalog
    from relay_core.plugin import Catalog
    from relay_mcp._settings import parse
    from relay_mcp._toolset import McpServers

    catalog = load_catalog(path) if path else Catalog()
    settings = parse(catalog)
    if not settings:
        raise ConfigError("the catalog declares no MCP server (plugins: {mcp: {servers: ...}})")
    if server is not None:
        if server not in settings:
            raise ConfigError(
                f"no MCP server named {server!r}; the catalog has: {', '.join(sorted(settings))}"
            )
        settings = {server: settings[server]}
    servers = McpServers(settings)
    rows: list[dict[str, Any]] = []
    try:
        for toolset in servers.toolsets:
            listed = {tool.name: tool for tool in await toolset.listing()}
            for tool in await toolset.list_tools(provider):
                mcp_name = toolset.mcp_name(tool.name) or tool.name
                annotations = listed[mcp_name].annotations
                rows.append(
                    {
                        "server": toolset.name,
                        "name": tool.name,
                        "mcp_name": mcp_name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                        "annotations": (
                            annotations.model_dump(by_alias=True, exclude_none=True)
                            if annotations is not None
                            else {}
                        ),
                    }
                )
    finally:
        await servers.aclose()
    return rows
