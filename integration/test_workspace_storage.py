"""What the disk refuses, said in one line: a full disk (a file size limit stands in for
it: RLIMIT_FSIZE with SIGXFSZ ignored makes every write past the limit fail with EFBIG,
as ENOSPC would, for root too and with no mount), a read-only workspace (its mode, with
root's override dropped by setpriv as in test_workspace_paths), and a job killed while
its requests were being stored: status and resume give the same advice, and it works.

Each runs ``relay batch ...`` in a child process, as a user would."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from relay_core import WorkspaceError
from relay_core.batch._storage import storage_error, storage_errors

# Run the CLI, optionally under a file size limit.
_RELAY = textwrap.dedent(
    """
    import resource, signal, sys
    limit = int(sys.argv[1])
    if limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from relay_core.cli import main
    main(sys.argv[2:])
    """
)


def relay(
    *args: str, limit: int = 0, unprivileged: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", _RELAY, str(limit), *args]
    if unprivileged and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    environment = {k: v for k, v in os.environ.items() if k not in ("RELAY_CONFIG",)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=environment, check=False
    )


def _requests(path: Path, n: int) -> Path:
    with path.open("w") as file:
        for i in range(n):
            file.write(json.dumps({"id": f"q{i:04d}", "prompt": f"question {i}"}) + "\n")
    return path


def test_a_full_disk_mid_job_is_one_line_and_resume_then_loses_nothing(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    requests = _requests(tmp_path / "r.jsonl", 400)
    common = ["-w", str(workspace)]
    # Room for the requests, not for all the answers.
    full = relay(
        "batch", "submit", str(requests), "-m", "mock/echo", "--mode", "engine",
        "--job-id", "big", *common, limit=120_000,
    )  # fmt: skip
    assert full.returncode in (1, 2), full.stderr
    assert "Traceback" not in full.stderr
    lines = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, full.stderr
    assert f"cannot write to the workspace {workspace}:" in lines[0]
    assert "disk full" in lines[0] or "file too large" in lines[0]
    assert "resume" in lines[0]

    status = relay("batch", "status", "big", *common)
    assert "interrupted: relay batch resume" in status.stdout, status.stdout + status.stderr
    resumed = relay("batch", "resume", "big", *common)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("big  completed  engine  400 done, 0 failed of 400")
    results = relay("batch", "results", "big", *common)
    ids = [json.loads(line)["custom_id"] for line in results.stdout.splitlines()]
    assert ids == [f"q{i:04d}" for i in range(400)]


@pytest.fixture
def locked_workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    requests = _requests(tmp_path / "r.jsonl", 3)
    made = relay("batch", "submit", str(requests), "-m", "mock/echo", "--job-id", "j",
                 "-w", str(workspace))  # fmt: skip
    assert made.returncode == 0, made.stderr
    for path in workspace.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    workspace.chmod(0o555)
    yield workspace
    for path in (workspace, *workspace.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_read_only_workspace_is_one_line_from_every_batch_command(
    locked_workspace: Path,
) -> None:
    for command in (["list"], ["status", "j"], ["results", "j"], ["cancel", "j"]):
        run = relay("batch", *command, "-w", str(locked_workspace), unprivileged=True)
        assert "Traceback" not in run.stderr, (command, run.stderr)
        if run.returncode == 0:  # reading what is there may need no write at all
            continue
        assert run.returncode in (1, 2), (command, run.stderr)
        assert run.stderr.count("\n") == 1, (command, run.stderr)
        assert run.stderr.startswith(f"error: cannot write to the workspace {locked_workspace}")
        assert "read-only" in run.stderr, run.stderr


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/ws/jobs/j/responses.jsonl"),
            "disk full",
        ),
        (OSError(errno.EROFS, "Read-only file system", "/ws/relay.db"), "read-only"),
        (sqlite3.OperationalError("database or disk is full"), "disk full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
    ],
)
def test_what_the_disk_refused_is_a_workspace_error_naming_path_and_cause(
    error: Exception, cause: str
) -> None:
    translated = storage_error("/ws", error)
    assert isinstance(translated, WorkspaceError)
    assert cause in str(translated)
    assert "/ws" in str(translated)
    with pytest.raises(WorkspaceError) as caught, storage_errors("/ws"):
        raise error
    assert caught.value.__cause__ is error


def test_other_errors_pass_through_untouched() -> None:
    for error in (OSError(errno.ENOENT, "No such file"), sqlite3.OperationalError("no such table")):
        assert storage_error("/ws", error) is None
        with pytest.raises(type(error)), storage_errors("/ws"):
            raise error


# -- a job killed while its requests were being stored ------------------------------------

_DIES_MID_STORE = textwrap.dedent(
    """
    import os, sys
    from relay_core import BatchRequest, RelayClient

    def requests():
        for i in range(5000):
            if i == 4000:
                os._exit(9)  # as a kill -9 would: no cleanup, the lease left behind
            yield BatchRequest(id=f"q{i:04d}", prompt=f"question {i}")

    with RelayClient(sys.argv[1]) as client:
        client.submit_batch(requests(), job_id="cut", model="mock/echo", mode="engine")
    """
)


def test_a_job_killed_while_storing_its_requests_gets_one_advice_that_works(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    child = subprocess.run(
        [sys.executable, "-c", _DIES_MID_STORE, str(workspace)], capture_output=True, check=False
    )
    assert child.returncode == 9, child.stderr
    common = ["-w", str(workspace)]
    status = relay("batch", "status", "cut", *common)
    assert status.returncode == 0, status.stderr
    advice = "submit them again with relay batch submit REQUESTS --job-id cut"
    assert advice in status.stdout
    assert "relay batch resume" not in status.stdout

    resumed = relay("batch", "resume", "cut", *common)
    assert resumed.returncode == 1
    assert resumed.stderr.count("\n") == 1
    assert advice in resumed.stderr

    # Following the advice works: the same id, the requests again, no --overwrite.
    requests = _requests(tmp_path / "r.jsonl", 5000)
    again = relay("batch", "submit", str(requests), "-m", "mock/echo", "--mode", "engine",
                  "--job-id", "cut", *common)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("cut  completed  engine  5000 done, 0 failed of 5000")
