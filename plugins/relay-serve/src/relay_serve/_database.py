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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from relay_core.plugin import Catalog, ConfigError

__all__ = ["Database", "database_url"]

Row = tuple[Any, ...]


class Database:
    """One connection to SQLite or PostgreSQL, shared by the threads of a process (one
    statement at a time), committing after every statement."""

    kind: Literal["sqlite", "postgres"]

    def __init__(self, connection: Any, kind: Literal["sqlite", "postgres"], where: str) -> None:
        self._connection = connection
        self.kind = kind
        #: What to call the store in messages: the file, or the server without password.
        self.where = where
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str) -> Database:
        """The database ``url`` names (see the module's text)."""
        if url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError:
                raise ConfigError(
                    "plugins.serve.database is a PostgreSQL URL, which needs psycopg: "
                    "pip install 'relay-serve[postgres]'"
                ) from None
            where = _without_password(url)
            try:
                connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
            except psycopg.Error as error:
                raise ConfigError(f"cannot reach the database {where}: {error}") from None
            return cls(connection, "postgres", where)
        path = Path(url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lite = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30
            )
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
            cursor = self._connection.execute(sql, tuple(params))
            rows = cursor.fetchall() if cursor.description is not None else []
        return [tuple(row) for row in rows]

    def script(self, statements: Sequence[str]) -> None:
        """Run several statements in one transaction (creating tables, say)."""
        with self._lock:
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

    def close(self) -> None:
        with self._lock:
            self._connection.close()


DEFAULT_FILE = "relay-serve.db"


def database_url(catalog: Catalog) -> str:
    """The database ``plugins.serve.database`` names: a relative SQLite path is taken
    from the catalog's folder; by default ``relay-serve.db`` beside the catalog (in the
    working directory for a catalog that is no file)."""
    section = catalog.plugins.get("serve")
    given = section.get("database") if isinstance(section, Mapping) else None
    if given is not None and (not isinstance(given, str) or not given.strip()):
        raise catalog.error(
            "plugins.serve.database must be a SQLite path or a postgresql:// URL",
            ("plugins", "serve", "database"),
        )
    url = given or DEFAULT_FILE
    if url.startswith(("postgresql://", "postgres://")):
        return url
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_absolute() and catalog.path and not catalog.path.startswith("<"):
        path = Path(catalog.path).parent / path
    return str(path)


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}@{host}"
