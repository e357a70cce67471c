"""`relay batch ...` on relay-mock: the commands a user runs, their output and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from relay_core.cli import cli


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(json.dumps({"id": f"r{i}", "prompt": f"hello {i}"}) + "\n" for i in range(6))
    )
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(
        "providers:\n  mock:\n    options:\n"
        f"      batch_duration: 0\n      state_dir: {tmp_path / 'mock-state'}\n"
        "models:\n  fast: mock/echo\n"
    )
    return {"requests": requests, "catalog": catalog, "ws": tmp_path / "ws"}


def _relay(files: dict[str, Path], *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["-c", str(files["catalog"]), "batch", *args, "-w", str(files["ws"])]
    )
    return result.exit_code, result.stdout, result.stderr


def test_submit_in_the_engine_then_list_and_read_results(
    files: dict[str, Path], tmp_path: Path
) -> None:
    code, out, err = _relay(
        files, "submit", str(files["requests"]), "-m", "fast", "--job-id", "e-1", "--mode", "engine"
    )
    assert code == 0, err
    assert out.startswith("e-1  completed  engine  6 done, 0 failed of 6  $")
    assert "6/6" in err  # the progress bar
    code, out, _ = _relay(files, "list")
    assert out.splitlines()[0].startswith("e-1  completed")
    target = tmp_path / "out.jsonl"
    code, _, err = _relay(files, "results", "e-1", "-o", str(target))
    assert code == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == [f"r{i}" for i in range(6)]
    assert lines[0]["response"]["content"][0]["text"] == "hello 0"


def test_submit_to_the_batch_api_watch_and_fetch(files: dict[str, Path]) -> None:
    code, out, err = _relay(
        files, "submit", str(files["requests"]), "-m", "fast", "--job-id", "b-1", "--mode", "batch"
    )
    assert code == 0, err
    assert out.startswith("b-1  submitted  batch")
    code, out, _ = _relay(files, "watch", "b-1", "--interval", "0.01")
    assert out.splitlines()[-1].startswith("b-1  completed  batch")
    code, out, _ = _relay(files, "results", "b-1")
    assert [json.loads(line)["custom_id"] for line in out.splitlines()] == [
        f"r{i}" for i in range(6)
    ]
    code, out, _ = _relay(files, "status", "b-1", "--json")
    status = json.loads(out)
    assert (status["status"], status["has_results"]) == ("completed", True)
    assert status["cost"]["batch_discount_applied"] is True


def test_bad_input_is_a_one_line_error_naming_file_and_line(
    files: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "a", "prompt": "ok"}\n{"id": "b", "prompt": "ok"}\n{"id": "a", "prompt": "again"}\n'
    )
    code, _, err = _relay(files, "submit", str(bad), "-m", "fast", "--job-id", "dup")
    assert code == 2
    assert err == f"error: {bad}:3: duplicate id 'a' (first at {bad}:1)\n"
    bad.write_text('{"id": "a", "prompt": \n')
    code, _, err = _relay(files, "submit", str(bad), "-m", "fast")
    assert code == 2
    assert err.startswith(f"error: {bad}:1: not a JSON object")
    code, _, err = _relay(files, "status", "ghost")
    assert code == 2
    assert "no job 'ghost'" in err


def test_exit_codes_follow_one_rule(files: dict[str, Path], tmp_path: Path) -> None:
    """2: the command as given cannot work (usage, input, workspace); 1: a valid command
    whose operation failed (the job's state refuses it); never a traceback."""
    requests = str(files["requests"])
    _relay(files, "submit", requests, "-m", "fast", "--job-id", "done", "--mode", "engine")
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        "providers:\n  mock:\n    options:\n"
        f"      batch_duration: 3600\n      state_dir: {tmp_path / 'mock-state'}\n"
        "models:\n  fast: mock/echo\n"
    )
    runner = CliRunner()
    submit = ["submit", requests, "-m", "fast", "--job-id", "slow", "--mode", "batch"]
    running = runner.invoke(cli, ["-c", str(slow), "batch", *submit, "-w", str(files["ws"])])
    assert running.exit_code == 0, running.output
    cases: list[tuple[list[str], int, str]] = [
        (["submit", str(tmp_path / "none.jsonl"), "-m", "fast"], 2, "does not exist"),
        (["submit", requests, "-m", "nosuch"], 2, "nosuch"),
        (["submit", requests, "-m", "fast", "--job-id", "../up"], 2, "job id '../up'"),
        (["submit", requests, "-m", "fast", "--concurrency", "0"], 2, "--concurrency"),
        (["submit", requests, "-m", "fast", "--job-id", "done"], 1, "already exists"),
        (["status", "ghost"], 2, "no job 'ghost'"),
        (["status", "../x"], 2, "job id '../x'"),
        (["watch", "slow", "--interval", "0"], 2, "--interval"),
        (["results", "slow"], 1, "have not all finished"),
        (["results", "done", "-o", str(tmp_path / "no-dir" / "out.jsonl")], 2, "cannot write"),
        (["cancel", "ghost"], 2, "no job 'ghost'"),
        (["resume", "ghost"], 2, "no job 'ghost'"),
    ]
    for args, expected, says in cases:
        code, out, err = _relay(files, *args)
        assert (code, says in err) == (expected, True), (args, out, err)
        assert "Traceback" not in err


