"""What the chain proves against someone who can write the file: the bytes on disk are
checked, a keyed chain (HMAC) refuses records forged without the key, and an anchor
kept elsewhere (``relay audit head``) catches a truncation or a whole rewrite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from audit_support import MakeHub, read_jsonl
from click.testing import CliRunner

from relay_audit import Head, JsonlSink, verify
from relay_audit._cli import audit
from relay_audit._record import canonical, digest
from relay_core import ConfigError, CredentialError

KEY = "k3y-for-the-audit-chain-0123456789abcdef"
DATA = Path(__file__).parent / "data"


def event(n: int) -> dict[str, Any]:
    return {"schema": 1, "kind": "call.succeeded", "outcome": "ok", "n": n}


def write(path: Path, count: int, *, start: int = 0, key: str | None = None) -> None:
    sink = JsonlSink(path, key=key)
    for n in range(start, start + count):
        sink.write(event(n))


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def forge_append(path: Path, n: int) -> None:
    """Append a record chained to the last one with a hash anyone can compute."""
    forged: dict[str, Any] = {**event(n), "prev": read_jsonl(path)[-1]["hash"]}
    forged["hash"] = digest(forged)
    with path.open("ab") as file:
        file.write(canonical(forged).encode() + b"\n")


def head_of(path: Path, key: str | None = None) -> Head:
    verdict = verify(path, key=key)
    assert verdict.ok
    assert verdict.head is not None
    return Head(verdict.events, verdict.head)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    write(path, 5)
    return path


@pytest.fixture
def keyed(tmp_path: Path) -> Path:
    path = tmp_path / "keyed.jsonl"
    write(path, 5, key=KEY)
    return path


# -- the three attacks of issue 21 item 11


def test_an_emptied_file_is_not_intact(log: Path) -> None:
    log.write_bytes(b"")
    verdict = verify(log)
    assert not verdict.ok
    assert verdict.summary().startswith("empty: nothing to verify")
    result = CliRunner().invoke(audit, ["verify", str(log)])
    assert result.exit_code == 1
    assert "intact" not in result.output


def test_an_emptied_file_fails_against_its_anchor_naming_the_record(log: Path) -> None:
    head = head_of(log)
    log.write_bytes(b"")
    verdict = verify(log, head=head)
    assert not verdict.ok
    assert verdict.summary() == "empty: the anchored head is record 5 (the file was emptied)"


def test_a_line_with_a_duplicate_key_prepended_is_named(log: Path) -> None:
    rows = lines(log)
    # JSON keeps the last of two equal keys: the parsed record (and its hash) is the
    # genuine one, only the bytes tell.
    rows[2] = b'{"n":99,' + rows[2][1:]
    log.write_bytes(b"".join(rows))
    assert json.loads(rows[2])["n"] == 2
    verdict = verify(log)
    assert (verdict.ok, verdict.line, verdict.events) == (False, 3, 2)
    assert "the line's bytes are not the ones written" in (verdict.problem or "")


@pytest.mark.parametrize(
    "edit",
    [
        lambda row: row.replace(b",", b", ", 1),  # spacing
        lambda row: row.replace(b"\n", b"\r\n"),  # line ending
        lambda row: row.replace(b'"ok"', b'"\\u006fk"'),  # an escape for the same text
    ],
)
def test_any_change_to_a_line_s_bytes_is_named(log: Path, edit: Any) -> None:
    rows = lines(log)
    rows[1] = edit(rows[1])
    log.write_bytes(b"".join(rows))
    assert (verify(log).ok, verify(log).line) == (False, 2)


def test_a_forged_record_with_an_unkeyed_hash_fails_a_keyed_chain(keyed: Path) -> None:
    forge_append(keyed, 99)
    verdict = verify(keyed, key=KEY)
    assert (verdict.ok, verdict.line, verdict.events) == (False, 6, 5)
    assert "not keyed" in (verdict.problem or "")


def test_a_record_forged_with_another_key_fails_a_keyed_chain(keyed: Path) -> None:
    write(keyed, 1, start=99, key="another-key-of-enough-length")
    verdict = verify(keyed, key=KEY)
    assert (verdict.ok, verdict.line) == (False, 6)
    assert "the HMAC does not match" in (verdict.problem or "")


def test_a_whole_chain_rewritten_without_the_key_fails(keyed: Path) -> None:
    keyed.write_bytes(b"")
    write(keyed, 5)
    verdict = verify(keyed, key=KEY)
    assert (verdict.ok, verdict.line) == (False, 1)


def test_an_edited_keyed_record_is_named(keyed: Path) -> None:
    rows = lines(keyed)
    rows[3] = rows[3].replace(b'"n":3', b'"n":8')
    keyed.write_bytes(b"".join(rows))
    verdict = verify(keyed, key=KEY)
    assert (verdict.ok, verdict.line) == (False, 4)


def test_a_keyed_chain_verifies_with_its_key(keyed: Path) -> None:
    verdict = verify(keyed, key=KEY)
    assert (verdict.ok, verdict.events, verdict.keyed) == (True, 5, True)
    assert verdict.summary().startswith("5 events, keyed chain intact")
    assert all(r["hash"].startswith("hmac-sha256:") for r in read_jsonl(keyed))
    assert KEY not in keyed.read_text()
    # Restarts and other processes continue the keyed chain.
    write(keyed, 2, start=5, key=KEY)
    assert (verify(keyed, key=KEY).ok, verify(keyed, key=KEY).events) == (True, 7)


def test_a_keyed_chain_without_the_key_asks_for_it(keyed: Path) -> None:
    verdict = verify(keyed)
    assert (verdict.ok, verdict.needs_key, verdict.line) == (False, True, 1)
    result = CliRunner().invoke(audit, ["verify", str(keyed)])
    assert result.exit_code == 2
    assert "--key" in result.output


def test_a_keyed_line_in_an_unkeyed_chain_is_tampering_not_a_question(log: Path) -> None:
    write(log, 1, start=5, key=KEY)
    verdict = verify(log)
    assert (verdict.ok, verdict.needs_key, verdict.line) == (False, False, 6)
    assert "a keyed record in an unkeyed chain" in (verdict.problem or "")
    assert CliRunner().invoke(audit, ["verify", str(log)]).exit_code == 1


# -- anchors


def test_an_anchor_still_held_verifies_as_the_log_grows(log: Path) -> None:
    head = head_of(log)
    write(log, 3, start=5)
    verdict = verify(log, head=str(head))
    assert (verdict.ok, verdict.events) == (True, 8)


def test_truncation_at_the_end_is_caught_by_the_anchor(log: Path) -> None:
    head = head_of(log)
    log.write_bytes(b"".join(lines(log)[:3]))
    assert verify(log).ok  # what an unkeyed chain alone cannot see
    verdict = verify(log, head=head)
    assert not verdict.ok
    assert verdict.summary() == (
        "shorter than the anchor: 3 record(s), the anchored head is record 5 "
        "(records were removed from the end)"
    )


def test_a_whole_rewrite_is_caught_by_the_anchor(log: Path) -> None:
    head = head_of(log)
    records = read_jsonl(log)
    log.write_bytes(b"")
    sink = JsonlSink(log)
    for record in records:
        body = {k: v for k, v in record.items() if k not in ("prev", "hash")}
        sink.write({**body, "n": 40} if body["n"] == 1 else body)
    assert verify(log).ok  # a valid chain, every hash recomputed
    verdict = verify(log, head=head)
    assert (verdict.ok, verdict.line) == (False, 5)
    assert f"record 5 is not the anchored head {head}" in (verdict.problem or "")


def test_the_head_command_prints_the_anchor_verify_checks(log: Path) -> None:
    result = CliRunner().invoke(audit, ["head", str(log)])
    assert result.exit_code == 0
    anchor = result.output.strip()
    assert anchor == f"5:{read_jsonl(log)[-1]['hash']}"
    assert CliRunner().invoke(audit, ["verify", "--head", anchor, str(log)]).exit_code == 0
    log.write_bytes(b"".join(lines(log)[:4]))
    result = CliRunner().invoke(audit, ["verify", "--head", anchor, str(log)])
    assert result.exit_code == 1
    assert "shorter than the anchor" in result.output


def test_the_head_command_refuses_a_broken_or_empty_chain(log: Path) -> None:
    rows = lines(log)
    del rows[1]
    log.write_bytes(b"".join(rows))
    result = CliRunner().invoke(audit, ["head", str(log)])
    assert result.exit_code == 1
    assert "line 2: the chain breaks here" in result.output
    log.write_bytes(b"")
    assert CliRunner().invoke(audit, ["head", str(log)]).exit_code == 1


@pytest.mark.parametrize("anchor", ["5", "x:abc", "0:" + "a" * 64, "5:" + "g" * 64])
def test_a_malformed_anchor_is_bad_usage(log: Path, anchor: str) -> None:
    result = CliRunner().invoke(audit, ["verify", "--head", anchor, str(log)])
    assert result.exit_code == 2
    assert "EVENTS:HASH" in result.output


def test_one_anchor_is_for_one_file(log: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    write(other, 1)
    anchor = str(head_of(log))
    result = CliRunner().invoke(audit, ["verify", "--head", anchor, str(log), str(other)])
    assert result.exit_code == 2


# -- keys from credential references


def test_the_command_takes_the_key_as_a_reference(
    keyed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_AUDIT_KEY", KEY)
    result = CliRunner().invoke(audit, ["verify", "--key", "env:RELAY_AUDIT_KEY", str(keyed)])
    assert result.exit_code == 0, result.output
    assert "keyed chain intact" in result.output
    head = CliRunner().invoke(audit, ["head", "--key", "env:RELAY_AUDIT_KEY", str(keyed)])
    assert head.output.startswith("5:hmac-sha256:")
    assert (
        CliRunner()
        .invoke(
            audit,
            ["verify", "--key", "env:RELAY_AUDIT_KEY", "--head", head.output.strip(), str(keyed)],
        )
        .exit_code
        == 0
    )


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("env:RELAY_AUDIT_NO_SUCH_KEY", "RELAY_AUDIT_NO_SUCH_KEY is not set"),
        ("env:RELAY_AUDIT_SHORT", "shorter than 16 characters"),
        ("not a reference", "references"),
    ],
)
def test_a_key_that_cannot_be_used_is_bad_usage_without_its_value(
    keyed: Path, monkeypatch: pytest.MonkeyPatch, reference: str, message: str
) -> None:
    monkeypatch.delenv("RELAY_AUDIT_NO_SUCH_KEY", raising=False)
    monkeypatch.setenv("RELAY_AUDIT_SHORT", "tiny-secret")
    result = CliRunner().invoke(audit, ["verify", "--key", reference, str(keyed)])
    assert result.exit_code == 2
    assert message in result.output
    assert "tiny-secret" not in result.output
    assert "Traceback" not in result.output


def test_the_catalog_keys_the_chain_from_a_credential_reference(
    tmp_path: Path, make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_AUDIT_KEY", KEY)
    path = tmp_path / "audit.jsonl"
    hub = make_hub(
        f"plugins:\n  audit:\n    sinks: [{{type: jsonl, path: {path}}}]\n"
        "    hmac_key: env:RELAY_AUDIT_KEY\n"
    )
    hub.chat("mock/echo", "one")
    hub.chat("mock/echo", "two")
    verdict = verify(path, key=KEY)
    assert (verdict.ok, verdict.events, verdict.keyed) == (True, 2, True)
    assert KEY not in path.read_text()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("hmac_key: env:RELAY_AUDIT_UNSET", "RELAY_AUDIT_UNSET is not set"),
        ("hmac_key: env:RELAY_AUDIT_SHORT", "shorter than 16 characters"),
        ("hmac_key: 12", "must be a credential reference"),
        ("hmac_key: just-the-key-itself", "not inline values"),
    ],
)
def test_a_bad_hmac_key_points_at_its_line(
    tmp_path: Path,
    make_hub: MakeHub,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    message: str,
) -> None:
    monkeypatch.delenv("RELAY_AUDIT_UNSET", raising=False)
    monkeypatch.setenv("RELAY_AUDIT_SHORT", "tiny-secret")
    hub = make_hub(
        f"plugins:\n  audit:\n    sinks: [{{type: jsonl, path: {tmp_path / 'a.jsonl'}}}]\n"
        f"    {setting}\n"
    )
    with pytest.raises(ConfigError, match=message) as caught:
        hub.chat("mock/echo", "x")
    assert caught.value.line == 4
    assert "tiny-secret" not in str(caught.value)


def test_a_key_without_a_jsonl_sink_is_refused(make_hub: MakeHub) -> None:
    hub = make_hub("plugins:\n  audit:\n    sinks: [{type: stdout}]\n    hmac_key: env:K\n")
    with pytest.raises(ConfigError, match="no sink is jsonl"):
        hub.chat("mock/echo", "x")


def test_a_key_resolved_in_code_raises_a_credential_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay_audit import AuditPlugin

    monkeypatch.delenv("RELAY_AUDIT_UNSET", raising=False)
    settings = {
        "sinks": [{"type": "jsonl", "path": str(tmp_path / "a.jsonl")}],
        "hmac_key": "env:RELAY_AUDIT_UNSET",
    }
    with pytest.raises(CredentialError, match="RELAY_AUDIT_UNSET"):
        AuditPlugin.from_settings(settings)


# -- logs written before this change


def test_a_log_written_before_keys_and_anchors_verifies_as_unkeyed(tmp_path: Path) -> None:
    old = DATA / "schema1-before-anchors.jsonl"
    verdict = verify(old)
    assert (verdict.ok, verdict.events, verdict.keyed, verdict.recovered) == (True, 4, False, (3,))
    # ...and a sink of today continues it.
    path = tmp_path / "old.jsonl"
    path.write_bytes(old.read_bytes())
    write(path, 1, start=9)
    assert (verify(path).ok, verify(path).events) == (True, 5)


def test_a_keyed_verify_of_an_old_log_says_it_is_unkeyed() -> None:
    verdict = verify(DATA / "schema1-before-anchors.jsonl", key=KEY)
    assert (verdict.ok, verdict.line) == (False, 1)
    assert "not keyed" in (verdict.problem or "")


def test_a_hostile_line_is_reported_not_raised(log: Path) -> None:
    rows = lines(log)
    rows[1] = b"[" * 100_000 + b"\n"
    log.write_bytes(b"".join(rows))
    assert (verify(log).ok, verify(log).line) == (False, 2)
    for hostile in (b'{"hash":"x","n":NaN}', b'{"hash":"\\u00e9"}', b'{"hash":"\\ud800"}'):
        rows[1] = hostile + b"\n"
        log.write_bytes(b"".join(rows))
        assert (verify(log).ok, verify(log).line) == (False, 2)
