"""Thousands of requests through the engine against a server that fails a quarter of the
time: the job ends, nothing is lost or crossed, nothing answered is asked again, and a
request is paid for twice only when its first paid answer was lost on the way."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from relay_core import BatchRequest, EndEvent, Hub, RelayClient, RelayError, parse_catalog
from relay_core import errors as relay_errors
from reliability.fault_server import LOST_IN_TRANSIT, FaultServer
from reliability.support import FIGURES, SCALE, compat_catalog

# The catalog's timeout bounds a whole answer as the client sees it, waits on a busy loop
# included (the server shares this process): generous enough that only the server's
# own `timeout` faults outlast it, never a clean answer slowed by load.
TIMEOUT = 3.0
# Every retryable error the engine may record for a request it could not get answered.
RETRYABLE_KINDS = {
    name
    for name, cls in vars(relay_errors).items()
    if isinstance(cls, type)
    and issubclass(cls, relay_errors.ProviderError)
    and getattr(cls, "retryable", False)
}


def _check_results(results: list, requests: list[BatchRequest]) -> tuple[int, Counter[str]]:
    """Request order, each answer its own prompt's echo, each failure typed."""
    assert [item.custom_id for item in results] == [r.id for r in requests]
    failed: Counter[str] = Counter()
    for item, request in zip(results, requests, strict=True):
        if item.response is not None:
            assert item.error is None
            assert item.response.text == request.prompt, f"{request.id} got another's answer"
        else:
            assert item.error is not None
            assert item.error.kind in RETRYABLE_KINDS, item.error
            assert item.error.message.strip()
            assert item.error.retryable
            failed[item.error.kind] += 1
    return len(results) - sum(failed.values()), failed


def test_an_engine_job_under_faults_ends_with_every_request_answered(tmp_path: Path) -> None:
    n, concurrency = SCALE.fault_requests, SCALE.fault_concurrency
    requests = [BatchRequest(id=f"q{i:06d}", prompt=f"req-{i:06d}") for i in range(n)]
    server = FaultServer(seed=6, client_timeout=TIMEOUT, latency=(0.0, 0.003))
    catalog = parse_catalog(compat_catalog(server.base_url, timeout=TIMEOUT, max_retries=2))
    with server, RelayClient(tmp_path / "ws", config=catalog) as client:
        started = time.monotonic()
        job = client.submit_batch(
            requests, job_id="faults", model="echo", mode="engine", concurrency=concurrency
        )
        first_run = time.monotonic() - started
        assert (job.status, job.n_requests) == ("completed", n)
        results = client.get_results("faults")
        answered, failed = _check_results(results, requests)
        failed_first_run = dict(failed)
        assert (job.counts.completed, job.counts.failed) == (answered, sum(failed.values()))
        server.wait_quiet()
        # What the engine holds agrees with what the server sent: an answered request got
        # exactly one whole answer, a failed one none (a paid answer was never dropped).
        for item, request in zip(results, requests, strict=True):
            assert server.tally(request.prompt).delivered == (1 if item.response else 0)
        first = server.totals()

        # resume() continues interrupted jobs only: on a finished one it calls nothing.
        received = server.received
        assert client.resume("faults").status == "completed"
        assert server.received == received

        # Re-running the job answers what failed; the cache answers the rest.
        rounds = 0
        while failed:
            rounds += 1
            assert rounds <= 8, "failures that never clear"
            before = sum(failed.values())
            job = client.submit_batch(
                requests,
                job_id="faults",
                model="echo",
                mode="engine",
                concurrency=concurrency,
                overwrite=True,
            )
            stats = client.last_engine_stats
            assert stats is not None
            assert (stats.cached, stats.called) == (n - before, before)
            answered, failed = _check_results(client.get_results("faults"), requests)
        assert job.counts.completed == answered == n
        server.wait_quiet()

    tallies = dict(server.tallies)
    assert set(tallies) == {r.prompt for r in requests}
    # Nothing the engine had an answer for was ever sent again.
    assert sum(t.after_delivery for t in tallies.values()) == 0
    # Paying twice happens only when a paid answer was lost on the way.
    billed_twice: Counter[str] = Counter()
    for prompt, tally in tallies.items():
        assert tally.delivered == 1, prompt
        assert tally.billed == tally.delivered + len(tally.lost), prompt
        assert all(reason in LOST_IN_TRANSIT for reason in tally.lost), (prompt, tally)
        if tally.billed > 1:
            billed_twice.update(set(tally.lost))
    totals = server.totals()
    FIGURES.record(
        "faults",
        requests=n,
        concurrency=concurrency,
        attempts=totals["received"],
        faults=totals["faults"],
        fault_share=round(sum(totals["faults"].values()) / totals["received"], 3),
        billed=totals["billed"],
        delivered=totals["delivered"],
        answered_first_run=first["delivered"],
        failed_first_run=failed_first_run,
        rerun_rounds=rounds,
        answered_in_the_end=n,
        lost=0,
        resent_after_answer=0,
        billed_twice=sum(1 for t in tallies.values() if t.billed > 1),
        billed_twice_because=dict(billed_twice),
        first_run_seconds=round(first_run, 1),
    )


