"""The pricing commands a user runs, over both sources: `relay pricing refresh` from
the recorded OpenRouter list, then `relay pricing show`, `relay catalog list` and
`relay models compare` saying which tier each price comes from."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import relay_pricing_snapshot
from relay_core import PluginRegistry
from relay_core import cli as cli_module
from relay_core.cli import cli

CATALOG = """\
models:
  smart:
    target: openai/gpt-4.1
    pricing_profile: team
  claude: anthropic/claude-sonnet-4-5
  contract:
    target: openai/gpt-4o-mini
    pricing: {input: 0.1, output: 0.5}
pricing_profiles:
  team: {discount: 0.1}
"""


@pytest.fixture
def run(providers: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., str]:
    registry = PluginRegistry(autoload=False)
    registry.register(providers, name="first-party")
    registry.register(relay_pricing_snapshot, name="pricing-snapshot")
    monkeypatch.setattr(cli_module, "_shared_registry", registry)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relay.yaml").write_text(CATALOG)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_offline_prices_come_from_the_snapshot(run: Callable[..., str]) -> None:
    shown = json.loads(run("pricing", "show", "claude", "--json"))
    assert (shown["tier"], shown["priced_by"]) == ("snapshot", "Relay price snapshot 2026-11")
    assert shown["list_price"]["as_of"] == "2026-11-23"
    assert shown["batch_price"] == {"input": 1.5, "output": 7.5, "discount": 0.5}


def test_refresh_then_live_prices_win_except_the_catalogs(
    run: Callable[..., str], cassette: Callable[[str], AbstractContextManager[Any]]
) -> None:
    with cassette("openrouter_models"):
        said = run("pricing", "refresh")
    assert said == (
        "OpenRouter models API: fetched 12 models from https://openrouter.ai/api/v1/models\n"
    )
    rows = {
        r["model"]: r
        for r in json.loads(run("models", "compare", "smart", "claude", "contract", "--json"))
    }
    assert rows["smart"]["price_tier"] == "live_api"
    assert rows["smart"]["input"] == pytest.approx(2.0 * 0.9)  # the team profile's 10% off
    assert rows["claude"]["price_tier"] == "live_api"
    assert rows["contract"]["price_tier"] == "user_override"
    listed = json.loads(run("catalog", "list", "--provider", "openrouter", "--json"))
    by_model = {r["model"]: r for r in listed}
    assert by_model["openrouter/meta-llama/llama-3.3-70b-instruct:free"]["input"] == 0.0
    assert by_model["openrouter/openrouter/auto"]["input"] is None
    assert {r["tier"] for r in listed} == {"live_api"}


def test_a_failed_refresh_keeps_the_snapshot_answering(
    run: Callable[..., str], answers: Any
) -> None:
    answers.status = 503
    failed = run("pricing", "refresh", code=1)
    assert "OpenRouter models API: failed:" in failed
    assert json.loads(run("pricing", "show", "smart", "--json"))["tier"] == "snapshot"
