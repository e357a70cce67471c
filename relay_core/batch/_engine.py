"""An engine job run to its end: by the core's own runner here, or by a plugin's.

The core's runner answers the requests in this process (:mod:`._pool`), handing each
result to the :class:`~relay_core.batch.runners.JobRun` as it arrives. Whichever runner
answers, the job ends the same way: every result recorded, then ``results.jsonl``
written in request order, the job ``completed`` or ``cancelled``.

``responses.jsonl`` is the truth: a process killed mid-job leaves at most one torn line
at its end, which :func:`~relay_core.batch.runners.recover` cuts off before the next run
skips every request already answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from relay_core.batch._jobs import finalize
from relay_core.batch._pool import answer_all
from relay_core.batch.runners import EngineStats, JobRun, job_runners, recover
from relay_core.errors import ConfigError
from relay_core.types import ErrorInfo

if TYPE_CHECKING:
    from relay_core.batch._cache import WorkspaceCache
    from relay_core.batch._progress import ProgressBar
    from relay_core.batch._workspace import Workspace
    from relay_core.hub import Hub

__all__ = ["LOCAL", "EngineStats", "recover", "run_engine"]

#: The core's own runner: this process.
LOCAL = "engine"
# Runners the project ships as plugins, for the message when one is missing.
_KNOWN = {"ray": "relay-ray"}


def runner_of(hub: Hub, name: str) -> Any:
    """The runner called ``name``, or a :class:`ConfigError` naming what to install."""
    runners = job_runners(hub)
    found = runners.get(name)
    if found is None:
        package = _KNOWN.get(name)
        install = f"pip install {package}" if package else "install the plugin that offers it"
        offered = ", ".join(["auto", "batch", LOCAL, *sorted(runners)])
        raise ConfigError(
            f"mode {name!r} is no job runner installed here ({install}); modes: {offered}"
        )
    return found


async def run_engine(
    ws: Workspace,
    hub: Hub,
    job_id: str,
    *,
    concurrency: int,
    cache: WorkspaceCache | None,
    progress: ProgressBar | None = None,
    retry_failed: bool = True,
    runner: str = LOCAL,
    options: Mapping[str, Any] | None = None,
) -> EngineStats:
    """Answer every request of ``job_id`` not answered yet, then write its results.

    ``retry_failed`` also re-runs requests whose earlier failure was retryable (a rate
    limit that outlasted the retries, a timeout). ``runner`` names who answers them
    (``options`` are its own). The caller holds the job's lease.
    """
    run_by = None if runner == LOCAL else runner_of(hub, runner)
    run = JobRun(
        ws,
        hub,
        job_id,
        concurrency=concurrency,
        options=options,
        # A shared workspace's cache file is no place for a cluster's workers.
        cache=cache if run_by is None else None,
        progress=progress,
        retry_failed=retry_failed,
    )
    try:
        if run.pending:
            await (_run_here(run) if run_by is None else run_by(run))
    finally:
        run.close()
    if run.cancelled or ws.heartbeat(job_id):
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
    return run.stats


async def _run_here(run: JobRun) -> None:
    """The core's runner: the pool in this process, checkpointing while it works."""
    pool = asyncio.create_task(
        answer_all(
            run.hub,
            run.unanswered(),
            run.deliver_fresh,
            concurrency=run.concurrency,
            cache=run.cache,
            job_id=run.job_id,
        )
    )
    try:
        while not pool.done():
            await asyncio.wait([pool], timeout=0.5)
            # Only a fault of the engine itself (a full disk) ends the pool early; it
            # stops the run, and resume() carries on from what reached the disk.
            if await run.checkpoint():
                break
        if pool.done():
            pool.result()
    finally:
        pool.cancel()
        await asyncio.gather(pool, return_exceptions=True)
