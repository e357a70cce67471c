"""What both kinds of job share: taking requests in, and writing results out.

:func:`ingest` streams the requests once: each is checked, written to
``requests.jsonl``, recorded in the database (a duplicate ``custom_id`` is caught by a
unique index, not by a set in memory) and, for provider batches, placed in a chunk that
respects the provider's limits. :func:`finalize` writes ``results.jsonl`` in request
order from the results as they arrived, marking every request that got none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

from attrs import frozen

from relay_core.batch import _checkpoints
from relay_core.batch._inputs import JobRequest, Located, iter_requests, line_numbers, normalise
from relay_core.batch._workspace import Workspace, write_jsonl_line
from relay_core.batch.stores import StoreTransaction
from relay_core.batching import jsonl_line
from relay_core.embeddings import EmbeddingRequest
from relay_core.errors import BatchInputError, GuardrailViolation, RelayError, UnsupportedCapability
from relay_core.hub import ModelHandle
from relay_core.pipeline.embedding import slices
from relay_core.providers import Capability
from relay_core.serialize import structure, unstructure
from relay_core.types import BatchItem, Cost, ErrorInfo, Request

if TYPE_CHECKING:
    from relay_core.hub import Hub, ModelHandle

__all__ = ["finalize", "ingest", "read_item"]

# Rows go to the database in transactions of this many, so a long ingest never holds
# the write lock for long: other clients' heartbeats and status reads get through.
_COMMIT_EVERY = 5000
_TIERS = ("user_override", "live_api", "snapshot", "estimated", "unknown")


class _Chunk:
    """One provider batch being filled: its files and its size so far."""

    def __init__(self, ws: Workspace, job_id: str, number: int, handle: ModelHandle) -> None:
        self.number = number
        self.handle = handle
        self.n_requests = 0
        self.n_bytes = 0
        self.tag = f"{job_id}.{number}.{secrets.token_hex(4)}"
        path = ws.chunk_path(job_id, number, "requests")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.requests: IO[bytes] = path.open("wb")
        self.input: IO[bytes] = ws.chunk_path(job_id, number, "input").open("wb")

    def fits(self, size: int) -> bool:
        limits = self.handle.adapter.batch_limits
        if limits.max_requests is not None and self.n_requests + 1 > limits.max_requests:
            return False
        return limits.max_bytes is None or self.n_bytes + size <= limits.max_bytes

    def add(self, request: JobRequest, line: bytes) -> None:
        self.requests.write(jsonl_line(unstructure(request)))
        self.input.write(line)
        self.n_requests += 1
        self.n_bytes += len(line)

    def abandon(self) -> None:
        self.requests.close()
        self.input.close()

    def close(self, db: StoreTransaction, job_id: str) -> None:
        for file in (self.requests, self.input):
            file.flush()
            os.fsync(file.fileno())
            file.close()
        db.execute(
            "INSERT INTO chunks (job_id, chunk, alias, provider, n_requests, n_bytes, tag) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                self.number,
                self.handle.alias,
                self.handle.provider_name,
                self.n_requests,
                self.n_bytes,
                self.tag,
            ),
        )


def ingest(
    ws: Workspace,
    hub: Hub,
    job_id: str,
    requests: Iterable[Any] | str | os.PathLike[str],
    *,
    default_model: str | None,
    mode: str,
    provider: str | None = None,
) -> Ingested:
    """Check and store every request of a new job; return what the job holds.

    Each request is prepared for its provider (capabilities checked, catalog params
    merged). Unless ``mode`` is ``"engine"``, requests are also split into chunks by
    model alias and the adapter's ``batch_limits``; in ``"auto"`` mode the first model
    without a batch API (or a group) sends the whole job to the engine, in ``"batch"``
    mode it is an error. Any mistake raises before anything was submitted. ``provider``
    (the job's) makes bare model names that provider's.
    """
    ws.delete_files(job_id)
    job_dir = ws.job_dir(job_id)
    job_dir.mkdir(parents=True, exist_ok=True)
    with ws.transaction() as db:
        db.execute("DELETE FROM items WHERE job_id = ?", (job_id,))
        db.execute("DELETE FROM chunks WHERE job_id = ?", (job_id,))
    digest = hashlib.sha256()
    open_chunks: dict[tuple[str, bool], _Chunk] = {}
    finished: list[_Chunk] = []
    next_chunk = 0
    rows: list[tuple[str, int, str, int | None]] = []
    count = 0
    chunking = mode != "engine"
    providers: dict[str, None] = {}  # in order of first use

    def flush_rows() -> None:
        with ws.transaction() as db:
            # A custom_id used before is skipped by the unique index rather than raised
            # (an error would end a PostgreSQL transaction): fewer rows than given means
            # one was a duplicate, looked up only then.
            sql = (
                "INSERT INTO items (job_id, idx, custom_id, chunk) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING"
            )
            if rows and db.executemany(sql, rows).rowcount < len(rows):
                stored = {
                    index
                    for (index,) in db.execute(
                        "SELECT idx FROM items WHERE job_id = ? AND idx >= ? AND idx <= ?",
                        (job_id, rows[0][1], rows[-1][1]),
                    )
                }
                again = next(row for row in rows if row[1] not in stored)
                first = db.execute(
                    "SELECT idx FROM items WHERE job_id = ? AND custom_id = ?",
                    (job_id, again[2]),
                ).fetchall()[0][0]
                raise _duplicate(requests, again[2], first, again[1], job_id)
            for chunk in finished:
                chunk.close(db, job_id)
        rows.clear()
        finished.clear()

    refused_count = 0
    try:
        with (
            (job_dir / "requests.jsonl").open("wb") as out,
            (job_dir / REFUSED).open("wb") as refused,
        ):
            for index, item in enumerate(iter_requests(requests)):
                request = normalise(item, index, default_model, hub=hub, provider=provider)
                with _input_error(request, item, index):
                    handle = hub.resolve(request.model)
                    # A group picks a member per call: it has no single prepared form.
                    model = handle if isinstance(handle, ModelHandle) else None
                    prepared: JobRequest | None = None
                    if model is not None and isinstance(request, EmbeddingRequest):
                        batched = chunking and _batchable(model, request)
                        prepared = model.prepare_embedding(
                            hub.pipeline.redact_inputs(request) if batched else request
                        )
                    elif model is not None and isinstance(request, Request):
                        # What leaves for a provider's batch is redacted like a call.
                        batched = chunking and model.adapter.supports(Capability.BATCH)
                        prepared = model.prepare(
                            hub.pipeline.redact(request) if batched else request
                        )
                    providers.update(dict.fromkeys(_providers_of(hub, handle)))
                line = jsonl_line(unstructure(request))
                digest.update(line)
                out.write(line)
                chunk_number: int | None = None
                if chunking and not _batchable(model, request):
                    if mode == "batch":
                        if model is None:
                            raise BatchInputError(
                                f"{request.model!r} is a group; provider batches need one "
                                "model: use mode='engine' for groups",
                                custom_id=request.custom_id,
                                **_where(item, index),
                            )
                        if isinstance(request, EmbeddingRequest) and _batchable(model, None):
                            raise BatchInputError(
                                f"the request has {len(request.inputs)} inputs, more than one "
                                f"{model.provider_name} call takes: split it, or run the job "
                                "in the engine (mode='engine'), which splits it itself",
                                custom_id=request.custom_id,
                                **_where(item, index),
                            )
                        what = "batch" if isinstance(request, Request) else "batch of embeddings"
                        raise UnsupportedCapability(model.provider_name, what, model=model.model)
                    chunking = False
                if chunking and model is not None and prepared is not None:
                    with _input_error(request, item, index):
                        refusal = None
                        if isinstance(prepared, EmbeddingRequest):
                            wire = jsonl_line(dict(model.adapter.embedding_batch_line(prepared)))
                        else:
                            # Guarded like a call: a refused request fails alone, never sent.
                            refusal = _refusal(hub, model, prepared, job_id)
                            # Refused here (a custom_id outside the provider's rules...)
                            # rather than at upload, so the error names where it came from.
                            wire = (
                                jsonl_line(dict(model.adapter.batch_line(prepared)))
                                if refusal is None
                                else b""
                            )
                    if refusal is not None:
                        write_jsonl_line(refused, result_line(index, refusal))
                        refused_count += 1
                        rows.append((job_id, index, request.custom_id or "", None))
                        count = index + 1
                        continue
                    # A provider batch holds chat requests or embedding requests, never both.
                    kind = (model.alias, isinstance(prepared, EmbeddingRequest))
                    chunk = open_chunks.get(kind)
                    if chunk is not None and not chunk.fits(len(wire)):
                        finished.append(chunk)
                        chunk = None
                    if chunk is None:
                        chunk = open_chunks[kind] = _Chunk(ws, job_id, next_chunk, model)
                        next_chunk += 1
                        if not chunk.fits(len(wire)):
                            raise BatchInputError(
                                f"the request is {len(wire)} bytes in {model.provider_name}'s "
                                "batch format, more than one provider batch may hold",
                                job_id=job_id,
                                custom_id=request.custom_id,
                            )
                    chunk.add(prepared, wire)
                    chunk_number = chunk.number
                rows.append((job_id, index, request.custom_id or "", chunk_number))
                count = index + 1
                _checkpoints.reached("ingest.request")
                if len(rows) >= _COMMIT_EVERY:
                    flush_rows()
            out.flush()
            os.fsync(out.fileno())
        finished.extend(open_chunks.values())
        flush_rows()
    except BaseException:
        # Nothing of a refused job is kept; its files are removed by the caller.
        for chunk in {*open_chunks.values(), *finished}:
            chunk.abandon()
        raise
    if count == 0:
        raise BatchInputError("the job has no requests", job_id=job_id)
    if chunking and refused_count == count:
        first = read_item((job_dir / REFUSED).read_bytes().splitlines()[0])
        raise BatchInputError(
            f"every request of the job was refused by a guardrail (the first: "
            f"{first.error.message if first.error else '?'}); nothing was submitted",
            job_id=job_id,
        )
    if not chunking:
        _drop_chunks(ws, job_id)
    return Ingested(count, digest.hexdigest(), "batch" if chunking else "engine", tuple(providers))


@frozen
class Ingested:
    """A new job's requests, stored: how many, their digest, the mode the job runs in,
    and the providers they name (for a group, those of its members)."""

    count: int
    digest: str
    mode: str
    providers: tuple[str, ...]


def _batchable(model: ModelHandle | None, request: JobRequest | None) -> bool:
    """Whether ``request`` can go into a provider batch of ``model``'s provider (for
    ``None``: whether embedding requests that fit one call can)."""
    if model is None or not model.adapter.supports(Capability.BATCH):
        return False
    if isinstance(request, Request):
        return True
    adapter = model.adapter
    if not adapter.embedding_batches:
        return False
    # One line is one call: a request the core would split runs in the engine.
    return request is None or len(slices(request.inputs, adapter.embedding_limits)) == 1


def _providers_of(hub: Hub, handle: Any) -> list[str]:
    if isinstance(handle, ModelHandle):
        return [handle.provider_name]
    return [
        name for member in handle.config.members for name in _providers_of(hub, hub.resolve(member))
    ]


def _drop_chunks(ws: Workspace, job_id: str) -> None:
    with ws.transaction() as db:
        db.execute("DELETE FROM chunks WHERE job_id = ?", (job_id,))
        db.execute("UPDATE items SET chunk = NULL WHERE job_id = ?", (job_id,))
    shutil.rmtree(ws.job_dir(job_id) / "chunks", ignore_errors=True)


def _duplicate(
    requests: Iterable[Any] | str | os.PathLike[str],
    custom_id: str,
    first: int,
    again: int,
    job_id: str,
) -> BatchInputError:
    """The error for a ``custom_id`` used by requests ``first`` and ``again``: in a file,
    at both lines, which are looked up only now (ids are checked by the database's
    unique index, so no request's position is kept in memory)."""
    if isinstance(requests, (str, os.PathLike)):
        lines = line_numbers(requests, (first, again))
        if len(lines) == 2:  # else the file changed under us: say it by position
            return BatchInputError(
                f"duplicate id {custom_id!r} (first at {os.fspath(requests)}:{lines[first]})",
                job_id=job_id,
                file=os.fspath(requests),
                line=lines[again],
            )
    return BatchInputError(
        f"custom_id {custom_id!r} is used twice: by request {first} and by "
        f"request {again} (counting from 0); each needs a unique one",
        job_id=job_id,
        custom_id=custom_id,
        index=again,
    )


def _where(item: Any, index: int) -> dict[str, Any]:
    if isinstance(item, Located):
        return {"file": item.file, "line": item.line}
    return {"index": index}


@contextlib.contextmanager
def _input_error(request: JobRequest, item: Any, index: int) -> Iterator[None]:
    """A Relay error raised within becomes a :class:`BatchInputError` that names the
    request's custom_id and where it came from (file and line, or index)."""
    try:
        yield
    except RelayError as error:
        raise BatchInputError(
            str(error), custom_id=request.custom_id, **_where(item, index)
        ) from error


# ---------------------------------------------------------------------------- results


def read_item(line: bytes | str) -> BatchItem:
    return item_of(json.loads(line))


def item_of(data: dict[str, Any]) -> BatchItem:
    """The :class:`BatchItem` of a decoded results line (its ``index`` dropped)."""
    return structure({k: v for k, v in data.items() if k != "index"}, BatchItem)


def result_line(index: int, item: BatchItem) -> dict[str, Any]:
    data: dict[str, Any] = {"index": index}
    data.update(unstructure(item))
    return data


class CostTotal:
    """The sum of many costs: ``None`` as soon as one is unknown (never a wrong number),
    from the weakest source among them."""

    def __init__(self) -> None:
        self.amount: float | None = 0.0
        self.source = "user_override"
        self.discounted = False
        self.seen = False

    def add(self, cost: Cost | None) -> None:
        self.seen = True
        if cost is None or cost.amount is None:
            self.amount = None
            self.source = "unknown"
            return
        if self.amount is not None:
            self.amount += cost.amount
        if _TIERS.index(cost.source) > _TIERS.index(self.source):
            self.source = cost.source
        self.discounted = self.discounted or cost.batch_discount_applied

    def cost(self) -> Cost:
        if not self.seen:
            return Cost(amount=0.0, source="estimated")
        return Cost(
            amount=self.amount,
            source=self.source,  # type: ignore[arg-type]
            batch_discount_applied=self.discounted,
        )


def finalize(ws: Workspace, job_id: str, *, status: str, unanswered: ErrorInfo) -> None:
    """Write ``results.jsonl`` in request order and record counts and cost.

    Results come from ``responses.jsonl`` by the offsets recorded per request; a request
    without one gets ``unanswered`` as its error. The file appears whole or not at all.
    """
    job_dir = ws.job_dir(job_id)
    responses = job_dir / "responses.jsonl"
    responses.touch()
    temporary = job_dir / "results.jsonl.tmp"
    completed = failed = 0
    total = CostTotal()
    with (
        responses.open("rb") as source,
        temporary.open("wb") as out,
        ws.stream(
            "SELECT custom_id, result_offset FROM items WHERE job_id = ? ORDER BY idx",
            (job_id,),
        ) as cursor,
    ):
        for custom_id, offset in cursor:
            if offset is None:
                failed += 1
                out.write(jsonl_line(unstructure(BatchItem(custom_id, error=unanswered))))
                continue
            source.seek(offset)
            # The line was unstructured from a BatchItem when it was written (and checked
            # again by recover() after a crash): dropping its index gives the same line
            # as a round trip through BatchItem would, at a fraction of the cost.
            data = json.loads(source.readline())
            del data["index"]
            response = data.get("response") or data.get("embedding")
            if response is not None:
                completed += 1
                cost = response.get("cost")
                total.add(None if cost is None else structure(cost, Cost))
            else:
                failed += 1
            out.write(jsonl_line(data))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, job_dir / "results.jsonl")
    cost = total.cost()
    now = time.time()
    ws.update(
        job_id,
        status=status,
        completed=completed,
        failed=failed,
        cost_amount=cost.amount,
        cost_source=cost.source,
        cost_discounted=int(cost.batch_discount_applied),
        has_results=1,
        finished_at=now,
        updated_at=now,
    )


