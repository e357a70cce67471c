"""Prices, their provenance, pricing profiles, and the arithmetic of a call's cost.

Prices are in currency units per million tokens. Where a price comes from decides the
:class:`~relay_core.Cost`'s ``source``: the catalog's own numbers are ``user_override``,
registered pricing sources report their tier, and with no price at all the amount is
``None`` with source ``unknown`` — never a guess presented as a fact.

The order of precedence, best first: ``pricing:`` on the model in the catalog, a pricing
profile that fixes both the input and the output price, then the registered sources by
tier (``live_api``, ``snapshot``, ``estimated``). A profile's multipliers and discount
apply to whichever price won.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs
from attrs import field, frozen

from relay_core.types import Cost, CostSource, Usage

__all__ = [
    "ListingSource",
    "ModelInfo",
    "ModelPrice",
    "PriceQuote",
    "PricingProfile",
    "PricingSource",
    "RefreshableSource",
    "compute_cost",
    "quote",
]

_PER_TOKEN = 1_000_000
TIER_RANK: dict[str, int] = {"user_override": 0, "live_api": 1, "snapshot": 2, "estimated": 3}

S = TypeVar("S", bound="PricingSource")


def by_tier(sources: Iterable[S]) -> list[S]:
    """``sources`` best tier first (``live_api`` before ``snapshot`` before
    ``estimated``), registration order kept within a tier."""
    return sorted(sources, key=lambda source: TIER_RANK.get(source.tier, 9))


def _price_value(_: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise ValueError(f"{attribute.name} must be a finite price of 0 or more, not {value}")


def _fraction(_: Any, attribute: Any, value: Any) -> None:
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ValueError(f"{attribute.name} must be at least 0 and below 1, not {value}")


@frozen(kw_only=True)
class ModelPrice:
    """List prices per million tokens, and where they were read.

    ``cached_input`` prices cache reads and ``cache_write`` cache writes (both default to
    ``input``); ``reasoning`` prices reasoning tokens (defaults to ``output``: every
    provider bills them as output today). ``batch_discount`` is the fraction taken off for
    provider batch jobs (``0.5`` for half price). ``source`` says where the numbers were
    read (a URL, a document) and ``as_of`` when (an ISO date).
    """

    input: float = field(
        validator=_price_value,
        metadata={
            "doc": "Price per million input tokens, in currency (USD by default); 0 or more."
        },
    )
    output: float = field(
        validator=_price_value,
        metadata={
            "doc": "Price per million output tokens, in currency (USD by default); 0 or more."
        },
    )
    cached_input: float | None = field(
        default=None,
        validator=_price_value,
        metadata={"doc": "Price per million input tokens read from the prompt cache; null: input."},
    )
    cache_write: float | None = field(
        default=None,
        validator=_price_value,
        metadata={
            "doc": "Price per million input tokens written to the prompt cache; null: input."
        },
    )
    reasoning: float | None = field(
        default=None,
        validator=_price_value,
        metadata={"doc": "Price per million reasoning tokens (part of output); null: output."},
    )
    batch_discount: float = field(
        default=0.0,
        validator=_fraction,
        metadata={"doc": "Fraction off for provider batch jobs, 0 to below 1 (0.5: half price)."},
    )
    currency: str = field(
        default="USD",
        metadata={"doc": "Currency code of these prices: a label on costs, never converted."},
    )
    source: str | None = field(
        default=None,
        metadata={
            "doc": "Where the prices were read (a URL, a document), shown by relay pricing show."
        },
    )
    as_of: str | None = field(
        default=None,
        metadata={"doc": "When the prices were read, as an ISO date; it becomes the cost's as_of."},
    )


@frozen(kw_only=True)
class PricingProfile:
    """Adjustments applied to a price, for any alias that names the profile.

    Fixed prices (``input``, ``output``, ``cached_input``, ``reasoning``, ``batch_discount``)
    replace the list price's; then ``multiplier`` scales everything, ``input_multiplier``
    and ``output_multiplier`` one side on top of it, and ``discount`` (a negotiated
    fraction off, ``0.15`` for 15%) comes off the total.
    """

    multiplier: float = field(
        default=1.0,
        validator=_price_value,
        metadata={"doc": "Scales every price (1.2: 20% more); 0 or more."},
    )
    input_multiplier: float = field(
        default=1.0,
        validator=_price_value,
        metadata={
            "doc": "Scales input prices (cache reads and writes too) on top of multiplier; "
            "0 or more."
        },
    )
    output_multiplier: float = field(
        default=1.0,
        validator=_price_value,
        metadata={"doc": "Scales output prices (reasoning too) on top of multiplier; 0 or more."},
    )
    discount: float = field(
        default=0.0,
        validator=_fraction,
        metadata={"doc": "Negotiated fraction off the total, 0 to below 1 (0.15: 15% off)."},
    )
    input: float | None = field(
        default=None,
        validator=_price_value,
        metadata={
            "doc": "Price per million input tokens in place of the list price's; with output "
            "too, no pricing source is needed."
        },
    )
    output: float | None = field(
        default=None,
        validator=_price_value,
        metadata={
            "doc": "Price per million output tokens in place of the list price's; with input "
            "too, no pricing source is needed."
        },
    )
    cached_input: float | None = field(
        default=None,
        validator=_price_value,
        metadata={"doc": "Price per million cache-read input tokens in place of the list price's."},
    )
    reasoning: float | None = field(
        default=None,
        validator=_price_value,
        metadata={"doc": "Price per million reasoning tokens in place of the list price's."},
    )
    batch_discount: float | None = field(
        default=None,
        validator=attrs.validators.optional(_fraction),
        metadata={
            "doc": "Fraction off for provider batch jobs, 0 to below 1, in place of the list "
            "price's."
        },
    )

    @property
    def fixes_price(self) -> bool:
        """Whether the profile alone prices a call (both input and output are fixed)."""
        return self.input is not None and self.output is not None

    def apply(self, price: ModelPrice | None) -> ModelPrice | None:
        """``price`` with this profile's fixed prices in place of the list prices."""
        fixed = {
            name: getattr(self, name)
            for name in ("input", "output", "cached_input", "reasoning", "batch_discount")
            if getattr(self, name) is not None
        }
        if price is None:
            if not self.fixes_price:
                return None
            return ModelPrice(**fixed, source="pricing profile")
        return attrs.evolve(price, **fixed) if fixed else price


