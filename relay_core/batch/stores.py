"""Where a workspace keeps its records: the store behind :class:`Workspace`.

A workspace is a directory of JSONL files plus a database of records (jobs, the provider
batches of their chunks, their requests, and the leases of the processes working on
them). The database is a *store*: SQLite in the directory (``relay.db``) by default, or
another database a plugin registers for a URL scheme
(``relay_register_workspace_stores``; ``relay-postgres`` offers ``postgresql://``), so
that several machines sharing the directory share the records too: SQLite on a network
filesystem corrupts under writers on several hosts.

The batch modules write each statement once, with ``?`` placeholders, in SQL that SQLite
and PostgreSQL both accept; a store translates the placeholders. What a store promises:

- :meth:`WorkspaceStore.query` runs one read and returns its rows; a reader never waits
  for a writer.
- :meth:`WorkspaceStore.transaction` is a write transaction that every other writer of
  the workspace, in any process on any host, waits for (SQLite's ``BEGIN IMMEDIATE``):
  the lease checks of a job's start and claim rely on it.
- Rows are indexable by position and by column name, and iterate as their values.
- A statement breaking a unique constraint raises :class:`UniqueViolation`.
- :meth:`WorkspaceStore.stream` reads a large result without holding it in memory.
- What the store's server or disk refused is a :class:`~relay_core.WorkspaceError`
  naming the store by :attr:`WorkspaceStore.where`, which never holds a password.
- The store creates its tables, and adds the columns of :data:`WORKSPACE_ADDED_COLUMNS` to
  tables made by an earlier version, unless it is opened ``read_only``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from relay_core.batch._storage import storage_error, storage_errors
from relay_core.credentials import url_from_environment
from relay_core.errors import ConfigError, WorkspaceError

__all__ = [
    "WORKSPACE_ADDED_COLUMNS",
    "WORKSPACE_SCHEMA",
    "Row",
    "SQLiteStore",
    "StoreCursor",
    "StoreFactory",
    "StoreTransaction",
    "UniqueViolation",
    "WorkspaceStore",
    "store_url",
]

# What a row is: ``sqlite3.Row`` for SQLite; any store's rows behave alike (by position,
# by column name, unpacked as a tuple). Typed loosely because a row's columns are the
# query's, which no type describes.
Row = Any

# The tables, in SQL both SQLite and PostgreSQL take; a store may adjust the types
# (PostgreSQL: REAL is DOUBLE PRECISION, INTEGER is BIGINT for offsets past 2 GB).
WORKSPACE_SCHEMA = """
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

# Columns of ``jobs`` added after the first release, for workspaces made before them.
WORKSPACE_ADDED_COLUMNS = (("providers", "TEXT"),)


class UniqueViolation(Exception):
    """A statement would have broken a unique constraint (nothing of it was written)."""


class StoreCursor(Protocol):
    """What a statement run in a transaction returns."""

    @property
    def rowcount(self) -> int:
        """How many rows the statement changed; after :meth:`StoreTransaction.executemany`,
        the total over every row of parameters. The core reads it after an ``INSERT ...
        ON CONFLICT DO NOTHING`` to learn that a row was skipped; after a ``SELECT`` it is
        not relied on (SQLite's is -1)."""

    def fetchone(self) -> Row | None:
        """The next row of the statement's result, or ``None`` when none is left."""

    def fetchall(self) -> list[Row]:
        """The rows of the statement's result not fetched yet, as a list."""

    def __iter__(self) -> Iterator[Row]: ...


