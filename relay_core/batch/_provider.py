"""A job over provider batch APIs: submit each chunk once, poll, merge the results.

Nothing is paid for twice: before a chunk goes to the provider its row records *that*
it is being attempted; if the process dies before the provider's batch id is recorded,
the next run lists the provider's batches and adopts the one carrying the chunk's tag
(or, for providers that keep no metadata, the one created since the attempt with the
chunk's request count) instead of submitting again.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import attrs

from relay_core.batch import _checkpoints
from relay_core.batch._inputs import JobRequest
from relay_core.batch._jobs import (
    custom_ids,
    finalize,
    record_results,
    refused_results,
    write_result,
)
from relay_core.embeddings import EmbeddingRequest
from relay_core.errors import ProviderError, ResultsNotReady
from relay_core.providers import Provider, batch_workspace
from relay_core.serialize import loads, structure
from relay_core.types import BatchItem, ErrorInfo, ProviderBatch, Request

if TYPE_CHECKING:
    from pathlib import Path

    from relay_core.batch._workspace import Workspace
    from relay_core.batch.stores import Row
    from relay_core.hub import Hub, ModelHandle

__all__ = ["cancel", "refresh", "retrieve", "submit_chunks"]

# A provider's clock and ours may disagree; a batch created this long before our
# attempt was recorded may still be ours.
_CLOCK_SLACK = 300.0
_DONE = ("completed", "failed", "cancelled", "expired")


async def _submit_chunks(ws: Workspace, hub: Hub, job_id: str) -> None:
    """Submit every chunk of ``job_id`` that has no provider batch yet."""
    rows = ws.query(
        "SELECT * FROM chunks WHERE job_id = ? AND batch_id IS NULL ORDER BY chunk", (job_id,)
    )
    for chunk in rows:
        adapter = hub.get(chunk["alias"]).adapter
        batch = None
        if chunk["attempted_at"] is not None:
            batch = await _find(ws, adapter, chunk)
        if batch is None:
            requests = _chunk_requests(ws, job_id, chunk["chunk"])
            with ws.transaction() as db:
                db.execute(
                    "UPDATE chunks SET attempted_at = ? WHERE job_id = ? AND chunk = ?",
                    (time.time(), job_id, chunk["chunk"]),
                )
            _checkpoints.reached("submit.before")
            metadata = {"relay_job": job_id, "relay_tag": chunk["tag"]}
            embeddings = [r for r in requests if isinstance(r, EmbeddingRequest)]
            if embeddings:  # a chunk holds one kind of request
                batch = await adapter.submit_embedding_batch(embeddings, metadata=metadata)
            else:
                batch = await adapter.submit_batch(
                    [r for r in requests if isinstance(r, Request)], metadata=metadata
                )
            _checkpoints.reached("submit.after")
        _store(ws, job_id, chunk["chunk"], batch)
        hub.pipeline.audit_job(
            "batch.submitted", job_id, provider=batch.provider, batch_id=batch.id
        )
    ws.update(job_id, status="submitted")


def _chunk_requests(ws: Workspace, job_id: str, chunk: int) -> list[JobRequest]:
    with ws.chunk_path(job_id, chunk, "requests").open("rb") as file:
        return [_stored(json.loads(line)) for line in file]


def _stored(data: dict[str, Any]) -> JobRequest:
    if "inputs" in data:
        return structure(data, EmbeddingRequest)
    return structure(data, Request)


async def _find(ws: Workspace, adapter: Provider, chunk: Row) -> ProviderBatch | None:
    """The provider batch an interrupted attempt at ``chunk`` created, if it did."""
    batches = await adapter.list_batches()
    if adapter.batch_metadata:
        for batch in batches:
            if batch.metadata.get("relay_tag") == chunk["tag"]:
                return batch
        return None
    known = {row[0] for row in ws.query("SELECT batch_id FROM chunks WHERE batch_id IS NOT NULL")}
    since = chunk["attempted_at"] - _CLOCK_SLACK
    candidates = [
        batch
        for batch in batches
        if batch.id not in known
        and batch.counts.total == chunk["n_requests"]
        and (batch.created_at is None or batch.created_at >= since)
    ]
    candidates.sort(key=lambda batch: batch.created_at or 0.0)
    return candidates[0] if candidates else None


def _store(ws: Workspace, job_id: str, chunk: int, batch: ProviderBatch) -> None:
    with ws.transaction() as db:
        db.execute(
            "UPDATE chunks SET batch_id = ?, state = ?, completed = ?, failed = ? "
            "WHERE job_id = ? AND chunk = ?",
            (batch.id, batch.state, batch.counts.completed, batch.counts.failed, job_id, chunk),
        )


async def _refresh(ws: Workspace, hub: Hub, job_id: str) -> None:
    """Ask the provider about every unfinished chunk; settle the job's status and counts."""
    chunks = ws.query("SELECT * FROM chunks WHERE job_id = ? ORDER BY chunk", (job_id,))
    for chunk in chunks:
        if chunk["batch_id"] is None or chunk["state"] in _DONE:
            continue
        adapter = hub.get(chunk["alias"]).adapter
        batch = await adapter.batch_status(chunk["batch_id"])
        _store(ws, job_id, chunk["chunk"], batch)
    row = ws.row(job_id)
    if row["has_results"] or row["status"] not in ("submitted",):
        return
    chunks = ws.query("SELECT * FROM chunks WHERE job_id = ?", (job_id,))
    states = {chunk["state"] for chunk in chunks}
    fields: dict[str, Any] = {
        "completed": sum(chunk["completed"] for chunk in chunks),
        "failed": sum(chunk["failed"] for chunk in chunks),
    }
    if states <= set(_DONE):
        fields["status"] = _overall(states)
    ws.update(job_id, **fields)


