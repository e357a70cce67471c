"""Counting a prepared request's input tokens for one provider's adapter.

A count is not a call: it is free and answers no prompt, so it does not go through the
pipeline (no cache, audit, guardrails or price). What it does share with a call is the
adapter's retries, and the fallback to :func:`~relay_core.tokens.estimate_tokens` that
says why it is not exact. :class:`~relay_core.hub.ModelHandle` counts through this; it
is apart from the handle because it is one idea (exact, else an estimate with its
reason) that needs only an adapter, not a hub.
"""

from __future__ import annotations

from typing import Literal

from relay_core.errors import UnsupportedCapability
from relay_core.providers import Capability, Provider
from relay_core.tokens import TokenCount, estimate_tokens
from relay_core.types import Request

__all__ = ["count_locally", "count_tokens"]


def count_locally(adapter: Provider, concrete: Request, *, provider: str, model: str) -> TokenCount:
    """The input tokens of a prepared request without I/O, for a sync hook: the
    provider's tokenizer where ``adapter`` has one, else the estimate."""
    local = (
        adapter.count_tokens_locally(concrete) if adapter.supports(Capability.TOKEN_COUNT) else None
    )
    if local is not None:
        return _counted(local, "tokenizer", model, provider)
    return _estimated(concrete, f"{provider} has no local tokenizer", model, provider)


async def count_tokens(
    adapter: Provider, concrete: Request, *, provider: str, model: str
) -> TokenCount:
    """The input tokens of a prepared request as ``adapter``'s model counts them: its
    tokenizer, else its count endpoint (retried like a call: it answers 429 and 5xx
    too), else the estimate, with why in ``reason``."""
    if not adapter.supports(Capability.TOKEN_COUNT):
        return _estimated(concrete, f"{provider} cannot count tokens", model, provider)
    local = adapter.count_tokens_locally(concrete)
    if local is not None:
        return _counted(local, "tokenizer", model, provider)
    from relay_core.http import RetryPolicy, retrying

    policy = RetryPolicy(max_attempts=adapter.settings.max_retries + 1)
    try:
        tokens = await retrying(lambda: adapter.count_tokens(concrete), policy)
    except UnsupportedCapability as error:  # e.g. the tokenizer's extra is missing
        return _estimated(concrete, str(error), model, provider)
    return _counted(tokens, "provider", model, provider)


def _counted(
    tokens: int, method: Literal["provider", "tokenizer"], model: str, provider: str
) -> TokenCount:
    return TokenCount(tokens=tokens, exact=True, method=method, model=model, provider=provider)


def _estimated(concrete: Request, reason: str, model: str, provider: str) -> TokenCount:
    return TokenCount(
        tokens=estimate_tokens(concrete),
        exact=False,
        method="estimate",
        model=model,
        provider=provider,
        reason=reason,
    )
