"""The JSONL sink's hash chain: intact across threads, processes and restarts, and every
kind of tampering named by ``relay audit verify`` at its first bad line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from audit_support import read_jsonl
from click.testing import CliRunner

from relay_audit import JsonlSink, verify
from relay_audit._cli import audit


def event(n: int) -> dict[str, Any]:
    return {"schema": 1, "kind": "call.succeeded", "outcome": "ok", "n": n}


def write(path: Path, count: int, start: int = 0) -> None:
    sink = JsonlSink(path)
    for n in range(start, start + count):
        sink.write(event(n))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    write(path, 5)
    return path


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_a_clean_file_verifies(log: Path) -> None:
    verdict = verify(log)
    assert (verdict.ok, verdict.events) == (True, 5)
    assert verdict.head == read_jsonl(log)[-1]["hash"]
    assert verdict.summary().startswith("5 events, chain intact")


def test_the_chain_links_each_record_to_the_one_before(log: Path) -> None:
    records = read_jsonl(log)
    assert records[0]["prev"] is None
    assert [r["prev"] for r in records[1:]] == [r["hash"] for r in records[:-1]]
    assert [r["n"] for r in records] == [0, 1, 2, 3, 4]


def test_the_chain_continues_across_restarts(log: Path) -> None:
    write(log, 3, start=5)  # a new sink: a new process, as far as the file knows
    verdict = verify(log)
    assert (verdict.ok, verdict.events) == (True, 8)


def test_an_edited_record_is_named(log: Path) -> None:
    rows = lines(log)
    rows[2] = rows[2].replace(b'"n":2', b'"n":7')
    log.write_bytes(b"".join(rows))
    verdict = verify(log)
    assert (verdict.ok, verdict.line, verdict.events) == (False, 3, 2)
    assert "edited" in (verdict.problem or "")


def test_an_edited_record_with_a_recomputed_hash_breaks_the_next_link(log: Path) -> None:
    from relay_audit._record import canonical, digest

    records = read_jsonl(log)
    records[1]["n"] = 99
    records[1]["hash"] = digest(records[1])
    log.write_text("".join(canonical(r) + "\n" for r in records))
    verdict = verify(log)
    assert (verdict.ok, verdict.line) == (False, 3)
    assert "deleted, inserted or moved" in (verdict.problem or "")


def test_a_deleted_record_is_named(log: Path) -> None:
    rows = lines(log)
    del rows[2]
    log.write_bytes(b"".join(rows))
    assert (verify(log).ok, verify(log).line) == (False, 3)


def test_deleting_the_first_record_is_named(log: Path) -> None:
    log.write_bytes(b"".join(lines(log)[1:]))
    verdict = verify(log)
    assert (verdict.ok, verdict.line) == (False, 1)
    assert "start of the file" in (verdict.problem or "")


def test_reordered_records_are_named(log: Path) -> None:
    rows = lines(log)
    rows[1], rows[2] = rows[2], rows[1]
    log.write_bytes(b"".join(rows))
    assert (verify(log).ok, verify(log).line) == (False, 2)


def test_an_inserted_record_is_named(log: Path) -> None:
    rows = lines(log)
    rows.insert(3, rows[1])  # a copy of a genuine record
    log.write_bytes(b"".join(rows))
    assert (verify(log).ok, verify(log).line) == (False, 4)


def test_an_inserted_line_that_is_not_a_record_is_named(log: Path) -> None:
    rows = lines(log)
    rows.insert(2, b'{"kind": "call.succeeded"}\n')
    log.write_bytes(b"".join(rows))
    verdict = verify(log)
    assert (verdict.ok, verdict.line) == (False, 3)
    assert "not an audit record" in (verdict.problem or "")


def test_a_truncated_last_line_is_named(log: Path) -> None:
    data = log.read_bytes()
    log.write_bytes(data[:-40])
    verdict = verify(log)
    assert (verdict.ok, verdict.line, verdict.events) == (False, 5, 4)
    assert "truncated" in (verdict.problem or "")


def test_a_line_cut_by_a_crash_is_closed_and_acknowledged_by_the_next_writer(log: Path) -> None:
    whole = log.read_bytes()
    log.write_bytes(whole[:-40])  # the last append died half way
    write(log, 2, start=10)
    rows = lines(log)
    assert len(rows) == 7
    assert json.loads(rows[5])["recovered"]["bytes"] == len(rows[4]) - 1
    verdict = verify(log)
    assert (verdict.ok, verdict.events, verdict.recovered) == (True, 6, (5,))
    assert "cut short by a crash" in verdict.summary()
    # The acknowledgement is itself chained: the fragment cannot be swapped afterwards.
    rows[4] = b'{"forged": true\n'
    log.write_bytes(b"".join(rows))
    assert (verify(log).ok, verify(log).line) == (False, 5)


def test_a_record_cut_exactly_at_its_newline_is_whole(log: Path) -> None:
    log.write_bytes(log.read_bytes()[:-1])
    write(log, 1, start=5)
    verdict = verify(log)
    assert (verdict.ok, verdict.events, verdict.recovered) == (True, 6, ())


def test_an_empty_file_is_not_called_intact(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.touch()
    verdict = verify(path)
    assert (verdict.ok, verdict.events, verdict.line) == (False, 0, None)
    assert verdict.summary().startswith("empty: nothing to verify")


def test_threads_writing_at_once_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, fsync=False)

    def work(base: int) -> None:
        for n in range(50):
            sink.write(event(base + n))

    threads = [threading.Thread(target=work, args=(i * 1000,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verdict = verify(path)
    assert (verdict.ok, verdict.events) == (True, 200)
    assert len({r["n"] for r in read_jsonl(path)}) == 200


def test_processes_writing_at_once_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    script = textwrap.dedent(
        f"""
        import sys
        from relay_audit import JsonlSink
        sink = JsonlSink({str(path)!r}, fsync=False)
        for n in range(100):
            sink.write({{"kind": "call.succeeded", "writer": sys.argv[1], "n": n}})
        """
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, str(i)]) for i in range(3)]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0, 0]
    verdict = verify(path)
    assert (verdict.ok, verdict.events) == (True, 300)


def test_the_command_exits_0_on_an_intact_chain(log: Path) -> None:
    result = CliRunner().invoke(audit, ["verify", str(log)])
    assert result.exit_code == 0
    assert f"{log}: 5 events, chain intact" in result.output


def test_the_command_exits_1_naming_the_first_bad_line(log: Path, tmp_path: Path) -> None:
    clean = tmp_path / "clean.jsonl"
    write(clean, 2)
    rows = lines(log)
    del rows[1]
    log.write_bytes(b"".join(rows))
    result = CliRunner().invoke(audit, ["verify", str(clean), str(log)])
    assert result.exit_code == 1
    assert f"{clean}: 2 events, chain intact" in result.output
    assert f"{log}: line 2: the chain breaks here" in result.output


def test_the_command_speaks_json(log: Path) -> None:
    result = CliRunner().invoke(audit, ["verify", "--json", str(log)])
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert (report["ok"], report["events"], report["line"]) == (True, 5, None)


def test_the_command_is_added_to_relay(log: Path) -> None:
    import click

    import relay_audit

    root = click.Group("relay")
    relay_audit.relay_register_commands(root)
    result = CliRunner().invoke(root, ["audit", "verify", str(log)])
    assert result.exit_code == 0
    missing = CliRunner().invoke(root, ["audit", "verify", str(log) + ".nope"])
    assert missing.exit_code == 2
