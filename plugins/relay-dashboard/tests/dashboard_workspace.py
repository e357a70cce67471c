"""What relay-dashboard's tests share: a workspace filled by real relay-mock jobs of
every kind, and a live server. Hubs load no entry points: each registers the mock
plugin in code, so the tests see exactly the plugins they name."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs

import relay_mock
from relay_core import BatchRequest, Hub, RelayClient
from relay_core.testing import hub_for
from relay_dashboard import Settings
from relay_dashboard._server import build_server

CATALOG = """
providers:
  mock:
    max_retries: 0
    options: {batch_duration: 0.2}
  slowmock:            # a provider batch that stays submitted until cancelled
    plugin: mock
    max_retries: 0
    options: {batch_duration: 3600}
"""
XSS = "<script>window.__pwned = 1</script><b>not bold</b>"
SERVER_ERROR = {"mock": {"fault": {"kind": "server_error"}}}

# A job whose process dies half-way: its engine runs slowly in a child process, which is
# killed once a few answers are on disk, as a crash or a kill -9 would leave it.
_DYING_JOB = """
import sys
import relay_mock
from relay_core import BatchRequest, RelayClient
from relay_core.testing import hub_for

catalog = "providers: {mock: {options: {faults: {slow: {kind: latency, seconds: 0.05}}}}}"
with RelayClient(sys.argv[1], hub=hub_for(catalog, relay_mock), cache=False) as client:
    requests = [BatchRequest(id=f"d{i}", prompt=f"slow {i}") for i in range(400)]
    client.submit_batch(requests, job_id="crashed", model="mock/slow", mode="engine",
                        description="A run whose process was killed", concurrency=1)
"""


def make_hub() -> Hub:
    return hub_for(CATALOG, relay_mock)


def _requests(prefix: str, n: int, *, failing_every: int = 0) -> list[BatchRequest]:
    return [
        BatchRequest(
            id=f"{prefix}-{i:03d}",
            prompt=f"Question {i} of {prefix}?",
            provider_args=SERVER_ERROR if failing_every and i % failing_every == 2 else {},
        )
        for i in range(n)
    ]


def _kill_midway(directory: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", _DYING_JOB, str(directory)])
    responses = directory / "jobs" / "crashed" / "responses.jsonl"
    try:
        while not (responses.exists() and responses.read_bytes().count(b"\n") >= 5):
            if child.poll() is not None:
                raise RuntimeError("the job meant to be killed ended on its own")
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()


def submit_one(directory: Path, job_id: str = "one", description: str | None = None) -> None:
    """A small finished engine job."""
    with RelayClient(directory, hub=make_hub(), cache=False) as client:
        client.submit_batch(
            _requests(job_id, 3),
            job_id=job_id,
            model="mock/echo",
            mode="engine",
            description=description,
        )


def submit_batch(directory: Path, job_id: str, model: str = "slowmock/echo") -> None:
    """A provider batch of five requests: on ``slowmock`` it waits until cancelled, on
    ``mock`` it is done 0.2 s after submission."""
    with RelayClient(directory, hub=make_hub(), cache=False) as client:
        requests = [BatchRequest(id=f"r{i}", prompt=f"hello {i}") for i in range(5)]
        client.submit_batch(requests, job_id=job_id, model=model, mode="batch")


def fill_workspace(directory: Path) -> None:
    """Jobs of every kind: done, with failures, cancelled, waiting on their provider,
    interrupted; engine and provider batch modes; a hostile description."""
    _kill_midway(directory)
    with RelayClient(directory, hub=make_hub(), cache=False) as client:
        client.submit_batch(
            _requests("eval", 120),
            job_id="eval-nightly",
            model="mock/echo",
            mode="engine",
            description="Nightly eval of the support bot",
        )
        client.submit_batch(
            _requests("label", 30, failing_every=3),
            job_id="labels-flaky",
            model="mock/echo",
            mode="engine",
            description="Labelling run with injected server errors",
        )
        client.submit_batch(
            _requests("x", 2), job_id="hostile", model="mock/echo", mode="engine", description=XSS
        )
        client.submit_batch(
            _requests("b", 20),
            job_id="batch-done",
            model="mock/echo",
            mode="batch",
            description="Provider batch, retrieved",
        )
        client.wait("batch-done", poll_interval=0.1)
        client.retrieve("batch-done")
        client.submit_batch(
            _requests("c", 10),
            job_id="batch-cancelled",
            model="slowmock/echo",
            mode="batch",
            description="Provider batch, cancelled",
        )
        client.cancel_batch("batch-cancelled")
        client.retrieve("batch-cancelled")
        client.submit_batch(
            _requests("w", 10),
            job_id="batch-waiting",
            model="slowmock/echo",
            mode="batch",
            description="Provider batch still running",
        )


class LiveServer:
    """The dashboard served by uvicorn on 127.0.0.1, on a free port, in a thread."""

    def __init__(self, workspace: Path, settings: Settings, hub: Hub, **options: Any) -> None:
        options.setdefault("log_level", "warning")
        self.server = build_server(
            workspace, attrs.evolve(settings, port=0), hub=hub, lifespan="on", **options
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
