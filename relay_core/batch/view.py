"""A workspace read by something other than the batch jobs writing to it.

A dashboard, a report or a plugin's command lists jobs and pages through their results
while workers keep writing. :class:`WorkspaceView` opens ``relay.db`` read-only
(``mode=ro``): it creates nothing, can never take SQLite's write lock, and in WAL mode
neither blocks a writer nor waits for one. Each read is one short statement fetched
whole, so no read transaction stays open between calls (an open one would stop the
writers' checkpoints from shrinking the WAL).

This is the public way into a workspace; the database's tables and the files' layout
are the core's to change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from attrs import frozen

from relay_core.batch._types import Job
from relay_core.batch._workspace import Workspace
from relay_core.batch.stores import WorkspaceStore

__all__ = ["ItemRow", "ItemState", "WorkspaceView"]

ItemState = Literal["completed", "failed", "unanswered"]


@frozen
class ItemRow:
    """One request of a job: its position, its ``custom_id``, its state (``None`` until
    it is answered) and where its answer starts in the job's ``responses.jsonl``."""

    index: int
    custom_id: str
    state: str | None
    result_offset: int | None


class WorkspaceView:
    """A workspace directory opened for reading alone.

    A directory that is not a workspace (no ``relay.db``, or a database that is not
    Relay's) is a :class:`~relay_core.WorkspaceError` that says so. ``store`` is the
    workspace's store when it is not SQLite in the directory (a URL, as for
    :class:`~relay_core.RelayClient`); it is opened read-only.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, store: str | WorkspaceStore | None = None
    ) -> None:
        self._workspace = Workspace(directory, read_only=True, store=store)

    @property
    def directory(self) -> Path:
        """The workspace directory, as an absolute path."""
        return self._workspace.directory

    def close(self) -> None:
        """Close the workspace's store (a store given as an object too)."""
        self._workspace.close()

    def jobs(self) -> list[Job]:
        """Every job, newest first."""
        return self._workspace.jobs()

    def job(self, job_id: str) -> Job:
        """One job; :class:`~relay_core.JobNotFound` when there is none of that id."""
        return self._workspace.job(self._workspace.row(job_id))

    def count_items(self, job_id: str, state: ItemState) -> int:
        """How many of the job's requests are in ``state``."""
        condition, params = _where(state)
        rows = self._workspace.query(
            f"SELECT count(*) FROM items WHERE job_id = ? AND {condition}", (job_id, *params)
        )
        return int(rows[0][0])

    def items(
        self, job_id: str, *, offset: int = 0, limit: int = 50, state: ItemState | None = None
    ) -> list[ItemRow]:
        """A page of the job's requests in request order: from position ``offset`` when
        ``state`` is ``None``, else the ``offset``-th onwards of those in ``state``."""
        if state is None:
            # Indices are the requests' positions (0 to n-1), so a page is an index range
            # read straight off the primary key, as cheap at row 900,000 as at row 0.
            rows = self._workspace.query(
                "SELECT idx, custom_id, state, result_offset FROM items "
                "WHERE job_id = ? AND idx >= ? ORDER BY idx LIMIT ?",
                (job_id, offset, limit),
            )
        else:
            condition, params = _where(state)
            rows = self._workspace.query(
                "SELECT idx, custom_id, state, result_offset FROM items "
                f"WHERE job_id = ? AND {condition} ORDER BY idx LIMIT ? OFFSET ?",
                (job_id, *params, limit, offset),
            )
        return [ItemRow(*row) for row in rows]

    def responses_path(self, job_id: str) -> Path:
        """The job's ``responses.jsonl``, where :attr:`ItemRow.result_offset` points."""
        return self._workspace.job_dir(job_id) / "responses.jsonl"

    def results_path(self, job_id: str) -> Path:
        """The job's ``results.jsonl``, complete once :attr:`Job.has_results` is true."""
        return self._workspace.job_dir(job_id) / "results.jsonl"


def _where(state: ItemState) -> tuple[str, tuple[str, ...]]:
    if state == "unanswered":
        return "state IS NULL", ()
    return "state = ?", (state,)
