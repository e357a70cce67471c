"""``models/*:countTokens``: its body, a whole GenerateContentRequest wrapped so that the
system instruction, the tools and the response schema count as a call sends them
(Vertex AI takes the same fields unwrapped), and its answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay_core.plugin import MalformedResponse

__all__ = ["FLAT_COUNTED_FIELDS", "count_payload", "flat_count_payload", "parse_count"]

# What Vertex AI's CountTokensRequest takes of a GenerateContentRequest, at its top
# level (its REST reference): no safety settings, tool config, labels or cached content.
FLAT_COUNTED_FIELDS = frozenset({"contents", "systemInstruction", "tools", "generationConfig"})


def count_payload(model: str, generate_body: Mapping[str, Any]) -> dict[str, Any]:
    """The countTokens body for ``generate_body`` (:func:`relay_gemini.payload.payload`'s).

    Bare ``contents`` would count the turns alone: only ``generateContentRequest`` counts
    ``systemInstruction`` and ``tools``, and it must name its model as a resource.
    """
    resource = model if "/" in model else f"models/{model}"
    return {"generateContentRequest": {"model": resource, **generate_body}}


def flat_count_payload(generate_body: Mapping[str, Any]) -> dict[str, Any]:
    """Vertex AI's countTokens body for ``generate_body``: the fields it counts, unwrapped
    (the model is the URL's)."""
    return {k: v for k, v in generate_body.items() if k in FLAT_COUNTED_FIELDS}


def parse_count(body: Any, *, provider: str = "gemini", model: str | None = None) -> int:
    """The ``totalTokens`` of the answer (an empty prompt's answer omits it: zero)."""
    if not isinstance(body, Mapping):
        raise MalformedResponse("the countTokens answer is not an object", provider=provider)
    tokens = body.get("totalTokens", 0)
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        raise MalformedResponse(
            "the countTokens answer's totalTokens is not an integer",
            provider=provider,
            model=model,
        )
    return tokens
