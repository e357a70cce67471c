"""One team's workspace on PostgreSQL, as several machines use it: processes that share
only the directory path and the database URL submit, follow and retrieve one job; two
processes resuming a job at once get one winner; a lease held on another host is
honoured until its heartbeat lapses; the database restarting mid-job loses nothing; the
URL's password shows nowhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

import relay_postgres
import relay_postgres._store as pg_store
from relay_core import BatchRequest, JobConflict, RelayClient, WorkspaceError, parse_catalog
from relay_core.batch import WorkspaceView
from relay_core.real_servers import PostgresServer

CATALOG = """
providers:
  mock:
    options:
      faults: {slow: {kind: latency, seconds: 0.05}}
models:
  fast: mock/echo
  slow: mock/slow
"""
RELAY = [sys.executable, "-c", "import sys; from relay_core.cli import main; main(sys.argv[1:])"]

# Submits N requests on the slow model and is killed once 3 are answered.
KILLED = textwrap.dedent(
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
            if seen >= 3:
                os.kill(os.getpid(), signal.SIGKILL)

    checkpoints.reached = reached
    requests = [BatchRequest(id=f"q{i}", prompt=f"question {i}") for i in range(int(n))]
    with RelayClient(workspace, config=parse_catalog(catalog), store=store) as relay:
        relay.submit_batch(requests, job_id="shared", model="slow", mode="engine", concurrency=1)
    """
)


