"""The batch behaviour a user relies on, on SQLite and on PostgreSQL alike: an engine
job on relay-mock submitted, followed, retrieved, cancelled, and resumed after its
process was killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from relay_core import BatchInputError, BatchRequest, JobNotFound, RelayClient, parse_catalog

N = 12
CATALOG = """
providers:
  mock:
    options:
      faults: {slow: {kind: latency, seconds: 0.05}}
models:
  fast: mock/echo
  slow: mock/slow
"""

# Runs the job, killed (SIGKILL) once the engine wrote its 5th result.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import relay_core.batch._checkpoints as checkpoints
    from relay_core import BatchRequest, RelayClient, parse_catalog

    catalog, workspace, store, n = sys.argv[1:5]
    seen = 0

    def reached(name):
        global seen
        if name == "engine.result":
            seen += 1
            if seen >= 5:
                os.kill(os.getpid(), signal.SIGKILL)

    checkpoints.reached = reached
    requests = [BatchRequest(id=f"q{i}", prompt=f"question {i}") for i in range(int(n))]
    with RelayClient(workspace, config=parse_catalog(catalog), store=store or None) as relay:
        relay.submit_batch(requests, job_id="crash", model="fast", mode="engine", concurrency=1)
    """
)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("database")
    return url


def _requests(n: int = N) -> list[BatchRequest]:
    return [BatchRequest(id=f"q{i}", prompt=f"question {i}") for i in range(n)]


def _client(tmp_path: Path, store: str | None) -> RelayClient:
    return RelayClient(tmp_path / "ws", config=parse_catalog(CATALOG), store=store)


def test_an_engine_job_is_submitted_followed_and_retrieved(
    tmp_path: Path, store: str | None
) -> None:
    with _client(tmp_path, store) as relay:
        job = relay.submit_batch(_requests(), job_id="e1", model="fast", mode="engine")
        assert (job.status, job.counts.completed, job.counts.total) == ("completed", N, N)
    with _client(tmp_path, store) as other:
        assert [job.job_id for job in other.list_jobs()] == ["e1"]
        assert other.monitor_batch("e1").counts.completed == N
        results = other.retrieve_batch_results("e1")
    assert [item.custom_id for item in results] == [f"q{i}" for i in range(N)]
    assert [item.response.text for item in results if item.response] == [
        f"question {i}" for i in range(N)
    ]
    assert (tmp_path / "ws" / "relay.db").exists() == (store is None)


def test_a_duplicate_custom_id_is_refused_with_both_places(
    tmp_path: Path, store: str | None
) -> None:
    requests = [*_requests(3), BatchRequest(id="q1", prompt="again")]
    with _client(tmp_path, store) as relay:
        with pytest.raises(BatchInputError, match="custom_id 'q1' is used twice: by request 1"):
            relay.submit_batch(requests, job_id="dup", model="fast", mode="engine")
        assert relay.list_jobs() == []


def test_cancelling_from_another_client_stops_the_running_job(
    tmp_path: Path, store: str | None
) -> None:
    many = _requests(200)
    with _client(tmp_path, store) as runner, _client(tmp_path, store) as canceller:
        done: list[Any] = []
        worker = threading.Thread(
            target=lambda: done.append(
                runner.submit_batch(many, job_id="c1", model="slow", mode="engine", concurrency=2)
            )
        )
        worker.start()
        deadline = time.monotonic() + 30
        while _completed(canceller, "c1") < 4:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        canceller.cancel_batch("c1")
        worker.join(30)
        assert done[0].status == "cancelled"
        results = canceller.retrieve_batch_results("c1")
    assert len(results) == 200
    assert 4 <= sum(item.response is not None for item in results) < 200


def _completed(relay: RelayClient, job_id: str) -> int:
    try:
        return relay.get_job(job_id).counts.completed
    except JobNotFound:  # not stored yet
        return 0


def test_a_killed_job_resumes_with_one_result_per_request(
    tmp_path: Path, store: str | None
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, CATALOG, str(tmp_path / "ws"), store or "", str(N)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with _client(tmp_path, store) as relay:
        job = relay.get_job("crash")
        assert (job.status, job.interrupted) == ("running", True)
        job = relay.resume("crash")
        assert job.status == "completed"
        assert relay.last_engine_stats is not None
        assert relay.last_engine_stats.skipped >= 4
        results = relay.retrieve_batch_results("crash")
    assert [item.custom_id for item in results] == [f"q{i}" for i in range(N)]
    lines = (tmp_path / "ws" / "jobs" / "crash" / "responses.jsonl").read_text().splitlines()
    assert len(lines) == N  # nothing answered twice
