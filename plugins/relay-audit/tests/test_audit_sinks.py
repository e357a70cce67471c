"""The SQLite and stdout sinks, and what happens when a sink fails: the call goes on, the
other sinks still get the record, the failure is counted and logged once per burst."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest
from audit_support import MakeHub, read_jsonl

import relay_audit
from relay_audit import AuditPlugin, JsonlSink, SqliteSink, StdoutSink
from relay_core import AuditEvent, Usage


def sqlite_catalog(db: Path, jsonl: Path) -> str:
    return f"""\
models:
  fast: mock/echo
plugins:
  audit:
    sinks:
      - {{type: sqlite, path: {db}}}
      - {{type: jsonl, path: {jsonl}, fsync: false}}
"""


def test_sqlite_keeps_one_row_per_event_with_the_whole_record(
    tmp_path: Path, make_hub: MakeHub
) -> None:
    db = tmp_path / "audit.db"
    hub = make_hub(sqlite_catalog(db, tmp_path / "audit.jsonl"))
    response = hub.chat("fast", "hello", metadata={"caller": "team-a"})
    list(hub.stream("fast", "again"))
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT kind, outcome, caller, alias, provider, model, input_tokens, cost_amount,"
            " record FROM audit_events ORDER BY id"
        ).fetchall()
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(audit_events)")}
    conn.close()
    assert [row[:6] for row in rows] == [
        ("call.succeeded", "ok", "team-a", "fast", "mock", "echo"),
        ("stream.succeeded", "ok", None, "fast", "mock", "echo"),
    ]
    assert rows[0][6:8] == (response.usage.input_tokens, response.cost.amount)
    assert json.loads(rows[0][8])["response_id"] == response.id
    assert {"audit_events_at", "audit_events_job_id", "audit_events_alias"} <= indexes


def test_stdout_prints_one_json_line_per_event(
    tmp_path: Path, make_hub: MakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = make_hub("plugins:\n  audit:\n    sinks: [{type: stdout}]\n")
    hub.chat("mock/echo", "one")
    hub.chat("mock/echo", "two")
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["alias"]) for r in printed] == [("call.succeeded", "mock/echo")] * 2
    assert "hash" not in printed[0]  # the chain belongs to the JSONL file


def test_an_unwritable_sink_neither_breaks_the_call_nor_stops_the_others(
    tmp_path: Path, make_hub: MakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    db = tmp_path / "audit.db"
    hub = make_hub(sqlite_catalog(db, blocker / "audit.jsonl"))
    with caplog.at_level(logging.WARNING, logger="relay"):
        for n in range(3):
            assert hub.chat("fast", f"call {n}").text == f"call {n}"
    plugin = relay_audit.audit_plugin(hub)
    assert plugin is not None
    assert plugin.failures == {f"sqlite:{db}": 0, f"jsonl:{blocker / 'audit.jsonl'}": 3}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (3,)
    conn.close()
    failed = [r for r in caplog.records if "audit.sink_failed" in r.getMessage()]
    assert len(failed) == 1  # once per burst, not once per call
    assert "not-a-directory" in failed[0].getMessage()


def event(n: int) -> AuditEvent:
    return AuditEvent(kind="call.succeeded", at=1_700_000_000.0 + n, usage=Usage(n, n))


def test_a_locked_database_is_a_burst_of_failures_that_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "audit.db"
    sqlite = SqliteSink(db, timeout=0.05)
    jsonl = JsonlSink(tmp_path / "audit.jsonl")
    plugin = AuditPlugin([sqlite, jsonl])
    plugin.relay_audit(event(0))  # creates the table
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.WARNING, logger="relay"):
        plugin.relay_audit(event(1))
        plugin.relay_audit(event(2))
        holder.execute("ROLLBACK")
        holder.close()
        plugin.relay_audit(event(3))
    sqlite.close()
    assert plugin.failures == {sqlite.name: 2, jsonl.name: 0}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("audit.sink_failed" in m for m in messages) == 1
    # The record renders as key=value or as JSON, whichever logging another test set up.
    assert any("audit.sink_recovered" in m and re.search(r'lost(=|": )2', m) for m in messages)
    assert [r["usage"]["input_tokens"] for r in read_jsonl(tmp_path / "audit.jsonl")] == [
        0,
        1,
        2,
        3,
    ]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT input_tokens FROM audit_events").fetchall() == [(0,), (3,)]
    conn.close()


def test_a_sink_error_message_never_carries_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-ant-Zx81Qw7Rt2Yu6Io0Pa4Sd9Fg3Hj5Kl"

    class Leaky:
        name = "leaky"

        def write(self, record: object) -> None:
            raise OSError(f"refused with key {key}")

    plugin = AuditPlugin([Leaky(), StdoutSink()])
    with caplog.at_level(logging.WARNING, logger="relay"):
        plugin.relay_audit(event(0))
    assert plugin.failures["leaky"] == 1
    assert "audit.sink_failed" in caplog.text
    assert key not in caplog.text


def test_a_plugin_built_in_code_records_to_its_sinks(tmp_path: Path, make_hub: MakeHub) -> None:
    path = tmp_path / "audit.jsonl"
    hub = make_hub("")
    hub.plugins.register(
        AuditPlugin.from_settings(
            {"sinks": [{"type": "jsonl", "path": str(path)}], "include_content": True}
        )
    )
    hub.chat("mock/echo", "in code")
    [record] = read_jsonl(path)
    assert record["response"]["text"] == "in code"
