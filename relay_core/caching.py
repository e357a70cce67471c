"""The response cache contract: what a cache plugin stores, and when the hub asks it.

The core keeps no cache of its own for single calls; a plugin registered through
``relay_register_response_caches`` (``relay-cache`` is one) offers a store, and the hub
uses it for a call when the call says ``cache=True``, or when the call says nothing and
the alias's ``cache`` (or the catalog's ``defaults.cache``) is on. Off by default: an
answer served from the past must be something the user asked for.

Only whole successful answers are stored, under :func:`cache_key`: a SHA-256 of the
concrete request (provider and model, messages, settings, tools, schema) that ignores
``custom_id``, ``tags`` and ``metadata``; an embedding call's answer (an
:class:`EmbeddingResponse`) is stored the same way, under the key of its
:class:`EmbeddingRequest`. A hit costs nothing: its ``cost`` is zero (at the
original price's provenance) and ``metadata`` says ``cached`` and ``cost_saved``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from relay_core.embeddings import EmbeddingRequest, EmbeddingResponse
from relay_core.types import Request, Response

A = TypeVar("A", Response, EmbeddingResponse)

__all__ = ["CacheFactory", "ResponseCache", "cache_key", "served_from_cache"]


@runtime_checkable
class ResponseCache(Protocol):
    """A store of answers by key, offered by a cache plugin.

    Both methods are coroutines so that a store may talk to a server; a local store
    does its short I/O inline. A store must never raise for a miss, and should log and
    swallow its own I/O errors rather than fail the call it is serving.
    """

    async def get(self, key: str) -> Response | EmbeddingResponse | None:
        """The answer stored under ``key`` and still fresh, or ``None``."""

    async def put(self, key: str, response: Response | EmbeddingResponse) -> None:
        """Keep ``response`` under ``key`` (replacing any older answer); a store keeps
        both kinds of answer and gives back the kind it was given."""

    async def aclose(self) -> None:
        """Release files and connections; called when the hub closes."""


CacheFactory = Callable[[Mapping[str, Any]], ResponseCache]
"""Builds a store from the plugin's settings (the catalog's ``plugins.<name>`` mapping,
empty when absent). Raise :class:`relay_core.ConfigError` for bad settings."""


def cache_key(target: str, request: Request | EmbeddingRequest) -> str:
    """The key of ``request`` sent to ``target`` (``provider/model``): an alias re-pointed
    at another model never serves the old model's answers."""
    return attrs.evolve(request, model=target, custom_id=None).fingerprint()


def served_from_cache(hit: A, custom_id: str | None, latency: float) -> A:
    """A stored answer as a new call's response: free, marked ``cached``."""
    saved = hit.cost.amount
    return attrs.evolve(
        hit,
        custom_id=custom_id,
        latency=latency,
        cost=attrs.evolve(
            hit.cost, amount=0.0 if saved is not None else None, input=None, output=None
        ),
        metadata={**hit.metadata, "cached": True, "cost_saved": saved},
    )
