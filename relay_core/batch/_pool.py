"""The engine's pool: stored requests answered concurrently through the hub.

Lines stream from any (async) iterable through a bounded queue to ``concurrency``
workers, so memory stays flat however many requests come. Each worker waits for its
model's limiter, answers from the response cache when it can, and otherwise calls
through the hub, whose retries honour ``Retry-After``. A request that fails is a failed
result, never a reason to stop: only a fault of the caller's ``deliver`` (a full disk)
ends the pool.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from relay_core.batch._inputs import JobRequest
from relay_core.batch._limits import RateLimiter, estimate_tokens
from relay_core.caching import cache_key, served_from_cache
from relay_core.embeddings import EmbeddingRequest, EmbeddingResponse
from relay_core.errors import RelayError
from relay_core.log import get_logger
from relay_core.serialize import structure
from relay_core.types import BatchItem, ErrorInfo, Request, Response

if TYPE_CHECKING:
    from relay_core.batch._cache import WorkspaceCache
    from relay_core.hub import Hub

__all__ = ["Deliver", "Limiter", "Lines", "answer_all"]

Answer = Response | EmbeddingResponse
Lines = Iterable[tuple[int, bytes]] | AsyncIterable[tuple[int, bytes]]
# (index, result, the cache key a fresh answer should be stored under)
Deliver = Callable[[int, BatchItem, "str | None"], object]


class Limiter(Protocol):
    """The rate limits of one model alias, shared by every worker that calls it.

    ``acquire(tokens)`` waits until a call of about ``tokens`` may start and takes its
    share; ``release()`` ends the call (its place among those in flight);
    ``settle(estimated, actual)`` corrects the token share once the provider reported
    the usage. ``unlimited`` limiters are skipped without an estimate.
    """

    unlimited: bool

    async def acquire(self, tokens: int) -> None:
        """Wait until a call estimated at ``tokens`` tokens may start, then take its
        share: one request, ``tokens`` tokens, a place among the calls in flight. Not
        called when :attr:`unlimited` is true. Every acquire that returns is followed by
        one :meth:`release`, whether the call succeeded or not."""

    def release(self) -> None:
        """End a call that :meth:`acquire` let start, giving back its place among the
        calls in flight. Called on the event loop: it must not block."""

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token share of a call that was answered: ``estimated`` is what
        :meth:`acquire` took, ``actual`` the input and output tokens the provider
        reported (0 when it reported none). Called after :meth:`release`, only for an
        answer, on the event loop: it must not block."""


async def answer_all(
    hub: Hub,
    lines: Lines,
    deliver: Deliver,
    *,
    concurrency: int,
    limiter_for: Callable[[str], Limiter] | None = None,
    cache: WorkspaceCache | None = None,
    job_id: str | None = None,
) -> None:
    """Answer every ``(index, line)`` of ``lines`` and hand each result to ``deliver``
    as it arrives (out of order), ``concurrency`` calls at a time."""
    concurrency = max(1, concurrency)
    queue: asyncio.Queue[tuple[int, JobRequest] | None] = asyncio.Queue(maxsize=concurrency * 2)
    limiters: dict[str, Limiter] = {}

    def limiter(alias: str) -> Limiter:
        found = limiters.get(alias)
        if found is None:
            make = limiter_for or (lambda name: RateLimiter.for_alias(hub, name))
            found = limiters[alias] = make(alias)
        return found

    async def offer(index: int, line: bytes) -> None:
        try:
            request = stored_request(json.loads(line))
        except Exception as error:  # one bad line fails one request, not the job
            deliver(index, unreadable(line, error), None)
            return
        await queue.put((index, request))

    async def produce() -> None:
        if isinstance(lines, AsyncIterable):
            async for index, line in lines:
                await offer(index, line)
        else:
            for index, line in lines:
                await offer(index, line)
        for _ in range(concurrency):
            await queue.put(None)

    async def work() -> None:
        while (job := await queue.get()) is not None:
            index, request = job
            deliver(index, *await _answer(hub, request, cache, limiter, job_id))

    tasks = [asyncio.create_task(produce())]
    tasks += [asyncio.create_task(work()) for _ in range(concurrency)]
    try:
        # The first task to fail (a full disk in deliver) ends the pool with its error.
        for finished in asyncio.as_completed(tasks):
            await finished
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _answer(
    hub: Hub,
    request: JobRequest,
    cache: WorkspaceCache | None,
    limiter_of: Callable[[str], Limiter],
    job_id: str | None,
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
        limiter = limiter_of(handle.alias)
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
    # Split by type for the type checker: served_from_cache keeps the type it is given.
    if isinstance(hit, EmbeddingResponse):
        return served_from_cache(hit, custom_id, latency=0.0)
    return served_from_cache(hit, custom_id, latency=0.0)


def _item(custom_id: str, answer: Answer) -> BatchItem:
    if isinstance(answer, EmbeddingResponse):
        return BatchItem(custom_id, embedding=answer)
    return BatchItem(custom_id, response=answer)


def stored_request(data: dict[str, Any]) -> JobRequest:
    """A request as ``requests.jsonl`` holds it, of the kind it was stored as."""
    if "inputs" in data:
        return structure(data, EmbeddingRequest)
    return structure(data, Request)


def unreadable(line: bytes, error: Exception) -> BatchItem:
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
