"""``AsyncRelayClient`` and ``RelayClient``: batch jobs in a workspace directory.

The async client does the work; the sync client runs it on the hub's private event
loop thread, so it also works inside a program that already runs an event loop.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from relay_core.batch import _engine, _provider
from relay_core.batch._cache import WorkspaceCache
from relay_core.batch._inputs import iter_requests, normalise
from relay_core.batch._jobs import finalize, ingest, read_item
from relay_core.batch._progress import ProgressBar
from relay_core.batch._storage import storage_errors
from relay_core.batch._types import FINISHED, Job, JobRef, job_id_of
from relay_core.batch._workspace import Workspace, check_job_id
from relay_core.batch.stores import WorkspaceStore
from relay_core.batching import jsonl_line
from relay_core.config import Catalog
from relay_core.errors import BatchInputError, JobConflict, ResultsNotReady
from relay_core.hub import Hub
from relay_core.serialize import unstructure
from relay_core.types import BatchItem, ErrorInfo

if TYPE_CHECKING:
    from relay_core.batch._cache import WorkspaceCache
    from relay_core.batch._engine import EngineStats
    from relay_core.config import Catalog
    from relay_core.hub import Hub

__all__ = ["AsyncRelayClient", "RelayClient"]

# Or the name of a job runner a plugin offers ("ray"): the engine, run by it.
Mode = Literal["auto", "batch", "engine"] | str
_BUILT_IN_MODES = ("auto", "batch", "engine")
# A job's runner options, kept in its directory so that a resume reuses them.
_RUNNER_OPTIONS = "runner.json"
Requests = Iterable[Any] | str | os.PathLike[str]


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _on_disk(method: F) -> F:
    """``method``, with a full disk or a read-only workspace said in one line (a
    :class:`WorkspaceError`) instead of an ``OSError`` from deep inside a job."""

    @functools.wraps(method)
    async def wrapper(self: AsyncRelayClient, *args: Any, **kwargs: Any) -> Any:
        with storage_errors(self.workspace.given):
            return await method(self, *args, **kwargs)

    return cast(F, wrapper)


def _new_job_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"job-{stamp}-{os.urandom(3).hex()}"


def _build_hub(config: str | os.PathLike[str] | Catalog | None, hub: Hub | None) -> Hub:
    if hub is not None:
        return hub
    if config is None:
        return Hub()
    if isinstance(config, Catalog):
        return Hub(config)
    return Hub.from_yaml(Path(config))


class AsyncRelayClient:
    """Batch jobs over a workspace directory.

    ``config`` is a catalog file or :class:`Catalog` (default: none, so
    ``provider/model`` strings work with keys from the usual environment variables);
    ``hub`` gives an existing :class:`Hub` instead. Any number of clients, in any number
    of processes, may share one directory.

    The directory is created when missing, unless ``create=False``: then a directory
    that holds no workspace is a :class:`WorkspaceError` (``missing``), which is what a
    program that only follows jobs wants for a mistyped path. A path that cannot hold a
    workspace is a :class:`WorkspaceError` either way, with nothing changed on disk.

    ``store`` is where the job records live: ``None`` for SQLite in the directory, or a
    URL a store plugin handles (``postgresql://user@host/db`` with ``relay-postgres``,
    or ``$env.NAME`` to read it from the environment), so that clients on several
    machines sharing the directory share the jobs.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] = "relay-jobs",
        config: str | os.PathLike[str] | Catalog | None = None,
        *,
        hub: Hub | None = None,
        cache: bool = True,
        create: bool = True,
        store: str | WorkspaceStore | None = None,
    ) -> None:
        self.hub = _build_hub(config, hub)
        self._own_hub = hub is None
        try:
            self.workspace = Workspace(
                directory, create=create, store=store, plugins=self.hub.plugins
            )
        except BaseException:
            if self._own_hub:
                self.hub.close()
            raise
        self._cache_enabled = cache
        self._cache: WorkspaceCache | None = None
        self.last_engine_stats: EngineStats | None = None

    @property
    def directory(self) -> Path:
        """The workspace directory."""
        return self.workspace.directory

    def _response_cache(self) -> WorkspaceCache | None:
        if not self._cache_enabled:
            return None
        if self._cache is None:
            self._cache = WorkspaceCache(self.directory / "cache.db")
        return self._cache

    # -- submitting -----------------------------------------------------------------------

    @_on_disk
    async def submit_batch(
        self,
        requests: Requests,
        *,
        job_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        description: str | None = None,
        mode: Mode = "auto",
        overwrite: bool = False,
        concurrency: int = 8,
        progress: bool = False,
        runner_options: Mapping[str, Any] | None = None,
    ) -> Job:
        """Start a job; return it as the workspace now knows it.

        ``requests`` are :class:`BatchRequest` or :class:`Request` values, mappings of
        either shape, or the path of a JSONL file of mappings; each needs a unique id.
        ``model`` (an alias or ``provider/model``) is the default for requests naming
        none; ``provider`` may give it too, or name the provider every request must use.

        ``mode="batch"`` submits to the providers' batch APIs (split to their limits)
        and returns once they accepted; ``"engine"`` answers every request here,
        ``concurrency`` at a time, and returns when the job is done; ``"auto"`` picks
        batch when every model's provider has a batch API. Any other ``mode`` names a
        job runner a plugin offers (``"ray"`` with relay-ray): the job runs in the
        engine, answered by that runner, which reads ``runner_options`` (for Ray, the
        cluster's ``address``); they are kept with the job for :meth:`resume`.

        Submitting an id again resumes the job when its previous run died before it
        was submitted (same requests needed); a job still running elsewhere or waiting
        on its provider is a :class:`JobConflict`, and so is a finished one unless
        ``overwrite``.
        """
        job_id = check_job_id(_new_job_id() if job_id is None else job_id)
        runner = None if mode in _BUILT_IN_MODES else mode
        if runner is not None:
            _engine.runner_of(self.hub, runner)  # a missing plugin, before anything is stored
        default_model, required_provider = self._defaults(provider, model)
        previous = self.workspace.start(
            job_id,
            mode="batch" if runner is None and mode != "engine" else "engine",
            model=default_model,
            description=description,
            overwrite=overwrite,
        )
        try:
            if previous is not None and previous["status"] != "preparing":
                self._check_same(previous, requests, default_model, required_provider)
            else:
                stored = ingest(
                    self.workspace,
                    self.hub,
                    job_id,
                    requests,
                    default_model=default_model,
                    mode="engine" if runner is not None else mode,
                    provider=required_provider,
                )
                self._check_provider(job_id, required_provider)
                if runner is not None:
                    self._keep_runner_options(job_id, runner_options)
                self.workspace.update(
                    job_id,
                    n_requests=stored.count,
                    digest=stored.digest,
                    mode=runner or stored.mode,
                    providers=",".join(stored.providers),
                    status="running" if stored.mode == "engine" else "submitting",
                )
        except BaseException:
            row = self.workspace.row(job_id)
            if row["status"] == "preparing":
                self.workspace.forget(job_id)
            else:
                self.workspace.release(job_id)
            raise
        return await self._continue(job_id, concurrency=concurrency, progress=progress)

    @_on_disk
    async def resume(
        self,
        job_id: JobRef,
        *,
        concurrency: int = 8,
        progress: bool = False,
        runner_options: Mapping[str, Any] | None = None,
    ) -> Job:
        """Continue a job whose process died: submit what was not submitted (finding
        provider batches already created), or answer what the engine had not.
        ``runner_options`` override those a runner's job was submitted with."""
        job_id = job_id_of(job_id)
        row = self.workspace.claim(check_job_id(job_id))
        if row["status"] == "preparing":
            self.workspace.release(job_id)
            raise JobConflict(
                f"job {job_id!r} died while its requests were being stored; submit it "
                "again with the same requests (submit_batch with job_id) to start over",
                job_id=job_id,
                status="preparing",
            )
        if row["status"] not in ("submitting", "running"):
            self.workspace.release(job_id)
            return await self.get_job(job_id)
        if runner_options is not None and row["mode"] not in _BUILT_IN_MODES:
            self._keep_runner_options(job_id, {**self._runner_options(job_id), **runner_options})
        return await self._continue(job_id, concurrency=concurrency, progress=progress)

    def _keep_runner_options(self, job_id: str, options: Mapping[str, Any] | None) -> None:
        path = self.workspace.job_dir(job_id) / _RUNNER_OPTIONS
        try:
            text = json.dumps(dict(options or {}), sort_keys=True)
        except TypeError as error:
            raise BatchInputError(
                f"runner_options must be JSON values (they are kept with the job): {error}",
                job_id=job_id,
            ) from None
        path.write_text(text + "\n", encoding="utf-8")

    def _runner_options(self, job_id: str) -> dict[str, Any]:
        path = self.workspace.job_dir(job_id) / _RUNNER_OPTIONS
        if not path.exists():
            return {}
        options: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return options

    async def _continue(self, job_id: str, *, concurrency: int, progress: bool) -> Job:
        row = self.workspace.row(job_id)
        try:
            if row["mode"] != "batch":
                bar = None
                if progress:
                    bar = ProgressBar(label=f"{job_id} ")
                self.hub.pipeline.audit_job("job.started", job_id, requests=row["n_requests"])
                self.last_engine_stats = await _engine.run_engine(
                    self.workspace,
                    self.hub,
                    job_id,
                    concurrency=max(1, concurrency),
                    cache=self._response_cache(),
                    progress=bar,
                    runner=row["mode"],
                    options=self._runner_options(job_id),
                )
                done = self.workspace.job(self.workspace.row(job_id))
                self.hub.pipeline.audit_job(
                    "job.finished",
                    job_id,
                    cost=done.cost,
                    status=done.status,
                    completed=done.counts.completed,
                    failed=done.counts.failed,
                )
            else:
                await _provider.submit_chunks(self.workspace, self.hub, job_id)
        finally:
            self.workspace.release(job_id)
        return self.workspace.job(self.workspace.row(job_id))

    def _defaults(self, provider: str | None, model: str | None) -> tuple[str | None, str | None]:
        """The default model and the provider every request must use, from the call."""
        if provider is None:
            return model, None
        if model is None and ("/" in provider or provider in self.hub.catalog.models):
            return provider, None
        return model, provider

    def _check_provider(self, job_id: str, provider: str | None) -> None:
        if provider is None:
            return
        for (alias,) in self.workspace.query(
            "SELECT DISTINCT alias FROM chunks WHERE job_id = ?", (job_id,)
        ):
            actual = self.hub.get(alias).provider_name
            if actual != provider:
                raise BatchInputError(
                    f"model {alias!r} is served by {actual!r}, not by provider {provider!r}",
                    job_id=job_id,
                )

    def _check_same(
        self, row: Any, requests: Requests, default_model: str | None, provider: str | None
    ) -> None:
        """Resuming by submitting again: the requests must be the ones stored."""
        # The digest ingest() computed, over the same lines.
        digest = hashlib.sha256()
        for index, item in enumerate(iter_requests(requests)):
            request = normalise(item, index, default_model, hub=self.hub, provider=provider)
            digest.update(jsonl_line(unstructure(request)))
        if digest.hexdigest() != row["digest"]:
            raise JobConflict(
                f"job {row['job_id']!r} was interrupted with other requests; resume it "
                "with client.resume(job_id), or submit these under another id",
                job_id=row["job_id"],
                status=row["status"],
            )

    # -- watching -------------------------------------------------------------------------

    async def list_jobs(self) -> list[Job]:
        """Every job in the workspace, newest first; each is usable wherever a job id is
        taken (``client.get_job(job)``)."""
        return self.workspace.jobs()

    async def get_job(self, job_id: JobRef) -> Job:
        """The job as the workspace last recorded it (no provider call)."""
        job_id = job_id_of(job_id)
        return self.workspace.job(self.workspace.row(job_id))

    @_on_disk
    async def monitor_batch(self, job_id: JobRef) -> Job:
        """The job with fresh status and counts (asks the providers of a batch job)."""
        job_id = job_id_of(job_id)
        row = self.workspace.row(job_id)
        if row["mode"] == "batch" and row["status"] == "submitted":
            await _provider.refresh(self.workspace, self.hub, job_id)
        return await self.get_job(job_id)

    async def wait(
        self,
        job_id: JobRef,
        *,
        poll_interval: float = 2.0,
        max_interval: float = 60.0,
        timeout: float | None = None,
    ) -> Job:
        """Poll until the job is done, waiting longer between polls (up to
        ``max_interval``) as it runs; :class:`TimeoutError` after ``timeout`` seconds."""
        job_id = job_id_of(job_id)
        started = time.monotonic()
        interval = poll_interval
        while True:
            job = await self.monitor_batch(job_id)
            if job.done or job.interrupted:
                return job
            if timeout is not None and time.monotonic() - started + interval > timeout:
                raise TimeoutError(f"job {job_id!r} is still {job.status} after {timeout:g}s")
            await asyncio.sleep(interval)
            interval = min(max_interval, interval * 1.5)

    # -- results --------------------------------------------------------------------------

    async def retrieve_batch_results(
        self, job_id: JobRef, *, force_refresh: bool = False
    ) -> list[BatchItem]:
        """The job's results in request order: fetched from the providers and saved the
        first time, read from disk afterwards unless ``force_refresh``."""
        job_id = job_id_of(job_id)
        await self.retrieve(job_id, force_refresh=force_refresh)
        return list(self.iter_results(job_id))

    @_on_disk
    async def retrieve(self, job_id: JobRef, *, force_refresh: bool = False) -> Job:
        """Make sure the results are on disk (fetching them if needed); return the job."""
        job_id = job_id_of(job_id)
        row = self.workspace.row(job_id)
        if row["has_results"] and not force_refresh:
            return await self.get_job(job_id)
        if row["mode"] != "batch":
            raise ResultsNotReady(
                f"job {job_id!r} ran in the engine and is {row['status']}"
                + (": resume it (client.resume)" if row["status"] == "running" else ""),
                job_id=job_id,
                status=row["status"],
            )
        await _provider.retrieve(self.workspace, self.hub, job_id)
        return await self.get_job(job_id)

    def iter_results(self, job_id: JobRef) -> Iterator[BatchItem]:
        """The saved results, one at a time, in request order (disk only)."""
        job_id = job_id_of(job_id)
        path = self._results_path(job_id)
        with path.open("rb") as file:
            for line in file:
                yield read_item(line)

    async def get_results(self, job_id: JobRef) -> list[BatchItem]:
        """The saved results as a list (disk only; see :meth:`iter_results`)."""
        return list(self.iter_results(job_id))

    async def has_results(self, job_id: JobRef) -> bool:
        """Whether the job's results are saved in the workspace."""
        job_id = job_id_of(job_id)
        return bool(self.workspace.row(job_id)["has_results"])

    def _results_path(self, job_id: str) -> Path:
        row = self.workspace.row(job_id)
        if not row["has_results"]:
            raise ResultsNotReady(
                f"job {job_id!r} has no saved results (it is {row['status']}); "
                "retrieve_batch_results fetches them once the job is done",
                job_id=job_id,
                status=row["status"],
            )
        return self.workspace.job_dir(job_id) / "results.jsonl"

    # -- cancelling -----------------------------------------------------------------------

    @_on_disk
    async def cancel_batch(self, job_id: JobRef) -> Job:
        """Cancel the job: its provider batches, or the engine at its next checkpoint.
        Requests already answered keep their results."""
        job_id = job_id_of(job_id)
        row = self.workspace.row(job_id)
        if row["status"] in FINISHED:
            return await self.get_job(job_id)
        self.workspace.update(job_id, cancel_requested=1)
        self.hub.pipeline.audit_job("job.cancel_requested", job_id)
        if row["mode"] == "batch":
            await _provider.cancel(self.workspace, self.hub, job_id)
            await _provider.refresh(self.workspace, self.hub, job_id)
        elif not self.workspace.worker_alive(row):
            # Nobody runs it: settle it here, keeping what was answered.
            self.workspace.claim(job_id)
            try:
                _engine.recover(self.workspace, job_id)

                finalize(
                    self.workspace,
                    job_id,
                    status="cancelled",
                    unanswered=ErrorInfo("cancelled", "the job was cancelled before this ran"),
                )
            finally:
                self.workspace.release(job_id)
        return await self.get_job(job_id)

    # -- lifetime -------------------------------------------------------------------------

    def _close_files(self) -> None:
        if self._cache is not None:
            self._cache.close()
        self.workspace.close()

    async def aclose(self) -> None:
        """Close the workspace, and the hub when this client made it (also on leaving an
        ``async with`` block)."""
        self._close_files()
        if self._own_hub:
            await self.hub.aclose()

    async def __aenter__(self) -> AsyncRelayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class RelayClient:
    """The synchronous :class:`AsyncRelayClient`: the same methods, without ``await``."""

    def __init__(
        self,
        directory: str | os.PathLike[str] = "relay-jobs",
        config: str | os.PathLike[str] | Catalog | None = None,
        *,
        hub: Hub | None = None,
        cache: bool = True,
        create: bool = True,
        store: str | WorkspaceStore | None = None,
    ) -> None:
        self._client = AsyncRelayClient(
            directory, config, hub=hub, cache=cache, create=create, store=store
        )
        self.hub = self._client.hub

    @property
    def directory(self) -> Path:
        """The workspace directory."""
        return self._client.directory

    @property
    def workspace(self) -> Workspace:
        """The workspace: its jobs and their items."""
        return self._client.workspace

    @property
    def last_engine_stats(self) -> EngineStats | None:
        """What the engine measured in the last engine job this client ran, or ``None``."""
        return self._client.last_engine_stats

    def submit_batch(self, requests: Requests, **options: Any) -> Job:
        """The blocking :meth:`AsyncRelayClient.submit_batch`: the same arguments."""
        return self.hub.run_sync(self._client.submit_batch(requests, **options))

    def resume(self, job_id: JobRef, **options: Any) -> Job:
        """The blocking :meth:`AsyncRelayClient.resume`: the same arguments."""
        return self.hub.run_sync(self._client.resume(job_id, **options))

    def list_jobs(self) -> list[Job]:
        """The blocking :meth:`AsyncRelayClient.list_jobs`: the same arguments."""
        return self.hub.run_sync(self._client.list_jobs())

    def get_job(self, job_id: JobRef) -> Job:
        """The blocking :meth:`AsyncRelayClient.get_job`: the same arguments."""
        return self.hub.run_sync(self._client.get_job(job_id))

    def monitor_batch(self, job_id: JobRef) -> Job:
        """The blocking :meth:`AsyncRelayClient.monitor_batch`: the same arguments."""
        return self.hub.run_sync(self._client.monitor_batch(job_id))

    def wait(self, job_id: JobRef, **options: Any) -> Job:
        """The blocking :meth:`AsyncRelayClient.wait`: the same arguments."""
        return self.hub.run_sync(self._client.wait(job_id, **options))

    def retrieve(self, job_id: JobRef, *, force_refresh: bool = False) -> Job:
        """The blocking :meth:`AsyncRelayClient.retrieve`: the same arguments."""
        return self.hub.run_sync(self._client.retrieve(job_id, force_refresh=force_refresh))

    def retrieve_batch_results(
        self, job_id: JobRef, *, force_refresh: bool = False
    ) -> list[BatchItem]:
        """The blocking :meth:`AsyncRelayClient.retrieve_batch_results`: the same arguments."""
        return self.hub.run_sync(
            self._client.retrieve_batch_results(job_id, force_refresh=force_refresh)
        )

    def iter_results(self, job_id: JobRef) -> Iterator[BatchItem]:
        """The saved results, one at a time, in request order (disk only): as
        :meth:`AsyncRelayClient.iter_results`."""
        return self._client.iter_results(job_id)

    def get_results(self, job_id: JobRef) -> list[BatchItem]:
        """The saved results as a list, in request order (:meth:`iter_results`)."""
        return list(self._client.iter_results(job_id))

    def has_results(self, job_id: JobRef) -> bool:
        """The blocking :meth:`AsyncRelayClient.has_results`: the same arguments."""
        return self.hub.run_sync(self._client.has_results(job_id))

    def cancel_batch(self, job_id: JobRef) -> Job:
        """The blocking :meth:`AsyncRelayClient.cancel_batch`: the same arguments."""
        return self.hub.run_sync(self._client.cancel_batch(job_id))

    def close(self) -> None:
        """Close the workspace, and the hub when this client made it (also on leaving a
        ``with`` block)."""
        self._client._close_files()
        if self._client._own_hub:
            self.hub.close()

    def __enter__(self) -> RelayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