class StoreTransaction(Protocol):
    """The statements of one write transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> StoreCursor:
        """Run one statement in the transaction and return its cursor. ``sql`` has ``?``
        placeholders, which the store translates, and ``params`` their values in order.

        A read sees the transaction's own writes. A statement breaking a unique
        constraint raises :class:`UniqueViolation` having written nothing; the core then
        lets the error leave the block, which rolls the transaction back (PostgreSQL
        allows no further statement in it). The core reads a cursor's rows before it
        runs the next statement.
        """

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> StoreCursor:
        """Run one statement once for each row of parameter values in ``rows``, in the
        transaction; the cursor's :attr:`~StoreCursor.rowcount` counts the rows changed
        by all of them. A unique violation is as for :meth:`execute`."""


class WorkspaceStore(Protocol):
    """The records of one workspace (see the module's text for the promises)."""

    #: The store in messages: a file, or a server's URL without its password.
    where: str

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """The rows of one read (``?`` placeholders, ``params`` their values), fetched
        whole, each indexable by position and by column name. It never waits for a
        writer and leaves no read transaction open once it returns (a dashboard's view
        reads often while workers write). What the store's server or disk refused is a
        :class:`~relay_core.WorkspaceError` naming :attr:`where`.
        """

    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """A write transaction, as a context manager giving its :class:`StoreTransaction`.

        Entering it waits for any other writer of the workspace, in any process on any
        host, and keeps them all out until the block ends (SQLite's ``BEGIN
        IMMEDIATE``; relay-postgres takes an advisory lock): a job's start and claim read
        its lease and take it in one transaction. The block ending normally commits. An
        exception leaving it rolls everything back and propagates (the core raises
        :class:`~relay_core.JobConflict` and others from inside, for its caller); what
        the store's server or disk refused is a :class:`~relay_core.WorkspaceError`.

        The store's methods are called from more than one thread (the synchronous client
        works on the hub's loop thread) and must be safe so: the built-in stores hold a
        lock around each call and for the whole block.
        """

    def stream(self, sql: str, params: Iterable[Any] = ()) -> AbstractContextManager[Iterable[Row]]:
        """The rows of one read, as a context manager giving an iterable that fetches
        them as they are iterated, so a job's million requests are never in memory at
        once. The rows are read inside the block only; the store may keep its connection
        busy until the block ends (the core makes no other call on the store from inside
        it). Errors are as for :meth:`query`.
        """

    def close(self) -> None:
        """Close the store's connections. A workspace closes its store when it closes (a
        client's or a view's ``close``), a store it was given as an object too; a second
        call must do nothing."""


#: ``factory(url, *, read_only)``: what ``relay_register_workspace_stores`` registers.
StoreFactory = Callable[..., WorkspaceStore]

# The plugin to install for the schemes this repository's plugins offer.
_DISTRIBUTION_OF_SCHEME = {"postgresql": "relay-postgres", "postgres": "relay-postgres"}


def store_url(url: str) -> str:
    """``url``, or for ``$env.NAME`` the URL in that environment variable: a password a
    URL holds then never sits in a command line or a file."""
    return url_from_environment(url, setting="the workspace store")


def open_store(url: str, *, read_only: bool, factories: dict[str, StoreFactory]) -> WorkspaceStore:
    """The store ``url`` names, built by the factory registered for its scheme."""
    url = store_url(url)
    scheme, sep, _ = url.partition("://")
    factory = factories.get(scheme.lower()) if sep else None
    if factory is None:
        shown = f"{scheme}://" if sep else repr(url.partition(":")[0][:40])
        plugin = _DISTRIBUTION_OF_SCHEME.get(scheme.lower()) if sep else None
        known = ", ".join(f"{name}://" for name in sorted(factories)) or "none"
        fix = (
            f"install the plugin that offers it: pip install {plugin}"
            if plugin
            else f"the installed plugins offer: {known}"
        )
        raise ConfigError(f"no workspace store handles {shown} URLs; {fix}")
    return factory(url, read_only=read_only)


# ----------------------------------------------------------------------------- SQLite


class _SQLiteTransaction:
    """A transaction's statements on SQLite, with unique violations said as such."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.IntegrityError as error:
            raise _unique(error) from error

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        try:
            return self._db.executemany(sql, rows)
        except sqlite3.IntegrityError as error:
            raise _unique(error) from error


def _unique(error: sqlite3.IntegrityError) -> BaseException:
    if "UNIQUE" in str(error) or "PRIMARY KEY" in str(error):
        return UniqueViolation(str(error))
    return error


class SQLiteStore:
    """``relay.db`` in the workspace directory, in WAL mode: the embedded default.

    Writers serialise on ``BEGIN IMMEDIATE``; readers (a dashboard) neither block them
    nor wait. A disk that refuses a write is a :class:`WorkspaceError` saying so.
    """

    def __init__(self, given: str, database: Path, *, read_only: bool) -> None:
        self.where = str(Path(given) / "relay.db")
        self._given = given
        self._reading = read_only
        self._lock = threading.RLock()
        if read_only:
            self._open_read_only(given, database)
            return
        try:
            # Autocommit mode: transactions are explicit BEGIN IMMEDIATE blocks below.
            self._db = sqlite3.connect(
                database,
                timeout=60.0,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as error:
            raise _unusable(given, database, error) from error
        self._db.row_factory = sqlite3.Row
        try:
            _check_ours(given, self._db)
            with storage_errors(given):
                _use_wal(self._db)
                self._db.execute("PRAGMA synchronous=NORMAL")
                with self.transaction():
                    for statement in WORKSPACE_SCHEMA.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    columns = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
                    for column, kind in WORKSPACE_ADDED_COLUMNS:
                        if column not in columns:  # a workspace made by an earlier version
                            self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
        except BaseException:
            self._db.close()
            raise

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

    def close(self) -> None:
        """Close the connection to ``relay.db``, once a statement another thread runs on
        it has ended."""
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_SQLiteTransaction]:
        """An immediate write transaction: other writers wait for it, readers do not."""
        with self._lock, storage_errors(self._given):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTransaction(self._db)
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """The rows of one read, fetched whole, in autocommit mode: no read transaction
        stays open. What the disk refuses (a read-only store must still write its WAL's
        ``-shm`` file) is a :class:`WorkspaceError` saying so."""
        with self._lock, storage_errors(self._given, reading=self._reading):
            return self._db.execute(sql, tuple(params)).fetchall()

    @contextlib.contextmanager
    def stream(self, sql: str, params: Iterable[Any] = ()) -> Iterator[Iterable[Row]]:
        """The rows of one read, fetched as they are iterated (the store stays busy for
        this connection's other users until the block ends)."""
        with self._lock, storage_errors(self._given, reading=self._reading):
            yield self._db.execute(sql, tuple(params))


def _use_wal(db: sqlite3.Connection, *, patience: float = 60.0) -> None:
    """Put the database in WAL mode. Switching needs the database to itself, and SQLite
    does not wait for that (its busy timeout does not apply): clients opening a new
    workspace at once would see "database is locked", so the switch is tried again."""
    deadline = time.monotonic() + patience
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def sqlite_database(given: str, directory: Path, *, create: bool) -> Path:
    """Where ``directory``'s ``relay.db`` is, once the directory is known to hold a
    workspace or to be able to hold a new one; checked before anything is created."""
    database = directory / "relay.db"
    shown = Path(given) / "relay.db"
    check_directory(given, directory, create=create, marker="relay.db")
    if os.path.lexists(database):
        if not database.is_file():
            raise WorkspaceError(
                f"cannot open the workspace {given}: {shown} is not a file "
                "(it should be the workspace's SQLite database)",
                directory=given,
            )
    elif os.path.lexists(directory):
        if not create:
            raise WorkspaceError(
                f"{given} is not a Relay workspace (no relay.db); submitting a job creates one",
                directory=given,
                missing=True,
            )
        if not os.access(directory, os.W_OK | os.X_OK):
            raise WorkspaceError(
                f"cannot create the workspace {given}: the directory is not writable",
                directory=given,
            )
    return database


def check_directory(given: str, directory: Path, *, create: bool, marker: str) -> None:
    """Refuse a workspace directory that is missing (unless ``create`` and its parent can
    hold it) or that is not a directory; ``marker`` is what makes a workspace."""
    if not os.path.lexists(directory):
        if not create:
            raise WorkspaceError(
                f"{given} is not a Relay workspace (no {marker}); submitting a job creates one",
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
        return
    if not directory.is_dir():
        raise WorkspaceError(
            f"the workspace {given} is not a directory (a file is there)", directory=given
        )


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