class Host:
    """A machine of the team: its own working directory, the shared paths and URL."""

    def __init__(self, root: Path, name: str, url: str) -> None:
        self.cwd = root / name
        self.cwd.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        self.env["TEAM_DB"] = url  # the password stays out of the command line

    def relay(self, *args: str, wait: bool = True) -> Any:
        command = [*RELAY, *args]
        if not wait:
            return subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        return subprocess.run(
            command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture
def shared(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "requests.jsonl").write_text(
        "".join(json.dumps({"id": f"r{i}", "prompt": f"hello {i}"}) + "\n" for i in range(6))
    )
    return {"catalog": tmp_path / "catalog.yaml", "ws": tmp_path / "shared-ws"}


def test_submit_on_one_host_follow_and_retrieve_on_another(
    tmp_path: Path, database: str, shared: dict[str, Path]
) -> None:
    one, two = Host(tmp_path, "one", database), Host(tmp_path, "two", database)
    common = ["-w", str(shared["ws"]), "--store", "$env.TEAM_DB"]
    submitted = one.relay(
        "-c", str(shared["catalog"]), "batch", "submit", str(tmp_path / "requests.jsonl"),
        "-m", "fast", "--job-id", "h1", "--mode", "engine", *common,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert not (shared["ws"] / "relay.db").exists()
    status = two.relay("-c", str(shared["catalog"]), "batch", "status", "h1", *common)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("h1  completed  engine  6 done, 0 failed of 6")
    two.env["RELAY_WORKSPACE_STORE"] = "$env.TEAM_DB"  # the default of --store
    results = two.relay(
        "-c", str(shared["catalog"]), "batch", "results", "h1", "-w", str(shared["ws"])
    )
    assert results.returncode == 0, results.stderr
    lines = [json.loads(line) for line in results.stdout.splitlines()]
    assert [line["custom_id"] for line in lines] == [f"r{i}" for i in range(6)]
    # What the dashboard reads: a read-only view over the same directory and database.
    view = WorkspaceView(shared["ws"], store=database)
    try:
        assert [(job.job_id, job.counts.completed) for job in view.jobs()] == [("h1", 6)]
        assert view.count_items("h1", "completed") == 6
    finally:
        view.close()
    reader = relay_postgres.open_store(database, read_only=True)
    try:
        with pytest.raises(WorkspaceError, match="read-only"), reader.transaction() as db:
            db.execute("UPDATE jobs SET status = 'failed'")
    finally:
        reader.close()


def test_two_processes_resuming_one_job_one_wins_the_other_is_told(
    tmp_path: Path, database: str, shared: dict[str, Path]
) -> None:
    n = 80  # 4 s of answers at one at a time: both resumes start while it runs
    child = subprocess.run(
        [sys.executable, "-c", KILLED, CATALOG, str(shared["ws"]), database, str(n)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    hosts = [Host(tmp_path, name, database) for name in ("one", "two")]
    args = ["-c", str(shared["catalog"]), "batch", "resume", "shared", "--concurrency", "1"]
    args += ["-w", str(shared["ws"]), "--store", "$env.TEAM_DB"]
    running = [host.relay(*args, wait=False) for host in hosts]
    outcomes = [(process.wait(120), *process.communicate()) for process in running]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes[0] == 0
    assert codes[1] != 0
    loser = next(err for code, _, err in outcomes if code)
    assert "is being worked on by another client" in loser
    assert "Traceback" not in loser
    with RelayClient(shared["ws"], config=parse_catalog(CATALOG), store=database) as relay:
        assert relay.get_job("shared").status == "completed"
        results = relay.retrieve_batch_results("shared")
    assert [item.custom_id for item in results] == [f"q{i}" for i in range(n)]
    lines = (shared["ws"] / "jobs" / "shared" / "responses.jsonl").read_text().splitlines()
    assert len(lines) == n  # nothing answered twice


def test_a_lease_held_on_another_host_is_honoured_until_its_heartbeat_lapses(
    tmp_path: Path, database: str, shared: dict[str, Path]
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", KILLED, CATALOG, str(shared["ws"]), database, "6"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("UPDATE jobs SET owner = 'otherhost|4242|cafe', heartbeat = %s", (time.time(),))
    with RelayClient(shared["ws"], config=parse_catalog(CATALOG), store=database) as relay:
        assert not relay.get_job("shared").interrupted
        with pytest.raises(JobConflict, match="being worked on by another client"):
            relay.resume("shared")
        with psycopg.connect(database, autocommit=True) as db:
            db.execute("UPDATE jobs SET heartbeat = %s", (time.time() - 61,))
        assert relay.get_job("shared").interrupted
        assert relay.resume("shared").status == "completed"


def test_the_database_restarting_mid_job_loses_nothing(
    tmp_path: Path, database: str, server: PostgresServer
) -> None:
    n = 60
    requests = [BatchRequest(id=f"q{i}", prompt=f"question {i}") for i in range(n)]
    with RelayClient(tmp_path / "ws", config=parse_catalog(CATALOG), store=database) as relay:
        done: list[Any] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                done.append(
                    relay.submit_batch(
                        requests, job_id="r1", model="slow", mode="engine", concurrency=2
                    )
                )
            except BaseException as error:
                errors.append(error)

        worker = threading.Thread(target=run)
        worker.start()
        responses = tmp_path / "ws" / "jobs" / "r1" / "responses.jsonl"
        deadline = time.monotonic() + 30
        while not responses.exists() or len(responses.read_bytes().splitlines()) < 10:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        server.stop()
        time.sleep(0.5)
        server.start()
        worker.join(60)
        assert not errors, errors
        assert (done[0].status, done[0].counts.completed) == ("completed", n)
        results = relay.retrieve_batch_results("r1")
    assert [item.custom_id for item in results] == [f"q{i}" for i in range(n)]
    assert len(responses.read_bytes().splitlines()) == n


def test_the_password_shows_in_no_error_and_no_repr(
    tmp_path: Path, database: str, server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Sup3rS3cretPw"
    url = database.replace("relay@", f"relay:{secret}@")  # the test server trusts, ignores it
    monkeypatch.setattr(pg_store, "OUTAGE_SECONDS", 0.3)
    with RelayClient(tmp_path / "ws", config=parse_catalog(CATALOG), store=url) as relay:
        store = relay.workspace.store
        assert secret not in repr(store)
        assert secret not in store.where
        assert store.where.startswith("postgresql://relay@127.0.0.1:")
        server.stop()
        try:
            with pytest.raises(WorkspaceError) as caught:
                relay.list_jobs()
        finally:
            server.start()
        assert secret not in str(caught.value)
        assert "127.0.0.1" in str(caught.value)
        assert relay.list_jobs() == []  # the next call reconnects
    closed = url.replace(f":{server.port}/", ":1/")
    with pytest.raises(WorkspaceError, match="cannot reach the workspace store") as caught:
        RelayClient(tmp_path / "ws", store=closed)
    assert secret not in str(caught.value)
