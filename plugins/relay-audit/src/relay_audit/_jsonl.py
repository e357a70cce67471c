"""The JSONL sink: an append-only file, one record a line, each line chained to the one
before by its hash.

Every append happens under a lock held across threads (a :class:`threading.Lock`) and
processes (``fcntl.flock`` on the file itself, where the platform has it): the writer
reads the hash of the file's last line, writes its line with ``O_APPEND`` in one
``write``, and ``fsync``\\ s before it lets go. Reading the last line under the lock is
what keeps the chain whole when several processes, or a restarted one, append to one
file. A line cut short (a crash mid-write, a full disk) is closed with a newline by the
next writer, whose record acknowledges it (``recovered``: its length and SHA-256) and
chains to the last whole record, so ``relay audit verify`` can tell that crash from an
edit. With a key, each ``hash`` is an HMAC (see :func:`relay_audit._record.seal`), so a
record appended by someone without the key does not verify.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relay_audit._record import KEYED, canonical, seal, sealed

if TYPE_CHECKING:
    from relay_core.plugin import Secret

try:  # POSIX; elsewhere only the threads of one process are kept in line
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["JsonlSink", "is_canonical", "key_bytes", "parse_line", "unaltered"]

_CHUNK = 64 * 1024


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """The record on ``raw`` (one line, without its newline), or ``None`` when it is not
    one: not JSON, not an object, or without a string ``hash``."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: a hostile line nested deep
        return None
    if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
        return None
    return record


def is_canonical(raw: bytes, record: dict[str, Any]) -> bool:
    """Whether ``raw`` is byte for byte the one encoding of ``record`` that the sink
    writes. The hash covers the parsed record; this check extends it to the bytes, which
    could otherwise change without changing the record (a duplicate key before the real
    one, spacing, escapes)."""
    try:
        return raw == canonical(record).encode("ascii")
    except ValueError:  # NaN written by hand: not JSON the sink writes
        return False


def unaltered(raw: bytes, record: dict[str, Any], key: bytes | None) -> bool:
    """Whether the line ``raw`` is exactly as written: canonical, and its ``hash`` that of
    its content (an HMAC with ``key`` when the hash is a keyed one; ``False`` for a keyed
    hash and no key)."""
    keyed = record["hash"].startswith(KEYED)
    if keyed and key is None:
        return False
    return is_canonical(raw, record) and sealed(record, key if keyed else None)


def key_bytes(key: Secret | bytes | str | None) -> bytes | None:
    """A chain key as bytes: a :class:`~relay_core.Secret` (as a credential reference
    resolves to), text or bytes. An empty key is no key at all: refused."""
    if key is None:
        return None
    if isinstance(key, bytes):
        value = key
    else:
        value = (key if isinstance(key, str) else key.reveal()).encode()
    if not value:
        raise ValueError("the audit chain key is empty")
    return value


class JsonlSink:
    """Appends records to ``path`` as a hash chain; ``fsync`` makes each one durable
    before the call returns (off: faster, the last records may be lost in a power cut).
    With a ``key`` each record's ``hash`` is an HMAC-SHA256 under it (a keyed chain)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = True,
        key: Secret | bytes | str | None = None,
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.name = f"jsonl:{self.path}"
        self._key = key_bytes(key)
        self._lock = threading.Lock()
        # (inode, size, hash) after this sink's last append: when the file is still
        # exactly that, its last line need not be read again.
        self._tail: tuple[int, int, str] | None = None

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line, with ``prev`` (the hash of the file's last
        record, ``None`` in an empty file), its own ``hash`` and, after a crash cut the
        last line short, ``recovered``; ``record`` itself is left as it is. The file
        (mode ``0600``) and its directories are created on the first write. Raises
        :class:`OSError` when the line could not be written whole or synced: the
        partial line is taken back."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes
                self._append(fd, record)
            finally:
                os.close(fd)

    def _append(self, fd: int, record: dict[str, Any]) -> None:
        stat = os.fstat(fd)
        size = stat.st_size
        chained = dict(record)
        prefix = b""
        if self._tail is not None and self._tail[:2] == (stat.st_ino, size):
            chained["prev"] = self._tail[2]
        else:
            prev, fragment, closed = _tail_of(fd, size, self._key)
            chained["prev"] = prev
            if not closed:
                prefix = b"\n"
            if fragment is not None:
                chained["recovered"] = {
                    "bytes": len(fragment),
                    "sha256": hashlib.sha256(fragment).hexdigest(),
                }
        chained["hash"] = seal(chained, self._key)
        line = prefix + canonical(chained).encode("ascii") + b"\n"
        try:
            written = os.write(fd, line)
            if written != len(line):  # a full disk takes part of a line, not all
                raise OSError(f"wrote {written} of {len(line)} bytes")
            if self.fsync:
                os.fsync(fd)
        except OSError:
            # Take the partial line back so the file stays a clean chain; if even that
            # fails, the next writer closes the fragment and acknowledges it.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            self._tail = None
            raise
        self._tail = (stat.st_ino, size + len(line), chained["hash"])


def _tail_of(fd: int, size: int, key: bytes | None) -> tuple[str | None, bytes | None, bool]:
    """The hash to chain the next record to; the fragment (a last line without its
    newline that is not a whole record) the next record must acknowledge, if any; and
    whether the file ends with a newline (if not, the next line must start with one)."""
    if size == 0:
        return None, None, True
    start = _line_start(fd, size)
    last = _read(fd, start, size - start)
    if last.endswith(b"\n"):
        return _hash_of(last), None, True
    record = parse_line(last)
    if record is not None and unaltered(last, record, key):
        # Cut exactly at its newline: the record itself is whole.
        return record["hash"], None, False
    if start == 0:
        return None, last, False
    begin = _line_start(fd, start)
    return _hash_of(_read(fd, begin, start - begin)), last, False


def _hash_of(line: bytes) -> str:
    line = line.rstrip(b"\n")
    record = parse_line(line)
    # A last line that is not a record was put there by hand; chaining to its bytes
    # keeps this record honest, and verify reports that line.
    return record["hash"] if record is not None else hashlib.sha256(line).hexdigest()


def _line_start(fd: int, end: int) -> int:
    """Offset of the start of the line whose last byte is at ``end - 1``."""
    position = end - 1  # the line's own last byte may be its newline
    while position > 0:
        begin = max(0, position - _CHUNK)
        chunk = _read(fd, begin, position - begin)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return begin + newline + 1
        position = begin
    return 0


def _read(fd: int, offset: int, length: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    parts = []
    while length > 0:
        chunk = os.read(fd, length)
        if not chunk:
            break
        parts.append(chunk)
        length -= len(chunk)
    return b"".join(parts)
