"""`relay batch ...` on relay-mock: the commands a user runs, their output and exit codes."""

from __future__ import annotations

import json
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
    bad.write_text('{"id": "a", "prompt": "ok"}\n{"id": "a", "prompt": "again"}\n')
    code, _, err = _relay(files, "submit", str(bad), "-m", "fast", "--job-id", "dup")
    assert code == 1
    assert "custom_id 'a' is used twice" in err
    bad.write_text('{"id": "a", "prompt": \n')
    code, _, err = _relay(files, "submit", str(bad), "-m", "fast")
    assert code == 1
    assert f"{bad}:1: not a JSON object" in err
    code, _, err = _relay(files, "status", "ghost")
    assert code == 1
    assert "no job 'ghost'" in err


def test_cancel_and_resume_report_the_job(files: dict[str, Path]) -> None:
    _relay(
        files, "submit", str(files["requests"]), "-m", "fast", "--job-id", "c-1", "--mode", "engine"
    )
    code, out, _ = _relay(files, "cancel", "c-1")
    assert code == 0
    assert out.startswith("c-1  completed")  # already finished: nothing to cancel
    code, out, _ = _relay(files, "resume", "c-1")
    assert out.startswith("c-1  completed")
