"""``relay serve --workers N``: N processes answer on one port, a worker that dies is
replaced, and stopping the server stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay_core.real_servers import free_port

CATALOG = """\
providers:
  mock:
    max_retries: 0
models:
  fast: mock/echo
plugins:
  serve:
    header_timeout: 2
"""
START = [sys.executable, "-c", "from relay_core.cli import main; main()"]


class Running:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def worker_pid(self) -> int:
        # A new connection each time, so the kernel may hand it to either worker.
        answer = httpx.get(f"{self.url}/health", timeout=5, headers={"connection": "close"})
        assert answer.status_code == 200
        pid: int = answer.json()["worker_pid"]
        return pid

    def pids_answering(self, want: int, seconds: float = 30) -> set[int]:
        seen: set[int] = set()
        deadline = time.monotonic() + seconds
        while len(seen) < want:
            assert time.monotonic() < deadline, f"only workers {seen} answered"
            seen.add(self.worker_pid())
        return seen


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux's /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Running]:
    """``relay serve --workers 2`` over a mock catalog, ready to answer."""
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(CATALOG)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*START, "serve", "--config", str(catalog), "--port", str(port), "--workers", "2"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Running(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"relay serve stopped:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"relay serve did not start:\n{log.read_text()}"
            try:
                running.worker_pid()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield running
    finally:
        left = _descendants(process.pid)
        process.kill()
        process.wait()
        for pid in left:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_two_workers_answer_on_one_port(workers: Running) -> None:
    pids = workers.pids_answering(2)
    assert workers.process.pid not in pids  # the parent supervises, workers answer
    answer = httpx.post(
        f"{workers.url}/v1/chat/completions",
        json={"model": "fast", "messages": [{"role": "user", "content": "hello"}]},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "hello"
    assert b"2 workers without plugins.serve.state" in workers.log.read_bytes()


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(workers: Running) -> None:
    first = workers.pids_answering(2)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    seen: set[int] = set()
    while not seen - first:
        assert time.monotonic() < deadline, f"no worker replaced {victim}; answered: {seen}"
        seen.add(workers.worker_pid())  # never refused meanwhile: the other one answers
        time.sleep(0.05)
    assert victim not in seen
    assert workers.pids_answering(2) <= (first | seen) - {victim}


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_server_leaves_no_process_behind(workers: Running, stop: int) -> None:
    workers.pids_answering(2)
    started = _descendants(workers.process.pid)
    assert len(started) >= 2
    workers.process.send_signal(stop)
    assert workers.process.wait(timeout=30) == 0, workers.log.read_text()
    deadline = time.monotonic() + 10
    while left := {pid for pid in started if _alive(pid)}:
        assert time.monotonic() < deadline, f"still running after shutdown: {left}"
        time.sleep(0.05)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{workers.url}/health", timeout=2)
