"""What runs on a Ray worker: one shard of a job answered through the core's engine pool.

A worker process builds its hub once, from the job's catalog file (never a pickled
catalog: credentials resolve from each node's own environment), and keeps it for every
shard it runs. A shard reads its byte range of ``requests.jsonl``, skips requests
already answered (those the driver knew of, and those its earlier attempts wrote to
part files), and writes each result to a new part file as it arrives.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from relay_core import Hub
from relay_core.plugin import BatchItem, RateLimiter, answer_requests, result_line
from relay_ray.limits import NAMESPACE, ClusterLimiter, actor_name
from relay_ray.parts import PartStore, part_prefix

__all__ = ["Shard", "answer_shard"]

_HUBS: dict[str | None, Hub] = {}


@attrs.frozen
class Shard:
    """Requests ``first``.. of a job: bytes ``start`` to ``end`` of ``requests``;
    ``skip[i]`` is 1 when request ``first + i`` was answered before the run."""

    job_id: str
    requests: str
    first: int
    start: int
    end: int
    skip: bytes
    storage: str
    catalog: str | None
    concurrency: int
    limited: tuple[str, ...]


def _hub(catalog: str | None) -> Hub:
    hub = _HUBS.get(catalog)
    if hub is None:
        hub = _HUBS[catalog] = Hub.from_yaml(Path(catalog)) if catalog else Hub()
    return hub


def _lines(shard: Shard, done: set[int]) -> Iterator[tuple[int, bytes]]:
    with open(shard.requests, "rb") as file:
        file.seek(shard.start)
        index = shard.first
        position = shard.start
        while position < shard.end:
            line = file.readline()
            if not line:
                break
            position += len(line)
            if not shard.skip[index - shard.first] and index not in done:
                yield index, line
            index += 1


def answer_shard(shard: Shard) -> int:
    """Answer the shard's unanswered requests; how many this attempt answered."""
    import ray

    store = PartStore(shard.storage)
    done = set(store.answered(part_prefix(shard.first)))
    hub = _hub(shard.catalog)
    attempt = f"{os.getpid()}-{secrets.token_hex(4)}"
    actors = {
        alias: ray.get_actor(actor_name(shard.job_id, alias), namespace=NAMESPACE)
        for alias in shard.limited
    }
    # Before any call: frees what an earlier attempt of this shard, killed, still held.
    ray.get([actor.begin.remote(shard.first, attempt) for actor in actors.values()])
    limiters = {
        alias: ClusterLimiter(actor, shard.first, attempt) for alias, actor in actors.items()
    }

    def limiter_for(alias: str) -> Any:
        # No limits: skipped without a round trip.
        return limiters.get(alias) or RateLimiter()

    answered = 0
    with store.open_new(shard.first, attempt) as part:

        def deliver(index: int, item: BatchItem) -> None:
            nonlocal answered
            line = json.dumps(result_line(index, item), separators=(",", ":"))
            part.write(line.encode() + b"\n")  # one write: a kill tears at most this line
            part.flush()
            answered += 1

        hub.run_sync(
            answer_requests(
                hub,
                _lines(shard, done),
                deliver,
                concurrency=shard.concurrency,
                limiter_for=limiter_for,
                job_id=shard.job_id,
            )
        )
    return answered
