"""Batches with real semantics: progress over (injected) time, completion, partial failure,
cancel, expiry, listing, and state kept on disk across adapter instances."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from relay_core import (
    BatchCounts,
    InvalidRequestError,
    NotFoundError,
    ProviderBatch,
    Request,
)
from relay_mock._batch import MemoryStore


def _requests(count: int, **faults: dict[str, Any]) -> list[Request]:
    """``count`` echo requests r0, r1...; ``faults`` maps a custom_id to its fault."""
    return [
        Request.from_prompt(
            f"question {n}",
            model="echo",
            custom_id=f"r{n}",
            provider_kwargs={"mock": {"fault": faults[f"r{n}"]}} if f"r{n}" in faults else {},
        )
        for n in range(count)
    ]


async def _results(adapter: Any, batch_id: str) -> dict[str, Any]:
    return {item.custom_id: item async for item in adapter.batch_results(batch_id)}


async def test_a_batch_progresses_with_time_then_completes(mock: Any, clock: Any) -> None:
    adapter = mock(clock=clock, batch_duration=10.0)
    requests = _requests(10)
    submitted = await adapter.submit_batch(requests, metadata={"job": "eval-001"})
    assert isinstance(submitted, ProviderBatch)
    assert submitted.id.startswith("mockbatch_")
    assert (submitted.state, submitted.counts) == ("validating", BatchCounts(total=10))
    assert (submitted.provider, submitted.created_at) == ("mock", clock.now)
    assert submitted.created_at is not None
    assert submitted.metadata == {"job": "eval-001"}
    assert submitted.raw["object"] == "mock.batch"

    seen = []
    for elapsed in (0.0, 0.5, 3.0, 3.5, 7.2, 9.99):
        clock.now = submitted.created_at + elapsed
        status = await adapter.batch_status(submitted.id)
        seen.append((status.state, status.counts.completed))
        assert not status.done
        assert status.ended_at is None
    assert seen == [
        ("validating", 0),
        ("validating", 0),
        ("in_progress", 3),
        ("in_progress", 3),
        ("in_progress", 7),
        ("in_progress", 9),
    ]
    clock.now = submitted.created_at + 10
    done = await adapter.batch_status(submitted.id)
    assert (done.state, done.counts, done.done) == ("completed", BatchCounts(10, 10, 0), True)
    assert done.ended_at == submitted.created_at + 10
    clock.advance(100)
    assert (await adapter.batch_status(submitted.id)).ended_at == done.ended_at

    items = [item async for item in adapter.batch_results(submitted.id)]
    assert [item.custom_id for item in items] == [f"r{n}" for n in range(10)]
    for item, request in zip(items, requests, strict=True):
        assert item.error is None
        chat = await adapter.chat(request)
        assert item.response == attrs.evolve(chat, custom_id=request.custom_id)


async def test_results_are_refused_until_the_batch_is_done(mock: Any, clock: Any) -> None:
    adapter = mock(clock=clock, batch_duration=10.0)
    batch = await adapter.submit_batch(_requests(2))
    clock.advance(6)
    with pytest.raises(InvalidRequestError, match="is not finished \\(state in_progress\\)"):
        await _results(adapter, batch.id)


async def test_a_request_with_a_fault_fails_alone(mock: Any, clock: Any) -> None:
    adapter = mock(clock=clock, batch_duration=4.0, faults={"sad": {"kind": "timeout"}})
    requests = _requests(
        4,
        r1={"kind": "server_error"},
        r2={"kind": "malformed"},
        r3={"kind": "rate_limit", "times": 0},  # never fails
    )
    requests.append(Request.from_prompt("x", model="sad", custom_id="r4"))
    bad = {"mock": {"fault": {"kind": "boom"}}}
    requests.append(Request.from_prompt("y", model="echo", custom_id="r5", provider_kwargs=bad))
    batch = await adapter.submit_batch(requests)
    clock.advance(2.0)  # half the duration: r0, r1, r2 have run
    status = await adapter.batch_status(batch.id)
    assert status.counts == BatchCounts(total=6, completed=1, failed=2)
    clock.advance(2.0)
    status = await adapter.batch_status(batch.id)
    assert (status.state, status.counts) == ("completed", BatchCounts(6, 2, 4))
    items = await _results(adapter, batch.id)
    assert items["r0"].response.text == "question 0"
    assert items["r3"].response.text == "question 3"
    errors = {cid: item.error for cid, item in items.items() if item.error}
    assert {cid: (e.kind, e.status_code, e.retryable) for cid, e in errors.items()} == {
        "r1": ("ProviderUnavailable", 500, True),
        # A garbled output line: no HTTP status of its own, the raw text kept.
        "r2": ("MalformedResponse", None, True),
        "r4": ("Timeout", None, True),
        "r5": ("InvalidRequestError", None, False),
    }
    assert "request 'r1'" in errors["r1"].message
    assert isinstance(items["r2"].raw, str)
    assert items["r2"].raw.startswith('{"custom_id": "r2"')
    assert all(item.response is None for item in items.values() if item.error)


async def test_cancel_keeps_what_ran_and_fails_the_rest(mock: Any, clock: Any) -> None:
    adapter = mock(clock=clock, batch_duration=10.0)
    batch = await adapter.submit_batch(_requests(10))
    clock.advance(4.0)
    cancelled = await adapter.cancel_batch(batch.id)
    assert (cancelled.state, cancelled.counts) == ("cancelled", BatchCounts(10, 4, 6))
    assert cancelled.ended_at == batch.created_at + 4.0
    clock.advance(50)
    later = await adapter.batch_status(batch.id)
    assert (later.state, later.counts, later.ended_at) == (
        "cancelled",
        cancelled.counts,
        cancelled.ended_at,
    )
    assert (await adapter.cancel_batch(batch.id)).ended_at == cancelled.ended_at  # idempotent
    items = await _results(adapter, batch.id)
    assert [cid for cid, item in items.items() if item.response] == ["r0", "r1", "r2", "r3"]
    assert {item.error.kind for item in items.values() if item.error} == {"cancelled"}
    assert items["r9"].error.message == "the batch was cancelled before this request ran"


async def test_cancelling_a_finished_batch_changes_nothing(mock: Any, clock: Any) -> None:
    adapter = mock(clock=clock, batch_duration=1.0)
    batch = await adapter.submit_batch(_requests(3))
    clock.advance(1.5)
    after = await adapter.cancel_batch(batch.id)
    assert (after.state, after.counts) == ("completed", BatchCounts(3, 3, 0))


async def test_an_unfinished_batch_expires(mock: Any, clock: Any) -> None:
    adapter = mock(clock=clock, batch_duration=10.0, batch_expiry=5.0)
    batch = await adapter.submit_batch(_requests(4))
    clock.advance(4.9)
    assert (await adapter.batch_status(batch.id)).state == "in_progress"
    clock.advance(0.1)
    expired = await adapter.batch_status(batch.id)
    assert (expired.state, expired.counts) == ("expired", BatchCounts(4, 2, 2))
    assert expired.ended_at == batch.created_at + 5.0
    items = await _results(adapter, batch.id)
    assert [item.error.kind if item.error else "ok" for item in items.values()] == [
        "ok",
        "ok",
        "expired",
        "expired",
    ]
    assert items["r3"].error.retryable  # worth resubmitting


async def test_an_expiry_after_the_duration_never_strikes(mock: Any, clock: Any) -> None:
    adapter = mock(clock=clock, batch_duration=1.0, batch_expiry=60.0)
    batch = await adapter.submit_batch(_requests(2))
    clock.advance(3600)
    assert (await adapter.batch_status(batch.id)).state == "completed"


async def test_a_zero_duration_batch_is_done_at_once(mock: Any) -> None:
    adapter = mock(batch_duration=0)
    batch = await adapter.submit_batch(_requests(3))
    assert batch.state == "validating"  # as submitted
    status = await adapter.batch_status(batch.id)
    assert (status.state, status.counts) == ("completed", BatchCounts(3, 3, 0))


async def test_list_batches_newest_first(mock: Any, clock: Any) -> None:
    adapter = mock(clock=clock)
    first = await adapter.submit_batch(_requests(1))
    clock.advance(1)
    second = await adapter.submit_batch(_requests(1))
    third = await adapter.submit_batch(_requests(1))  # same second: submission order decides
    listed = await adapter.list_batches()
    assert [b.id for b in listed] == [third.id, second.id, first.id]
    assert len({first.id, second.id, third.id}) == 3


async def test_adapters_in_one_process_share_batches(mock: Any, clock: Any) -> None:
    batch = await mock(clock=clock).submit_batch(_requests(1))
    assert (await mock(clock=clock).batch_status(batch.id)).id == batch.id


@pytest.mark.parametrize("call", ["batch_status", "cancel_batch", "batch_results"])
async def test_an_unknown_batch_is_not_found(mock: Any, call: str) -> None:
    adapter = mock()

    async def ask() -> Any:
        if call == "batch_results":
            return await _results(adapter, "mockbatch_nope")
        return await getattr(adapter, call)("mockbatch_nope")

    with pytest.raises(NotFoundError, match="no batch 'mockbatch_nope'") as caught:
        await ask()
    assert (caught.value.provider, caught.value.status_code) == ("mock", 404)


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ([], "at least one request"),
        ([Request.from_prompt("x", model="echo")], "request 0 of the batch has no custom_id"),
        (
            [
                Request.from_prompt("x", model="echo", custom_id="a"),
                Request.from_prompt("y", model="echo", custom_id="b"),
                Request.from_prompt("z", model="echo", custom_id="a"),
            ],
            "custom_id 'a' appears more than once",
        ),
    ],
)
async def test_submission_checks_custom_ids(
    mock: Any, requests: list[Request], message: str
) -> None:
    adapter = mock()
    with pytest.raises(InvalidRequestError, match=message):
        await adapter.submit_batch(requests)
    assert await adapter.list_batches() == []


async def test_state_dir_keeps_batches_across_adapter_instances(
    mock: Any, clock: Any, tmp_path: Path
) -> None:
    state = tmp_path / "mock-state"
    writer = mock(clock=clock, batch_duration=10.0, state_dir=str(state))
    batch = await writer.submit_batch(
        _requests(5, r4={"kind": "server_error"}), metadata={"a": "b"}
    )
    [file] = state.iterdir()  # one file per batch, no temporary file left behind
    assert file.name == f"{batch.id}.json"
    saved = json.loads(file.read_text())
    assert saved["created_at"] == batch.created_at
    assert saved["cancelled_at"] is None
    assert [r["custom_id"] for r in saved["requests"]] == ["r0", "r1", "r2", "r3", "r4"]

    MemoryStore.records.clear()  # nothing is shared in memory: only the directory
    reader = mock(clock=clock, batch_duration=99.0, state_dir=str(state))
    clock.advance(4.0)
    seen = await reader.batch_status(batch.id)
    assert (seen.state, seen.counts, seen.metadata) == (
        "in_progress",
        BatchCounts(5, 2, 0),
        {"a": "b"},
    )
    assert [b.id for b in await reader.list_batches()] == [batch.id]

    cancelled = await reader.cancel_batch(batch.id)
    assert cancelled.state == "cancelled"
    assert json.loads(file.read_text())["cancelled_at"] == clock.now
    assert sorted(p.name for p in state.iterdir()) == [file.name]
    back = await writer.batch_status(batch.id)
    assert (back.state, back.counts) == ("cancelled", BatchCounts(5, 2, 3))
    assert [i.custom_id for i in (await _results(writer, batch.id)).values() if i.response] == [
        "r0",
        "r1",
    ]
    other = mock(clock=clock, state_dir=str(tmp_path / "elsewhere"))
    assert await other.list_batches() == []
    with pytest.raises(NotFoundError):
        await other.batch_status(batch.id)