def _overall(states: set[str]) -> str:
    """One status for a job whose provider batches all ended."""
    for only in ("cancelled", "expired", "failed"):
        if states == {only}:
            return only
    return "completed"


async def _retrieve(ws: Workspace, hub: Hub, job_id: str) -> None:
    """Download every chunk's results, save them as received, and write results.jsonl."""
    await _refresh(ws, hub, job_id)
    row = ws.row(job_id)
    chunks = ws.query("SELECT * FROM chunks WHERE job_id = ? ORDER BY chunk", (job_id,))
    if not chunks or any(chunk["state"] not in _DONE for chunk in chunks):
        raise ResultsNotReady(
            f"job {job_id!r} is {row['status']}: its provider batches have not all finished; "
            "wait for it (client.wait) and retrieve again",
            job_id=job_id,
            status=row["status"],
        )
    ws.claim(job_id)
    try:
        with ws.transaction() as db:
            db.execute(
                "UPDATE items SET state = NULL, retryable = 0, result_offset = NULL "
                "WHERE job_id = ?",
                (job_id,),
            )
        job_dir = ws.job_dir(job_id)
        with (job_dir / "responses.jsonl").open("wb") as responses:
            for chunk in chunks:
                await _retrieve_chunk(ws, hub, job_id, chunk, responses)
            refused_results(ws, job_id, responses)
        finalize(
            ws,
            job_id,
            status=_overall({chunk["state"] for chunk in chunks}),
            unanswered=ErrorInfo(
                "NoResult",
                "the provider's output has no readable result for this request; its output "
                "lines are kept in the job's chunks/*.output.jsonl",
            ),
        )
        hub.pipeline.audit_job("batch.retrieved", job_id)
    finally:
        ws.release(job_id)


