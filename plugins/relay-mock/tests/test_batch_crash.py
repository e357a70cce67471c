"""Nothing lost, nothing twice: a job's process is killed (SIGKILL) at each point where
it could lose a request or pay for one twice, and the next run resumes it.

The job runs in a subprocess. For the named points, the child replaces the core's
checkpoint function with "kill me now"; one test kills the engine from outside instead.
relay-mock keeps its batches in a state directory, as a provider keeps them on its side.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from relay_core import BatchRequest, EmbeddingRequest, RelayClient, parse_catalog
from relay_mock._provider import MockProvider

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

N = 12
CATALOG = """
providers:
  mock:
    options:
      batch_duration: 0
      batch_max_requests: 5
      state_dir: {state}
      faults: {{slow: {{kind: latency, seconds: 0.02}}}}
      embedding_max_inputs: 1
models:
  fast: mock/echo
  slow: mock/slow
  vec: mock/embed
"""

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import relay_core.batch._checkpoints as checkpoints
    from relay_core import BatchRequest, EmbeddingRequest, RelayClient, parse_catalog

    point, after, catalog, workspace, mode, model, N = sys.argv[1:8]
    N = int(N)
    seen = 0

    def reached(name):
        global seen
        if name == point:
            seen += 1
            if seen >= int(after):
                os.kill(os.getpid(), signal.SIGKILL)

    checkpoints.reached = reached
    if model == "vec":
        requests = [
            EmbeddingRequest(inputs=[f"text {i}", f"more {i}"], custom_id=f"q{i}")
            for i in range(N)
        ]
    else:
        requests = [BatchRequest(id=f"q{i}", prompt=f"question {i}") for i in range(N)]
    with RelayClient(workspace, config=parse_catalog(catalog)) as relay:
        relay.submit_batch(requests, job_id="crash", model=model, mode=mode, concurrency=2)
    """
)


def _requests() -> list[BatchRequest]:
    return [BatchRequest(id=f"q{i}", prompt=f"question {i}") for i in range(N)]


class Scene:
    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "provider-state"
        self.workspace = tmp_path / "ws"
        self.catalog = CATALOG.format(state=self.state)

    def run_child(self, point: str, after: int, *, mode: str, model: str = "fast") -> int:
        args = [point, str(after), self.catalog, str(self.workspace), mode, model, str(N)]
        done = subprocess.run(
            [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=120
        )
        return done.returncode

    def spawn_engine(self) -> subprocess.Popen[bytes]:
        """The job in the engine on the slow model, with no checkpoint armed."""
        args = ["none", "0", self.catalog, str(self.workspace), "engine", "slow", str(N)]
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def client(self) -> RelayClient:
        return RelayClient(self.workspace, config=parse_catalog(self.catalog))

    def provider_batches(self) -> int:
        return len(list(self.state.glob("mockbatch_*.json")))

    def check_complete(self, relay: RelayClient) -> None:
        job = relay.wait("crash", poll_interval=0.01)
        assert job.status == "completed"
        results = relay.retrieve_batch_results("crash")
        assert [item.custom_id for item in results] == [f"q{i}" for i in range(N)]
        assert [item.response.text for item in results if item.response] == [
            f"question {i}" for i in range(N)
        ]


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path)


def test_killed_while_storing_requests_the_job_starts_over(scene: Scene) -> None:
    assert scene.run_child("ingest.request", 7, mode="batch") == -signal.SIGKILL
    with scene.client() as relay:
        job = relay.get_job("crash")
        assert (job.status, job.interrupted) == ("preparing", True)
        assert scene.provider_batches() == 0
        job = relay.submit_batch(_requests(), job_id="crash", model="fast")
        assert job.status == "submitted"
        assert scene.provider_batches() == 3  # 12 requests, 5 per provider batch
        scene.check_complete(relay)


def test_killed_before_the_provider_accepted_a_batch(scene: Scene) -> None:
    # The second of three chunks was marked as being attempted, then the process died.
    assert scene.run_child("submit.before", 2, mode="batch") == -signal.SIGKILL
    assert scene.provider_batches() == 1
    with scene.client() as relay:
        job = relay.get_job("crash")
        assert (job.status, job.interrupted) == ("submitting", True)
        job = relay.resume("crash")
        assert job.status == "submitted"
        assert scene.provider_batches() == 3
        scene.check_complete(relay)


