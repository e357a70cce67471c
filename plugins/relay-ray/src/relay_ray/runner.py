"""The driver of a job on Ray: shards out, results back.

The driver reads the job's ``requests.jsonl`` once, as a stream, cutting it into byte
ranges of ``shard_requests`` requests; each range with requests still to answer becomes
a Ray task (:func:`relay_ray.worker.answer_shard`), at most ``workers`` at a time.
Workers write results to part files; the driver tails them and delivers each result to
the job (which drops a second result for the same request), checkpointing as it goes,
so progress, cost and cancellation work as for the local engine. A task whose worker
died is retried by Ray (``max_retries``) and skips what its part files hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

from relay_core.plugin import ConfigError, JobError, JobRun, item_of
from relay_ray.limits import NAMESPACE, start_limit_actors
from relay_ray.parts import PartStore, part_prefix
from relay_ray.worker import Shard, answer_shard

__all__ = ["RayOptions", "run_on_ray"]

_TAIL_SECONDS = 0.25
_OPTIONS = ("address", "workers", "shard_requests", "storage", "max_retries")


class RayUnavailable(JobError):
    """The Ray cluster a job names cannot be reached."""


class RayOptions:
    """The runner options of a job, checked: ``address`` (``auto``, ``HOST:PORT`` or
    ``ray://HOST:PORT``), ``workers`` (shards at once; default: the cluster's CPUs),
    ``shard_requests`` (requests per shard, default 1000), ``storage`` (where part
    files go: a path every node reads, or an fsspec URL; default ``job_dir/ray``),
    ``max_retries`` (of a shard whose worker died, default 3)."""

    def __init__(self, job: JobRun) -> None:
        given = dict(job.options)
        unknown = sorted(set(given) - set(_OPTIONS))
        if unknown:
            raise ConfigError(
                f"job {job.job_id!r}: unknown relay-ray option(s) {', '.join(unknown)}; "
                f"options: {', '.join(_OPTIONS)}"
            )
        self.address = str(given.get("address") or "auto")
        self.workers = _positive(job.job_id, given, "workers", None)
        self.shard_requests = _positive(job.job_id, given, "shard_requests", 1000) or 1000
        self.max_retries = _positive(job.job_id, given, "max_retries", 3, zero=True)
        self.storage = str(given.get("storage") or (job.job_dir / "ray" / "parts"))


def _positive(
    job_id: str, given: dict[str, Any], name: str, default: int | None, *, zero: bool = False
) -> int | None:
    value = given.get(name, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if zero else 1):
        raise ConfigError(
            f"job {job_id!r}: relay-ray option {name} must be a whole number "
            f"{'>= 0' if zero else '> 0'}, not {value!r}"
        )
    return value


def _check_reachable(job_id: str, address: str) -> None:
    """Fail fast on an address nothing listens on (Ray itself retries for a minute)."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return
    except (OSError, ValueError) as error:
        raise RayUnavailable(
            f"job {job_id!r}: no Ray cluster answers at {address!r} ({error}); start one "
            "(`ray start --head`) or give its address with --address",
            job_id=job_id,
        ) from None


def _connect(job_id: str, address: str) -> Any:
    import ray

    _check_reachable(job_id, address)
    # ray.init runs off the main thread (it blocks), where it warns that it leaves the
    # process's SIGTERM handler alone: which is what Relay wants.
    quiet = logging.getLogger("ray._private.worker")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        # A connection that failed half way leaves Ray's global state behind, which
        # would break the next job's ray.init in this process.
        with contextlib.suppress(Exception):
            ray.shutdown()
        raise RayUnavailable(
            f"job {job_id!r}: cannot join the Ray cluster at {address!r}: {error}",
            job_id=job_id,
        ) from None
    finally:
        quiet.setLevel(level)
    return ray


def shards(job: JobRun, options: RayOptions) -> Iterator[Shard]:
    """The job's shards with requests still to answer, read from the file as a stream."""
    limited = tuple(
        alias for alias, model in job.hub.catalog.models.items() if model.limits is not None
    )

    def shard(first: int, stop: int, start: int, end: int) -> Shard | None:
        """Requests ``first`` to ``stop`` (bytes ``start`` to ``end``), unless all
        of them are answered already."""
        skip = bytes(job.is_answered(i) for i in range(first, stop))
        if all(skip):
            return None
        return Shard(
            job_id=job.job_id,
            requests=str(job.requests_path),
            first=first,
            start=start,
            end=end,
            skip=skip,
            storage=options.storage,
            catalog=str(job.catalog_path) if job.catalog_path else None,
            concurrency=job.concurrency,
            limited=limited,
        )

    first = start = position = index = 0
    with job.requests_path.open("rb") as file:
        for line in file:
            position += len(line)
            index += 1
            if index - first == options.shard_requests:
                found = shard(first, index, start, position)
                if found is not None:
                    yield found
                first, start = index, position
    if index > first:
        found = shard(first, index, start, position)
        if found is not None:
            yield found


class _Tail:
    """Reads the part files as they grow and delivers what they hold.

    Reading (file or object-store I/O) runs off the event loop; delivering runs on it,
    where the job's other calls run: a :class:`JobRun` is used from one thread only.
    """

    def __init__(self, job: JobRun, store: PartStore) -> None:
        self._job = job
        self._store = store
        self._offsets: dict[str, int] = {}
        # Shards whose tasks ended and whose part files were read to their end since:
        # a job of many shards would otherwise reopen every file on every tail.
        self._finished: set[str] = set()

    def finished(self, shard: Shard) -> None:
        """Read no more of ``shard``'s part files (call after a tail that followed the
        end of its task)."""
        self._finished.add(part_prefix(shard.first))

    def _read(self) -> list[bytes]:
        new: list[bytes] = []
        for name in self._store.names():
            if name[: len(part_prefix(0))] in self._finished:
                continue
            lines, self._offsets[name] = self._store.read_from(name, self._offsets.get(name, 0))
            new += lines
        return new

    async def __call__(self) -> int:
        delivered = 0
        for line in await asyncio.to_thread(self._read):
            data = _json(line)
            if data is not None and self._job.deliver(int(data["index"]), item_of(data)):
                delivered += 1
        return delivered


def _gist(error: BaseException) -> str:
    # A task's error carries the worker's whole traceback; the user gets its gist.
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else ""


def _json(line: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None  # cut by a kill, then followed by a newer attempt's lines
    return data if isinstance(data, dict) and "index" in data else None


async def run_on_ray(job: JobRun) -> None:
    """Answer every unanswered request of ``job`` on the cluster; return when all are
    delivered or the job was cancelled."""
    options = RayOptions(job)
    store = PartStore(options.storage)
    await asyncio.to_thread(store.make)
    tail = _Tail(job, store)
    # Results a dead driver left in part files count first: nothing is asked twice.
    await tail()
    if await job.checkpoint():
        return
    ray = await asyncio.to_thread(_connect, job.job_id, options.address)
    try:
        await _drive(ray, job, options, tail)
    finally:
        await asyncio.to_thread(ray.shutdown)


async def _drive(ray: Any, job: JobRun, options: RayOptions, tail: _Tail) -> None:
    actors = start_limit_actors(ray, job.hub, job.job_id)
    workers = options.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(answer_shard).options(
        num_cpus=1, max_retries=options.max_retries, retry_exceptions=False
    )
    todo = shards(job, options)
    running: dict[Any, Shard] = {}
    last_checkpoint = 0.0
    try:
        while True:
            while len(running) < workers and (shard := next(todo, None)) is not None:
                running[task.remote(shard)] = shard
            if not running:
                break
            ready, _ = await asyncio.to_thread(
                ray.wait, list(running), num_returns=len(running), timeout=_TAIL_SECONDS
            )
            await tail()
            for ref in ready:
                shard = running.pop(ref)
                try:
                    await asyncio.to_thread(ray.get, ref)
                except Exception as error:
                    raise JobError(
                        f"job {job.job_id!r}: the shard of requests {shard.first}.. failed on "
                        f"the cluster ({type(error).__name__}: {_gist(error)}); "
                        "`relay batch resume` carries on from the results kept",
                        job_id=job.job_id,
                    ) from None
                tail.finished(shard)
            if time.monotonic() - last_checkpoint >= _TAIL_SECONDS:
                last_checkpoint = time.monotonic()
                if await job.checkpoint():
                    return
        await tail()
        await job.checkpoint()
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        for actor in actors:
            ray.kill(actor)
