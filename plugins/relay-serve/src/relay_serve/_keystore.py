"""Client keys made at runtime (``relay keys``, ``/admin/keys``), kept in the server's
:class:`~relay_serve._database.Database` so that every worker and replica sees them.

A key is stored as the SHA-256 of its secret, never the secret: :meth:`KeyStore.create`
and :meth:`KeyStore.rotate` return the secret once, and nothing can show it again. Each
key has a short random ``id`` (``key_3f9a0c1d2e4b``) for listings, which says nothing
about the secret or its hash. A name is unique among live keys; a revoked key's row
stays, so the spend of a key that no longer exists still has a name, and a rotated key
records the key it ``replaces``.

The server reads keys through :class:`KeyReader`: one indexed lookup by digest, off the
event loop, with answers kept at most half a second, so a key made on one replica works
on every other at once (unknown keys are never remembered) and a revoked one stops
everywhere within a second.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import json
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from attrs import frozen

from relay_core.plugin import ConfigError
from relay_serve._database import Database
from relay_serve._keyfields import KeyFields, check_name
from relay_serve._settings import ApiKey, Budget, Limits, new_key

__all__ = [
    "KeyExists",
    "KeyNotFound",
    "KeyReader",
    "KeyRecord",
    "KeyStore",
    "KeyStoreUnavailable",
    "NewKey",
    "open_store",
]

SCHEMA_VERSION = 1
_TABLE = "relay_serve_keys"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS relay_serve_schema ("
    " part TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {_TABLE} ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " digest TEXT NOT NULL UNIQUE,"  # the UNIQUE constraint is the lookup's index
    " team TEXT,"
    " limits TEXT NOT NULL,"
    " created_at DOUBLE PRECISION NOT NULL,"
    " expires_at DOUBLE PRECISION,"
    " revoked_at DOUBLE PRECISION,"
    " replaces TEXT)",
    # Unique among live keys only: a revoked name may be used again, and a key rotated
    # with a grace period (revoked_at in the future) coexists with its replacement.
    f"CREATE UNIQUE INDEX IF NOT EXISTS {_TABLE}_live_name ON {_TABLE} (name)"
    " WHERE revoked_at IS NULL",
    "INSERT INTO relay_serve_schema (part, version) VALUES ('keys', 1)"
    " ON CONFLICT (part) DO NOTHING",
)
_COLUMNS = "id, name, team, limits, created_at, expires_at, revoked_at, replaces"
# How long the server trusts what the store said about a key, and how many answers it
# keeps: only keys that exist are kept, so clients cannot fill it with guesses.
CACHE_SECONDS = 0.5
CACHE_SIZE = 4096


class KeyStoreError(Exception):
    """A key store operation that cannot be done; the message names the key."""


class KeyExists(KeyStoreError):
    """A live key already has that name."""


class KeyNotFound(KeyStoreError):
    """No live key has that name."""


class KeyStoreUnavailable(Exception):
    """The database behind the key store did not answer."""


@frozen
class KeyRecord:
    """A stored key as listings show it: everything but its secret and its hash."""

    id: str
    name: str
    team: str | None
    limits: Limits
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    replaces: str | None

    def live(self, now: float) -> bool:
        """Not revoked (or revoked with a grace period that has not ended)."""
        return self.revoked_at is None or self.revoked_at > now

    def as_json(self) -> dict[str, Any]:
        limits = self.limits
        return {
            "id": self.id,
            "name": self.name,
            "team": self.team,
            "models": list(limits.models),
            "requests_per_minute": limits.requests_per_minute,
            "tokens_per_minute": limits.tokens_per_minute,
            "max_concurrent": limits.max_concurrent,
            "budgets": [{"dollars": b.dollars, "period": b.period} for b in limits.budgets],
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "replaces": self.replaces,
        }


@frozen
class NewKey:
    """A key just made: its secret, shown once, and its record."""

    secret: str = attrs.field(repr=False)
    record: KeyRecord


class KeyStore:
    """The ``relay_serve_keys`` table of ``database`` (created if absent); the store
    owns the database and closes it."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self._clock = clock
        database.script(_SCHEMA)
        rows = database.execute("SELECT version FROM relay_serve_schema WHERE part = 'keys'")
        if rows and int(rows[0][0]) > SCHEMA_VERSION:
            database.close()  # the store owns its database, and there will be no store
            raise ConfigError(
                f"the key store in {database.where} was written by a newer relay-serve "
                f"(schema {rows[0][0]}, this one reads {SCHEMA_VERSION}): upgrade relay-serve"
            )

    @classmethod
    def open(cls, url: str) -> KeyStore:
        return cls(Database.open(url))

    def create(self, name: str, fields: KeyFields | None = None) -> NewKey:
        """A new key named ``name``; :class:`KeyExists` if a live key has that name."""
        check_name(name)
        fields = fields or KeyFields()
        if self._live(name):
            raise KeyExists(f"a key named {name!r} exists; revoke or rotate it")
        return self._insert(name, fields.team, fields.limits, fields.expires_at, None)

    def list(self, *, revoked: bool = False) -> builtins.list[KeyRecord]:
        """Live keys by name (with ``revoked``, every key ever made)."""
        if revoked:
            rows = self.database.execute(
                f"SELECT {_COLUMNS} FROM {_TABLE} ORDER BY name, created_at"
            )
        else:
            rows = self.database.execute(
                f"SELECT {_COLUMNS} FROM {_TABLE} WHERE revoked_at IS NULL OR revoked_at > ? "
                "ORDER BY name, created_at",
                (self._clock(),),
            )
        return [_record(row) for row in rows]

    def find(self, digest: bytes) -> ApiKey | None:
        """The live key whose secret hashes to ``digest``, expired or not (the caller
        says which, so that an expired key hears why it is refused)."""
        return self._key(digest, self._lookup(digest))

    async def afind(self, digest: bytes) -> ApiKey | None:
        """:meth:`find` in a worker thread; :class:`KeyStoreUnavailable` when the
        database does not answer."""
        try:
            rows = await self.database.run(*self._lookup_sql(digest))
        except Exception as error:
            raise KeyStoreUnavailable(
                f"the key store {self.database.where} did not answer ({type(error).__name__})"
            ) from error
        return self._key(digest, rows)

    def revoke(self, name: str) -> int:
        """Revoke every live key named ``name`` at once (with a rotation's grace period
        too); how many. :class:`KeyNotFound` if none."""
        now = self._clock()
        rows = self.database.execute(
            f"UPDATE {_TABLE} SET revoked_at = ? WHERE name = ? "
            "AND (revoked_at IS NULL OR revoked_at > ?) RETURNING id",
            (now, name, now),
        )
        if not rows:
            raise KeyNotFound(f"no live key is named {name!r}")
        return len(rows)

    def rotate(self, name: str, grace: float = 0.0) -> NewKey:
        """A new secret for ``name`` with the same team, limits and expiry; the old
        secret is revoked, ``grace`` seconds from now (0: at once)."""
        now = self._clock()
        # One UPDATE decides which of two concurrent rotations wins: the other finds
        # no live key and fails, rather than leaving two live keys of one name.
        rows = self.database.execute(
            f"UPDATE {_TABLE} SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL "
            "RETURNING id, team, limits, expires_at",
            (now + max(0.0, grace), name),
        )
        if not rows:
            raise KeyNotFound(f"no live key is named {name!r}")
        old, team, limits, expires_at = rows[0]
        try:
            return self._insert(name, team, _limits(limits), expires_at, old)
        except BaseException:
            # The new key could not be stored: the old one keeps working.
            self.database.execute(f"UPDATE {_TABLE} SET revoked_at = NULL WHERE id = ?", (old,))
            raise

    def close(self) -> None:
        self.database.close()

    # -- rows ---------------------------------------------------------------------------

    def _live(self, name: str) -> bool:
        rows = self.database.execute(
            f"SELECT 1 FROM {_TABLE} WHERE name = ? AND revoked_at IS NULL", (name,)
        )
        return bool(rows)

    def _insert(
        self,
        name: str,
        team: str | None,
        limits: Limits,
        expires_at: float | None,
        replaces: str | None,
    ) -> NewKey:
        secret = new_key()
        record = KeyRecord(
            id="key_" + secrets.token_hex(6),
            name=name,
            team=team,
            limits=limits,
            created_at=self._clock(),
            expires_at=expires_at,
            revoked_at=None,
            replaces=replaces,
        )
        try:
            self.database.execute(
                f"INSERT INTO {_TABLE} ({_COLUMNS}, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    name,
                    team,
                    _limits_json(limits),
                    record.created_at,
                    expires_at,
                    None,
                    replaces,
                    hashlib.sha256(secret.encode()).hexdigest(),
                ),
            )
        except Exception as error:
            if _is_conflict(error):  # another process made the name meanwhile
                raise KeyExists(f"a key named {name!r} exists; revoke or rotate it") from None
            raise
        return NewKey(secret, record)

    def _lookup_sql(self, digest: bytes) -> tuple[str, Sequence[Any]]:
        return (
            f"SELECT name, team, limits, expires_at, revoked_at FROM {_TABLE} WHERE digest = ?",
            (digest.hex(),),
        )

    def _lookup(self, digest: bytes) -> builtins.list[tuple[Any, ...]]:
        return self.database.execute(*self._lookup_sql(digest))

    def _key(self, digest: bytes, rows: builtins.list[tuple[Any, ...]]) -> ApiKey | None:
        if not rows:
            return None
        name, team, limits, expires_at, revoked_at = rows[0]
        if revoked_at is not None and revoked_at <= self._clock():
            return None
        return ApiKey(name, digest, limits=_limits(limits), team=team, expires_at=expires_at)


