"""The engine's response cache: answers on disk, keyed by the request's fingerprint.

It lives in its own SQLite file in the workspace (``cache.db``), so any job in the
workspace, in any process, answers a request another job already paid for. Only
successful answers are kept.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from relay_core.embeddings import EmbeddingResponse
from relay_core.serialize import structure
from relay_core.types import Response

__all__ = ["WorkspaceCache"]


class WorkspaceCache:
    """Answers a workspace's jobs already paid for, shared by every process through
    SQLite (not the hub's `relay_core.caching.ResponseCache`, which a plugin provides)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=60.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses "
            "(key TEXT PRIMARY KEY, response TEXT NOT NULL, stored_at REAL NOT NULL)"
        )

    def get(self, key: str) -> Response | None:
        row = self._row(key)
        return None if row is None else structure(row, Response)

    def get_embedding(self, key: str) -> EmbeddingResponse | None:
        """An embedding request's answer (kept under its own request's key)."""
        row = self._row(key)
        return None if row is None else structure(row, EmbeddingResponse)

    def _row(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute(
                "SELECT response FROM responses WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def put_many(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Store ``(key, response)`` pairs, each response already unstructured (as the
        engine's result line holds it: the engine unstructures each answer once)."""
        now = time.time()
        rows = [(key, json.dumps(response, ensure_ascii=False), now) for key, response in entries]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO responses (key, response, stored_at) VALUES (?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
