"""The durable store behind keys and spend: a SQLite file, or PostgreSQL for a team.

``plugins.serve.database`` names it: a path or ``sqlite:///path`` (the default is
``relay-serve.db`` beside the catalog), or ``postgresql://user@host/db`` (needs
``relay-serve[postgres]``: psycopg). Statements are written once, with ``?``
placeholders, and run on either. Calls are blocking; the server runs them in a thread
(:meth:`Database.run`), so a slow disk or database never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from relay_core.plugin import ConfigError, url_from_environment

__all__ = ["Database"]

Row = tuple[Any, ...]


class Database:
    """One connection to SQLite or PostgreSQL, shared by the threads of a process (one
    statement at a time), committing after every statement."""

    kind: Literal["sqlite", "postgres"]

    def __init__(
        self,
        connection: Any,
        kind: Literal["sqlite", "postgres"],
        where: str,
        reopen: Callable[[], Any] | None = None,
    ) -> None:
        self._connection = connection
        # A PostgreSQL connection lost in an outage stays closed: the next statement
        # opens a new one, so the store comes back with the server.
        self._reopen = reopen
        self.kind = kind
        #: What to call the store in messages: the file, or the server without password.
        self.where = where
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str) -> Database:
        """The database ``url`` names (see the module's text); ``$env.NAME`` is read
        now, so the URL and the password it may hold stay out of the catalog."""
        url = url_from_environment(url, setting="plugins.serve.database")
        if url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError:
                raise ConfigError(
                    "plugins.serve.database is a PostgreSQL URL, which needs psycopg: "
                    "pip install 'relay-serve[postgres]'"
                ) from None
            where = _without_password(url)

            def connect() -> Any:
                return psycopg.connect(url, autocommit=True, connect_timeout=10)

            try:
                connection = connect()
            except psycopg.Error as error:
                raise ConfigError(f"cannot reach the database {where}: {error}") from None
            return cls(connection, "postgres", where, reopen=connect)
        path = Path(url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lite = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            # WAL: readers (another worker's key lookups) never wait for a writer.
            lite.execute("PRAGMA journal_mode=WAL")
            lite.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(f"cannot open the database {path}: {error}") from None
        return cls(lite, "sqlite", str(path))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (``?`` placeholders); its rows, if it returns any."""
        if self.kind == "postgres":
            sql = sql.replace("?", "%s")
        with self._lock:
            self._reconnect()
            cursor = self._connection.execute(sql, tuple(params))
            rows = cursor.fetchall() if cursor.description is not None else []
        return [tuple(row) for row in rows]

    def script(self, statements: Sequence[str]) -> None:
        """Run several statements in one transaction (creating tables, say)."""
        with self._lock:
            self._reconnect()
            if self.kind == "postgres":
                with self._connection.transaction():
                    for sql in statements:
                        self._connection.execute(sql)
            else:
                self._connection.execute("BEGIN")
                try:
                    for sql in statements:
                        self._connection.execute(sql)
                except BaseException:
                    self._connection.execute("ROLLBACK")
                    raise
                self._connection.execute("COMMIT")

    async def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """:meth:`execute` in a worker thread."""
        return await asyncio.to_thread(self.execute, sql, params)

    def _reconnect(self) -> None:
        if self._reopen is not None and self._connection.closed:
            self._connection = self._reopen()

    def close(self) -> None:
        with self._lock:
            self._reopen = None  # closed on purpose: stays closed
            self._connection.close()


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}@{host}"
