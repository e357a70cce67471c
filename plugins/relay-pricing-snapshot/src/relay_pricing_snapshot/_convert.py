"""OpenRouter's model list, read as Relay's :class:`~relay_core.pricing.ModelInfo`.

OpenRouter (``GET /api/v1/models``) gives prices per token as decimal strings; Relay
keeps prices per million tokens. A price OpenRouter does not know is written ``"-1"``
or left out: that is ``None`` here, never ``0``. ``"0"`` is a real price (free models).

Every OpenRouter id is an ``openrouter`` model as it is. The first-party providers get
their own models back through OpenRouter's prefixes (:data:`PREFIXES`), with one naming
rule: OpenRouter writes Anthropic's version numbers with a dot (``claude-sonnet-4.5``)
where Anthropic's API ids use a dash (``claude-sonnet-4-5``). Variants behind a colon
(``:free``, ``:thinking``, ``:extended``) are OpenRouter's own offers, not the
provider's list price, so they stay ``openrouter`` models only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from relay_core.plugin import ModelInfo, ModelPrice

__all__ = [
    "BATCH_DISCOUNTS",
    "PREFIXES",
    "per_million",
    "relay_targets",
    "to_model_info",
    "validate",
]

# OpenRouter's author prefix → the Relay provider whose own API serves those models.
PREFIXES: Mapping[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gemini",
    "mistralai": "mistral",
}
# OpenRouter has no batch API, but a first-party model priced from its list is billed
# by the provider, whose batch jobs cost half (the providers' pricing pages).
BATCH_DISCOUNTS: Mapping[str, float] = {
    "openai": 0.5,
    "anthropic": 0.5,
    "gemini": 0.5,
    "mistral": 0.5,
}
_DOTTED_VERSION = re.compile(r"(?<=\d)\.(?=\d)")
_MILLION = Decimal(1_000_000)


def per_million(value: Any) -> float | None:
    """A per-token decimal string as a price per million tokens; ``None`` when unknown
    (missing, ``"-1"`` or any negative, not a number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        # Through Decimal: "0.0000025" is 2.5 exactly, not 2.4999999999999996.
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return float(amount * _MILLION)


def _separate(price: float | None, main: float) -> float | None:
    # OpenRouter writes "0" for a sub-price a paid model does not bill separately (its
    # reasoning tokens are completion tokens): read that as "same as the main price",
    # not as free tokens, which would undercount.
    if price == 0 and main > 0:
        return None
    return price


def _price(pricing: Mapping[str, Any], *, batch_discount: float, as_of: str) -> ModelPrice | None:
    from relay_core.plugin import ModelPrice

    prompt = per_million(pricing.get("prompt"))
    completion = per_million(pricing.get("completion"))
    if prompt is None or completion is None:
        return None
    return ModelPrice(
        input=prompt,
        output=completion,
        cached_input=_separate(per_million(pricing.get("input_cache_read")), prompt),
        cache_write=_separate(per_million(pricing.get("input_cache_write")), prompt),
        reasoning=_separate(per_million(pricing.get("internal_reasoning")), completion),
        batch_discount=batch_discount,
        source="https://openrouter.ai/api/v1/models",
        as_of=as_of,
    )


def _capabilities(entry: Mapping[str, Any]) -> frozenset[str]:
    parameters = set(_strings(entry.get("supported_parameters")))
    architecture = entry.get("architecture")
    modalities = set(
        _strings(architecture.get("input_modalities")) if isinstance(architecture, dict) else ()
    )
    found = {"chat", "stream"}
    if "tools" in parameters:
        found.add("tools")
    if parameters & {"response_format", "structured_outputs"}:
        found.add("structured_output")
    if parameters & {"reasoning", "include_reasoning"}:
        found.add("thinking")
    if "image" in modalities:
        found.add("vision")
    if "file" in modalities:
        found.add("documents")
    return frozenset(found)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, str))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def relay_targets(openrouter_id: str) -> list[tuple[str, str]]:
    """The ``(provider, model)`` pairs an OpenRouter id prices: itself as an
    ``openrouter`` model, and the first-party model it is, if any."""
    targets = [("openrouter", openrouter_id)]
    author, _, name = openrouter_id.partition("/")
    provider = PREFIXES.get(author)
    if provider is not None and name and ":" not in name:
        if provider == "anthropic":
            name = _DOTTED_VERSION.sub("-", name)
        targets.append((provider, name))
    return targets


def to_model_info(entry: Mapping[str, Any], *, as_of: str) -> list[ModelInfo]:
    """One :class:`ModelInfo` per Relay target of an OpenRouter model entry (which must
    have a string ``id``)."""
    from relay_core.plugin import ModelInfo

    pricing = entry.get("pricing")
    pricing = pricing if isinstance(pricing, dict) else {}
    top = entry.get("top_provider")
    max_output = _count(top.get("max_completion_tokens")) if isinstance(top, dict) else None
    name = entry.get("name")
    infos = []
    for provider, model in relay_targets(str(entry["id"])):
        infos.append(
            ModelInfo(
                provider=provider,
                model=model,
                price=_price(
                    pricing, batch_discount=BATCH_DISCOUNTS.get(provider, 0.0), as_of=as_of
                ),
                context_window=_count(entry.get("context_length")),
                max_output_tokens=max_output,
                # Any: mypy cannot type the core's bare `converter=frozenset`.
                capabilities=cast(Any, _capabilities(entry)),
                description=name if isinstance(name, str) else None,
            )
        )
    return infos


def validate(body: Any) -> Sequence[Mapping[str, Any]]:
    """The ``data`` list of a models answer; ``ValueError`` saying what is wrong when the
    body is not OpenRouter's documented shape."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ValueError("expected a JSON object with a 'data' list")
    entries: list[Any] = body["data"]
    if not entries:
        raise ValueError("the model list is empty")
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ValueError(f"data[{number}] has no string 'id'")
        if "pricing" in entry and not isinstance(entry["pricing"], dict):
            raise ValueError(f"data[{number}] ({entry['id']}): 'pricing' is not an object")
    return entries
