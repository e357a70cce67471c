"""``kill -9`` at random points, again and again, resuming each time until the job is done:
(a) while provider batches are being submitted (relay-mock's batch API, which keeps its
batches in a state directory as a provider keeps them on its side), (b) while the engine
answers against the counting server. Nothing is lost, no provider batch is created twice,
and the engine re-sends only what was in flight when it died."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from relay_core import JobNotFound, RelayClient, parse_catalog
from reliability.fault_server import FaultServer
from reliability.support import FIGURES, SCALE, compat_catalog

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

BATCH_CATALOG = """
providers:
  mock:
    options:
      batch_duration: 0
      batch_max_requests: {per_batch}
      state_dir: {state}
models:
  fast: mock/echo
"""
PER_BATCH = 7

# The child: one run of a job, killed by itself at the named checkpoint when armed
# (point "none": run until killed from outside, or to the end).
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import relay_core.batch._checkpoints as checkpoints
    from relay_core import BatchRequest, RelayClient, parse_catalog

    point, after, catalog, workspace, job_id, model, mode, how, n, concurrency = sys.argv[1:]
    seen = 0

    def reached(name):
        global seen
        if name == point:
            seen += 1
            if seen >= int(after):
                os.kill(os.getpid(), signal.SIGKILL)

    checkpoints.reached = reached
    prefix = "b" if mode == "batch" else "e"
    requests = [
        BatchRequest(id=f"{prefix}{i:05d}", prompt=f"req-{job_id}-{i:05d}") for i in range(int(n))
    ]
    with RelayClient(workspace, config=parse_catalog(catalog)) as relay:
        if how == "resume":
            relay.resume(job_id, concurrency=int(concurrency))
        else:
            relay.submit_batch(
                requests, job_id=job_id, model=model, mode=mode, concurrency=int(concurrency)
            )
    """
)


