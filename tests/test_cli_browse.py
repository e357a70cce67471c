"""relay models compare / recommend, relay catalog list, relay pricing show / refresh,
over an in-code provider and in-code pricing sources."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relay_core import ModelInfo, ModelPrice, PluginRegistry, ProviderUnavailable, hookimpl
from relay_core import cli as cli_module
from relay_core.cli import cli

CATALOG = """\
providers:
  scripted: {max_retries: 0}
models:
  fast:
    target: scripted/small
    tags: [code]
  big:
    target: scripted/big
    pricing_profile: team
  plain: chatonly/x
  far: elsewhere/model-x
groups:
  both: {strategy: fallback, members: [fast, plain]}
pricing_profiles:
  team: {discount: 0.25}
"""

SMALL = ModelPrice(
    input=0.1, output=0.4, cached_input=0.025, batch_discount=0.5, as_of="2026-11-01"
)
BIG = ModelPrice(
    input=3.0, output=15.0, batch_discount=0.5, source="https://e.com/p", as_of="2026-11-01"
)
ELSEWHERE = ModelPrice(input=1.0, output=2.0, as_of="2026-11-20")


class Listing:
    name = "test snapshot"
    tier = "snapshot"

    def __init__(self, infos: list[ModelInfo]) -> None:
        self.infos = infos

    def price(self, provider: str, model: str) -> ModelPrice | None:
        for info in self.infos:
            if (info.provider, info.model) == (provider, model):
                return info.price
        return None

    def models(self, provider: str | None = None) -> Iterable[ModelInfo]:
        return [i for i in self.infos if provider in (None, i.provider)]


class Live(Listing):
    name = "test live"
    tier = "live_api"

    def __init__(self, infos: list[ModelInfo], fail: bool = False) -> None:
        super().__init__([])
        self.fetched = infos
        self.fail = fail

    def refresh(self) -> str:
        if self.fail:
            raise ProviderUnavailable("cannot reach the price list", provider="live")
        self.infos = self.fetched
        return f"fetched {len(self.infos)} models"


SNAPSHOT_ROWS = [
    ModelInfo(
        provider="scripted",
        model="small",
        price=SMALL,
        context_window=128_000,
        capabilities={"chat", "tools", "structured_output"},
    ),
    ModelInfo(
        provider="scripted",
        model="big",
        price=BIG,
        context_window=200_000,
        capabilities={"chat", "tools", "structured_output", "vision"},
    ),
    ModelInfo(
        provider="elsewhere",
        model="model-x",
        price=ELSEWHERE,
        context_window=32_000,
        capabilities={"chat", "vision"},
    ),
]


@pytest.fixture
def sources() -> dict[str, Any]:
    return {
        "snapshot": Listing(SNAPSHOT_ROWS),
        "live": Live(
            [
                ModelInfo(
                    provider="scripted", model="small", price=ModelPrice(input=0.05, output=0.2)
                )
            ]
        ),
    }


@pytest.fixture
def runner(
    scripted: Any, sources: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> CliRunner:
    class Prices:
        @hookimpl
        def relay_register_pricing_sources(self, register: Any) -> None:
            for source in sources.values():
                register(source)

    registry = PluginRegistry(autoload=False)
    registry.register(scripted, name="scripted")
    registry.register(Prices(), name="prices")
    monkeypatch.setattr(cli_module, "_shared_registry", registry)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relay.yaml").write_text(CATALOG)
    return CliRunner()


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_compare_shows_prices_as_billed_with_provenance(runner: CliRunner) -> None:
    rows = json.loads(run(runner, "models", "compare", "fast", "big", "far", "--json"))
    fast, big, far = rows
    assert (fast["input"], fast["cached_input"], fast["price_tier"]) == (0.1, 0.025, "snapshot")
    assert (fast["batch_input"], fast["batch_output"]) == (0.05, 0.2)
    assert fast["context_window"] == 128_000
    assert fast["priced_by"] == "test snapshot"
    # The team profile's 25% off is in what big is billed at, and named.
    assert (big["input"], big["output"], big["profile"]) == (2.25, 11.25, "team")
    # No plugin serves 'elsewhere': what the sources know is still shown.
    assert (far["input"], far["capabilities"]) == (1.0, ["chat", "vision"])
    table = run(runner, "models", "compare", "fast", "big")
    assert table.splitlines()[0].split() == [
        "model",
        "context",
        "capabilities",
        "input",
        "output",
        "cached",
        "batch",
        "in/out",
        "price",
    ]
    assert "0.10   0.40    0.025   0.05/0.20" in table
    assert "snapshot, 2026-11-01, profile team" in table


def test_compare_names_an_unknown_alias(runner: CliRunner) -> None:
    output = run(runner, "models", "compare", "fats", code=2)
    assert "unknown model 'fats'" in output
    assert "fast" in output


def test_recommend_filters_by_needs_and_ranks_by_budget(runner: CliRunner) -> None:
    cheap = json.loads(
        run(runner, "models", "recommend", "--needs", "tools", "--budget", "cheap", "--json")
    )
    assert [r["model"] for r in cheap] == ["fast", "big"]
    best = json.loads(
        run(runner, "models", "recommend", "--needs", "vision", "--budget", "best", "--json")
    )
    # The scripted provider cannot take images, whatever the price list says of big.
    assert [r["model"] for r in best] == ["far"]
    most = json.loads(
        run(runner, "models", "recommend", "--needs", "tools", "--budget", "best", "--json")
    )
    assert [r["model"] for r in most] == ["big", "fast"]
    coding = run(runner, "models", "recommend", "--task", "code", "--catalog-only")
    assert coding.splitlines()[1].startswith("fast")
    assert "tagged code" in coding


def test_recommend_refuses_an_unknown_capability(runner: CliRunner) -> None:
    output = run(runner, "models", "recommend", "--needs", "telepathy", code=2)
    assert "unknown capability telepathy" in output


def test_catalog_list_browses_what_the_sources_know(runner: CliRunner) -> None:
    rows = json.loads(run(runner, "catalog", "list", "--json"))
    assert [r["model"] for r in rows] == ["elsewhere/model-x", "scripted/big", "scripted/small"]
    only = run(runner, "catalog", "list", "--provider", "elsewhere")
    assert "elsewhere/model-x" in only
    assert "scripted" not in only
    assert "no models of provider 'nobody' known" in run(runner, "catalog", "list", "-p", "nobody")


def test_refresh_makes_live_prices_win(runner: CliRunner, sources: dict[str, Any]) -> None:
    assert json.loads(run(runner, "pricing", "show", "fast", "--json"))["tier"] == "snapshot"
    assert run(runner, "pricing", "refresh") == "test live: fetched 1 models\n"
    shown = json.loads(run(runner, "pricing", "show", "fast", "--json"))
    assert (shown["tier"], shown["priced_by"]) == ("live_api", "test live")
    rows = json.loads(run(runner, "catalog", "list", "-p", "scripted", "--json"))
    assert {r["model"]: r["tier"] for r in rows} == {
        "scripted/big": "snapshot",
        "scripted/small": "live_api",
    }


def test_a_failed_refresh_says_so_and_exits_1(runner: CliRunner, sources: dict[str, Any]) -> None:
    sources["live"].fail = True
    result = runner.invoke(cli, ["pricing", "refresh"])
    assert result.exit_code == 1
    assert "test live: failed: " in result.output
    assert "cannot reach the price list" in result.output


def test_pricing_show_explains_the_price(runner: CliRunner) -> None:
    text = run(runner, "pricing", "show", "big")
    assert text.splitlines() == [
        "big -> scripted/big",
        "price from: snapshot (test snapshot)",
        "  read at: https://e.com/p on 2026-11-01",
        "list price: input 3.00, output 15.00 USD per million tokens",
        'profile team: {"discount": 0.25}',
        "billed price: input 2.25, output 11.25 USD per million tokens",
        "batch price: input 1.125, output 5.625 per million (50% off)",
    ]


def test_pricing_show_never_guesses(runner: CliRunner) -> None:
    text = run(runner, "pricing", "show", "plain")
    assert "price: unknown (costs are reported as None, never guessed)" in text
    assert json.loads(run(runner, "pricing", "show", "plain", "--json"))["list_price"] is None
