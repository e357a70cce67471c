"""The mock's batch bookkeeping: what a submitted batch is, where it is kept, and how far
it has got at a given moment.

A batch never runs anything in the background. Its progress is a pure function of the
clock: request ``i`` of ``n`` (in submission order) is finished once ``duration * (i+1)/n``
seconds have passed since submission, unless the batch was cancelled or expired first.
That makes progress reproducible with an injected clock and identical across processes
that share a ``state_dir``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

from attrs import define, evolve, field, frozen

from relay_core.plugin import BatchState, MalformedResponse, Request, structure, unstructure

__all__ = ["BatchRecord", "DirectoryStore", "MemoryStore", "Progress", "Store", "progress"]

# The share of the duration a batch spends "validating" before its first result.
_VALIDATING_SHARE = 0.1


def _requests(value: Iterable[Request]) -> tuple[Request, ...]:
    return tuple(value)


@frozen(kw_only=True)
class BatchRecord:
    """A submitted batch: everything needed to recompute its state at any time.

    ``duration`` and ``expiry`` are fixed at submission, as a provider fixes a batch's
    completion window, so changing the options later does not rewrite history.
    """

    id: str
    seq: int
    created_at: float
    duration: float
    expiry: float | None
    requests: tuple[Request, ...] = field(converter=_requests)
    metadata: dict[str, str] = field(factory=dict)
    cancelled_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "created_at": self.created_at,
            "duration": self.duration,
            "expiry": self.expiry,
            "metadata": self.metadata,
            "cancelled_at": self.cancelled_at,
            "requests": [unstructure(request) for request in self.requests],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchRecord:
        return cls(
            id=data["id"],
            seq=int(data["seq"]),
            created_at=float(data["created_at"]),
            duration=float(data["duration"]),
            expiry=None if data["expiry"] is None else float(data["expiry"]),
            metadata=dict(data["metadata"]),
            cancelled_at=None if data["cancelled_at"] is None else float(data["cancelled_at"]),
            requests=[structure(item, Request) for item in data["requests"]],
        )

    def cancelled(self, at: float) -> BatchRecord:
        return evolve(self, cancelled_at=at)


@frozen
class Progress:
    """A batch's state at one moment: the first ``finished`` requests have run."""

    state: BatchState
    finished: int
    ended_at: float | None

    @property
    def done(self) -> bool:
        return self.state in ("completed", "failed", "cancelled", "expired")


def progress(record: BatchRecord, now: float) -> Progress:
    """Where ``record`` stands at time ``now`` (Unix seconds)."""
    total = len(record.requests)
    completes_at = record.created_at + record.duration
    expires_at = None if record.expiry is None else record.created_at + record.expiry
    state: BatchState | None = None
    ended_at: float | None = None
    stopped_at = now
    if record.cancelled_at is not None and record.cancelled_at < completes_at:
        state, ended_at = "cancelled", record.cancelled_at
    elif expires_at is not None and expires_at < completes_at and now >= expires_at:
        state, ended_at = "expired", expires_at
    elif now >= completes_at:
        state, ended_at = "completed", completes_at
    if ended_at is not None:
        stopped_at = ended_at
    elapsed = stopped_at - record.created_at
    # "completed" decides by itself: created_at + duration - created_at may round to a
    # hair under duration, which left a completed batch one request short.
    if state == "completed" or elapsed >= record.duration or record.duration <= 0:
        finished = total
    else:
        finished = max(0, math.floor(total * elapsed / record.duration))
    if state is None:
        early = finished == 0 and elapsed < record.duration * _VALIDATING_SHARE
        state = "validating" if early else "in_progress"
    return Progress(state, finished, ended_at)


class Store(Protocol):
    """Where batch records live."""

    def get(self, batch_id: str) -> BatchRecord | None: ...

    def put(self, record: BatchRecord) -> None: ...

    def all(self) -> Iterator[BatchRecord]: ...


@define
class MemoryStore:
    """Batches of this process, shared by every adapter instance like a provider's own
    database is shared by its clients. Tests clear :attr:`records` between runs."""

    records: ClassVar[dict[str, BatchRecord]] = {}

    def get(self, batch_id: str) -> BatchRecord | None:
        return self.records.get(batch_id)

    def put(self, record: BatchRecord) -> None:
        self.records[record.id] = record

    def all(self) -> Iterator[BatchRecord]:
        return iter(list(self.records.values()))


@define
class DirectoryStore:
    """One JSON file per batch in ``directory``, so other processes see the same batches.

    Files are replaced atomically (a temporary file, then ``os.replace``): a reader sees
    the old state or the new one, never half a file, even if the writer dies.
    """

    directory: Path

    def _path(self, batch_id: str) -> Path:
        return self.directory / f"{batch_id}.json"

    def get(self, batch_id: str) -> BatchRecord | None:
        path = self._path(batch_id)
        if "/" in batch_id or "\\" in batch_id or not path.is_file():
            return None
        return self._read(path)

    def put(self, record: BatchRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(record.to_json(), file, ensure_ascii=False)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self._path(record.id))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def all(self) -> Iterator[BatchRecord]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("mockbatch_*.json")):
            yield self._read(path)

    @staticmethod
    def _read(path: Path) -> BatchRecord:
        try:
            return BatchRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except Exception as error:  # OSError, bad JSON, or cattrs' validation groups
            # Only a hand-edited or foreign file gets here: writes are atomic.
            raise MalformedResponse(f"batch state file {path} is unreadable: {error}") from error