def test_dash_means_standard_output(files: dict[str, Path], tmp_path: Path) -> None:
    _relay(
        files, "submit", str(files["requests"]), "-m", "fast", "--job-id", "e", "--mode", "engine"
    )
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["-c", str(files["catalog"]), "batch", "results", "e", "-o", "-", "-w", str(files["ws"])],
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["custom_id"] for line in result.stdout.splitlines()] == [
        f"r{i}" for i in range(6)
    ]
    assert not Path("-").exists()
    assert not (tmp_path / "-").exists()


def test_cancel_and_resume_report_the_job(files: dict[str, Path]) -> None:
    _relay(
        files, "submit", str(files["requests"]), "-m", "fast", "--job-id", "c-1", "--mode", "engine"
    )
    code, out, _ = _relay(files, "cancel", "c-1")
    assert code == 0
    assert out.startswith("c-1  completed")  # already finished: nothing to cancel
    code, out, _ = _relay(files, "resume", "c-1")
    assert out.startswith("c-1  completed")


# The README's catalog: no state_dir. Each `relay batch` command is its own process, so
# the mock's batches must outlive the one that submitted them.
README_CATALOG = (
    "providers:\n  mock:\n    options: {batch_duration: %s}\nmodels:\n  fast: mock/echo\n"
)


def _fresh_process(tmp_path: Path, duration: float, *args: str) -> tuple[int, str, str]:
    """One command as a new process would run it: a new hub, nothing left in memory."""
    from relay_mock._batch import MemoryStore

    MemoryStore.records.clear()
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(README_CATALOG % duration)
    result = CliRunner().invoke(
        cli, ["-c", str(catalog), "batch", *args, "-w", str(tmp_path / "ws")]
    )
    return result.exit_code, result.stdout, result.stderr


def test_a_job_submitted_by_one_command_is_followed_by_the_next(
    files: dict[str, Path], tmp_path: Path
) -> None:
    requests = str(files["requests"])
    code, out, err = _fresh_process(tmp_path, 0.3, "submit", requests, "--model", "fast")
    assert code == 0, err
    job_id = out.split()[0]
    assert out.startswith(f"{job_id}  submitted  batch")
    code, out, err = _fresh_process(tmp_path, 0.3, "status", job_id)
    assert code == 0, err
    assert out.split()[1] in ("submitted", "completed")
    code, out, err = _fresh_process(tmp_path, 0.3, "watch", job_id, "--interval", "0.05")
    assert code == 0, err
    assert out.splitlines()[-1].startswith(f"{job_id}  completed  batch  6 done, 0 failed of 6")
    code, out, err = _fresh_process(tmp_path, 0.3, "results", job_id, "-o", "-")
    assert code == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["response"]["content"][0]["text"] for a in answers] == [
        f"hello {i}" for i in range(6)
    ]
    # The mock's batches are kept in the workspace, beside the jobs that made them.
    assert list((tmp_path / "ws" / "providers" / "mock").glob("mockbatch_*.json"))

    # A batch still running is cancelled from another process, as at a real provider.
    code, out, err = _fresh_process(
        tmp_path, 3600, "submit", requests, "-m", "fast", "--job-id", "long"
    )
    assert code == 0, err
    code, out, err = _fresh_process(tmp_path, 3600, "cancel", "long")
    assert code == 0, err
    assert out.startswith("long  cancelled  batch  0 done, 6 failed of 6")
    code, out, err = _fresh_process(tmp_path, 3600, "results", "long")
    assert code == 0, err
    assert {json.loads(line)["error"]["kind"] for line in out.splitlines()} == {"cancelled"}


def test_separate_processes_follow_one_job(files: dict[str, Path], tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "relay.yaml").write_text(README_CATALOG % 0.2)
    environment = {k: v for k, v in os.environ.items() if k != "RELAY_CONFIG"}
    program = [
        sys.executable,
        "-c",
        "import sys; from relay_core.cli import main; main(sys.argv[1:])",
    ]

    def relay(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*program, "batch", *args],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    submitted = relay("submit", str(files["requests"]), "--model", "fast", "--job-id", "p-1")
    assert submitted.returncode == 0, submitted.stderr
    watched = relay("watch", "p-1", "--interval", "0.05")
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.splitlines()[-1].startswith("p-1  completed  batch  6 done")
    results = relay("results", "p-1", "-o", "-")
    assert results.returncode == 0, results.stderr
    assert len(results.stdout.splitlines()) == 6
    assert not (tmp_path / "-").exists()
