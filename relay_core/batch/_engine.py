"""The concurrent engine: a job answered here, one call per request, for any provider.

Requests stream from ``requests.jsonl`` to a bounded pool of workers and results stream
to ``responses.jsonl``, so memory stays flat however big the job. Each worker waits for
its model's rate limits (requests and tokens per minute), answers from the response
cache when it can, and otherwise calls through the hub, whose retries honour
``Retry-After``. A request that fails is recorded as failed; the job goes on.

``responses.jsonl`` is the truth: a process killed mid-job leaves at most one torn line
at its end, which :func:`recover` cuts off before the next run skips every request
already answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import TYPE_CHECKING, Any

import attrs

from relay_core.batch import _checkpoints
from relay_core.batch._inputs import JobRequest
from relay_core.batch._jobs import finalize, item_of, outcome, record_results, result_line
from relay_core.batch._limits import RateLimiter, estimate_tokens
from relay_core.batch._workspace import write_jsonl_line
from relay_core.caching import cache_key, served_from_cache
from relay_core.embeddings import EmbeddingRequest, EmbeddingResponse
from relay_core.errors import RelayError
from relay_core.log import get_logger
from relay_core.serialize import structure
from relay_core.types import BatchItem, ErrorInfo, Request, Response

if TYPE_CHECKING:
    from relay_core.batch._cache import WorkspaceCache
    from relay_core.batch._progress import ProgressBar
    from relay_core.batch._workspace import Workspace
    from relay_core.hub import Hub

__all__ = ["EngineStats", "recover", "run_engine"]

Answer = Response | EmbeddingResponse

# Results reach the database (and the lease its heartbeat) at least this often.
_COMMIT_SECONDS = 0.5
_COMMIT_EVERY = 500


@attrs.define
class EngineStats:
    """What one run of the engine did: ``called`` the provider, answered from the
    ``cached`` responses, ``skipped`` as already answered by an earlier run."""

    called: int = 0
    cached: int = 0
    skipped: int = 0
    failed: int = 0


def recover(ws: Workspace, job_id: str) -> None:
    """Make the database agree with ``responses.jsonl`` after an interrupted run.

    A torn last line (the process died mid-write) is cut off; every whole line's
    request is marked answered at its offset, the last line for a request winning.
    """
    path = ws.job_dir(job_id) / "responses.jsonl"
    if not path.exists():
        return
    updates: list[tuple[str, int, int, int]] = []
    good_end = 0
    with path.open("rb") as file:
        offset = 0
        for line in file:
            if not line.endswith(b"\n"):
                break
            try:
                data = json.loads(line)
                item = item_of(data)
            except (ValueError, RelayError, TypeError, KeyError):
                break
            state = "completed" if item.ok else "failed"
            retryable = int(bool(item.error and item.error.retryable))
            updates.append((state, retryable, offset, int(data["index"])))
            offset += len(line)
            good_end = offset
            if len(updates) >= _COMMIT_EVERY:
                record_results(ws, job_id, updates)
    record_results(ws, job_id, updates)
    if good_end < path.stat().st_size:
        with path.open("r+b") as file:
            file.truncate(good_end)


async def run_engine(
    ws: Workspace,
    hub: Hub,
    job_id: str,
    *,
    concurrency: int,
    cache: WorkspaceCache | None,
    progress: ProgressBar | None = None,
    retry_failed: bool = True,
) -> EngineStats:
    """Answer every request of ``job_id`` not answered yet, then write its results.

    ``retry_failed`` also re-runs requests whose earlier failure was retryable (a rate
    limit that outlasted the retries, a timeout). The caller holds the job's lease.
    """
    recover(ws, job_id)
    row = ws.row(job_id)
    total = row["n_requests"]
    answered = bytearray(total)
    for index, state, retryable in ws.query(
        "SELECT idx, state, retryable FROM items WHERE job_id = ? AND state IS NOT NULL",
        (job_id,),
    ):
        if state == "completed" or not (retry_failed and retryable):
            answered[index] = 1
    stats = EngineStats(skipped=sum(answered))
    ws.update(job_id, status="running")
    if progress is not None:
        progress.start(total, done=stats.skipped)

    queue: asyncio.Queue[tuple[int, JobRequest] | None] = asyncio.Queue(maxsize=concurrency * 2)
    limiters: dict[str, RateLimiter] = {}
    cancelled = False
    pending = total - stats.skipped
    all_answered = asyncio.Event()
    updates: list[tuple[str, int, int, int]] = []
    fresh: list[tuple[str, dict[str, Any]]] = []
    last_commit = time.monotonic()
    responses = (ws.job_dir(job_id) / "responses.jsonl").open("ab")

    def commit() -> None:
        nonlocal last_commit, cancelled
        responses.flush()
        record_results(ws, job_id, updates)
        if cache is not None and fresh:
            cache.put_many(fresh)
            fresh.clear()
        last_commit = time.monotonic()
        if ws.heartbeat(job_id) and not cancelled:
            cancelled = True
            all_answered.set()

    def deliver(index: int, item: BatchItem, fresh_key: str | None) -> None:
        # The worker that got the answer writes it before it asks for more: an answer
        # paid for never waits in memory, so a killed process loses only calls in flight.
        nonlocal pending
        line = result_line(index, item)
        offset = write_jsonl_line(responses, line)
        updates.append((*outcome(item), offset, index))
        responses.flush()
        _checkpoints.reached("engine.result")
        answer = item.answer
        if answer is not None and answer.metadata.get("cached"):
            stats.cached += 1
        else:
            stats.called += 1
            if cache is not None and fresh_key and answer is not None:
                # The answer as the result line has it: unstructured once for both.
                fresh.append((fresh_key, line["response" if item.response else "embedding"]))
        if answer is None:
            stats.failed += 1
        if progress is not None:
            progress.advance(item)
        pending -= 1
        if not pending:
            all_answered.set()
        if len(updates) >= _COMMIT_EVERY or time.monotonic() - last_commit >= _COMMIT_SECONDS:
            commit()

    async def produce() -> None:
        with (ws.job_dir(job_id) / "requests.jsonl").open("rb") as file:
            for index, line in enumerate(file):
                if answered[index]:
                    continue
                try:
                    request = _stored(json.loads(line))
                except Exception as error:  # one bad line fails one request, not the job
                    deliver(index, _unreadable(line, error), None)
                    continue
                await queue.put((index, request))
        for _ in range(concurrency):
            await queue.put(None)

    async def work() -> None:
        while (job := await queue.get()) is not None:
            index, request = job
            if cancelled:
                continue
            deliver(index, *await _answer(hub, request, cache, limiters, job_id))

    if not pending:
        all_answered.set()
    waiter: asyncio.Task[Any] = asyncio.create_task(all_answered.wait())
    tasks = [asyncio.create_task(produce())]
    tasks += [asyncio.create_task(work()) for _ in range(concurrency)]
    try:
        while not waiter.done():
            running = [task for task in tasks if not task.done()]
            await asyncio.wait(
                [waiter, *running], timeout=_COMMIT_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            for task in tasks:
                # Only a fault of the engine itself (a full disk) ends a task early; it
                # stops the run, and resume() carries on from what reached the disk.
                if task.done() and (error := task.exception()) is not None:
                    raise error
            if updates or time.monotonic() - last_commit >= _COMMIT_SECONDS:
                commit()
    finally:
        for task in (*tasks, waiter):
            task.cancel()
        await asyncio.gather(*tasks, waiter, return_exceptions=True)
        with responses:
            responses.flush()
            os.fsync(responses.fileno())
            record_results(ws, job_id, updates)
            if cache is not None and fresh:
                cache.put_many(fresh)
    if progress is not None:
        progress.finish()
    if cancelled:
        finalize(
            ws,
            job_id,
            status="cancelled",
            unanswered=ErrorInfo("cancelled", "the job was cancelled before this request ran"),
        )
    else:
        finalize(
            ws,
            job_id,
            status="completed",
            unanswered=ErrorInfo("NoResult", "the engine recorded no result for this request"),
        )
    return stats


async def _answer(
    hub: Hub,
    request: JobRequest,
    cache: WorkspaceCache | None,
    limiters: dict[str, RateLimiter],
    job_id: str | None = None,
) -> tuple[BatchItem, str | None]:
    """One request's result, from the cache or from one (retried) call, with the cache
    key under which a fresh answer should be stored."""
    custom_id = request.custom_id or ""
    try:
        handle = hub.resolve(request.model)
        key = None
        if cache is not None:
            key = _cache_key(handle, request)
            hit: Answer | None
            if isinstance(request, EmbeddingRequest):
                hit = cache.get_embedding(key)
            else:
                hit = cache.get(key)
            if hit is not None:
                return _item(custom_id, _served(hit, custom_id)), None
        limiter = limiters.get(handle.alias)
        if limiter is None:
            limiter = limiters[handle.alias] = RateLimiter.for_alias(hub, handle.alias)
        if limiter.unlimited:
            # Most aliases set no limits: no estimate to make, nothing to wait for.
            return _item(custom_id, await _call(hub, handle, request, job_id)), key
        estimate = estimate_tokens(request)
        await limiter.acquire(estimate)
        try:
            # The options after the wait: a deadline counts from the call, not the queue.
            answer = await _call(hub, handle, request, job_id)
        finally:
            limiter.release()
        limiter.settle(estimate, answer.usage.input_tokens + answer.usage.output_tokens)
        return _item(custom_id, answer), key
    except RelayError as error:
        # A failed request is a result, not a reason to stop the job.
        return BatchItem(custom_id, error=ErrorInfo.from_exception(error)), None
    except Exception as error:  # a plugin's bug fails its request, not the job
        get_logger("relay.engine").error(
            "plugin_error", model=request.model, custom_id=custom_id, exc_info=error
        )
        return BatchItem(custom_id, error=ErrorInfo.from_exception(error)), None


async def _call(hub: Hub, handle: Any, request: JobRequest, job_id: str | None) -> Answer:
    options = hub.pipeline.options(job_id=job_id)
    if isinstance(request, EmbeddingRequest):
        return await hub.pipeline.embed(handle, request, options)
    return await hub.pipeline.call(handle, request, options)


def _served(hit: Answer, custom_id: str) -> Answer:
    if isinstance(hit, EmbeddingResponse):
        return served_from_cache(hit, custom_id, latency=0.0)
    return served_from_cache(hit, custom_id, latency=0.0)


def _item(custom_id: str, answer: Answer) -> BatchItem:
    if isinstance(answer, EmbeddingResponse):
        return BatchItem(custom_id, embedding=answer)
    return BatchItem(custom_id, response=answer)


def _stored(data: dict[str, Any]) -> JobRequest:
    """A request as ``requests.jsonl`` holds it, of the kind it was stored as."""
    if "inputs" in data:
        return structure(data, EmbeddingRequest)
    return structure(data, Request)


def _unreadable(line: bytes, error: Exception) -> BatchItem:
    """The result of a stored request that cannot be read back (ingest should have
    refused it): failed, not retryable, named by its custom_id where that survives."""
    try:
        custom_id = str(json.loads(line).get("custom_id") or "")
    except Exception:  # the id is a courtesy; the line is already lost
        custom_id = ""
    message = f"the stored request cannot be read back: {error!r}"
    return BatchItem(custom_id, error=ErrorInfo("InvalidRequestError", message))


def _cache_key(handle: Any, request: JobRequest) -> str:
    # The concrete target, not the alias: re-pointing an alias must not serve answers
    # from the model it used to name. A group's are kept under its name (its member
    # varies per call).
    target = getattr(getattr(handle, "config", None), "target", None) or request.model
    return cache_key(target, request)