def test_killed_after_the_provider_accepted_a_batch_it_is_found_not_resubmitted(
    scene: Scene,
) -> None:
    # The provider created the second batch; its id never reached the workspace.
    assert scene.run_child("submit.after", 2, mode="batch") == -signal.SIGKILL
    assert scene.provider_batches() == 2
    with scene.client() as relay:
        assert len(relay.get_job("crash").provider_batches) == 1
        # Submitting the same requests again resumes the job, like resume() does.
        job = relay.submit_batch(_requests(), job_id="crash", model="fast")
        assert len(job.provider_batches) == 3
        assert scene.provider_batches() == 3  # found by its tag, not paid for twice
        scene.check_complete(relay)


def test_resubmitting_other_requests_under_an_interrupted_id_is_refused(scene: Scene) -> None:
    from relay_core import JobConflict

    assert scene.run_child("submit.after", 1, mode="batch") == -signal.SIGKILL
    with scene.client() as relay, pytest.raises(JobConflict, match="other requests"):
        relay.submit_batch(_requests()[:3], job_id="crash", model="fast")


def test_killed_mid_engine_the_rerun_skips_what_was_answered(scene: Scene) -> None:
    assert scene.run_child("engine.result", 5, mode="engine") == -signal.SIGKILL
    with scene.client() as relay:
        job = relay.get_job("crash")
        assert (job.status, job.interrupted) == ("running", True)
        assert job.counts.completed + job.counts.failed <= 5
        job = relay.resume("crash")
        stats = relay.last_engine_stats
        assert stats is not None
        assert stats.skipped == 5
        assert stats.called == N - 5
        assert job.status == "completed"
        results = relay.get_results("crash")
        assert [item.custom_id for item in results] == [f"q{i}" for i in range(N)]
        assert all(item.response is not None for item in results)


def test_killed_mid_embedding_job_no_input_is_embedded_twice_or_lost(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert scene.run_child("engine.result", 4, mode="engine", model="vec") == -signal.SIGKILL
    embedded: list[str] = []
    real = MockProvider.embed

    async def counting(self: MockProvider, request: EmbeddingRequest) -> Any:
        embedded.extend(request.inputs)
        return await real(self, request)

    monkeypatch.setattr(MockProvider, "embed", counting)
    with scene.client() as relay:
        job = relay.resume("crash")
        stats = relay.last_engine_stats
        assert stats is not None
        assert (stats.skipped, stats.called) == (4, N - 4)
        assert job.status == "completed"
        # Only the requests the first run had not answered were sent again.
        assert sorted(embedded) == sorted(
            text for i in range(4, N) for text in (f"text {i}", f"more {i}")
        )
        results = relay.get_results("crash")
    assert [item.custom_id for item in results] == [f"q{i}" for i in range(N)]
    assert all(item.embedding is not None and len(item.embedding) == 2 for item in results)


def test_killed_from_outside_mid_engine_nothing_is_lost(scene: Scene) -> None:
    child = scene.spawn_engine()
    responses = scene.workspace / "jobs" / "crash" / "responses.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if responses.exists() and responses.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    with scene.client() as relay:
        job = relay.resume("crash")
        stats = relay.last_engine_stats
        assert stats is not None
        assert stats.skipped >= 3
        assert stats.skipped + stats.called == N
        assert job.status == "completed"
        results = relay.get_results("crash")
        assert [item.custom_id for item in results] == [f"q{i}" for i in range(N)]
        assert all(item.response is not None for item in results)


def test_a_job_cannot_be_taken_while_its_process_lives(scene: Scene, tmp_path: Path) -> None:
    from relay_core import JobConflict

    child = scene.spawn_engine()
    try:
        responses = scene.workspace / "jobs" / "crash" / "responses.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not responses.exists() and child.poll() is None:
            time.sleep(0.005)
        with scene.client() as relay, pytest.raises(JobConflict, match="in progress"):
            relay.submit_batch(_requests(), job_id="crash", model="slow", mode="engine")
    finally:
        child.kill()
        child.wait(timeout=30)
