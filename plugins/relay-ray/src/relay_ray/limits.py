"""Cluster-wide rate limits: one Ray actor per job and model alias, shared by every
worker of the job.

The actor holds the engine's own :class:`~relay_core.plugin.RateLimiter` (token
buckets for requests and tokens per minute, a cap on calls in flight, calls starting in
the order they asked), so the cluster keeps an alias's ``limits:`` exactly as one
process does. A worker's call costs one round trip to the actor, which answers when
the call may start; the actor is async, so a waiting call never holds up another
worker's ``release`` or ``settle``.

A worker killed mid-shard cannot release the places its calls held, and Ray runs the
shard again elsewhere. So the actor counts the places each attempt of a shard holds,
and an attempt's :meth:`LimitsActor.begin` frees those of the shard's earlier attempt:
Ray starts a task again only once the worker of the last attempt is gone. Without this,
each kill would narrow the alias's ``concurrency`` for the rest of the job, and a kill
that took all of it would stop the job.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from relay_core.plugin import RateLimiter, alias_limits

if TYPE_CHECKING:
    from relay_core import Hub

__all__ = ["ClusterLimiter", "LimitsActor", "actor_name", "start_limit_actors"]

NAMESPACE = "relay"


def actor_name(job_id: str, alias: str) -> str:
    return f"relay-limits/{job_id}/{alias}"


class LimitsActor:
    """The limits of one alias for a whole job, and the places in flight each attempt
    of a shard holds."""

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        concurrency: int | None,
    ) -> None:
        self._limiter = RateLimiter(
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            concurrency=concurrency,
        )
        self._held: Counter[str] = Counter()  # places in flight, by attempt
        self._attempts: dict[int, str] = {}  # each shard's live attempt

    async def begin(self, shard: int, attempt: str) -> None:
        """``attempt`` of the shard starting at request ``shard`` begins: the places an
        earlier attempt of the shard still holds are freed, its worker being dead."""
        earlier = self._attempts.get(shard)
        self._attempts[shard] = attempt
        if earlier is not None and earlier != attempt:
            for _ in range(self._held.pop(earlier, 0)):
                self._limiter.release()

    async def acquire(self, tokens: int, shard: int, attempt: str) -> None:
        """Wait until a call of about ``tokens`` may start, then take its share of the
        alias's limits for ``attempt``; calls start in the order they asked. Returns
        ``None``: its answer reaching the worker is the go-ahead."""
        await self._limiter.acquire(tokens)
        if self._attempts.get(shard, attempt) != attempt:
            # Granted after the asker died and its shard began again: nobody will
            # release it.
            self._limiter.release()
            return
        self._held[attempt] += 1

    async def release(self, attempt: str) -> None:
        """Free the place of a call of ``attempt`` that ended among the calls in flight."""
        if self._held[attempt] > 0:  # else freed already by the shard's next attempt
            self._held[attempt] -= 1
            self._limiter.release()

    async def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once a call's usage is known: ``actual`` tokens
        (input and output) instead of the ``estimated`` ones :meth:`acquire` took; an
        ``actual`` of 0 (no usage reported) changes nothing."""
        self._limiter.settle(estimated, actual)


class ClusterLimiter:
    """A worker's handle on an alias's :class:`LimitsActor` (the core's ``Limiter``),
    for one attempt of one shard: :meth:`LimitsActor.begin` first."""

    unlimited = False

    def __init__(self, actor: Any, shard: int, attempt: str) -> None:
        self._actor = actor
        self._shard = shard
        self._attempt = attempt

    async def acquire(self, tokens: int) -> None:
        """Wait until the actor lets a call of about ``tokens`` start: one round trip,
        the estimate sent, the go-ahead received. Raises what Ray raises when the actor
        is gone (a :class:`ray.exceptions.RayActorError`)."""
        await self._actor.acquire.remote(tokens, self._shard, self._attempt)

    def release(self) -> None:
        """Tell the actor that a call ended, freeing its place among those in flight.
        Returns at once, without waiting for the actor: a failure is not raised here."""
        self._actor.release.remote(self._attempt)

    def settle(self, estimated: int, actual: int) -> None:
        """Send a call's ``estimated`` and ``actual`` token counts to the actor, which
        corrects its token bucket. Returns at once, without waiting for the actor."""
        self._actor.settle.remote(estimated, actual)


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