class KeyReader:
    """The server's view of a :class:`KeyStore`: lookups by digest, each answer kept for
    at most :data:`CACHE_SECONDS`, at most :data:`CACHE_SIZE` of them."""

    def __init__(
        self,
        store: KeyStore,
        *,
        seconds: float = CACHE_SECONDS,
        size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._seconds = seconds
        self._size = size
        self._clock = clock
        self._recent: dict[bytes, tuple[float, ApiKey]] = {}
        # Requests presenting one key at once share its lookup: one task, which a
        # request that goes away does not cancel for the others.
        self._pending: dict[bytes, asyncio.Task[ApiKey | None]] = {}

    async def find(self, digest: bytes) -> ApiKey | None:
        now = self._clock()
        kept = self._recent.get(digest)
        if kept is not None and now - kept[0] < self._seconds:
            return kept[1]
        task = self._pending.get(digest)
        if task is None:
            task = asyncio.ensure_future(self._fetch(digest, now))
            self._pending[digest] = task

            def done(task: asyncio.Task[ApiKey | None]) -> None:
                self._pending.pop(digest, None)
                if not task.cancelled():
                    task.exception()  # retrieved, even when every asker went away

            task.add_done_callback(done)
        return await asyncio.shield(task)

    async def _fetch(self, digest: bytes, now: float) -> ApiKey | None:
        key = await self.store.afind(digest)
        self._recent.pop(digest, None)
        if key is not None:
            self._keep(digest, now, key)
        return key

    def _keep(self, digest: bytes, now: float, key: ApiKey) -> None:
        if len(self._recent) >= self._size:
            for old in [d for d, (at, _) in self._recent.items() if now - at >= self._seconds]:
                del self._recent[old]
        while len(self._recent) >= self._size:
            del self._recent[next(iter(self._recent))]  # the oldest
        self._recent[digest] = (now, key)


def open_store(database: str) -> KeyStore:
    """The key store in ``database`` (``plugins.serve.database``'s checked value)."""
    return KeyStore(Database.open(database))


def _limits_json(limits: Limits) -> str:
    return json.dumps(
        {
            "requests_per_minute": limits.requests_per_minute,
            "tokens_per_minute": limits.tokens_per_minute,
            "max_concurrent": limits.max_concurrent,
            "models": list(limits.models),
            "budgets": [[b.dollars, b.period] for b in limits.budgets],
        }
    )


def _limits(text: str) -> Limits:
    data = json.loads(text)
    values: dict[str, Any] = {
        "requests_per_minute": data.get("requests_per_minute"),
        "tokens_per_minute": data.get("tokens_per_minute"),
        "max_concurrent": data.get("max_concurrent"),
        "models": tuple(data.get("models", ())),
        "budgets": tuple(Budget(dollars, period) for dollars, period in data.get("budgets", ())),
    }
    return Limits(**values)


def _record(row: Sequence[Any]) -> KeyRecord:
    id_, name, team, limits, created_at, expires_at, revoked_at, replaces = row
    return KeyRecord(id_, name, team, _limits(limits), created_at, expires_at, revoked_at, replaces)


def _iso(moment: float | None) -> str | None:
    import datetime

    if moment is None:
        return None
    stamp = datetime.datetime.fromtimestamp(moment, datetime.timezone.utc)
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


def _is_conflict(error: Exception) -> bool:
    if isinstance(error, sqlite3.IntegrityError):
        return True
    psycopg = sys.modules.get("psycopg")  # loaded if, and only if, the store is PostgreSQL
    return psycopg is not None and isinstance(error, psycopg.IntegrityError)
