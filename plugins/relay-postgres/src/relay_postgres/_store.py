"""A workspace's records in PostgreSQL, keeping the promises of
``relay_core.batch.stores`` (the plugin SDK's :class:`WorkspaceStore`).

One connection per workspace, in autocommit mode: a read is one statement and waits for
nobody. A write transaction starts by taking a transaction-level advisory lock, one per
schema, so writers on every host serialise as SQLite's ``BEGIN IMMEDIATE`` makes them
on one: a job's lease is checked and taken by one process at a time. A connection lost
(the server restarted, a network blip) is opened again by the next statement, retried
for :data:`OUTAGE_SECONDS`; a statement that cannot be known to have run is never
repeated, it fails as a :class:`WorkspaceError` and the job resumes.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from relay_core.plugin import (
    WORKSPACE_ADDED_COLUMNS,
    WORKSPACE_SCHEMA,
    UniqueViolation,
    WorkspaceError,
)

__all__ = ["OUTAGE_SECONDS", "PostgresStore", "StoreRow"]

OUTAGE_SECONDS = 20.0
"""How long a lost connection is tried again before the statement fails."""

# The writers of one schema's workspace take this lock for the length of a transaction.
_WRITE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('relay-workspace:' || current_schema()))"
# REAL is single precision in PostgreSQL (a timestamp would lose its seconds); offsets
# and sizes pass 2**31 in big jobs.
_TYPES = {"REAL": "DOUBLE PRECISION", "INTEGER": "BIGINT"}
_SCHEMA = re.sub(r"\b(REAL|INTEGER)\b", lambda m: _TYPES[m.group(1)], WORKSPACE_SCHEMA)


class StoreRow(tuple):  # type: ignore[type-arg]
    """A row by position, unpacked as a tuple, and by column name like ``sqlite3.Row``."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> StoreRow:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _rows(cursor: Any) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> StoreRow:
        return StoreRow(values, names)

    return make


