"""Through a real hub: the provenance a user sees on ``Response.cost``, offline, after a
refresh, with the catalog's own price, with a stale or corrupt cache; and the plugin's
discovery through its entry point, staying light."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import relay_pricing_snapshot
from relay_core import Hub, Usage, compute_cost
from relay_core.testing import hub_for
from relay_pricing_snapshot._openrouter import OpenRouterSource
from relay_pricing_snapshot._snapshot import SNAPSHOT_NAME

CATALOG = """
models:
  smart: {target: openai/gpt-4.1}
  claude: {target: anthropic/claude-sonnet-4-5-20250929}
  fixed:
    target: openai/gpt-4.1
    pricing: {input: 1.0, output: 3.0}
  mystery: {target: openai/gpt-99}
"""


@pytest.fixture
def hub(providers: Any) -> Any:
    with hub_for(CATALOG, relay_pricing_snapshot, providers) as made:
        yield made


def _expected(usage: Usage, input_price: float, output_price: float) -> float:
    return (usage.input_tokens * input_price + usage.output_tokens * output_price) / 1e6


def _refresh(cassette: Any) -> None:
    with cassette("openrouter_models"):
        OpenRouterSource().refresh()


def test_offline_the_snapshot_prices_the_answer(hub: Hub) -> None:
    answer = hub.chat("smart", "one two three four")
    cost = answer.cost
    assert cost.source == "snapshot"
    assert cost.priced_by == SNAPSHOT_NAME
    assert cost.as_of == "2026-11-23"
    assert cost.amount == pytest.approx(_expected(answer.usage, 2.0, 8.0))


def test_a_dated_id_is_priced_through_its_alias(hub: Hub) -> None:
    answer = hub.chat("claude", "hello")
    assert answer.cost.source == "snapshot"
    assert answer.cost.amount == pytest.approx(_expected(answer.usage, 3.0, 15.0))


def test_after_a_refresh_the_live_price_wins(hub: Hub, cassette: Any) -> None:
    _refresh(cassette)
    answer = hub.chat("smart", "one two three four")
    assert answer.cost.source == "live_api"
    assert answer.cost.priced_by == "OpenRouter models API"
    assert answer.cost.amount == pytest.approx(_expected(answer.usage, 2.0, 8.0))
    openrouter = hub.chat("openrouter/anthropic/claude-sonnet-4.5", "hi")
    assert openrouter.cost.source == "live_api"
    assert openrouter.cost.amount == pytest.approx(_expected(openrouter.usage, 3.0, 15.0))


def test_the_catalogs_price_wins_over_every_source(hub: Hub, cassette: Any) -> None:
    _refresh(cassette)
    answer = hub.chat("fixed", "one two three four")
    assert answer.cost.source == "user_override"
    assert answer.cost.amount == pytest.approx(_expected(answer.usage, 1.0, 3.0))


def test_an_unknown_model_costs_unknown_not_zero(hub: Hub, cassette: Any) -> None:
    _refresh(cassette)
    answer = hub.chat("mystery", "hello")
    assert answer.cost.source == "unknown"
    assert answer.cost.amount is None
    free = hub.chat("openrouter/meta-llama/llama-3.3-70b-instruct:free", "hello")
    assert (free.cost.source, free.cost.amount) == ("live_api", 0.0)
    auto = hub.chat("openrouter/openrouter/auto", "hello")
    assert (auto.cost.source, auto.cost.amount) == ("unknown", None)


def test_offline_a_stale_cache_falls_back_to_the_snapshot(
    hub: Hub, cassette: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refresh(cassette)
    assert hub.get("smart").quote().tier == "live_api"
    monkeypatch.setenv("RELAY_PRICING_TTL", "0.000001")
    quoted = hub.get("smart").quote()
    assert (quoted.tier, quoted.priced_by) == ("snapshot", SNAPSHOT_NAME)
    assert hub.chat("smart", "hi").cost.source == "snapshot"


def test_a_corrupt_cache_falls_back_to_the_snapshot_with_a_warning(
    hub: Hub, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir.mkdir()
    (cache_dir / "openrouter-models.json").write_text('{"format": 1, "fetched_at": ')
    with caplog.at_level(logging.WARNING, logger="relay.pricing"):
        answer = hub.chat("smart", "hello")
    assert answer.cost.source == "snapshot"
    assert "unreadable" in caplog.text


def test_batch_prices_keep_the_providers_discount(hub: Hub, cassette: Any) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_input_tokens=400_000)
    offline = hub.get("smart").quote()
    _refresh(cassette)
    live = hub.get("smart").quote()
    for quoted in (offline, live):
        cost = compute_cost(usage, quoted.price, quoted.tier, batch=True)
        # 600k fresh at 2.0, 400k cached at 0.5, 1M out at 8.0, all at half price.
        assert cost.amount == pytest.approx((1.2 + 0.2 + 8.0) * 0.5)
        assert cost.batch_discount_applied


# -- discovery ----------------------------------------------------------------------------


def _python(code: str, **env: str) -> Any:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_discovered_through_its_entry_point_and_light_until_refresh(tmp_path: Path) -> None:
    out = _python(
        """
        import json, sys
        from relay_core import PluginRegistry

        registry = PluginRegistry()
        sources = {s.name: s.tier for s in registry.pricing_sources()}
        info = {i.name: i.distribution for i in registry.plugins()}
        heavy = sorted(m for m in sys.modules if m.split(".")[0] == "httpx")
        print(json.dumps({"sources": sources, "info": info.get("pricing-snapshot"),
                          "httpx": heavy}))
        """,
        RELAY_PRICING_CACHE_DIR=str(tmp_path),
    )
    assert out["sources"]["Relay price snapshot 2026-11"] == "snapshot"
    assert out["sources"]["OpenRouter models API"] == "live_api"
    assert out["info"] == "relay-pricing-snapshot"
    assert out["httpx"] == []
    assert list(tmp_path.iterdir()) == []  # registering read and wrote nothing
