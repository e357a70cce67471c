"""The workspace: a directory any number of clients and processes share.

::

    WORKSPACE/
      relay.db                      SQLite (WAL): jobs, their provider batches, their requests
      cache.db                      the engine's response cache
      jobs/JOB_ID/
        requests.jsonl              the unified requests, as given (custom_id and alias set)
        chunks/0000.requests.jsonl  one provider batch's requests, as the adapter received them
        chunks/0000.input.jsonl     ... the same in the provider's format, as sent
        chunks/0000.output.jsonl    ... the provider's output lines, as received
        responses.jsonl             unified results, in the order they arrived
        results.jsonl               unified results, in request order: the job's answer
      providers/NAME/               what an adapter standing in for a provider's servers
                                    keeps there (relay-mock's batches; see
                                    relay_core.providers.provider_state_dir)

The store (SQLite's ``relay.db`` by default, or a database a plugin offers: see
:mod:`relay_core.batch.stores`) holds what must change atomically (a job's state, which
process works on it, which provider batch a chunk became); JSONL holds everything a
person may want to open. Every write to the store is a short transaction that every
other writer waits for, so two processes serialise on it instead of corrupting it; only
the process holding a job's lease writes that job's files.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from relay_core.batch._types import FINISHED, Job
from relay_core.batch.stores import (
    Row,
    SQLiteStore,
    StoreFactory,
    StoreTransaction,
    WorkspaceStore,
    check_directory,
    open_store,
    sqlite_database,
)
from relay_core.batching import jsonl_line
from relay_core.errors import BatchInputError, JobConflict, JobNotFound
from relay_core.plugins import PluginRegistry
from relay_core.types import BatchCounts, Cost

__all__ = ["Workspace", "check_job_id"]

# Letters, digits, dot, dash, underscore; no leading dot, so no "..", no hidden files,
# and nothing a path could be built from.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A lease on another host is trusted this long after its last heartbeat.
LEASE_SECONDS = 60.0


def check_job_id(job_id: str) -> str:
    """``job_id`` when it is safe as a directory name, else a :class:`BatchInputError`."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise BatchInputError(
            f"job id {job_id!r} is not usable: use 1 to 128 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit (no paths)"
        )
    return job_id


def _new_owner() -> str:
    return f"{socket.gethostname()}|{os.getpid()}|{secrets.token_hex(4)}"


