"""``relay mcp tools``: each configured server's tools, as compiled for a provider."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from mcp_support import stdio_catalog

import relay_mcp
from relay_core.cli import cli
from relay_mcp._cli import mcp


def test_tools_are_listed_as_a_provider_sees_them(tmp_path: Path) -> None:
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(stdio_catalog(calc="tools: [add, geo.distance-v2]"))

    relay_mcp.relay_register_commands(cli=cli)  # what `relay` does with every plugin
    result = CliRunner().invoke(cli, ["--config", str(catalog), "mcp", "tools", "--json"])
    text = CliRunner().invoke(
        mcp, ["tools", "calc", "--config", str(catalog), "--provider", "gemini"]
    )

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(row["server"], row["name"], row["mcp_name"]) for row in rows] == [
        ("calc", "add", "add"),
        ("calc", "geo_distance_v2", "geo.distance-v2"),  # for any provider: the strictest
    ]
    assert rows[0]["description"] == "Add two integers."
    assert rows[0]["annotations"] == {"readOnlyHint": True}
    assert "$defs" not in rows[1]["parameters"]
    assert text.exit_code == 0, text.output
    assert text.output.splitlines() == [
        "calc  add  Add two integers.",
        "calc  geo.distance-v2  Distance between two points.",
    ]


def test_an_unknown_server_and_a_catalog_without_servers(tmp_path: Path) -> None:
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(stdio_catalog(calc=""))
    unknown = CliRunner().invoke(mcp, ["tools", "mail", "--config", str(catalog)])
    assert unknown.exit_code == 2
    assert "no MCP server named 'mail'; the catalog has: calc" in unknown.output

    empty = tmp_path / "empty.yaml"
    empty.write_text("models: {fast: {target: mock/echo}}\n")
    none = CliRunner().invoke(mcp, ["tools", "--config", str(empty)])
    assert none.exit_code == 2
    assert "declares no MCP server" in none.output
