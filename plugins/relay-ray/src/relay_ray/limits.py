"""Cluster-wide rate limits: one Ray actor per job and model alias, shared by every
worker of the job.

The actor books each call as it asks (a reservation: the buckets may go below zero and
the caller is told how long to wait), so a call costs one round trip to the actor
however busy the limit is, and calls start in the order they asked. Requests and
tokens per minute are token buckets as in the core's engine; ``concurrency`` caps the
calls in flight across the cluster.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from relay_core.plugin import alias_limits

if TYPE_CHECKING:
    from relay_core import Hub

__all__ = ["ClusterLimiter", "LimitsActor", "Unlimited", "actor_name", "start_limit_actors"]

NAMESPACE = "relay"


def actor_name(job_id: str, alias: str) -> str:
    return f"relay-limits/{job_id}/{alias}"


class _Bucket:
    def __init__(self, per_minute: float) -> None:
        self.capacity = per_minute
        self.rate = per_minute / 60.0
        self.level = per_minute
        self.stamp = time.monotonic()

    def reserve(self, amount: float) -> float:
        """Book ``amount`` now; the seconds until the booking is covered."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        # A call bigger than the whole bucket waits for a full one, then goes.
        self.level -= min(amount, self.capacity)
        return max(0.0, -self.level / self.rate)

    def correct(self, amount: float) -> None:
        self.level -= amount


class LimitsActor:
    """The limits of one alias for a whole job (an async Ray actor: a waiting
    ``acquire`` does not block the others' ``release``)."""

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        concurrency: int | None,
    ) -> None:
        self._requests = _Bucket(requests_per_minute) if requests_per_minute else None
        self._tokens = _Bucket(tokens_per_minute) if tokens_per_minute else None
        self._concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None

    async def acquire(self, tokens: int) -> float:
        """Take a place among the calls in flight and book one request of about
        ``tokens``; the seconds the caller waits before it calls."""
        if self._concurrency:
            if self._slots is None:  # made on the actor's own event loop
                self._slots = asyncio.Semaphore(self._concurrency)
            await self._slots.acquire()
        wait = 0.0
        if self._requests is not None:
            wait = self._requests.reserve(1.0)
        if self._tokens is not None:
            wait = max(wait, self._tokens.reserve(float(tokens)))
        return wait

    async def release(self) -> None:
        if self._slots is not None:
            self._slots.release()

    async def settle(self, estimated: int, actual: int) -> None:
        if self._tokens is not None and actual:
            self._tokens.correct(actual - min(float(estimated), self._tokens.capacity))


class ClusterLimiter:
    """A worker's handle on an alias's :class:`LimitsActor` (the core's ``Limiter``)."""

    unlimited = False

    def __init__(self, actor: Any) -> None:
        self._actor = actor

    async def acquire(self, tokens: int) -> None:
        wait: float = await self._actor.acquire.remote(tokens)
        if wait > 0:
            await asyncio.sleep(wait)

    def release(self) -> None:
        self._actor.release.remote()

    def settle(self, estimated: int, actual: int) -> None:
        self._actor.settle.remote(estimated, actual)


class Unlimited:
    unlimited = True

    async def acquire(self, tokens: int) -> None:
        return None

    def release(self) -> None:
        return None

    def settle(self, estimated: int, actual: int) -> None:
        return None


def start_limit_actors(ray: Any, hub: Hub, job_id: str) -> list[Any]:
    """One actor for each alias of the catalog with ``limits:`` (before any task asks)."""
    actors = []
    remote = ray.remote(LimitsActor)
    for alias in hub.catalog.models:
        limits = alias_limits(hub, alias)
        if limits is None:
            continue
        actors.append(
            remote.options(
                name=actor_name(job_id, alias),
                namespace=NAMESPACE,
                get_if_exists=True,
                num_cpus=0,
                max_concurrency=10_000,
            ).remote(limits.requests_per_minute, limits.tokens_per_minute, limits.concurrency)
        )
    return actors