async def _retrieve_chunk(ws: Workspace, hub: Hub, job_id: str, chunk: Row, responses: Any) -> None:
    handle = hub.get(chunk["alias"])
    index_of = custom_ids(ws, job_id, chunk["chunk"])
    updates: list[tuple[str, int, int, int]] = []
    finishes = type(handle.adapter).finish_batch_response is not Provider.finish_batch_response
    with contextlib.ExitStack() as stack:
        raw_file = stack.enter_context(ws.chunk_path(job_id, chunk["chunk"], "output").open("wb"))
        requests = (
            stack.enter_context(_ChunkRequests(ws.chunk_path(job_id, chunk["chunk"], "requests")))
            if finishes
            else None
        )
        async for item in handle.adapter.batch_results(chunk["batch_id"]):
            raw = (
                item.raw if isinstance(item.raw, str) else json.dumps(item.raw, ensure_ascii=False)
            )
            raw_file.write(raw.encode() + b"\n")
            index = index_of.get(item.custom_id)
            if index is None:
                continue  # kept in the output file; NoResult marks its request below
            if item.response is not None and requests is not None:
                item = _finished(handle, requests.get(item.custom_id), item)
            if item.response is not None:
                response = handle.finish(item.custom_id, item.response, None, batch=True)
                stored = BatchItem(item.custom_id, response=response)
            elif item.embedding is not None:
                vectors = handle.finish_embedding(item.custom_id, item.embedding, None, batch=True)
                stored = BatchItem(item.custom_id, embedding=vectors)
            else:
                stored = BatchItem(item.custom_id, error=item.error, raw=item.raw)
            updates.append(write_result(responses, index, stored))
            if len(updates) >= 1000:
                responses.flush()
                record_results(ws, job_id, updates)
    responses.flush()
    record_results(ws, job_id, updates)
    with ws.transaction() as db:
        db.execute(
            "UPDATE chunks SET retrieved = 1 WHERE job_id = ? AND chunk = ?",
            (job_id, chunk["chunk"]),
        )


class _ChunkRequests:
    """A chunk's requests (as its batch lines were built from) by custom_id, read from
    disk one at a time: only their offsets are held in memory."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offsets: dict[str, int] = {}

    def __enter__(self) -> _ChunkRequests:
        self._file = self._path.open("rb")
        offset = 0
        for line in self._file:
            self._offsets[json.loads(line).get("custom_id") or ""] = offset
            offset += len(line)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()

    def get(self, custom_id: str) -> Request:
        self._file.seek(self._offsets[custom_id])
        return loads(self._file.readline(), Request)


def _finished(handle: ModelHandle, request: Request, item: BatchItem) -> BatchItem:
    assert item.response is not None
    try:
        return attrs.evolve(
            item, response=handle.adapter.finish_batch_response(request, item.response)
        )
    except ProviderError as error:
        error.custom_id = error.custom_id or item.custom_id
        return BatchItem(item.custom_id, error=ErrorInfo.from_exception(error), raw=item.raw)


async def _cancel(ws: Workspace, hub: Hub, job_id: str) -> None:
    """Ask the provider to cancel every unfinished chunk."""
    chunks = ws.query("SELECT * FROM chunks WHERE job_id = ? ORDER BY chunk", (job_id,))
    for chunk in chunks:
        if chunk["batch_id"] is None or chunk["state"] in _DONE:
            continue
        batch = await hub.get(chunk["alias"]).adapter.cancel_batch(chunk["batch_id"])
        _store(ws, job_id, chunk["chunk"], batch)
    hub.pipeline.audit_job("batch.cancelled", job_id)


# What the client calls: each runs with the workspace known to the adapters (see
# relay_core.providers.provider_state_dir), so an adapter that keeps provider-side state
# itself (relay-mock) keeps it where the next process following the job will look.


async def submit_chunks(ws: Workspace, hub: Hub, job_id: str) -> None:
    """Submit every chunk of ``job_id`` that has no provider batch yet."""
    with batch_workspace(ws.directory):
        await _submit_chunks(ws, hub, job_id)


async def refresh(ws: Workspace, hub: Hub, job_id: str) -> None:
    """Ask the provider about every unfinished chunk; settle the job's status and counts."""
    with batch_workspace(ws.directory):
        await _refresh(ws, hub, job_id)


async def retrieve(ws: Workspace, hub: Hub, job_id: str) -> None:
    """Download every chunk's results, save them as received, and write results.jsonl."""
    with batch_workspace(ws.directory):
        await _retrieve(ws, hub, job_id)


async def cancel(ws: Workspace, hub: Hub, job_id: str) -> None:
    """Ask the provider to cancel every unfinished chunk."""
    with batch_workspace(ws.directory):
        await _cancel(ws, hub, job_id)