def _sql(statement: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled first)."""
    return statement.replace("%", "%%").replace("?", "%s")


def _where(url: str) -> tuple[str, str | None]:
    """``url`` without its password (user kept), and the password to scrub from errors."""
    parts = urlsplit(url)
    password = parts.password
    query = [(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "password"]
    password = password or next(
        (v for k, v in parse_qsl(parts.query) if k.lower() == "password"), None
    )
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), "")), password


class _Transaction:
    """The statements of one write transaction, unique violations said as such."""

    __slots__ = ("_connection",)

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        try:
            return self._connection.execute(_sql(sql), tuple(params))
        except psycopg.errors.UniqueViolation as error:
            raise UniqueViolation(error.diag.message_primary or "unique violation") from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self._connection.cursor()
        try:
            cursor.executemany(_sql(sql), [tuple(row) for row in rows])
        except psycopg.errors.UniqueViolation as error:
            raise UniqueViolation(error.diag.message_primary or "unique violation") from None
        return cursor


class PostgresStore:
    """The records of a workspace in the PostgreSQL database ``url`` names.

    ``read_only`` opens a session that cannot write (``default_transaction_read_only``)
    and creates nothing: a schema without Relay's tables is a ``missing`` workspace.
    """

    def __init__(self, url: str, *, read_only: bool) -> None:
        self.where, self._password = _where(url)
        conninfo = conninfo_to_dict(url)
        # A commit is on the server's disk before it returns, whatever the server's
        # default: a job's lease and its answered requests must survive a server crash.
        options = f"{conninfo.get('options') or ''} -c synchronous_commit=on"
        if read_only:
            options += " -c default_transaction_read_only=on"
        conninfo["options"] = options.strip()
        self._conninfo = make_conninfo(**conninfo)  # type: ignore[arg-type]
        self._read_only = read_only
        self._lock = threading.RLock()
        self._connection: psycopg.Connection[Any] | None = None
        with self._lock:
            self._connect(patient=False)
            if read_only:
                found = self.query("SELECT to_regclass('jobs')")[0][0]
                if found is None:
                    raise WorkspaceError(
                        f"{self.where} holds no Relay workspace (no jobs table); "
                        "submitting a job creates one",
                        directory=self.where,
                        missing=True,
                    )
            else:
                with self.transaction() as db:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    for column, kind in WORKSPACE_ADDED_COLUMNS:
                        kind = _TYPES.get(kind, kind)
                        db.execute(f"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS {column} {kind}")

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r}{', read_only=True' if self._read_only else ''})"

    # -- the connection -------------------------------------------------------------------

    def _connect(self, *, patient: bool) -> psycopg.Connection[Any]:
        """The connection, opened again when it was lost; ``patient``: through an outage
        of up to :data:`OUTAGE_SECONDS` (a server restarting)."""
        connection = self._connection
        if connection is not None and not connection.closed:
            return connection
        deadline = time.monotonic() + (OUTAGE_SECONDS if patient else 0.0)
        delay = 0.05
        while True:
            try:
                connection = psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=10, row_factory=_rows
                )
            except psycopg.Error as error:
                if time.monotonic() + delay > deadline:
                    raise self._failed("cannot reach", error) from None
                time.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            self._connection = connection
            return connection

    def _failed(self, what: str, error: BaseException) -> WorkspaceError:
        reason = " ".join(str(error).split()) or type(error).__name__
        if self._password:
            reason = reason.replace(self._password, "***")
        advice = (
            "this session is read-only (a view)"
            if isinstance(error, psycopg.errors.ReadOnlySqlTransaction)
            else "what was written before is kept: resume the job once the database answers"
        )
        return WorkspaceError(
            f"{what} the workspace store {self.where}: {reason}; {advice}",
            directory=self.where,
        )

    def _lost(self, error: BaseException) -> bool:
        """Whether ``error`` lost the connection (then the next statement reconnects)."""
        connection = self._connection
        if connection is not None and (connection.broken or connection.closed):
            with contextlib.suppress(psycopg.Error):
                connection.close()
            self._connection = None
            return True
        return False

    # -- the store ------------------------------------------------------------------------

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        values = tuple(params)
        with self._lock:
            for attempt in (1, 2):
                connection = self._connect(patient=True)
                try:
                    return connection.execute(_sql(sql), values).fetchall()
                except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                    # A read is safe to run again on a new connection.
                    if not self._lost(error) or attempt == 2:
                        raise self._failed("cannot read from", error) from None
                except psycopg.errors.ReadOnlySqlTransaction as error:
                    raise self._failed("cannot write to", error) from None
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        with self._lock:
            connection = self._begin()
            try:
                yield _Transaction(connection)
                connection.execute("COMMIT")
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                self._lost(error)
                raise self._failed("cannot write to", error) from None
            except psycopg.errors.ReadOnlySqlTransaction as error:
                self._rollback(connection)
                raise self._failed("cannot write to", error) from None
            except BaseException:
                self._rollback(connection)
                raise

    def _begin(self) -> psycopg.Connection[Any]:
        """A connection inside a new transaction holding the workspace's write lock.
        Nothing is written yet, so a connection lost here is opened again and the
        transaction started anew."""
        for attempt in (1, 2):
            connection = self._connect(patient=True)
            try:
                connection.execute("BEGIN")
                connection.execute(_WRITE_LOCK)
                return connection
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                if not self._lost(error) or attempt == 2:
                    self._rollback(connection)
                    raise self._failed("cannot write to", error) from None
        raise AssertionError("unreachable")

    def _rollback(self, connection: psycopg.Connection[Any]) -> None:
        if connection.closed or connection.broken:
            self._connection = None
            return
        with contextlib.suppress(psycopg.Error):
            connection.execute("ROLLBACK")

    @contextlib.contextmanager
    def stream(self, sql: str, params: Iterable[Any] = ()) -> Iterator[Iterable[Any]]:
        with self._lock:
            connection = self._connect(patient=True)
            cursor = connection.cursor()
            try:
                yield cursor.stream(_sql(sql), tuple(params))
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                self._lost(error)
                raise self._failed("cannot read from", error) from None
            finally:
                cursor.close()

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()
