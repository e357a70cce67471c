"""Every installed plugin with settings declares its ``plugins:`` section: a misspelt
section or an unknown field in any of them is caught by ``relay validate`` and by
``Hub.from_yaml``, with file:line:column, before a call can run without it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from relay_core import ConfigError, Hub, PluginRegistry
from relay_core import cli as cli_module
from relay_core.cli import cli
from relay_core.sections import KNOWN_SECTIONS

# A field each plugin does not take, and the one it was probably meant to be.
TYPOS = {
    "audit": ("sink", "sinks"),
    "cache": ("backnd", "backend"),
    "dashboard": ("prot", "port"),
    "guardrails": ("max_input_token", "max_input_tokens"),
    "mcp": ("server", "servers"),
    "otel": ("include_contents", "include_content"),
    "redact": ("entitys", "entities"),
    "serve": ("max_queu", "max_queue"),
}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.delenv("RELAY_PLUGINS", raising=False)
    monkeypatch.delenv("RELAY_BLOCK_PLUGINS", raising=False)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    monkeypatch.setattr(cli_module, "_shared_registry", PluginRegistry())
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_every_plugin_with_settings_declares_its_section() -> None:
    assert set(TYPOS) == set(KNOWN_SECTIONS)
    declared = PluginRegistry(allow=list(TYPOS)).settings_sections()
    assert {name: declared[name].fields is not None for name in TYPOS} == dict.fromkeys(
        TYPOS, True
    )


@pytest.mark.parametrize("plugin", sorted(TYPOS))
def test_validate_catches_an_unknown_field_in_every_section(
    runner: CliRunner, tmp_path: Path, plugin: str
) -> None:
    typo, meant = TYPOS[plugin]
    (tmp_path / "c.yaml").write_text(f"plugins:\n  {plugin}:\n    {typo}: 1\n")
    result = runner.invoke(cli, ["validate", "--no-credentials", "c.yaml"])
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (
        f"c.yaml:3:5: error: plugins.{plugin}: unknown field {typo!r}; did you mean {meant!r}?"
    )


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ("dashboard:\n    port: 99999", "plugins.dashboard.port must be a TCP port"),
        ("serve:\n    max_queue: -1", "plugins.serve.max_queue must be a whole number >= 0"),
        ("cache:\n    backend: memcached", "backend"),
        ("cache:\n    backend: redis", "plugins.cache.url must be the URL of a Redis server"),
    ],
)
def test_validate_checks_the_settings_only_a_command_reads(
    runner: CliRunner, tmp_path: Path, section: str, says: str
) -> None:
    (tmp_path / "c.yaml").write_text(f"plugins:\n  {section}\n")
    result = runner.invoke(cli, ["validate", "--no-credentials", "c.yaml"])
    assert result.exit_code == 2
    assert result.output.startswith("c.yaml:")
    assert says in result.output


def test_a_misspelt_section_stops_hub_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(
        "models:\n  fast: mock/echo\nplugins:\n  guardrail:\n    max_input_tokens: 10\n"
    )
    with pytest.raises(ConfigError) as caught:
        Hub.from_yaml(path, plugins=PluginRegistry(allow=["mock", "guardrails"]))
    assert (caught.value.line, caught.value.column) == (4, 3)
    assert "did you mean 'guardrails'?" in caught.value.reason


def test_the_declared_fields_are_the_ones_each_parser_takes() -> None:
    """A plugin lists its fields twice (declared light, checked in its parser): equal."""
    from relay_audit._settings import _KEYS as audit
    from relay_cache._settings import KNOWN as cache
    from relay_dashboard._settings import _CATALOG_KEYS as dashboard
    from relay_guardrails._settings import KNOWN as guardrails
    from relay_redact._settings import _KEYS as redact

    parsed = {
        "audit": set(audit),
        "cache": {*cache, "clock"},
        "dashboard": {*dashboard, "token"},
        "guardrails": set(guardrails),
        "redact": set(redact),
    }
    declared = PluginRegistry(allow=list(parsed)).settings_sections()
    assert {name: set(declared[name].fields or ()) for name in parsed} == parsed
