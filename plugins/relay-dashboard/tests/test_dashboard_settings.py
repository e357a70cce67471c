"""Settings from the catalog and the command line, the refusals before anything listens,
the plugin's registration, and tokens kept out of logs."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner
from dashboard_workspace import LiveServer, make_hub

import relay_dashboard
from relay_core import Catalog, ConfigError, parse_catalog
from relay_dashboard import Settings, create_app
from relay_dashboard._server import HideTokens, resolve_settings

TOKEN = "dash-0a1b2c3d4e5f6789"


def catalog(text: str) -> Catalog:
    return parse_catalog(text, path="relay.yaml")


def test_the_catalog_gives_defaults_and_the_caller_overrides_them() -> None:
    settings = Settings.from_catalog(
        catalog("plugins:\n  dashboard:\n    port: 9000\n    refresh: 10\n    read_only: true\n"),
        port=9100,
        read_only=None,
    )
    assert (settings.port, settings.refresh, settings.read_only) == (9100, 10.0, True)


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        ("    colour: blue\n", 4, "unknown setting 'colour'"),
        ("    port: eighty\n", 4, "plugins.dashboard.port must be a TCP port"),
        ("    refresh: -1\n", 4, "refresh must be seconds >= 0"),
        ("    page_size: 1000\n", 4, "page_size must be a whole number from 1 to 500"),
        ("    token: abc\n", 4, "keep the token out of the catalog"),
    ],
)
def test_a_bad_catalog_setting_points_at_its_line(section: str, line: int, message: str) -> None:
    text = "models: {}\nplugins:\n  dashboard:\n" + section
    with pytest.raises(ConfigError) as caught:
        Settings.from_catalog(catalog(text))
    assert message in str(caught.value)
    assert caught.value.line == line


def test_listening_beyond_localhost_needs_a_token_even_read_only() -> None:
    # Read-only still shows every prompt and answer: beyond localhost, the token guards them.
    for read_only in (False, True):
        with pytest.raises(ConfigError) as caught:
            Settings(host="0.0.0.0", read_only=read_only).check()
        assert "--token" in str(caught.value)
        assert "every prompt and answer" in str(caught.value)
    assert Settings(host="0.0.0.0", token=TOKEN).check().token is not None
    assert Settings(host="0.0.0.0", token=TOKEN, read_only=True).check().guards_reads
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.5"):
        assert Settings(host=host).check().token is None
        assert not Settings(host=host).guards_reads


def test_the_token_never_shows_in_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_DASHBOARD_TOKEN", TOKEN)
    settings = resolve_settings(host="0.0.0.0")
    assert settings.token is not None
    assert settings.token.reveal() == TOKEN
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)


def test_a_directory_without_a_workspace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(tmp_path / "nothing-here")
    assert "not a Relay workspace" in str(caught.value)
    assert not (tmp_path / "nothing-here").exists()  # a reader creates nothing


def test_the_command_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    group = click.Group("relay")
    relay_dashboard.relay_register_commands(cli=group)
    runner = CliRunner()
    missing = runner.invoke(group, ["dashboard", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert "not a Relay workspace" in missing.output
    open_to_all = runner.invoke(group, ["dashboard", str(tmp_path), "--host", "0.0.0.0"])
    assert open_to_all.exit_code == 2
    assert "give a token" in open_to_all.output


def test_the_command_takes_the_root_config(tmp_path: Path) -> None:
    config = tmp_path / "relay.yaml"
    config.write_text("plugins:\n  dashboard:\n    host: 0.0.0.0\n")

    @click.group()
    @click.option("--config")
    def root(config: str | None) -> None:
        pass

    relay_dashboard.relay_register_commands(cli=root)
    # The catalog's host, beyond localhost, with no token: refused, so it was read.
    result = CliRunner().invoke(root, ["--config", str(config), "dashboard", str(tmp_path)])
    assert result.exit_code == 2
    assert "0.0.0.0" in result.output


def test_the_installed_plugin_adds_the_relay_dashboard_command() -> None:
    from relay_core import PluginRegistry

    registry = PluginRegistry()
    registry.load()
    group = click.Group("relay")
    registry.hook.relay_register_commands(cli=group)
    assert "dashboard" in group.commands
    result = CliRunner().invoke(group, ["dashboard", "--help"])
    assert "Serve a web dashboard over the batch jobs in WORKSPACE" in result.output


def test_importing_the_plugin_loads_no_web_stack() -> None:
    code = (
        "import sys, relay_dashboard; "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'click') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_public_api_is_exactly_this() -> None:
    assert sorted(relay_dashboard.__all__) == ["Settings", "create_app", "run_dashboard"]
    for name in relay_dashboard.__all__:
        assert getattr(relay_dashboard, name) is not None


def test_a_token_in_a_page_url_is_blanked_in_the_access_log(tmp_path: Path) -> None:
    from dashboard_workspace import submit_one

    submit_one(tmp_path)
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    hub = make_hub()
    live = LiveServer(tmp_path, Settings(token=TOKEN), hub, log_level="info")
    # After uvicorn configured its loggers, which drops the handlers it did not make.
    handler = Collect()
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    try:
        with live as server:
            response = httpx.get(f"{server.url}/?token={TOKEN}&status=completed")
            assert response.status_code == 200
    finally:
        access.removeHandler(handler)
        hub.close()
    assert any("token=***" in line for line in seen), seen
    assert not any(TOKEN in line for line in seen)
    assert any(isinstance(f, HideTokens) for f in access.filters)
