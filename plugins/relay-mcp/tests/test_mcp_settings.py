"""plugins.mcp in the catalog: checked with file:line errors, secrets kept as references,
and nothing of the MCP SDK imported to load a catalog."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import relay_mcp
from relay_core import ConfigError
from relay_core.config import parse_catalog
from relay_mcp._settings import parse


def configure(text: str) -> object | None:
    return relay_mcp.relay_configure(parse_catalog(text, path="relay.yaml"))


def test_a_full_catalog_parses() -> None:
    catalog = parse_catalog(
        """
plugins:
  mcp:
    servers:
      files:
        command: [npx, -y, "@modelcontextprotocol/server-filesystem", /tmp]
        env: {API_TOKEN: $env.FILES_TOKEN, MODE: read-only, LEVEL: 3}
        cwd: /tmp
        timeout: 30
        exclude: [write_file]
      search:
        url: https://mcp.example.com/mcp
        headers: {Authorization: "Bearer $env.SEARCH_TOKEN", X-Team: blue}
        tools: [search]
        prefix: true
""",
        path="relay.yaml",
    )
    servers = parse(catalog)

    files, search = servers["files"], servers["search"]
    assert files.transport == "stdio"
    assert files.command == ("npx", "-y", "@modelcontextprotocol/server-filesystem", "/tmp")
    assert str(files.env["API_TOKEN"]) == "$env.FILES_TOKEN"
    assert files.env["MODE"].reference is None
    assert files.env["LEVEL"].text == "3"
    assert files.timeout == 30.0
    assert files.offers("read_file")
    assert not files.offers("write_file")
    assert search.transport == "http"
    assert str(search.headers["Authorization"]) == "Bearer $env.SEARCH_TOKEN"
    assert search.headers["X-Team"].resolve() == "blue"
    assert search.prefix == "search_"
    assert search.offers("search")
    assert not search.offers("fetch")
    assert search.headers["Authorization"].where is not None
    assert search.headers["Authorization"].where.line == 13


def test_references_resolve_when_the_server_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    [settings] = parse(
        parse_catalog(
            'plugins: {mcp: {servers: {s: {url: "http://127.0.0.1:1/mcp", '
            'headers: {Authorization: "Bearer $env.RELAY_MCP_T"}}}}}'
        )
    ).values()
    monkeypatch.setenv("RELAY_MCP_T", "abc")
    assert settings.headers["Authorization"].resolve() == "Bearer abc"


@pytest.mark.parametrize(
    ("settings", "line", "message"),
    [
        ("      s: {}", 4, "needs exactly one of command (stdio) or url (HTTP)"),
        ("      s: {command: [x], url: http://a}", 4, "needs exactly one of command"),
        ("      s: {command: []}", 4, "command must be a list"),
        ("      s: {command: [x], timeout: 0}", 4, "timeout must be a number of seconds above 0"),
        ("      s: {command: [x], tools: add}", 4, "tools must be a list of tool names"),
        ("      s: {command: [x], prefix: 3}", 4, "prefix must be true"),
        ("      s: {command: [x], headers: {A: b}}", 4, "headers is for HTTP servers"),
        ("      s: {url: ftp://x}", 4, "must start with http:// or https://"),
        ("      s: {url: http://x, env: {A: b}}", 4, "env is for stdio servers"),
        ("      s: {command: [x], colour: red}", 4, "unknown setting 'colour'"),
        ("      'bad name': {command: [x]}", 4, "server name 'bad name' must be"),
        (
            "      s:\n        command: [x]\n        env:\n"
            "          KEY: sk-proj-abcdefghijklmnopqrstuvwx",
            7,
            "looks like a secret written inline",
        ),
        (
            "      s:\n        url: http://x\n        headers:\n"
            "          Authorization: Bearer sk-ant-abcdefghijklmnopqrstuvwx",
            7,
            "looks like a secret written inline",
        ),
    ],
)
def test_bad_settings_point_at_their_line(settings: str, line: int, message: str) -> None:
    text = f"plugins:\n  mcp:\n    servers:\n{settings}\n"
    with pytest.raises(ConfigError) as caught:
        configure(text)
    assert caught.value.file == "relay.yaml"
    assert caught.value.line == line
    assert message in str(caught.value)
    assert "sk-" not in str(caught.value)


def test_an_unknown_section_key_and_a_catalog_without_mcp() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'server'"):
        configure("plugins:\n  mcp:\n    server: {}\n")
    assert configure("models: {fast: {target: mock/echo}}\n") is None


def test_relay_validate_reports_bad_settings(tmp_path: Path) -> None:
    from relay_core.cli import cli

    catalog = tmp_path / "relay.yaml"
    catalog.write_text("plugins:\n  mcp:\n    servers:\n      s: {command: [x], timeout: -1}\n")
    result = CliRunner().invoke(cli, ["validate", str(catalog), "--no-credentials"])
    assert result.exit_code == 2
    assert f"{catalog}:4:" in result.output
    assert "timeout must be a number of seconds above 0" in result.output


def test_loading_plugins_and_a_catalog_imports_no_mcp_sdk(tmp_path: Path) -> None:
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(
        "plugins:\n  mcp:\n    servers:\n"
        f"      s: {{command: {json.dumps([sys.executable, '-c', 'pass'])}}}\n"
    )
    script = f"""
import sys
from relay_core import Hub
hub = Hub.from_yaml({str(catalog)!r})
names = sorted(hub.toolsets())
sdk = ("mcp", "mcp_types", "httpx2", "jsonschema", "pydantic")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in sdk)
print(names, heavy)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['s'] []"
