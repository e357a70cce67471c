"""Per-model rate limits for the engine: token buckets for requests and tokens per
minute, and a cap on calls in flight.

Tokens are reserved before a call from an estimate (about four characters per token of
the request's text, plus its ``max_tokens``) and settled after it with the usage the
provider reported, so a run of long answers slows the next calls down rather than
overrunning the limit for a whole minute.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from relay_core.embeddings import EmbeddingRequest
from relay_core.tokens import estimate_text_tokens
from relay_core.tokens import estimate_tokens as estimate_input_tokens

if TYPE_CHECKING:
    from relay_core.hub import Hub
    from relay_core.types import Request

__all__ = ["RateLimiter", "estimate_tokens"]


def estimate_tokens(request: Request | EmbeddingRequest) -> int:
    """A cheap upper-leaning guess of the tokens a request will use."""
    if isinstance(request, EmbeddingRequest):
        return sum(estimate_text_tokens(text) for text in request.inputs)
    return estimate_input_tokens(request) + (request.config.max_tokens or 0)


class _Bucket:
    def __init__(self, per_minute: float) -> None:
        self.capacity = per_minute
        self.rate = per_minute / 60.0
        self.level = per_minute
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` is available (0 when it is now)."""
        # A request bigger than the whole bucket waits for a full one, then goes.
        amount = min(amount, self.capacity)
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate


class RateLimiter:
    """The limits of one model alias, shared by every worker calling it: the engine's
    :class:`~relay_core.batch.runners.Limiter` in one process (a runner shares one
    across processes by keeping it in one place: relay-ray holds it in a Ray actor)."""

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        concurrency: int | None = None,
    ) -> None:
        self._requests = _Bucket(requests_per_minute) if requests_per_minute else None
        self._tokens = _Bucket(tokens_per_minute) if tokens_per_minute else None
        self._in_flight = asyncio.Semaphore(concurrency) if concurrency else None
        self._turn = asyncio.Lock()
        self.unlimited = self._requests is None and self._tokens is None and not concurrency

    @classmethod
    def for_alias(cls, hub: Hub, alias: str) -> RateLimiter:
        """A limiter keeping the catalog's ``limits:`` for the model alias ``alias``; one
        that limits nothing (``unlimited``) when the alias sets none or is not a model
        alias of the catalog."""
        config = hub.catalog.models.get(alias)
        limits = config.limits if config is not None else None
        if limits is None:
            return cls()
        return cls(
            requests_per_minute=limits.requests_per_minute,
            tokens_per_minute=limits.tokens_per_minute,
            concurrency=limits.concurrency,
        )

    async def acquire(self, tokens: int) -> None:
        """Wait until a call of about ``tokens`` may start, then take its share."""
        if self._in_flight is not None:
            await self._in_flight.acquire()
        try:
            await self._book(tokens)
        except BaseException:
            # Cancelled while waiting for the buckets: the place taken goes back, or a
            # limiter kept for a whole job (relay-ray's) would have one fewer for good.
            self.release()
            raise

    async def _book(self, tokens: int) -> None:
        # One waiter at a time: calls start in the order they asked, none starves.
        async with self._turn:
            while True:
                wait = 0.0
                for bucket, amount in ((self._requests, 1.0), (self._tokens, float(tokens))):
                    if bucket is not None:
                        bucket.refill()
                        wait = max(wait, bucket.wait_for(amount))
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self._requests is not None:
                self._requests.level -= 1
            if self._tokens is not None:
                self._tokens.level -= min(float(tokens), self._tokens.capacity)

    def release(self) -> None:
        """End a call that :meth:`acquire` let start: give back its place among the calls
        in flight."""
        if self._in_flight is not None:
            self._in_flight.release()

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token reservation once the provider reported the real usage."""
        if self._tokens is not None and actual:
            self._tokens.level -= actual - min(float(estimated), self._tokens.capacity)
