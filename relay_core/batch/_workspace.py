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

SQLite holds what must change atomically (a job's state, which process works on it,
which provider batch a chunk became); JSONL holds everything a person may want to open.
Every write to the database is a short ``BEGIN IMMEDIATE`` transaction, so two processes
serialise on it instead of corrupting it; only the process holding a job's lease writes
that job's files.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from relay_core.batch._storage import storage_error, storage_errors
from relay_core.batch._types import FINISHED, Job
from relay_core.batching import jsonl_line
from relay_core.errors import BatchInputError, JobConflict, JobNotFound, WorkspaceError
from relay_core.types import BatchCounts, Cost

__all__ = ["Workspace", "check_job_id"]

# Letters, digits, dot, dash, underscore; no leading dot, so no "..", no hidden files,
# and nothing a path could be built from.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A lease on another host is trusted this long after its last heartbeat.
LEASE_SECONDS = 60.0

# Columns of ``jobs`` added after the first release, for workspaces made before them.
_ADDED_COLUMNS = (("providers", "TEXT"),)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    mode TEXT NOT NULL,
    model TEXT,
    description TEXT,
    n_requests INTEGER NOT NULL DEFAULT 0,
    digest TEXT,
    submitted_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cost_amount REAL,
    cost_source TEXT,
    cost_discounted INTEGER NOT NULL DEFAULT 0,
    has_results INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    heartbeat REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    providers TEXT
);
CREATE TABLE IF NOT EXISTS chunks (
    job_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    alias TEXT NOT NULL,
    provider TEXT NOT NULL,
    n_requests INTEGER NOT NULL,
    n_bytes INTEGER NOT NULL,
    tag TEXT NOT NULL,
    attempted_at REAL,
    batch_id TEXT,
    state TEXT,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    retrieved INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, chunk)
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    custom_id TEXT NOT NULL,
    chunk INTEGER,
    state TEXT,
    retryable INTEGER NOT NULL DEFAULT 0,
    result_offset INTEGER,
    PRIMARY KEY (job_id, idx),
    UNIQUE (job_id, custom_id)
);
"""


def check_job_id(job_id: str) -> str:
    """``job_id`` when it is safe as a directory name, else a :class:`BatchInputError`."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise BatchInputError(
            f"job id {job_id!r} is not usable: use 1 to 128 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit (no paths)"
        )
    return job_id


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _database(given: str, directory: Path, *, create: bool) -> Path:
    """Where ``directory``'s ``relay.db`` is, once the directory is known to hold a
    workspace or to be able to hold a new one; checked before anything is created."""
    database = directory / "relay.db"
    shown = Path(given) / "relay.db"
    if not os.path.lexists(directory):
        if not create:
            raise WorkspaceError(
                f"{given} is not a Relay workspace (no relay.db); submitting a job creates one",
                directory=given,
                missing=True,
            )
        parent = directory.parent
        if not parent.is_dir():
            what = "is not a directory" if parent.exists() else "does not exist"
            raise WorkspaceError(
                f"cannot create the workspace {given}: its parent {parent} {what}",
                directory=given,
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise WorkspaceError(
                f"cannot create the workspace {given}: {parent} is not writable",
                directory=given,
            )
        return database
    if not directory.is_dir():
        raise WorkspaceError(
            f"the workspace {given} is not a directory (a file is there)", directory=given
        )
    if os.path.lexists(database):
        if not database.is_file():
            raise WorkspaceError(
                f"cannot open the workspace {given}: {shown} is not a file "
                "(it should be the workspace's SQLite database)",
                directory=given,
            )
    elif not create:
        raise WorkspaceError(
            f"{given} is not a Relay workspace (no relay.db); submitting a job creates one",
            directory=given,
            missing=True,
        )
    elif not os.access(directory, os.W_OK | os.X_OK):
        raise WorkspaceError(
            f"cannot create the workspace {given}: the directory is not writable",
            directory=given,
        )
    return database


def _check_ours(given: str, db: sqlite3.Connection, *, reading: bool = False) -> None:
    """Refuse a ``relay.db`` that is not Relay's (not SQLite, or another program's
    database) before the first statement that could write to it."""
    try:
        tables = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    except sqlite3.DatabaseError as error:
        if (refused := storage_error(given, error, reading=reading)) is not None:
            raise refused from error
        raise WorkspaceError(
            f"cannot open the workspace {given}: {Path(given) / 'relay.db'} is not an "
            f"SQLite database ({error})",
            directory=given,
        ) from error
    if tables and "jobs" not in tables:
        raise WorkspaceError(
            f"cannot open the workspace {given}: {Path(given) / 'relay.db'} is another "
            f"program's SQLite database (tables: {', '.join(sorted(tables)[:5])})",
            directory=given,
        )


def _unusable(given: str, database: Path, error: BaseException) -> WorkspaceError:
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return WorkspaceError(
        f"cannot open the workspace {given}: {Path(given) / database.name}: {reason}",
        directory=given,
    )


class Workspace:
    """One client's connection to a workspace directory.

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
    ) -> None:
        given = os.fspath(directory)
        self.directory = Path(directory).expanduser().resolve()
        # As the user gave it: what messages show.
        self.given = given
        self._reading = read_only
        self._lock = threading.RLock()
        database = _database(given, self.directory, create=create and not read_only)
        if read_only:
            self._open_read_only(given, database)
            return
        made = not self.directory.exists()
        try:
            if made:
                self.directory.mkdir()
            # Autocommit mode: transactions are explicit BEGIN IMMEDIATE blocks below.
            self._db = sqlite3.connect(
                database,
                timeout=60.0,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as error:
            if made:
                with contextlib.suppress(OSError):
                    self.directory.rmdir()
            raise _unusable(given, database, error) from error
        self._db.row_factory = sqlite3.Row
        try:
            _check_ours(given, self._db)
            with storage_errors(given):
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                with self.transaction():
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    columns = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
                    for column, kind in _ADDED_COLUMNS:
                        if column not in columns:  # a workspace made by an earlier version
                            self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
        except BaseException:
            self._db.close()
            raise
        self.owner = f"{socket.gethostname()}|{os.getpid()}|{secrets.token_hex(4)}"

    def _open_read_only(self, given: str, database: Path) -> None:
        try:
            self._db = sqlite3.connect(
                f"{database.as_uri()}?mode=ro",
                uri=True,
                # A reader waits only while a writer recovers a crashed WAL: seconds, so a
                # stuck read fails instead of hanging its caller.
                timeout=5.0,
                isolation_level=None,
                check_same_thread=False,
            )
            self._db.row_factory = sqlite3.Row
            _check_ours(given, self._db, reading=True)
        except sqlite3.Error as error:
            raise (
                storage_error(given, error, reading=True) or _unusable(given, database, error)
            ) from error
        self.owner = "read-only"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- paths ----------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.directory / "jobs" / check_job_id(job_id)

    def chunk_path(self, job_id: str, chunk: int, kind: str) -> Path:
        return self.job_dir(job_id) / "chunks" / f"{chunk:04d}.{kind}.jsonl"

    # -- transactions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate write transaction: other writers wait for it, readers do not."""
        with self._lock, storage_errors(self.given):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock, storage_errors(self.given, reading=self._reading):
            return self._db.execute(sql, tuple(params)).fetchall()

    # -- jobs -----------------------------------------------------------------------------

    def row(self, job_id: str) -> sqlite3.Row:
        rows = self.query("SELECT * FROM jobs WHERE job_id = ?", (check_job_id(job_id),))
        if not rows:
            raise JobNotFound(job_id, str(self.directory))
        return rows[0]

    def update(self, job_id: str, **fields: Any) -> None:
        fields.setdefault("updated_at", time.time())
        names = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE jobs SET {names} WHERE job_id = ?", (*fields.values(), job_id))

    def worker_alive(self, row: sqlite3.Row) -> bool:
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
    ) -> sqlite3.Row | None:
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
                    return rows[0]  # type: ignore[no-any-return]
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
    def _forget(db: sqlite3.Connection, job_id: str) -> None:
        for table in ("items", "chunks", "jobs"):
            db.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))

    def claim(self, job_id: str) -> sqlite3.Row:
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

    def job(self, row: sqlite3.Row) -> Job:
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
