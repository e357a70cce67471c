"""The SQLite sink: one table, ``audit_events``, in WAL mode; the columns people filter
on, and the whole record as JSON."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

__all__ = ["SqliteSink"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    at_epoch REAL NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    caller TEXT,
    alias TEXT,
    provider TEXT,
    model TEXT,
    custom_id TEXT,
    job_id TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_amount REAL,
    cost_currency TEXT,
    cost_source TEXT,
    latency REAL,
    error_kind TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_at ON audit_events (at_epoch);
CREATE INDEX IF NOT EXISTS audit_events_job_id ON audit_events (job_id);
CREATE INDEX IF NOT EXISTS audit_events_alias ON audit_events (alias);
"""

_INSERT = """
INSERT INTO audit_events (
    at, at_epoch, kind, outcome, caller, alias, provider, model, custom_id, job_id,
    input_tokens, output_tokens, cost_amount, cost_currency, cost_source, latency,
    error_kind, record
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


class SqliteSink:
    """Inserts each record into ``audit_events`` in the database at ``path``, one
    transaction per record. ``timeout`` is how long a write waits for another writer's
    lock before it fails (and is counted as a sink failure)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.name = f"sqlite:{self.path}"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0

    def _connect(self) -> sqlite3.Connection:
        # A connection must not cross a fork: a child process opens its own.
        if self._db is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
            except sqlite3.Error:
                db.close()
                raise
            self._db, self._pid = db, os.getpid()
            # The hub has no hook to close plugins: close with the sink instead.
            weakref.finalize(self, db.close)
        return self._db

    def write(self, record: dict[str, Any]) -> None:
        """Insert ``record`` as one row, its own transaction, opening the database on the
        first write (and again in a forked child). Raises :class:`sqlite3.Error` when the
        row is not written (another writer held the lock past ``timeout``, a full
        disk), :class:`OSError` when its directory cannot be created, and
        :class:`KeyError` for a record without ``at``, ``at_epoch``, ``kind`` or
        ``outcome``."""
        usage = record.get("usage") or {}
        cost = record.get("cost") or {}
        error = record.get("error") or {}
        row = (
            record["at"],
            record["at_epoch"],
            record["kind"],
            record["outcome"],
            record.get("caller"),
            record.get("alias"),
            record.get("provider"),
            record.get("model"),
            record.get("custom_id"),
            record.get("job_id"),
            usage.get("input_tokens"),
            usage.get("output_tokens"),
            cost.get("amount"),
            cost.get("currency"),
            cost.get("source"),
            record.get("latency"),
            error.get("kind"),
            json.dumps(record, sort_keys=True, separators=(",", ":")),
        )
        with self._lock:
            # Autocommit: the one INSERT is its own transaction.
            self._connect().execute(_INSERT, row)

    def close(self) -> None:
        """Close the connection (the next write opens a new one)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
