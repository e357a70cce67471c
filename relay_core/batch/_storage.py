"""What a workspace's disk refused, as a :class:`WorkspaceError` that says so.

A full disk, a file size limit, a read-only directory or a database another process
kept locked shows up as an ``OSError`` from a file write or as an
``sqlite3.OperationalError`` from the database, deep inside a job.
:func:`storage_errors` turns those, and only those, into one line naming the path and
the cause; any other error passes through untouched. Whatever was written before stays
valid: the JSONL files are append-only with torn last lines cut off on resume, and
SQLite rolls back the transaction that failed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from relay_core.errors import WorkspaceError

__all__ = ["storage_error", "storage_errors"]

_FULL = {errno.ENOSPC: "disk full", errno.EFBIG: "file too large (a file size limit)"}
if hasattr(errno, "EDQUOT"):
    _FULL[errno.EDQUOT] = "disk quota exceeded"
_READ_ONLY = {errno.EROFS: "read-only file system", errno.EACCES: "read-only: permission denied"}
_READ_ONLY[errno.EPERM] = "read-only: operation not permitted"

# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_BUSY, _SQLITE_READONLY, _SQLITE_FULL, _SQLITE_CANTOPEN = 5, 8, 13, 14
_LOCKED = "locked: another process kept the database busy past SQLite's wait"


def _sqlite_cause(error: sqlite3.Error) -> str | None:
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    text = str(error).lower()
    if code is not None:
        code &= 0xFF
    if code == _SQLITE_FULL or "disk is full" in text:
        return "disk full"
    if code == _SQLITE_READONLY or "readonly database" in text:
        return "read-only"
    if code == _SQLITE_BUSY or "database is locked" in text:
        return _LOCKED
    if code == _SQLITE_CANTOPEN or "unable to open database" in text:
        # Reading a WAL database needs its -shm file: in a directory nobody may write to
        # SQLite cannot create it, and says it cannot open the database.
        return "read-only or missing: SQLite cannot open or create its files there"
    return None


def storage_error(
    directory: str | os.PathLike[str], error: BaseException, *, reading: bool = False
) -> WorkspaceError | None:
    """``error`` as a :class:`WorkspaceError` when the disk refused a write, else None;
    ``reading``: the write was one SQLite needs to read (a WAL database's ``-shm``)."""
    where: Path | None
    if isinstance(error, sqlite3.Error):
        cause = _sqlite_cause(error)
        where = Path(directory) / "relay.db"
    elif isinstance(error, OSError):
        cause = _FULL.get(error.errno or 0) or _READ_ONLY.get(error.errno or 0)
        # A buffered file's flush fails without a name: the workspace is all we know.
        where = Path(error.filename) if error.filename else None
    else:
        return None
    if cause is None:
        return None
    if cause.startswith(("disk", "file too large")):
        advice = "free some space, then resume the job: what was written before is kept"
    elif cause == _LOCKED:
        advice = (
            "another relay process (a job, the dashboard) is writing to this workspace: "
            "try again when it is done; what was written before is kept"
        )
    elif reading:
        advice = "SQLite writes a -shm file beside relay.db even to read it: make it writable"
    else:
        advice = "give a workspace this user may write to"
    verb = "read" if reading else "write to"
    at = f"{where}: " if where is not None else ""
    return WorkspaceError(
        f"cannot {verb} the workspace {directory}: {at}{cause}; {advice}",
        directory=os.fspath(directory),
    )


@contextlib.contextmanager
def storage_errors(directory: str | os.PathLike[str], *, reading: bool = False) -> Iterator[None]:
    """Raise what the disk refused inside the block as a :class:`WorkspaceError`."""
    try:
        yield
    except (OSError, sqlite3.Error) as error:
        translated = storage_error(directory, error, reading=reading)
        if translated is None:
            raise
        raise translated from error
