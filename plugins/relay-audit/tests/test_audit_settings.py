"""``plugins.audit`` is checked strictly: a mistake is a ConfigError pointing at its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_support import MakeHub

from relay_audit import AuditPlugin, Settings
from relay_core import ConfigError


@pytest.mark.parametrize(
    ("settings", "message", "line"),
    [
        ("sinks: []", "at least one sink", 3),
        ("sinks: [{type: kafka}]", "unknown sink type 'kafka'", 3),
        ("sinks: [{type: jsonl}]", "needs a path", 3),
        ("sinks: [{type: jsonl, path: a.jsonl, fsync: maybe}]", "fsync must be true or false", 3),
        ("sinks: [{type: sqlite, path: a.db, timeout: 0}]", "timeout must be a number", 3),
        ("sinks: [{type: stdout, path: x}]", "a stdout sink has no setting 'path'", 3),
        ("sinks: [{type: stdout}, {type: stdout}]", "stdout is already a sink", 3),
        (
            "sinks: [{type: jsonl, path: a}, {type: sqlite, path: a}]",
            "already written by sink 0",
            3,
        ),
        ("sinks: [{type: stdout}]\n    include_content: yes please", "include_content", 4),
        (
            "sinks: [{type: stdout}]\n    fields: [alias, secret]",
            "'secret' is not a record field",
            4,
        ),
        ("sinks: [{type: stdout}]\n    sink: []", "unknown field 'sink'; did you mean 'sinks'", 4),
    ],
)
def test_a_bad_setting_points_at_its_line(
    make_hub: MakeHub, settings: str, message: str, line: int
) -> None:
    hub = make_hub(f"plugins:\n  audit:\n    {settings}\n")
    with pytest.raises(ConfigError, match=message) as caught:
        hub.chat("mock/echo", "x")
    assert caught.value.line == line


def test_relative_paths_are_fixed_when_the_settings_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.parse({"sinks": [{"type": "jsonl", "path": "logs/audit.jsonl"}]})
    assert settings.sinks[0].path == tmp_path / "logs" / "audit.jsonl"
    assert settings.sinks[0].fsync is True
    assert settings.include_content is False
    assert settings.fields is None


def test_settings_given_in_code_name_the_bad_one() -> None:
    with pytest.raises(ConfigError, match=r"plugins\.audit\.sinks\.0\.type: unknown sink type"):
        AuditPlugin.from_settings({"sinks": [{"type": "syslog"}]})


def test_the_entry_point_is_installed_and_light() -> None:
    import subprocess
    import sys
    from importlib.metadata import entry_points

    assert [ep.value for ep in entry_points(group="relay", name="audit")] == ["relay_audit"]
    code = (
        "import sys, relay_audit\n"
        "heavy = {'sqlite3', 'click', 'relay_audit._jsonl', 'relay_audit._plugin'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
