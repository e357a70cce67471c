"""The spend ledger: one row per answered request, in the server's database.

A row is written once: its ``id`` is the server's own (not the client's X-Request-ID,
which a client could reuse to be billed once for many calls), and rows are inserted
with ``ON CONFLICT DO NOTHING``, so a row reported twice (a flush retried, a journal
replayed by another worker) is still one row.

Writes stay off the request path. :meth:`Ledger.record` appends the row to a local
journal file (one ``write``, no ``fsync``) and to a batch in memory; a background task
inserts the batch every ``flush_every`` seconds or ``batch`` rows, then deletes that
journal. The journal is in the operating system's hands as soon as ``record`` returns,
so a worker killed with ``kill -9`` loses nothing: the next worker to start (or the
same server restarted) replays the journals no living process holds. Only a crash of
the machine itself can lose the rows of its last moments. Without a journal directory
rows are only in memory until flushed (at most ``flush_every`` seconds of spend).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
from attrs import frozen

from relay_core.plugin import get_logger

if TYPE_CHECKING:
    from relay_serve._database import Database

__all__ = ["Ledger", "SpendRow", "ledger_for", "new_row_id"]

_log = get_logger("relay.serve.spend")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS relay_spend (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL,
        key_name TEXT,
        team TEXT,
        alias TEXT NOT NULL,
        target TEXT NOT NULL,
        input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        cached_tokens BIGINT NOT NULL,
        dollars DOUBLE PRECISION,
        cost_source TEXT NOT NULL,
        priced_by TEXT,
        usage_source TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        day TEXT NOT NULL,
        cut INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS relay_spend_key_at ON relay_spend (key_name, at)",
    "CREATE INDEX IF NOT EXISTS relay_spend_team_at ON relay_spend (team, at)",
    "CREATE INDEX IF NOT EXISTS relay_spend_at ON relay_spend (at)",
)
_COLUMNS = (
    "id",
    "request_id",
    "key_name",
    "team",
    "alias",
    "target",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "dollars",
    "cost_source",
    "priced_by",
    "usage_source",
    "at",
    "day",
    "cut",
)
_GROUPS = {"model": "alias", "day": "day", "key": "key_name", "team": "team"}
Group = Literal["model", "day", "key", "team"]


def ledger_for(database: Database, beside: str | None = None) -> Ledger:
    """The ledger in ``database``. Its journals are per machine (each replica keeps its
    own): ``<file>.journal/`` beside a SQLite file; for PostgreSQL
    ``relay-serve.journal/`` beside the catalog file ``beside``, or under
    ``$XDG_STATE_HOME/relay-serve/`` for a catalog built in code."""
    if database.kind == "sqlite":
        journal = Path(database.where + ".journal")
    elif beside and Path(beside).is_file():
        journal = Path(beside).resolve().parent / "relay-serve.journal"
    else:
        state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        name = hashlib.sha256(database.where.encode()).hexdigest()[:12]
        journal = Path(state) / "relay-serve" / f"journal-{name}"
    return Ledger(database, journal=journal)


def new_row_id() -> str:
    return uuid.uuid4().hex


@frozen(kw_only=True)
class SpendRow:
    """One answered request: who (key and team), what (alias and ``provider/model``),
    tokens, dollars (None: no price known) with where the price came from
    (``cost_source``: the Cost's source, ``priced_by``), whether the token counts are
    the upstream's (``usage_source: reported``) or estimated from a stream the client
    cut (``estimated``), and when (UTC POSIX seconds)."""

    id: str = attrs.field(factory=new_row_id)
    request_id: str
    key: str | None
    team: str | None
    alias: str
    target: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    dollars: float | None
    cost_source: str
    priced_by: str | None = None
    usage_source: Literal["reported", "estimated"] = "reported"
    at: float = attrs.field(factory=time.time)
    cut: bool = False

    def fields(self) -> tuple[Any, ...]:
        """Every field, in the order the journal keeps them."""
        return (
            self.id,
            self.request_id,
            self.key,
            self.team,
            self.alias,
            self.target,
            self.input_tokens,
            self.output_tokens,
            self.cached_tokens,
            self.dollars,
            self.cost_source,
            self.priced_by,
            self.usage_source,
            self.at,
            self.cut,
        )

    def values(self) -> tuple[Any, ...]:
        """The row's columns in the ledger table: its fields, with the UTC day before
        ``cut`` (as 0 or 1)."""
        *fields, cut = self.fields()
        day = datetime.fromtimestamp(self.at, timezone.utc).strftime("%Y-%m-%d")
        return (*fields, day, int(cut))

    def line(self) -> bytes:
        """The row as one journal line: a JSON array in field order (a list, not an
        object, because this runs on every answer)."""
        return _ENCODE(self.fields()).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> SpendRow:
        return cls(**dict(zip(_FIELDS, json.loads(line), strict=True)))


_FIELDS = tuple(field.name for field in attrs.fields(SpendRow))
# Rows held in memory while the database is down and there is no journal.
_MAX_PENDING = 100_000
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class Ledger:
    """The spend ledger in ``database`` (its table is created when missing), with
    journal files in ``journal`` (None: no journal; see the module's text)."""

    def __init__(
        self,
        database: Database,
        *,
        journal: Path | str | None = None,
        flush_every: float = 0.2,
        batch: int = 500,
    ) -> None:
        self.database = database
        self.journal = None if journal is None else Path(journal)
        self.flush_every = flush_every
        self.batch = batch
        self._pending: list[SpendRow] = []
        self._file: _Journal | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._failing = False
        self._kept = False
        database.script(_SCHEMA)

    # -- writing ------------------------------------------------------------------------

    def record(self, row: SpendRow) -> None:
        """Keep ``row``: in the journal at once, in the database within ``flush_every``
        seconds. Never blocks on the database."""
        if self.journal is not None:
            if self._file is None:
                self._file = _Journal.create(self.journal)
            self._file.write(row.line())
        self._pending.append(row)
        if len(self._pending) >= self.batch:
            self._wake.set()

    async def start(self) -> None:
        """Replay the journals of workers that died, then flush in the background."""
        if self.journal is not None:
            await self.replay()
        if self._task is None:
            self._task = asyncio.create_task(self._flusher())

    async def _flusher(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_every)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as error:  # the database is down: keep the rows, try again
                if not self._failing:
                    _log.error("serve.spend_unflushed", detail=str(error), rows=len(self._pending))
                self._failing = True
            else:
                self._failing = False

    async def flush(self) -> None:
        """Insert the rows recorded so far, and drop the journal that held them."""
        async with self._flushing:
            rows, self._pending = self._pending, []
            journal, self._file = self._file, None
            try:
                if rows:
                    await self._insert(rows)
            except BaseException:
                if journal is not None:
                    # The rows stay in their journal, let go of so that a replay takes
                    # it: memory does not grow with an outage of the database.
                    journal.keep()
                    self._kept = True
                else:
                    room = max(_MAX_PENDING - len(self._pending), 0)
                    if len(rows) > room:
                        _log.error("serve.spend_dropped", rows=len(rows) - room)
                    self._pending[:0] = rows[len(rows) - room :]
                raise
            if journal is not None:
                journal.remove()
            if self._kept:  # the database answers again: take in what an outage left
                self._kept = False
                await self.replay()

    async def _insert(self, rows: Sequence[SpendRow]) -> None:
        marks = "(" + ",".join("?" * len(_COLUMNS)) + ")"
        for start in range(0, len(rows), self.batch):
            chunk = rows[start : start + self.batch]
            sql = (
                f"INSERT INTO relay_spend ({','.join(_COLUMNS)}) VALUES "
                + ",".join([marks] * len(chunk))
                + " ON CONFLICT (id) DO NOTHING"
            )
            await self.database.run(sql, [value for row in chunk for value in row.values()])

    async def replay(self) -> int:
        """Insert the rows of every journal no living process holds; the rows found."""
        assert self.journal is not None
        found = 0
        for path in sorted(self.journal.glob("spend-*.jsonl")):
            orphan = _Journal.claim(path)
            if orphan is None:
                continue  # its worker is alive and will flush it
            rows = list(orphan.rows())
            await self._insert(rows)
            orphan.remove()
            found += len(rows)
        if found:
            _log.info("serve.spend_replayed", rows=found)
        return found

    async def aclose(self) -> None:
        """Stop the flusher and insert what is left (on shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._file is not None:
            self._file.remove()
            self._file = None

    # -- reading ------------------------------------------------------------------------

    async def spent(
        self, *, key: str | None = None, team: str | None = None, since: float | None = None
    ) -> float:
        """Dollars spent by ``key`` or ``team`` since ``since`` (UTC POSIX; None: ever),
        this worker's rows not yet flushed included."""
        with contextlib.suppress(Exception):  # unflushed rows are still counted below
            await self.flush()
        where, params = _where(key=key, team=team, since=since)
        rows = await self.database.run(
            f"SELECT COALESCE(SUM(dollars), 0) FROM relay_spend{where}", params
        )
        total = float(rows[0][0] or 0.0)
        return total + sum(
            row.dollars or 0.0
            for row in self._pending
            if (key is None or row.key == key)
            and (team is None or row.team == team)
            and (since is None or row.at >= since)
        )

    async def report(
        self,
        *,
        key: str | None = None,
        team: str | None = None,
        since: float | None = None,
        by: Group = "key",
    ) -> list[dict[str, Any]]:
        """Spend grouped ``by`` model (alias), day, key or team, largest first."""
        with contextlib.suppress(Exception):
            await self.flush()
        return await asyncio.to_thread(self.report_now, key=key, team=team, since=since, by=by)

    def report_now(
        self,
        *,
        key: str | None = None,
        team: str | None = None,
        since: float | None = None,
        by: Group = "key",
    ) -> list[dict[str, Any]]:
        """:meth:`report` from this thread, of the rows in the database."""
        column = _GROUPS[by]
        where, params = _where(key=key, team=team, since=since)
        rows = self.database.execute(
            f"SELECT {column}, COUNT(*), SUM(input_tokens), SUM(output_tokens), "
            "COALESCE(SUM(dollars), 0), SUM(CASE WHEN dollars IS NULL THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN usage_source = 'estimated' THEN 1 ELSE 0 END) "
            f"FROM relay_spend{where} GROUP BY {column}",
            params,
        )
        found = [
            {
                by: group,
                "requests": int(count),
                "input_tokens": int(inputs or 0),
                "output_tokens": int(outputs or 0),
                "dollars": round(float(dollars or 0.0), 10),
                "unpriced_requests": int(unpriced or 0),
                "estimated_requests": int(estimated or 0),
            }
            for group, count, inputs, outputs, dollars, unpriced, estimated in rows
        ]
        if by == "day":
            return sorted(found, key=lambda entry: str(entry["day"]))
        return sorted(found, key=lambda entry: (-entry["dollars"], str(entry[by])))


def _where(*, key: str | None, team: str | None, since: float | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("key_name", key), ("team", team)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("at >= ?")
        params.append(since)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class _Journal:
    """One append-only journal file, locked by its writer for as long as it lives, so
    that a journal anyone can lock belongs to a process that is gone."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def create(cls, directory: Path) -> _Journal:
        import fcntl

        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"spend-{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(path, fd)

    @classmethod
    def claim(cls, path: Path) -> _Journal | None:
        """The journal at ``path`` when no living process holds it, now locked by us."""
        import fcntl

        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not path.exists():  # removed by its writer between our open and our lock
            os.close(fd)
            return None
        return cls(path, fd)

    def write(self, line: bytes) -> None:
        # One write of a whole line on an O_APPEND file: lines never interleave.
        os.write(self._fd, line)

    def rows(self) -> Iterable[SpendRow]:
        with open(self.path, "rb") as file:
            for line in file:
                if not line.endswith(b"\n"):
                    break  # cut by the kill mid-write: that answer was never sent
                try:
                    yield SpendRow.from_line(line)
                except (ValueError, TypeError):
                    _log.warning("serve.spend_journal_bad_line", journal=str(self.path))

    def keep(self) -> None:
        """Leave the file for a later replay, and let go of it."""
        os.close(self._fd)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