def _names(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@frozen(kw_only=True)
class ModelInfo:
    """What a source knows about one model: for browsing, comparing and routing.

    ``capabilities`` uses the names of :class:`relay_core.Capability` (``tools``,
    ``vision``, ``structured_output``...). Unknown numbers are ``None``.
    """

    provider: str
    model: str
    price: ModelPrice | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: frozenset[str] = field(default=frozenset(), converter=_names)
    description: str | None = None

    @property
    def target(self) -> str:
        """The model as a catalog names it: ``provider/model``."""
        return f"{self.provider}/{self.model}"


@runtime_checkable
class PricingSource(Protocol):
    """What ``relay_register_pricing_sources`` registers."""

    name: str
    tier: CostSource

    def price(self, provider: str, model: str) -> ModelPrice | None:
        """The price of ``provider/model``, or ``None`` if this source does not know it."""


@runtime_checkable
class ListingSource(PricingSource, Protocol):
    """A pricing source that can also list what it knows (``relay catalog list``)."""

    def models(self, provider: str | None = None) -> Iterable[ModelInfo]:
        """Every model this source knows, of ``provider`` when given."""


@runtime_checkable
class RefreshableSource(PricingSource, Protocol):
    """A pricing source that fetches its prices and keeps them (``relay pricing refresh``)."""

    def refresh(self) -> str:
        """Fetch the prices now and store them; return one line saying what was fetched.
        Raise :class:`relay_core.ProviderError` when the fetch fails (the stored prices
        stay as they were)."""


@frozen(kw_only=True)
class PriceQuote:
    """The price a call of one model is billed at, with its provenance."""

    price: ModelPrice | None
    tier: CostSource
    priced_by: str | None = None
    profile: str | None = None
    pricing_profile: PricingProfile | None = field(default=None, eq=False, repr=False)

    def effective(self) -> ModelPrice | None:
        """The price with the profile's multipliers and discount folded in: what a token
        really costs, for comparing models."""
        profile = self.pricing_profile
        if self.price is None or profile is None:
            return self.price
        scale = profile.multiplier * (1.0 - profile.discount)

        def scaled(value: float | None, side: float) -> float | None:
            return None if value is None else value * scale * side

        return attrs.evolve(
            self.price,
            input=self.price.input * scale * profile.input_multiplier,
            output=self.price.output * scale * profile.output_multiplier,
            cached_input=scaled(self.price.cached_input, profile.input_multiplier),
            cache_write=scaled(self.price.cache_write, profile.input_multiplier),
            reasoning=scaled(self.price.reasoning, profile.output_multiplier),
        )


def quote(
    provider: str,
    model: str,
    sources: Sequence[PricingSource],
    *,
    override: ModelPrice | None = None,
    profile: PricingProfile | None = None,
    profile_name: str | None = None,
) -> PriceQuote:
    """The price of ``provider/model``: the catalog's ``override``, else a profile that
    fixes the price, else the best-tier source that knows it, else unknown."""
    price: ModelPrice | None = None
    tier: CostSource = "unknown"
    priced_by: str | None = None
    if override is not None:
        price, tier, priced_by = override, "user_override", "catalog"
    elif profile is not None and profile.fixes_price:
        tier, priced_by = "user_override", f"pricing profile {profile_name}"
    else:
        for source in by_tier(sources):
            found = source.price(provider, model)
            if found is not None:
                price, tier, priced_by = found, source.tier, source.name
                break
    if profile is not None:
        price = profile.apply(price)
    return PriceQuote(
        price=price,
        tier=tier if price is not None else "unknown",
        priced_by=priced_by if price is not None else None,
        profile=profile_name,
        pricing_profile=profile,
    )


def compute_cost(
    usage: Usage,
    price: ModelPrice | None,
    source: CostSource,
    *,
    profile: PricingProfile | None = None,
    batch: bool = False,
    priced_by: str | None = None,
) -> Cost:
    """The cost of ``usage`` at ``price``; an unknown ``Cost`` when ``price`` is ``None``.

    Cached input tokens are billed at ``cached_input`` and cache writes at
    ``cache_write``, both counted inside ``usage.input_tokens``; reasoning tokens are
    inside ``usage.output_tokens`` and billed at ``reasoning``. ``profile``'s multipliers
    and discount scale the result (its fixed prices are already in ``price``: see
    :func:`quote`); ``batch`` takes the batch discount off.
    """
    if price is None:
        return Cost.unknown()
    profile = profile or PricingProfile()
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    fresh = usage.input_tokens - cached - written
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    input_cost = (
        fresh * price.input
        + cached * (price.input if price.cached_input is None else price.cached_input)
        + written * (price.input if price.cache_write is None else price.cache_write)
    ) / _PER_TOKEN
    output_cost = (
        (usage.output_tokens - reasoning) * price.output
        + reasoning * (price.output if price.reasoning is None else price.reasoning)
    ) / _PER_TOKEN
    scale = (
        profile.multiplier
        * (1.0 - profile.discount)
        * ((1.0 - price.batch_discount) if batch else 1.0)
    )
    input_cost *= scale * profile.input_multiplier
    output_cost *= scale * profile.output_multiplier
    return Cost(
        amount=input_cost + output_cost,
        currency=price.currency,
        source=source,
        input=input_cost,
        output=output_cost,
        batch_discount_applied=batch and price.batch_discount > 0,
        priced_by=priced_by,
        as_of=price.as_of,
    )


def cost_of(usage: Usage, quoted: PriceQuote, *, batch: bool = False) -> Cost:
    """The cost of ``usage`` at a :func:`quote`."""
    return compute_cost(
        usage,
        quoted.price,
        quoted.tier,
        profile=quoted.pricing_profile,
        batch=batch,
        priced_by=quoted.priced_by,
    )
