"""The disk store: one SQLite file in WAL mode, shared by every hub and process on it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from relay_cache._codec import Answer, decode, encode
from relay_core.plugin import get_logger

__all__ = ["SCHEMA_VERSION", "DiskCache"]

_log = get_logger("relay.cache")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key       TEXT PRIMARY KEY,
    response  TEXT NOT NULL,
    size      INTEGER NOT NULL,
    stored_at REAL NOT NULL,
    used_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_by_use ON responses (used_at);
CREATE INDEX IF NOT EXISTS responses_by_age ON responses (stored_at);
"""
# Another writer holds the file longer than this only if something is badly wrong; a call
# then goes to the provider rather than wait.
BUSY_TIMEOUT = 5.0
# Totals are counted again after this many puts even when this process's estimate is
# under the bounds, so what other processes wrote is seen.
RECOUNT_EVERY = 100


class _Broken(Exception):
    """The store cannot work (unwritable, full, not a database): stop using it."""


class DiskCache:
    """Answers in a SQLite file, least recently used evicted first.

    Each get or put is one or two statements on a short transaction, inline: SQLite in
    WAL mode answers in microseconds, readers never wait for writers, and several hubs
    or processes share the file (a writer waits up to :data:`BUSY_TIMEOUT` for another).
    A hit updates ``used_at``; ``stored_at`` alone decides freshness.

    Eviction runs in batches: this process tracks an estimate of the totals, and when a
    put takes it past a bound (or every :data:`RECOUNT_EVERY` puts) the totals are
    counted exactly and the least recently used answers removed until the store is back
    to 90% of the bound that was passed, so the next puts do not each evict.

    Failures never reach the call: a row that cannot be read back is a miss (deleted,
    logged); a file that cannot be opened or written (read-only, disk full, not a
    database) is logged once and the store becomes a no-op until it is closed.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_entries: int,
        max_bytes: int,
        ttl: float | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._broken = False
        self._entries = 0  # estimates, exact after each count
        self._bytes = 0
        self._puts_since_count = 0
        self._last_use = 0.0

    @property
    def broken(self) -> bool:
        """True once an I/O failure has turned the store into a no-op."""
        return self._broken

    def __len__(self) -> int:
        """The number of answers in the file (counted; 0 once broken)."""
        with self._session() as db:
            if db is not None:
                return self._count(db)[0]
        return 0

    async def get(self, key: str) -> Answer | None:
        now = self._clock()
        with self._session() as db:
            if db is None:
                return None
            row = db.execute(
                "SELECT response, stored_at FROM responses WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            text, stored_at = row
            if self.ttl is not None and now - stored_at >= self.ttl:
                db.execute(
                    "DELETE FROM responses WHERE key = ? AND stored_at = ?", (key, stored_at)
                )
                return None
            try:
                response = decode(text)
            except Exception as error:  # corrupt JSON, or a Response that changed shape
                _log.warning("cache.unreadable", path=str(self.path), key=key, error=repr(error))
                db.execute("DELETE FROM responses WHERE key = ?", (key,))
                return None
            db.execute("UPDATE responses SET used_at = ? WHERE key = ?", (self._use(now), key))
            return response

    async def put(self, key: str, response: Answer) -> None:
        text = encode(response)
        size = len(text.encode())
        if size > self.max_bytes:
            _log.debug("cache.too_big", key=key, size=size, max_bytes=self.max_bytes)
            return
        now = self._clock()
        with self._session() as db:
            if db is None:
                return
            db.execute(
                "INSERT OR REPLACE INTO responses (key, response, size, stored_at, used_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, text, size, now, self._use(now)),
            )
            # A replaced row is counted twice here; the exact count corrects it.
            self._entries += 1
            self._bytes += size
            self._puts_since_count += 1
            if (
                self._entries > self.max_entries
                or self._bytes > self.max_bytes
                or self._puts_since_count >= RECOUNT_EVERY
            ):
                self._evict(db, now, keep=key)

    async def aclose(self) -> None:
        """Close the connection; a later call opens it again (and retries a store that
        an I/O failure had turned off)."""
        with self._lock:
            self._broken = False
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # -- internals ------------------------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[sqlite3.Connection | None]:
        """The open connection under the lock, or None once the store is broken.
        SQLite errors inside become a logged miss (busy) or a broken store (the rest)."""
        with self._lock:
            db = None
            if not self._broken:
                try:
                    db = self._connect()
                except (sqlite3.DatabaseError, OSError, _Broken) as error:
                    self._give_up(error)
            if db is None:
                yield None
                return
            try:
                yield db
            except sqlite3.OperationalError as error:
                if "locked" in str(error) or "busy" in str(error):
                    # Another process held the file past the timeout: this call goes
                    # without the cache, the next one tries again.
                    _log.warning("cache.busy", path=str(self.path), error=str(error))
                    return
                self._give_up(error)
            except sqlite3.DatabaseError as error:
                self._give_up(error)

    def _use(self, now: float) -> float:
        # Strictly increasing within this process, so two uses in one clock tick keep
        # their order for eviction; processes sharing the file break ties arbitrarily.
        self._last_use = max(now, self._last_use + 1e-6)
        return self._last_use

    def _give_up(self, error: BaseException) -> None:
        self._broken = True
        _log.error(
            "cache.disabled",
            path=str(self.path),
            error=f"{type(error).__name__}: {error}",
            note="calls go on without the response cache",
        )
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit (isolation_level=None): each statement is its own short transaction,
        # so no lock is held between calls. The lock above makes one connection safe to
        # share between the hub's event loop and its sync twin's thread.
        db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode = WAL")
            # A cache may lose its last answers on power loss; it must not fsync per put.
            db.execute("PRAGMA synchronous = NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise _Broken(
                    f"the file was written by a newer relay-cache (schema {version}, "
                    f"this one reads {SCHEMA_VERSION})"
                )
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._entries, self._bytes = self._count(db)
        except BaseException:
            db.close()
            raise
        self._connection = db
        return db

    @staticmethod
    def _count(db: sqlite3.Connection) -> tuple[int, int]:
        entries, size = db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM responses"
        ).fetchone()
        return int(entries), int(size)

    def _evict(self, db: sqlite3.Connection, now: float, *, keep: str) -> None:
        self._puts_since_count = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            if self.ttl is not None:
                db.execute("DELETE FROM responses WHERE stored_at <= ?", (now - self.ttl,))
            entries, size = self._count(db)
            extra_entries = entries - (self.max_entries - self.max_entries // 10)
            extra_bytes = size - (self.max_bytes - self.max_bytes // 10)
            if entries <= self.max_entries:
                extra_entries = 0
            if size <= self.max_bytes:
                extra_bytes = 0
            doomed: list[tuple[str]] = []
            if extra_entries > 0 or extra_bytes > 0:
                # Oldest use first, through the index; never the answer just stored.
                rows = db.execute(
                    "SELECT key, size FROM responses WHERE key != ? ORDER BY used_at", (keep,)
                )
                for row_key, row_size in rows:
                    if extra_entries <= 0 and extra_bytes <= 0:
                        break
                    doomed.append((row_key,))
                    extra_entries -= 1
                    extra_bytes -= row_size
                    entries -= 1
                    size -= row_size
                rows.close()
                db.executemany("DELETE FROM responses WHERE key = ?", doomed)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite rolls back by itself after some errors
                db.execute("ROLLBACK")
            raise
        self._entries, self._bytes = entries, size
        if doomed:
            _log.debug("cache.evicted", path=str(self.path), answers=len(doomed))
