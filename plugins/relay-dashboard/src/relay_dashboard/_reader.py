"""Reading a workspace that batch jobs are writing to, without getting in their way.

The dashboard opens ``relay.db`` read-only (``mode=ro``): it can never take SQLite's
write lock, and in WAL mode a reader never blocks a writer nor waits for one. Every read
is one short statement fetched whole, so no read transaction stays open between
requests (an open one would stop the writers' checkpoints from shrinking the WAL).

The core's :class:`relay_core.batch.WorkspaceView` turns rows into
:class:`relay_core.Job` values. Results are paged through the job's items (request order,
with each answer's byte offset in ``responses.jsonl``), so a page costs its own size
whatever the job's.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import attrs
from attrs import frozen

from relay_core import Job, ModelConfig
from relay_core.plugin import (
    BatchItem,
    Catalog,
    ConfigError,
    ItemRow,
    JobError,
    RelayError,
    WorkspaceView,
    structure,
)

if TYPE_CHECKING:
    from relay_core.plugin import ItemState

__all__ = [
    "STATUSES",
    "Filters",
    "ResultRow",
    "ResultsPage",
    "Summary",
    "WorkspaceReader",
]

# Every status a job can have, in lifecycle order, then the pseudo-status of a job whose
# worker died (``Job.interrupted``), which the status filter also offers.
STATUSES = (
    "preparing",
    "submitting",
    "submitted",
    "running",
    "completed",
    "failed",
    "cancelled",
    "expired",
)
STATUS_FILTERS = (*STATUSES, "interrupted")
RESULT_STATES = ("completed", "failed", "unanswered")
RowState = Literal["completed", "failed", "pending", "unanswered", "unreadable"]


def _read_only(directory: str | Path, store: str | None = None) -> WorkspaceView:
    """The workspace opened read-only, or a ConfigError that says what to give instead."""
    try:
        return WorkspaceView(directory, store=store)
    except JobError as error:
        if isinstance(error.__cause__, OSError | sqlite3.Error):
            raise ConfigError(str(error)) from None  # the disk refused: the path is right
        raise ConfigError(
            f"{error}; give the directory your batch jobs use (relay batch ... --workspace)"
        ) from None


class FilterError(ValueError):
    """A filter in a query string that cannot be applied; the message says which."""


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name} must be a date like 2025-01-31, not {value!r}") from None


@frozen(kw_only=True)
class Filters:
    """Which jobs to show: every given filter must match.

    ``status`` is a job status or ``interrupted``; ``since`` and ``until`` are UTC dates
    bounding the submission time, both inclusive; ``q`` is text found, ignoring case, in
    the job id or description.
    """

    status: str | None = None
    provider: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    q: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Filters:
        """Filters from a URL query; empty values mean "any". :class:`FilterError` if bad."""
        values = {key: query.get(key, "").strip() for key in ("status", "provider", "q")}
        status = values["status"] or None
        if status is not None and status not in STATUS_FILTERS:
            raise FilterError(f"status must be one of {', '.join(STATUS_FILTERS)}, not {status!r}")
        since = _date(query["since"], "since") if query.get("since") else None
        until = _date(query["until"], "until") if query.get("until") else None
        if since and until and since > until:
            raise FilterError(f"since ({since}) is after until ({until})")
        return cls(
            status=status,
            provider=values["provider"] or None,
            since=since,
            until=until,
            q=values["q"] or None,
        )

    def matches(self, job: Job) -> bool:
        if self.status == "interrupted":
            if not job.interrupted:
                return False
        elif self.status is not None and job.status != self.status:
            return False
        if self.provider is not None and self.provider not in job.providers:
            return False
        day = dt.datetime.fromtimestamp(job.submitted_at, dt.timezone.utc).date()
        if (self.since and day < self.since) or (self.until and day > self.until):
            return False
        if self.q is not None:
            needle = self.q.casefold()
            return needle in job.job_id.casefold() or needle in (job.description or "").casefold()
        return True

    def as_query(self) -> dict[str, str]:
        """The filters as URL query parameters (the ones set)."""
        pairs = {
            "status": self.status,
            "provider": self.provider,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "q": self.q,
        }
        return {key: value for key, value in pairs.items() if value}


@frozen(kw_only=True)
class Summary:
    """Totals over a list of jobs.

    ``cost`` adds the jobs whose cost is known; ``cost_unknown`` counts finished jobs whose
    cost no price source could give, ``cost_pending`` the jobs whose results (and so
    their cost) are not in yet: the total is exact only when both are 0.
    """

    jobs: int
    by_status: dict[str, int]
    interrupted: int
    requests: int
    completed: int
    failed: int
    cost: float
    cost_unknown: int
    cost_pending: int

    @classmethod
    def of(cls, jobs: Iterable[Job]) -> Summary:
        by_status = dict.fromkeys(STATUSES, 0)
        count = interrupted = requests = completed = failed = unknown = pending = 0
        cost = 0.0
        for job in jobs:
            count += 1
            by_status[job.status] = by_status.get(job.status, 0) + 1
            interrupted += job.interrupted
            requests += job.counts.total
            completed += job.counts.completed
            failed += job.counts.failed
            if not job.has_results:
                pending += 1
            elif job.cost.amount is None:
                unknown += 1
            else:
                cost += job.cost.amount
        return cls(
            jobs=count,
            by_status={status: n for status, n in by_status.items() if n},
            interrupted=interrupted,
            requests=requests,
            completed=completed,
            failed=failed,
            cost=cost,
            cost_unknown=unknown,
            cost_pending=pending,
        )


@frozen
class ResultRow:
    """One request of a job, at its place in request order.

    ``state``: ``completed`` or ``failed`` (``item`` holds the answer or the error),
    ``pending`` (no result yet), ``unanswered`` (the job ended without one: cancelled,
    expired, or missing from the provider's output; ``results.jsonl`` says why), or
    ``unreadable`` (the stored line could not be read; ``problem`` says why).
    """

    index: int
    custom_id: str
    state: RowState
    item: BatchItem | None = None
    problem: str | None = None


@frozen
class ResultsPage:
    """``rows`` from ``offset``, out of ``total`` rows matching ``state`` (None: all)."""

    job_id: str
    offset: int
    limit: int
    state: str | None
    total: int
    rows: list[ResultRow]

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.rows)
        return end if end < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None


class WorkspaceReader:
    """Everything the dashboard reads from one workspace directory.

    ``catalog`` resolves the aliases engine jobs name, to show their provider; ``store``
    is the workspace's store when its records are not in the directory's SQLite (a URL
    such as ``postgresql://...``, or ``$env.NAME``).
    """

    def __init__(
        self, directory: str | Path, catalog: Catalog | None = None, store: str | None = None
    ) -> None:
        self.workspace = _read_only(directory, store)
        self.catalog = catalog or Catalog()

    @property
    def directory(self) -> Path:
        return self.workspace.directory

    def close(self) -> None:
        self.workspace.close()

    def jobs(self, filters: Filters | None = None) -> list[Job]:
        """The jobs matching ``filters``, newest first."""
        jobs = [self._with_provider(job) for job in self.workspace.jobs()]
        return jobs if filters is None else [job for job in jobs if filters.matches(job)]

    def job(self, job_id: str) -> Job:
        """One job; :class:`relay_core.JobNotFound` when there is none of that id."""
        return self._with_provider(self.workspace.job(job_id))

    def _with_provider(self, job: Job) -> Job:
        """The job, with its default model's provider when the workspace records none.

        The core records the providers of every job, but an engine job stored by an
        earlier version has none on record; its default model's provider is then the
        best the dashboard can say without reading every request.
        """
        if job.providers or not job.model:
            return job
        try:
            config = self.catalog.lookup(job.model)
        except RelayError:
            return job
        if not isinstance(config, ModelConfig):
            return job  # a group: its members may be served by several providers
        return attrs.evolve(job, providers=(config.provider,))

    def results(
        self, job_id: str, *, offset: int = 0, limit: int = 50, state: str | None = None
    ) -> ResultsPage:
        """A page of the job's requests in request order, with their results so far."""
        job = self.job(job_id)
        if state is not None and state not in RESULT_STATES:
            raise FilterError(f"state must be one of {', '.join(RESULT_STATES)}, not {state!r}")
        if state is None:
            total = job.n_requests
            rows = self.workspace.items(job_id, offset=offset, limit=limit)
        else:
            # Checked against RESULT_STATES above.
            wanted = cast("ItemState", state)
            total = self.workspace.count_items(job_id, wanted)
            rows = self.workspace.items(job_id, offset=offset, limit=limit, state=wanted)
        return ResultsPage(
            job_id=job_id,
            offset=offset,
            limit=limit,
            state=state,
            total=total,
            rows=self._rows(job, rows),
        )

    def _rows(self, job: Job, rows: list[ItemRow]) -> list[ResultRow]:
        path = self.workspace.responses_path(job.job_id)
        waiting: RowState = "unanswered" if job.has_results or job.done else "pending"
        out: list[ResultRow] = []
        file = path.open("rb") if any(row.result_offset is not None for row in rows) else None
        try:
            for row in rows:
                if row.result_offset is None or file is None:
                    out.append(ResultRow(row.index, row.custom_id, waiting))
                    continue
                file.seek(row.result_offset)
                out.append(_row(row.index, row.custom_id, file.readline()))
        finally:
            if file is not None:
                file.close()
        return out

    def results_file(self, job_id: str) -> Path | None:
        """The job's ``results.jsonl`` once its results are in, else None."""
        job = self.job(job_id)
        return self.workspace.results_path(job.job_id) if job.has_results else None


def _row(index: int, custom_id: str, line: bytes) -> ResultRow:
    try:
        data = json.loads(line)
        data.pop("index", None)
        item = structure(data, BatchItem)
    except Exception as error:  # a line torn by a crash, or rewritten under us
        return ResultRow(index, custom_id, "unreadable", problem=f"{type(error).__name__}")
    if item.custom_id != custom_id:
        # The file was rewritten since the offset was read (a forced re-retrieve).
        return ResultRow(index, custom_id, "unreadable", problem="results are being rewritten")
    return ResultRow(index, custom_id, "completed" if item.ok else "failed", item)