# Requests of a provider batch job that a guardrail refused at submission: their results,
# merged into the job's results when it is retrieved.
REFUSED = "refused.jsonl"


def _refusal(hub: Hub, model: Any, prepared: Request, job_id: str) -> BatchItem | None:
    """The failed result of a request a pre guardrail refuses, or ``None``."""
    call = model.call_info(hub.pipeline.options(job_id=job_id))
    try:
        hub.plugins.hook.relay_guardrail_pre(request=prepared, call=call)
    except GuardrailViolation as violation:
        return BatchItem(prepared.custom_id or "", error=ErrorInfo.from_exception(violation))
    return None


def refused_results(ws: Workspace, job_id: str, responses: IO[bytes]) -> None:
    """Write the results of the requests refused at submission after the provider's."""
    path = ws.job_dir(job_id) / REFUSED
    if not path.exists():
        return
    updates = []
    with path.open("rb") as lines:
        for line in lines:
            index = json.loads(line)["index"]
            updates.append(write_result(responses, index, read_item(line)))
    responses.flush()
    record_results(ws, job_id, updates)


def record_results(ws: Workspace, job_id: str, updates: list[tuple[str, int, int, int]]) -> None:
    """Store ``(state, retryable, offset, index)`` of results written to responses.jsonl."""
    if not updates:
        return
    with ws.transaction() as db:
        db.executemany(
            "UPDATE items SET state = ?, retryable = ?, result_offset = ? "
            "WHERE job_id = ? AND idx = ?",
            [
                (state, retryable, offset, job_id, index)
                for state, retryable, offset, index in updates
            ],
        )
    updates.clear()


def outcome(item: BatchItem) -> tuple[str, int]:
    if item.ok:
        return "completed", 0
    return "failed", int(bool(item.error and item.error.retryable))


def write_result(file: IO[bytes], index: int, item: BatchItem) -> tuple[str, int, int, int]:
    offset = write_jsonl_line(file, result_line(index, item))
    state, retryable = outcome(item)
    return state, retryable, offset, index


def custom_ids(ws: Workspace, job_id: str, chunk: int) -> Mapping[str, int]:
    """``custom_id → index`` in one chunk (as big as one provider batch may be)."""
    rows = ws.query(
        "SELECT custom_id, idx FROM items WHERE job_id = ? AND chunk = ?", (job_id, chunk)
    )
    return {row[0]: row[1] for row in rows}