def test_streams_under_faults_end_whole_or_with_a_typed_error() -> None:
    prompts = [f"stream-{i:05d} tell me something long enough" for i in range(SCALE.stream_calls)]
    server = FaultServer(seed=7, client_timeout=TIMEOUT, latency=(0.0, 0.003))

    async def run(hub: Hub) -> list[tuple[str, str]]:
        gate = asyncio.Semaphore(16)

        async def one(prompt: str) -> tuple[str, str]:
            async with gate:
                end = None
                try:
                    async for event in hub.astream("echo", prompt):
                        if isinstance(event, EndEvent):
                            end = event
                except RelayError as error:
                    return "failed", type(error).__name__
                assert end is not None
                return "answered", end.response.text

        try:
            return await asyncio.gather(*(one(p) for p in prompts))
        finally:
            await hub.aclose()

    catalog = parse_catalog(compat_catalog(server.base_url, timeout=TIMEOUT, max_retries=2))
    with server:
        outcomes = asyncio.run(run(Hub(catalog)))
        server.wait_quiet()
    failed: Counter[str] = Counter()
    for prompt, (outcome, value) in zip(prompts, outcomes, strict=True):
        if outcome == "answered":
            assert value == prompt, "a stream ended early yet looked whole"
        else:
            assert value in RETRYABLE_KINDS, value
            failed[value] += 1
    totals = server.totals()
    assert sum(totals["faults"].values()) > 0
    FIGURES.record(
        "streams",
        calls=len(prompts),
        attempts=totals["received"],
        faults=totals["faults"],
        answered=len(prompts) - sum(failed.values()),
        failed=dict(failed),
    )


def test_a_stream_cut_at_a_clean_close_is_an_error_not_a_short_answer() -> None:
    def cut_once(request_id: str, attempt: int, stream: bool) -> str:
        return "sse_cut_clean" if attempt == 0 else "ok"

    prompt = "a prompt of several words that the cut leaves half of"
    server = FaultServer(chooser=cut_once, client_timeout=TIMEOUT)
    catalog = parse_catalog(compat_catalog(server.base_url, timeout=TIMEOUT, max_retries=0))
    with server, Hub(catalog) as hub:
        try:
            events = list(hub.stream("echo", prompt))
        except RelayError:
            return  # what should happen: a typed error (or, before any event, a retry)
        end = events[-1]
        assert isinstance(end, EndEvent)
        assert end.response.text == prompt, (end.response.text, end.response.finish_reason)


def test_the_timeout_bounds_the_whole_answer_not_each_read() -> None:
    server = FaultServer(chooser=lambda *_: "drip_long", client_timeout=0.5)
    catalog = parse_catalog(compat_catalog(server.base_url, timeout=0.5, max_retries=0))
    with server, Hub(catalog) as hub, pytest.raises(relay_errors.Timeout):
        hub.chat("echo", "an answer four times slower than the timeout")
