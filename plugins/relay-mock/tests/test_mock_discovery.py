"""Discovery through the entry point, lazy loading, the registration hooks, the prices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import relay_mock
from relay_core import Capability, ModelPrice, PluginRegistry, compute_cost
from relay_mock._provider import MockProvider

# Declared by the adapters that gain embeddings and exact token counts (issue 22).
NOT_YET = {Capability.TOKEN_COUNT}


def _python(code: str, **env: str) -> Any:
    """Run ``code`` in a fresh interpreter (no RELAY_* steering) and parse its JSON."""
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


def test_the_entry_point_is_discovered_and_the_adapter_loads_on_the_first_call() -> None:
    out = _python("""
        import json, sys
        from relay_core import Hub, PluginRegistry

        registry = PluginRegistry()
        providers = registry.providers()
        infos = {i.name: [i.distribution, i.version, list(i.hooks)] for i in registry.plugins()}
        sources = [[s.name, s.tier] for s in registry.pricing_sources()]

        def heavy():
            return sorted(m for m in sys.modules
                          if m.startswith("relay_mock._") or m.split(".")[0] == "httpx")

        before = heavy()
        with Hub(plugins=registry) as hub:
            answer = hub.chat("mock/echo", "hello there")
        print(json.dumps({
            "adapter": providers["mock"].adapter, "plugin": providers["mock"].plugin,
            "info": infos.get("mock"), "sources": sources, "before": before,
            "after": heavy(), "text": answer.text, "provider": answer.provider,
        }))
    """)
    assert out["adapter"] == "relay_mock._provider:MockProvider"
    assert out["plugin"] == "mock"
    assert out["info"] == [
        "relay-mock",
        "0.1.0",
        ["relay_register_pricing_sources", "relay_register_providers"],
    ]
    assert ["relay-mock price list", "snapshot"] in out["sources"]
    assert out["before"] == []
    assert "relay_mock._provider" in out["after"]
    assert "httpx" not in out["after"]  # the mock never needs the network stack
    assert (out["text"], out["provider"]) == ("hello there", "mock")


def test_in_code_registration_gives_the_provider_and_the_price_list() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(relay_mock, name="mock")
    entry = registry.provider("mock")
    assert entry.load() is MockProvider
    [source] = registry.pricing_sources()
    assert (source.name, source.tier) == ("relay-mock price list", "snapshot")


def test_the_adapter_declares_every_capability_and_needs_no_key() -> None:
    assert MockProvider.name == "mock"
    assert MockProvider.capabilities == frozenset(Capability) - NOT_YET
    assert MockProvider.api_key_env is None


def test_the_price_list_prices_every_mock_model_and_nothing_else() -> None:
    prices = relay_mock.MockPriceList()
    assert prices.price("mock", "echo") == ModelPrice(
        input=0.5, output=1.5, cached_input=0.05, batch_discount=0.5
    )
    assert prices.price("mock", "think") == ModelPrice(
        input=3.0, output=15.0, cached_input=0.3, batch_discount=0.5
    )
    assert prices.price("mock", "anything-else") == prices.price("mock", "echo")
    assert prices.price("openai", "echo") is None


def test_a_call_is_priced_from_the_snapshot_list(make_hub: Any) -> None:
    hub = make_hub()
    answer = hub.chat("mock/echo", "one two three")
    # 3 words + 3 tokens of message framing in, 3 words out.
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (6, 3)
    assert answer.cost.source == "snapshot"
    assert answer.cost.input == pytest.approx(6 * 0.5 / 1e6)
    assert answer.cost.output == pytest.approx(3 * 1.5 / 1e6)
    assert answer.cost.amount == pytest.approx((6 * 0.5 + 3 * 1.5) / 1e6)

    thought = hub.chat("mock/think", "one two three")
    price = relay_mock.MockPriceList().price("mock", "think")
    assert thought.cost == compute_cost(
        thought.usage, price, "snapshot", priced_by="relay-mock price list"
    )
    assert thought.cost.amount is not None
    assert answer.cost.amount is not None
    assert thought.cost.amount > answer.cost.amount


def test_catalog_prices_win_over_the_price_list(make_hub: Any) -> None:
    hub = make_hub("models:\n  fast: {target: mock/echo, pricing: {input: 1.0, output: 2.0}}\n")
    answer = hub.chat("fast", "one two three")
    assert answer.cost.source == "user_override"
    assert answer.cost.amount == pytest.approx((6 * 1.0 + 3 * 2.0) / 1e6)


def test_the_price_list_applies_under_another_catalog_key(make_hub: Any) -> None:
    hub = make_hub("providers:\n  offline: {plugin: mock}\n")
    answer = hub.chat("offline/echo", "one two three")
    assert answer.provider == "offline"
    assert answer.cost.source == "snapshot"
    assert answer.cost.amount == pytest.approx((6 * 0.5 + 3 * 1.5) / 1e6)
