"""Job runners: what answers an engine job, here or elsewhere.

An engine job's requests are stored in its ``requests.jsonl`` (line *i* is request *i*).
A *runner* answers them and hands each result to the :class:`JobRun` it is given; the
core records every result as it arrives and, once the runner returns, writes the job's
results in request order. The core's own runner answers them in this process; a plugin
offers others (``relay-ray`` answers them on a cluster) through
:func:`~relay_core.hookspecs.relay_register_job_runners`, and a user picks one with
``submit_batch(..., mode="ray")`` or ``relay batch submit --mode ray``.

What a runner may rely on, whatever it does:

- :meth:`JobRun.deliver` records a result durably (a line in the job's
  ``responses.jsonl``) before it returns, and drops a second result for the same request,
  so a runner that re-sends work after a failure never puts a request in the results
  twice;
- :meth:`JobRun.checkpoint` commits, renews the job's lease and says whether the job was
  cancelled; a runner calls it every second or two;
- a run that dies (the process killed, the runner raising) is resumed by
  ``relay batch resume``, which starts a new :class:`JobRun` where
  :meth:`JobRun.is_answered` is true for every request already recorded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from relay_core.batch import _checkpoints
from relay_core.batch._jobs import item_of, outcome, record_results, result_line
from relay_core.batch._limits import RateLimiter
from relay_core.batch._pool import Limiter, Lines, answer_all
from relay_core.batch._workspace import write_jsonl_line
from relay_core.errors import RelayError

if TYPE_CHECKING:
    from relay_core.batch._cache import WorkspaceCache
    from relay_core.batch._progress import ProgressBar
    from relay_core.batch._workspace import Workspace
    from relay_core.config import RateLimits
    from relay_core.hub import Hub
    from relay_core.types import BatchItem

__all__ = [
    "EngineStats",
    "JobRun",
    "JobRunner",
    "Limiter",
    "RateLimiter",
    "alias_limits",
    "answer_requests",
    "item_of",
    "job_runners",
    "result_line",
]

# Results reach the database (and the lease its heartbeat) at least this often.
_COMMIT_SECONDS = 0.5
_COMMIT_EVERY = 500


@attrs.define
class EngineStats:
    """What one run of a job did: ``called`` the provider, answered from the ``cached``
    responses, ``skipped`` as already answered by an earlier run, ``failed``."""

    called: int = 0
    cached: int = 0
    skipped: int = 0
    failed: int = 0


JobRunner = Callable[["JobRun"], Awaitable[None]]


def job_runners(hub: Hub) -> dict[str, JobRunner]:
    """The runners the installed plugins offer, by name."""
    found: dict[str, JobRunner] = {}
    hub.plugins.load()
    hub.plugins.hook.relay_register_job_runners(register=found.setdefault)
    return found


def alias_limits(hub: Hub, alias: str) -> RateLimits | None:
    """The ``limits:`` the catalog sets for ``alias`` (``None``: none)."""
    config = hub.catalog.models.get(alias)
    return config.limits if config is not None else None


async def answer_requests(
    hub: Hub,
    lines: Lines,
    deliver: Callable[[int, BatchItem], object],
    *,
    concurrency: int,
    limiter_for: Callable[[str], Limiter] | None = None,
    job_id: str | None = None,
) -> None:
    """Answer stored requests as the engine does, ``concurrency`` calls at a time.

    ``lines`` yields ``(index, line)`` with ``line`` as the job's ``requests.jsonl``
    holds it; ``deliver(index, item)`` gets each result as it arrives. A line that
    cannot be read fails its own request. ``limiter_for(alias)`` gives the limiter of a
    model alias (by default one in this process, from the catalog's ``limits:``).
    """
    await answer_all(
        hub,
        lines,
        lambda index, item, _key: deliver(index, item),
        concurrency=concurrency,
        limiter_for=limiter_for,
        job_id=job_id,
    )


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
            updates.append((*outcome(item), offset, int(data["index"])))
            offset += len(line)
            good_end = offset
            if len(updates) >= _COMMIT_EVERY:
                record_results(ws, job_id, updates)
    record_results(ws, job_id, updates)
    if good_end < path.stat().st_size:
        with path.open("r+b") as file:
            file.truncate(good_end)


class JobRun:
    """One run of an engine job, as a runner sees it.

    ``total`` requests are in ``requests_path``; ``job_dir`` is the job's directory (a
    runner keeps its own files in a folder named after it there); ``concurrency`` is
    the calls in flight the user asked for (per worker, for a runner with several);
    ``options`` are the runner's options as the user gave them (kept with the job, so a
    resume reuses them); ``catalog_path`` is the catalog file the hub was built from,
    for runners that build a hub elsewhere (``None``: a catalog built in code).
    """

    def __init__(
        self,
        ws: Workspace,
        hub: Hub,
        job_id: str,
        *,
        concurrency: int,
        options: Mapping[str, Any] | None = None,
        cache: WorkspaceCache | None = None,
        progress: ProgressBar | None = None,
        retry_failed: bool = True,
    ) -> None:
        self.job_id = job_id
        self.hub = hub
        self.concurrency = concurrency
        self.options: dict[str, Any] = dict(options or {})
        self.job_dir = ws.job_dir(job_id)
        self.requests_path = self.job_dir / "requests.jsonl"
        path = hub.catalog.path
        self.catalog_path: Path | None = Path(path).resolve() if path else None
        self.cache = cache
        self._ws = ws
        self._progress = progress
        recover(ws, job_id)
        self.total: int = ws.row(job_id)["n_requests"]
        self._answered = bytearray(self.total)
        for index, state, retryable in ws.query(
            "SELECT idx, state, retryable FROM items WHERE job_id = ? AND state IS NOT NULL",
            (job_id,),
        ):
            if state == "completed" or not (retry_failed and retryable):
                self._answered[index] = 1
        self.stats = EngineStats(skipped=sum(self._answered))
        self.pending = self.total - self.stats.skipped
        self.cancelled = False
        self._updates: list[tuple[str, int, int, int]] = []
        self._fresh: list[tuple[str, dict[str, Any]]] = []
        self._last_commit = time.monotonic()
        self._responses = (self.job_dir / "responses.jsonl").open("ab")
        ws.update(job_id, status="running")
        if progress is not None:
            progress.start(self.total, done=self.stats.skipped)

    def is_answered(self, index: int) -> bool:
        """Whether request ``index`` already has its result (in this run or before)."""
        return bool(self._answered[index])

    def unanswered(self) -> Iterator[tuple[int, bytes]]:
        """``(index, line)`` of every request still to answer, read as it goes."""
        with self.requests_path.open("rb") as file:
            for index, line in enumerate(file):
                if not self._answered[index]:
                    yield index, line

    def deliver(self, index: int, item: BatchItem) -> bool:
        """Record ``item`` as request ``index``'s result; ``False`` (and nothing
        recorded) when that request already has one."""
        return self.deliver_fresh(index, item, None)

    def deliver_fresh(self, index: int, item: BatchItem, fresh_key: str | None) -> bool:
        """:meth:`deliver`, also keeping a fresh answer in the workspace's response
        cache under ``fresh_key``."""
        if not 0 <= index < self.total:
            raise IndexError(f"job {self.job_id!r} has no request {index}")
        if self._answered[index]:
            return False
        self._answered[index] = 1
        # Written before anything else happens: an answer paid for never waits in
        # memory, so a killed process loses only the calls in flight.
        line = result_line(index, item)
        offset = write_jsonl_line(self._responses, line)
        self._updates.append((*outcome(item), offset, index))
        self._responses.flush()
        _checkpoints.reached("engine.result")
        answer = item.answer
        if answer is not None and answer.metadata.get("cached"):
            self.stats.cached += 1
        else:
            self.stats.called += 1
            if self.cache is not None and fresh_key and answer is not None:
                # The answer as the result line has it: unstructured once for both.
                self._fresh.append((fresh_key, line["response" if item.response else "embedding"]))
        if answer is None:
            self.stats.failed += 1
        if self._progress is not None:
            self._progress.advance(item)
        self.pending -= 1
        if len(self._updates) >= _COMMIT_EVERY or (
            time.monotonic() - self._last_commit >= _COMMIT_SECONDS
        ):
            self._commit()
        return True

    async def checkpoint(self) -> bool:
        """Commit what was delivered and renew the job's lease; ``True`` once the job
        was cancelled (the runner should stop: the core settles the job)."""
        self._commit()
        return self.cancelled

    def _commit(self) -> None:
        self._responses.flush()
        record_results(self._ws, self.job_id, self._updates)
        if self.cache is not None and self._fresh:
            self.cache.put_many(self._fresh)
            self._fresh.clear()
        self._last_commit = time.monotonic()
        if self._ws.heartbeat(self.job_id):
            self.cancelled = True

    def close(self) -> None:
        """Make everything delivered durable (the core calls it when the runner ends)."""
        with self._responses:
            self._responses.flush()
            os.fsync(self._responses.fileno())
            record_results(self._ws, self.job_id, self._updates)
            if self.cache is not None and self._fresh:
                self.cache.put_many(self._fresh)
                self._fresh.clear()
        if self._progress is not None:
            self._progress.finish()
