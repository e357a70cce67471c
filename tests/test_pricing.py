"""Pricing: profiles, cached- and reasoning-token prices, the batch discount, and which
price wins (with its provenance on the Cost)."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core import ConfigError, ModelPrice, PricingProfile, Usage, hookimpl, parse_catalog
from relay_core.pricing import compute_cost, quote

LIST = ModelPrice(
    input=2.0,
    output=8.0,
    cached_input=0.5,
    cache_write=2.5,
    reasoning=12.0,
    batch_discount=0.5,
    source="https://example.com/pricing",
    as_of="2026-11-01",
)
# 1M input of which 200k cached reads and 100k cache writes; 400k output of which 100k reasoning.
USAGE = Usage(
    input_tokens=1_000_000,
    output_tokens=400_000,
    cached_input_tokens=200_000,
    cache_write_tokens=100_000,
    reasoning_tokens=100_000,
)
INPUT = 0.7 * 2.0 + 0.2 * 0.5 + 0.1 * 2.5  # 1.75
OUTPUT = 0.3 * 8.0 + 0.1 * 12.0  # 3.6


def test_cached_writes_and_reasoning_tokens_have_their_own_prices() -> None:
    cost = compute_cost(USAGE, LIST, "snapshot", priced_by="list")
    assert cost.input == pytest.approx(INPUT)
    assert cost.output == pytest.approx(OUTPUT)
    assert cost.amount == pytest.approx(INPUT + OUTPUT)
    assert (cost.source, cost.priced_by, cost.as_of) == ("snapshot", "list", "2026-11-01")


def test_reasoning_tokens_cost_the_output_price_unless_priced_apart() -> None:
    plain = ModelPrice(input=2.0, output=8.0)
    cost = compute_cost(Usage(0, 400_000, reasoning_tokens=100_000), plain, "snapshot")
    assert cost.output == pytest.approx(0.4 * 8.0)


def test_batch_discount_comes_off_both_sides_and_is_flagged() -> None:
    cost = compute_cost(USAGE, LIST, "snapshot", batch=True)
    assert cost.amount == pytest.approx((INPUT + OUTPUT) * 0.5)
    assert cost.batch_discount_applied
    undiscounted = compute_cost(USAGE, ModelPrice(input=2.0, output=8.0), "snapshot", batch=True)
    assert not undiscounted.batch_discount_applied


def test_profile_multipliers_and_negotiated_discount_compose() -> None:
    profile = PricingProfile(multiplier=1.2, input_multiplier=0.5, discount=0.25)
    cost = compute_cost(USAGE, LIST, "snapshot", profile=profile)
    assert cost.input == pytest.approx(INPUT * 1.2 * 0.5 * 0.75)
    assert cost.output == pytest.approx(OUTPUT * 1.2 * 0.75)


def test_profile_fixed_prices_replace_list_prices_then_scale() -> None:
    profile = PricingProfile(output=4.0, discount=0.5)
    quoted = quote("acme", "m", [], override=LIST, profile=profile, profile_name="deal")
    assert quoted.price is not None
    assert quoted.price.output == 4.0
    assert quoted.price.input == 2.0  # not fixed: the list price stays
    cost = compute_cost(USAGE, quoted.price, quoted.tier, profile=profile)
    assert cost.output == pytest.approx((0.3 * 4.0 + 0.1 * 12.0) * 0.5)


class Source:
    def __init__(self, name: str, tier: str, known: dict[str, ModelPrice]) -> None:
        self.name, self.tier, self.known = name, tier, known

    def price(self, provider: str, model: str) -> ModelPrice | None:
        return self.known.get(f"{provider}/{model}")


SNAPSHOT = Source("snap", "snapshot", {"acme/m": ModelPrice(input=1.0, output=2.0)})
LIVE = Source("live", "live_api", {"acme/m": ModelPrice(input=0.9, output=1.8)})


def test_precedence_catalog_then_profile_then_tiers() -> None:
    assert quote("acme", "m", [SNAPSHOT, LIVE]).priced_by == "live"
    assert quote("acme", "m", [SNAPSHOT]).tier == "snapshot"
    assert quote("acme", "m", [SNAPSHOT, LIVE], override=LIST).tier == "user_override"
    fixed = PricingProfile(input=0.1, output=0.2)
    by_profile = quote("acme", "m", [LIVE], profile=fixed, profile_name="contract")
    assert (by_profile.tier, by_profile.priced_by) == ("user_override", "pricing profile contract")
    assert by_profile.price == ModelPrice(input=0.1, output=0.2, source="pricing profile")


def test_an_unknown_price_stays_unknown_whatever_the_profile_scales() -> None:
    quoted = quote("acme", "other", [SNAPSHOT, LIVE], profile=PricingProfile(multiplier=2.0))
    assert (quoted.price, quoted.tier, quoted.priced_by) == (None, "unknown", None)
    cost = compute_cost(USAGE, quoted.price, quoted.tier)
    assert (cost.amount, cost.source) == (None, "unknown")


def test_effective_price_folds_the_profile_in() -> None:
    profile = PricingProfile(multiplier=2.0, output_multiplier=0.5, discount=0.5)
    quoted = quote("acme", "m", [SNAPSHOT], profile=profile, profile_name="p")
    effective = quoted.effective()
    assert effective is not None
    assert (effective.input, effective.output) == pytest.approx((1.0, 1.0))


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("{multiplier: -1}", "multiplier must be a finite price of 0 or more"),
        ("{discount: 1.5}", "discount must be at least 0 and below 1"),
        ("{input: .nan}", "input must be a finite price"),
    ],
)
def test_bad_profiles_are_config_errors_at_their_line(profile: str, message: str) -> None:
    text = f"models: {{a: mock/a}}\npricing_profiles:\n  p: {profile}\n"
    with pytest.raises(ConfigError, match=message) as caught:
        parse_catalog(text)
    assert caught.value.line == 3


def test_defaults_pricing_profile_applies_to_every_alias(make_hub: Any) -> None:
    class Plugin:
        @hookimpl
        def relay_register_pricing_sources(self, register: Any) -> None:
            register(
                Source("snap", "snapshot", {"scripted/one": ModelPrice(input=1.0, output=1.0)})
            )

    hub = make_hub(
        "models:\n  a: scripted/one\n"
        "pricing_profiles:\n  team: {discount: 0.2}\n"
        "defaults:\n  pricing_profile: team\n"
    )
    hub.plugins.register(Plugin())
    cost = hub.chat("a", "x").cost  # 10 in + 5 out
    assert cost.amount == pytest.approx(15 * 0.8 / 1e6)
    assert (cost.source, cost.priced_by) == ("snapshot", "snap")
    assert hub.get("scripted/one").quote().profile == "team"


def test_unknown_default_profile_is_pointed_at() -> None:
    with pytest.raises(ConfigError, match="unknown pricing_profile 'nope'") as caught:
        parse_catalog("defaults:\n  pricing_profile: nope\n")
    assert caught.value.line == 2