def _child(*args: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finished(child: subprocess.Popen[bytes]) -> int:
    _, stderr = child.communicate(timeout=120)
    code = child.returncode
    assert code in (0, -signal.SIGKILL), stderr.decode(errors="replace")[-3000:]
    return code


def _expected(prefix: str, job_id: str, n: int) -> list[tuple[str, str]]:
    return [(f"{prefix}{i:05d}", f"req-{job_id}-{i:05d}") for i in range(n)]


def _check_results(client: RelayClient, job_id: str, expected: list[tuple[str, str]]) -> None:
    results = client.get_results(job_id)
    assert [item.custom_id for item in results] == [cid for cid, _ in expected]
    assert [item.response.text if item.response else item.error for item in results] == [
        prompt for _, prompt in expected
    ]


# ---------------------------------------------------------------------------- (a) batches


def _unsubmitted(client: RelayClient, job_id: str) -> int | None:
    """Chunks with no provider batch yet; None when the job's chunks are not stored."""
    rows = client.workspace.query(
        "SELECT count(*), sum(batch_id IS NULL) FROM chunks WHERE job_id = ?", (job_id,)
    )
    total, missing = rows[0]
    return None if not total else int(missing or 0)


def test_killed_again_and_again_while_submitting_provider_batches(tmp_path: Path) -> None:
    rng = random.Random(61)
    n = SCALE.batch_requests
    chunks = -(-n // PER_BATCH)
    kills: Counter[str] = Counter()
    jobs = 0
    while sum(kills.values()) < SCALE.batch_kills:
        jobs += 1
        job_id = f"kills-{jobs}"
        state = tmp_path / f"provider-{jobs}"
        workspace = tmp_path / "ws"
        catalog = BATCH_CATALOG.format(per_batch=PER_BATCH, state=state)
        runs = 0
        while True:
            runs += 1
            assert runs <= 10 * chunks, "the job never finishes"
            with RelayClient(workspace, config=parse_catalog(catalog)) as client:
                try:
                    job = client.get_job(job_id)
                except JobNotFound:
                    job = None
                missing = _unsubmitted(client, job_id) if job else None
            if job is not None and job.status not in ("preparing", "submitting"):
                break  # killed after the submission was complete: nothing to resume
            # Resume by resume() or by submitting the same requests again, as users do.
            how = (
                "resume" if job and job.status == "submitting" and rng.random() < 0.5 else "submit"
            )
            armed = sum(kills.values()) < SCALE.batch_kills
            point, after, timed = "none", 0, None
            if armed:
                # The first run of the first job dies while storing requests: every run
                # covers that point; after it, chance decides.
                choice = 0.0 if jobs == 1 and runs == 1 else rng.random()
                if missing is None and choice < 0.3:
                    point, after = "ingest.request", rng.randint(1, n)
                elif choice < 0.8:
                    point = rng.choice(["submit.before", "submit.after"])
                    after = rng.randint(1, max(1, missing if missing is not None else chunks))
                else:
                    timed = rng.uniform(0.3, 1.5)  # from outside, wherever it is then
            child = _child(point, after, catalog, workspace, job_id, "fast", "batch", how, n, 1)
            if timed is not None:
                try:
                    child.wait(timeout=timed)
                except subprocess.TimeoutExpired:
                    child.send_signal(signal.SIGKILL)
            if _finished(child) == 0:
                break
            kills["from outside" if timed is not None else point] += 1
        with RelayClient(workspace, config=parse_catalog(catalog)) as client:
            job = client.wait(job_id, poll_interval=0.01, timeout=60)
            assert job.status == "completed"
            client.retrieve(job_id)
            _check_results(client, job_id, _expected("b", job_id, n))
            # One provider batch per chunk: found again after each kill, never re-created.
            created = sorted(path.name for path in state.glob("mockbatch_*.json"))
            assert len(created) == chunks
            assert sorted(f"{batch}.json" for batch in job.provider_batches) == created
    FIGURES.record(
        "kills_batch",
        kills=sum(kills.values()),
        killed_at=dict(kills),
        jobs=jobs,
        requests_per_job=n,
        chunks_per_job=chunks,
        provider_batches_created=jobs * chunks,
        duplicate_batches=0,
        lost=0,
    )


# ---------------------------------------------------------------------------- (b) engine


def _recorded(workspace: Path, job_id: str, prompts: dict[str, str]) -> tuple[set[str], bool]:
    """The prompts of the requests answered in responses.jsonl (whole lines only), and
    whether the file ends in a torn line."""
    path = workspace / "jobs" / job_id / "responses.jsonl"
    if not path.exists():
        return set(), False
    lines = path.read_bytes().split(b"\n")
    found = set()
    for line in lines[:-1]:
        item = json.loads(line)
        if item.get("response") is not None:
            found.add(prompts[item["custom_id"]])
    return found, bool(lines[-1])


def test_killed_again_and_again_mid_engine_only_in_flight_requests_are_sent_twice(
    tmp_path: Path,
) -> None:
    rng = random.Random(62)
    n, concurrency = SCALE.engine_requests, SCALE.engine_concurrency
    server = FaultServer(rates={}, latency=(0.002, 0.03), client_timeout=5.0)
    workspace = tmp_path / "ws"
    catalog = compat_catalog(server.base_url, timeout=5.0, max_retries=2)
    kills: list[dict[str, Any]] = []
    torn = 0
    jobs = 0
    all_prompts: list[str] = []
    with server:
        while len(kills) < SCALE.engine_kills:
            jobs += 1
            job_id = f"engine-{jobs}"
            expected = _expected("e", job_id, n)
            prompts = dict(expected)
            all_prompts += list(prompts.values())
            how = "submit"
            while True:
                armed = len(kills) < SCALE.engine_kills
                recorded, _ = _recorded(workspace, job_id, prompts)
                remaining = n - len(recorded)
                server.epoch += 1
                child = _child(
                    "none", 0, catalog, workspace, job_id, "echo", "engine", how, n, concurrency
                )
                killer = None
                if armed:
                    step = rng.randint(1, max(1, min(remaining - 1, 2 * n // SCALE.engine_kills)))
                    killer = _Killer(server, child, server.received + step)
                    server.on_receive = killer
                code = _finished(child)
                server.on_receive = None
                epoch = server.epoch
                server.wait_quiet()
                recorded, was_torn = _recorded(workspace, job_id, prompts)
                if code == 0:
                    break
                assert killer is not None
                assert killer.moment
                moment = killer.moment
                torn += was_torn
                with server.lock:
                    sent = {p for p, t in server.tallies.items() if epoch in t.epochs}
                kills.append(
                    {
                        "epoch": epoch,
                        "open_at_kill": len(moment["open"]),
                        "in_flight": sent - recorded,
                        "delivered_unrecorded": (moment["delivered"] & sent) - recorded,
                    }
                )
                how = "resume"
            with RelayClient(workspace, config=parse_catalog(catalog)) as client:
                job = client.get_job(job_id)
                assert (job.status, job.counts.completed) == ("completed", n)
                _check_results(client, job_id, expected)

    tallies = dict(server.tallies)
    assert set(tallies) == set(all_prompts)
    by_epoch = {kill["epoch"]: kill for kill in kills}
    duplicates: Counter[int] = Counter()
    for prompt, tally in tallies.items():
        assert tally.delivered >= 1
        if tally.received == 1:
            continue
        # Every earlier send died with its process, while the request was in flight.
        for epoch in tally.epochs[:-1]:
            assert epoch in by_epoch, (prompt, tally.epochs)
            assert prompt in by_epoch[epoch]["in_flight"], (prompt, epoch)
            duplicates[epoch] += 1
    worst = max(duplicates.values(), default=0)
    # What a kill can cost: the `concurrency` calls in flight (a worker writes each answer
    # before it asks for more), and a line the kill tore.
    assert worst <= concurrency + 1
    FIGURES.record(
        "kills_engine",
        kills=len(kills),
        jobs=jobs,
        requests_per_job=n,
        concurrency=concurrency,
        sent=sum(t.received for t in tallies.values()),
        sent_twice=sum(1 for t in tallies.values() if t.received > 1),
        most_sent_twice_per_kill=worst,
        open_at_kill=[kill["open_at_kill"] for kill in kills],
        in_flight_at_kill=[len(kill["in_flight"]) for kill in kills],
        answered_but_unrecorded_at_kill=[len(kill["delivered_unrecorded"]) for kill in kills],
        torn_lines_repaired=torn,
        lost=0,
    )


def test_answers_received_are_written_before_more_are_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import relay_core.batch._checkpoints as checkpoints

    concurrency = 16
    server = FaultServer(rates={}, client_timeout=5.0)
    written = 0
    exposure: list[int] = []

    def reached(name: str) -> None:
        # Called right after each answer reached responses.jsonl: what the server has
        # delivered beyond that would be lost, and paid again, if the process died now.
        nonlocal written
        if name == "engine.result":
            written += 1
            exposure.append(server.totals()["delivered"] - written)

    monkeypatch.setattr(checkpoints, "reached", reached)
    requests = [f"req-exposure-{i:04d}" for i in range(400)]
    catalog = parse_catalog(compat_catalog(server.base_url, timeout=5.0))
    with server, RelayClient(tmp_path / "ws", config=catalog) as client:
        job = client.submit_batch(
            [{"id": prompt, "prompt": prompt} for prompt in requests],
            job_id="exposure",
            model="echo",
            mode="engine",
            concurrency=concurrency,
        )
    assert job.counts.completed == len(requests)
    # At most the calls in flight: an answer a worker holds is written before it asks
    # for more.
    assert max(exposure) <= concurrency, max(exposure)


class _Killer:
    """``on_receive`` for the server: SIGKILL the child as the ``threshold``-th request
    arrives, noting what the server was doing at that moment (it runs under the server's
    lock, so the picture is exact)."""

    def __init__(self, server: FaultServer, child: subprocess.Popen[bytes], threshold: int):
        self.server = server
        self.child = child
        self.threshold = threshold
        self.moment: dict[str, Any] = {}

    def __call__(self, request_id: str) -> None:
        if self.server.received >= self.threshold and not self.moment:
            self.moment = self.server.snapshot()
            self.child.send_signal(signal.SIGKILL)
