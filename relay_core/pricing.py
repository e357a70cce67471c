"""Prices, their provenance, pricing profiles, and the arithmetic of a call's cost.

Prices are in currency units per million tokens. Where a price comes from decides the
:class:`~relay_core.Cost`'s ``source``: the catalog's own numbers are ``user_override``,
registered pricing sources report their tier, and with no price at all the amount is
``None`` with source ``unknown`` — never a guess presented as a fact.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from attrs import frozen

from relay_core.types import Cost, CostSource, Usage

__all__ = ["ModelPrice", "PricingProfile", "PricingSource", "compute_cost"]

_PER_TOKEN = 1_000_000
TIER_RANK: dict[str, int] = {"user_override": 0, "live_api": 1, "snapshot": 2, "estimated": 3}


@frozen(kw_only=True)
class ModelPrice:
    """List prices per million tokens.

    ``cached_input`` prices cache reads (defaults to ``input``), ``cache_write`` prices
    cache writes (defaults to ``input``), ``batch_discount`` is the fraction taken off for
    provider batch jobs (``0.5`` for half price).
    """

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    batch_discount: float = 0.0
    currency: str = "USD"


@frozen(kw_only=True)
class PricingProfile:
    """Adjustments applied on top of a price: a negotiated discount, a markup.

    ``multiplier`` scales everything; ``input_multiplier`` and ``output_multiplier`` scale
    one side on top of it.
    """

    multiplier: float = 1.0
    input_multiplier: float = 1.0
    output_multiplier: float = 1.0


@runtime_checkable
class PricingSource(Protocol):
    """What ``relay_register_pricing_sources`` registers."""

    name: str
    tier: CostSource

    def price(self, provider: str, model: str) -> ModelPrice | None:
        """The price of ``provider/model``, or ``None`` if this source does not know it."""


def compute_cost(
    usage: Usage,
    price: ModelPrice | None,
    source: CostSource,
    *,
    profile: PricingProfile | None = None,
    batch: bool = False,
) -> Cost:
    """The cost of ``usage`` at ``price``; an unknown ``Cost`` when ``price`` is ``None``.

    Cached input tokens are billed at ``cached_input`` and cache writes at
    ``cache_write``; both are counted inside ``usage.input_tokens``. Reasoning tokens
    are output tokens and billed as such.
    """
    if price is None:
        return Cost.unknown()
    profile = profile or PricingProfile()
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    fresh = usage.input_tokens - cached - written
    input_cost = (
        fresh * price.input
        + cached * (price.input if price.cached_input is None else price.cached_input)
        + written * (price.input if price.cache_write is None else price.cache_write)
    ) / _PER_TOKEN
    output_cost = usage.output_tokens * price.output / _PER_TOKEN
    scale = profile.multiplier * ((1.0 - price.batch_discount) if batch else 1.0)
    input_cost *= scale * profile.input_multiplier
    output_cost *= scale * profile.output_multiplier
    return Cost(
        amount=input_cost + output_cost,
        currency=price.currency,
        source=source,
        input=input_cost,
        output=output_cost,
        batch_discount_applied=batch and price.batch_discount > 0,
    )