def _store_factories(plugins: PluginRegistry | None) -> dict[str, StoreFactory]:
    if plugins is None:
        plugins = PluginRegistry()
    return plugins.workspace_stores()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Workspace:
    """One client's connection to a workspace: its directory and its store.

    ``store`` is where the records live: ``None`` for SQLite in the directory
    (``relay.db``), or a URL a store plugin handles (``postgresql://...`` with
    ``relay-postgres``; ``$env.NAME`` reads the URL from the environment), or a
    :class:`~relay_core.batch.stores.WorkspaceStore` already open (the workspace closes
    it). ``plugins`` is the registry asked for a URL's store (default: one of its own).

    ``create`` (the default) makes the directory and its database when they are missing;
    with ``create=False`` a directory without ``relay.db`` is a :class:`WorkspaceError`
    (``missing``), so a mistyped path is reported instead of becoming a new, empty
    workspace. ``read_only`` opens an existing workspace for reading alone (a dashboard, a
    report): it creates nothing, can never take SQLite's write lock, and in WAL mode
    neither blocks the jobs writing to it nor waits for them.

    A path that cannot hold a workspace (a file, a missing parent, a directory that is
    not writable, a ``relay.db`` that is not Relay's database) is a
    :class:`WorkspaceError` raised before anything on disk is changed.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        read_only: bool = False,
        create: bool = True,
        store: str | WorkspaceStore | None = None,
        plugins: PluginRegistry | None = None,
    ) -> None:
        given = os.fspath(directory)
        self.directory = Path(directory).expanduser().resolve()
        # As the user gave it: what messages show.
        self.given = given
        self.owner = "read-only" if read_only else _new_owner()
        creating = create and not read_only
        if store is None:
            database = sqlite_database(given, self.directory, create=creating)
        else:
            # The directory holds only files here: an existing one is a workspace.
            check_directory(given, self.directory, create=creating, marker="workspace directory")
        made = False
        try:
            if creating and not self.directory.exists():
                try:
                    self.directory.mkdir()
                    made = True
                except FileExistsError:
                    pass  # another client made it meanwhile: theirs to keep, and ours to use
            if store is None:
                self.store: WorkspaceStore = SQLiteStore(given, database, read_only=read_only)
            elif isinstance(store, str):
                self.store = open_store(
                    store, read_only=read_only, factories=_store_factories(plugins)
                )
            else:
                self.store = store
        except BaseException:
            if made:
                with contextlib.suppress(OSError):
                    self.directory.rmdir()
            raise

    def close(self) -> None:
        self.store.close()

    # -- paths ----------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.directory / "jobs" / check_job_id(job_id)

    def chunk_path(self, job_id: str, chunk: int, kind: str) -> Path:
        return self.job_dir(job_id) / "chunks" / f"{chunk:04d}.{kind}.jsonl"

    # -- the store ------------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """A write transaction: other writers wait for it, readers do not."""
        return self.store.transaction()

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return self.store.query(sql, params)

    def stream(self, sql: str, params: Iterable[Any] = ()) -> AbstractContextManager[Iterable[Row]]:
        """The rows of one read, as they are iterated (a job's every request)."""
        return self.store.stream(sql, params)

    # -- jobs -----------------------------------------------------------------------------

    def row(self, job_id: str) -> Row:
        rows = self.query("SELECT * FROM jobs WHERE job_id = ?", (check_job_id(job_id),))
        if not rows:
            raise JobNotFound(job_id, str(self.directory))
        return rows[0]

    def update(self, job_id: str, **fields: Any) -> None:
        fields.setdefault("updated_at", time.time())
        names = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE jobs SET {names} WHERE job_id = ?", (*fields.values(), job_id))

    def worker_alive(self, row: Row) -> bool:
        """Whether the process holding ``row``'s lease still works on it."""
        owner = row["owner"]
        if not owner:
            return False
        host, _, rest = owner.partition("|")
        pid = rest.partition("|")[0]
        if host == socket.gethostname() and pid.isdigit():
            # Same machine: the process table is the truth, so a killed worker's job can
            # be resumed at once rather than after the lease runs out.
            return _pid_alive(int(pid))
        return time.time() - (row["heartbeat"] or 0.0) < LEASE_SECONDS

    def start(
        self,
        job_id: str,
        *,
        mode: str,
        model: str | None,
        description: str | None,
        overwrite: bool,
    ) -> Row | None:
        """Take ``job_id`` for a new submission: None when it is new (now created and
        leased to this client), or the row of an interrupted job to resume (now leased).

        Raises :class:`JobConflict` when another worker holds it, when it waits on its
        provider, or when it finished and ``overwrite`` is false.
        """
        now = time.time()
        with self.transaction() as db:
            rows = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchall()
            if rows:
                row = rows[0]
                status = row["status"]
                if status in FINISHED:
                    if not overwrite:
                        raise JobConflict(
                            f"job {job_id!r} already exists and is {status}; pass "
                            "overwrite=True (--overwrite) to replace it, or pick another id",
                            job_id=job_id,
                            status=status,
                        )
                    self._forget(db, job_id)
                elif self.worker_alive(row):
                    raise JobConflict(
                        f"job {job_id!r} is in progress ({status}) in another client; "
                        "watch it with monitor_batch or wait for it",
                        job_id=job_id,
                        status=status,
                    )
                elif status == "submitted":
                    raise JobConflict(
                        f"job {job_id!r} is already submitted and waits on its provider; "
                        "use monitor_batch, retrieve_batch_results or cancel_batch",
                        job_id=job_id,
                        status=status,
                    )
                else:
                    db.execute(
                        "UPDATE jobs SET owner = ?, heartbeat = ?, updated_at = ? WHERE job_id = ?",
                        (self.owner, now, now, job_id),
                    )
                    return rows[0]
            db.execute(
                "INSERT INTO jobs (job_id, status, mode, model, description, submitted_at, "
                "updated_at, owner, heartbeat) VALUES (?, 'preparing', ?, ?, ?, ?, ?, ?, ?)",
                (job_id, mode, model, description, now, now, self.owner, now),
            )
        return None

    def forget(self, job_id: str) -> None:
        """Remove a job, its rows and its files, as if it had never been submitted."""
        with self.transaction() as db:
            self._forget(db, job_id)
        self.delete_files(job_id)

    @staticmethod
    def _forget(db: StoreTransaction, job_id: str) -> None:
        for table in ("items", "chunks", "jobs"):
            db.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))

    def claim(self, job_id: str) -> Row:
        """Lease an existing job to this client (to resume or finish it)."""
        with self.transaction() as db:
            rows = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchall()
            if not rows:
                raise JobNotFound(job_id, str(self.directory))
            row = rows[0]
            if row["owner"] != self.owner and self.worker_alive(row):
                raise JobConflict(
                    f"job {job_id!r} is being worked on by another client ({row['status']})",
                    job_id=job_id,
                    status=row["status"],
                )
            now = time.time()
            db.execute(
                "UPDATE jobs SET owner = ?, heartbeat = ? WHERE job_id = ?",
                (self.owner, now, job_id),
            )
        return self.row(job_id)

    def heartbeat(self, job_id: str) -> bool:
        """Renew the lease; returns whether a cancellation was requested meanwhile."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET heartbeat = ? WHERE job_id = ? AND owner = ?",
                (time.time(), job_id, self.owner),
            )
            row = db.execute(
                "SELECT cancel_requested FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return bool(row and row[0])

    def release(self, job_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET owner = NULL, heartbeat = NULL WHERE job_id = ? AND owner = ?",
                (job_id, self.owner),
            )

    def delete_files(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def job(self, row: Row) -> Job:
        """The :class:`Job` value of a database row."""
        chunks = self.query(
            "SELECT provider, batch_id FROM chunks WHERE job_id = ? ORDER BY chunk",
            (row["job_id"],),
        )
        status = row["status"]
        counts = BatchCounts(row["n_requests"], row["completed"], row["failed"])
        # An engine job's mode column names its runner: "engine" itself, or a plugin's.
        engine = row["mode"] != "batch"
        if engine and not row["has_results"]:
            counts = self.item_counts(row["job_id"], row["n_requests"])
        return Job(
            job_id=row["job_id"],
            status=status,
            mode="engine" if engine else "batch",
            runner=row["mode"] if engine else None,
            n_requests=row["n_requests"],
            submitted_at=row["submitted_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            description=row["description"],
            model=row["model"],
            # Provider batches name theirs; an engine job, those its requests named.
            providers=tuple(dict.fromkeys(chunk["provider"] for chunk in chunks))
            or tuple(name for name in (row["providers"] or "").split(",") if name),
            provider_batches=tuple(c["batch_id"] for c in chunks if c["batch_id"]),
            counts=counts,
            cost=Cost(
                amount=row["cost_amount"],
                source=row["cost_source"] or "unknown",
                batch_discount_applied=bool(row["cost_discounted"]),
            ),
            has_results=bool(row["has_results"]),
            interrupted=status in ("preparing", "submitting", "running")
            and not self.worker_alive(row),
            error=row["error"],
        )

    def jobs(self) -> list[Job]:
        rows = self.query("SELECT * FROM jobs ORDER BY submitted_at DESC, job_id")
        return [self.job(row) for row in rows]

    # -- items ----------------------------------------------------------------------------

    def item_counts(self, job_id: str, total: int) -> BatchCounts:
        rows = self.query(
            "SELECT state, count(*) FROM items WHERE job_id = ? AND state IS NOT NULL "
            "GROUP BY state",
            (job_id,),
        )
        by_state = {row[0]: row[1] for row in rows}
        return BatchCounts(total, by_state.get("completed", 0), by_state.get("failed", 0))


def write_jsonl_line(file: Any, data: Any) -> int:
    """Append one JSON line to an open binary file; return the offset it starts at."""
    offset: int = file.tell()
    file.write(jsonl_line(data))
    return offset
