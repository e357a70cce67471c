"""Opening a workspace at a path that cannot hold one, or holds none: a typed error that
names the path and what is wrong, from the Python API and from `relay batch`, with
nothing on disk changed."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relay_core import BatchInputError, BatchRequest, PluginRegistry, RelayClient, WorkspaceError
from relay_core import cli as cli_module
from relay_core.cli import cli
from relay_core.testing import hub_for

CATALOG = "models:\n  fast: scripted/one\n"


def _snapshot(root: Path) -> dict[str, tuple[str, bytes | None, int]]:
    """Every path under ``root`` with its kind, content and mode: what 'nothing changed'
    compares."""
    found: dict[str, tuple[str, bytes | None, int]] = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        if path.is_dir():
            found[str(path.relative_to(root))] = ("dir", None, mode)
        else:
            found[str(path.relative_to(root))] = ("file", path.read_bytes(), mode)
    return found


def _a_file(root: Path) -> Path:
    (root / "notes.txt").write_text("not a workspace\n")
    return root / "notes.txt"


def _missing_parent(root: Path) -> Path:
    return root / "no-such-dir" / "ws"


def _parent_is_a_file(root: Path) -> Path:
    return _a_file(root) / "ws"


def _relay_db_is_a_directory(root: Path) -> Path:
    (root / "ws" / "relay.db").mkdir(parents=True)
    return root / "ws"


def _relay_db_is_not_sqlite(root: Path) -> Path:
    (root / "ws").mkdir()
    (root / "ws" / "relay.db").write_bytes(b"these are my notes, not a database\n" * 40)
    return root / "ws"


def _relay_db_is_another_programs(root: Path) -> Path:
    (root / "ws").mkdir()
    other = sqlite3.connect(root / "ws" / "relay.db")
    other.execute("CREATE TABLE bookmarks (url TEXT)")
    other.commit()
    other.close()
    return root / "ws"


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "a file": (_a_file, "is not a directory (a file is there)"),
    "missing parent": (_missing_parent, "no-such-dir does not exist"),
    "parent is a file": (_parent_is_a_file, "notes.txt is not a directory"),
    "relay.db is a directory": (_relay_db_is_a_directory, "relay.db is not a file"),
    "relay.db is not SQLite": (_relay_db_is_not_sqlite, "relay.db is not an SQLite database"),
    "relay.db is another program's": (
        _relay_db_is_another_programs,
        "relay.db is another program's SQLite database (tables: bookmarks)",
    ),
}


@pytest.fixture
def hub(scripted: Any) -> Iterator[Any]:
    made = hub_for(CATALOG, scripted)
    yield made
    made.close()


@pytest.mark.parametrize("create", [True, False], ids=["create", "existing-only"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_path_that_cannot_hold_a_workspace_is_refused_and_left_alone(
    case: str, create: bool, tmp_path: Path, hub: Any
) -> None:
    make, problem = CASES[case]
    root = tmp_path / "root"
    root.mkdir()
    path = make(root)
    before = _snapshot(root)
    with pytest.raises(WorkspaceError) as caught:
        RelayClient(path, hub=hub, create=create)
    assert str(path) in str(caught.value)
    if not create and not path.parent.is_dir():
        # Only opening: a path under no directory simply holds no workspace.
        assert caught.value.missing
        assert "is not a Relay workspace (no relay.db)" in str(caught.value)
    else:
        assert problem in str(caught.value)
        assert not caught.value.missing
    assert _snapshot(root) == before


def test_create_false_opens_only_a_workspace_that_exists(tmp_path: Path, hub: Any) -> None:
    with pytest.raises(WorkspaceError) as caught:
        RelayClient(tmp_path / "typo-dir", hub=hub, create=False)
    assert caught.value.missing
    assert str(caught.value) == (
        f"{tmp_path / 'typo-dir'} is not a Relay workspace (no relay.db); "
        "submitting a job creates one"
    )
    assert not (tmp_path / "typo-dir").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkspaceError, match=r"no relay\.db"):
        RelayClient(tmp_path / "empty", hub=hub, create=False)
    assert list((tmp_path / "empty").iterdir()) == []

    # The default creates it, as submitting needs; create=False then opens it.
    with RelayClient(tmp_path / "ws", hub=hub) as client:
        client.submit_batch([BatchRequest(id="a", prompt="x")], job_id="j", model="fast")
    with RelayClient(tmp_path / "ws", hub=hub, create=False) as client:
        assert [job.job_id for job in client.list_jobs()] == ["j"]


def test_a_duplicate_id_in_a_file_names_both_lines(tmp_path: Path, hub: Any) -> None:
    requests = tmp_path / "x.jsonl"
    lines = [f'{{"id": "q{i}", "prompt": "p"}}' for i in range(6)]
    lines.insert(1, "")  # blank lines are skipped but still counted as lines
    lines.append('{"id": "q2", "prompt": "again"}')
    requests.write_text("\n".join(lines) + "\n")
    with (
        RelayClient(tmp_path / "ws", hub=hub) as client,
        pytest.raises(BatchInputError) as caught,
    ):
        client.submit_batch(str(requests), job_id="dup", model="fast")
    assert str(caught.value) == f"{requests}:8: duplicate id 'q2' (first at {requests}:4)"
    assert (caught.value.file, caught.value.line) == (str(requests), 8)


# -- read-only directories ---------------------------------------------------------------

# Run in a child process: as root (a container, CI) permission bits do not stop a write,
# so there the child drops the capability that overrides them (setpriv) and is then held
# to the directory's mode like any user.
_OPEN = textwrap.dedent(
    """
    import sys
    from relay_core import RelayClient, WorkspaceError
    from relay_core.cli import main

    path = sys.argv[2]
    if sys.argv[1] == "api":
        try:
            RelayClient(path, config=None)
        except WorkspaceError as error:
            print("WorkspaceError:", error)
        else:
            print("opened")
    else:
        main(["batch", sys.argv[1], "-w", path] + sys.argv[3:])
    """
)


def _unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", _OPEN, *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("running as root, and setpriv (util-linux) is needed to drop root's rights")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    environment = {k: v for k, v in os.environ.items() if k not in ("RELAY_CONFIG",)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=environment, check=False
    )


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    # Under /tmp-like roots the child (without root's rights) must still reach it.
    directory = tmp_path / "locked"
    directory.mkdir()
    for each in (tmp_path, *tmp_path.parents):
        if not os.access(each, os.X_OK):  # pragma: no cover - unusual test roots
            pytest.fail(f"{each} cannot be traversed")
    directory.chmod(0o555)
    yield directory
    directory.chmod(0o755)


def test_a_read_only_directory_is_refused_from_the_api_and_the_cli(read_only_dir: Path) -> None:
    requests = read_only_dir.parent / "r.jsonl"
    requests.write_text('{"id": "a", "prompt": "x", "model": "mock/echo"}\n')
    api = _unprivileged("api", str(read_only_dir))
    assert api.returncode == 0, api.stderr
    assert api.stdout.strip() == (
        f"WorkspaceError: cannot create the workspace {read_only_dir}: "
        "the directory is not writable"
    )
    inner = read_only_dir / "ws"
    api = _unprivileged("api", str(inner))
    assert f"cannot create the workspace {inner}: {read_only_dir} is not writable" in api.stdout
    cli_run = _unprivileged("submit", str(read_only_dir), str(requests))
    assert cli_run.returncode == 2, cli_run.stderr
    assert cli_run.stderr.strip().splitlines()[-1] == (
        f"error: cannot create the workspace {read_only_dir}: the directory is not writable"
    )
    assert "Traceback" not in cli_run.stderr
    assert list(read_only_dir.iterdir()) == []


def test_a_directory_nobody_can_create_files_in_is_a_typed_error(hub: Any) -> None:
    # procfs refuses new files even to root: the path passes every check, then SQLite
    # cannot create its database, and that too is a WorkspaceError naming the path.
    target = Path("/proc/self/fdinfo")
    if not target.is_dir():  # pragma: no cover - not Linux
        pytest.skip("needs Linux's /proc")
    with pytest.raises(WorkspaceError, match=r"cannot open the workspace /proc/self/fdinfo"):
        RelayClient(target, hub=hub)


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def runner(scripted: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    registry = PluginRegistry(autoload=False)
    registry.register(scripted, name="scripted")
    monkeypatch.setattr(cli_module, "_shared_registry", registry)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    monkeypatch.delenv("RELAY_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relay.yaml").write_text(CATALOG)
    (tmp_path / "r.jsonl").write_text('{"id": "a", "prompt": "x"}\n')
    return CliRunner()


FOLLOWING = [
    ["list"],
    ["status", "j"],
    ["watch", "j", "--interval", "0.01"],
    ["results", "j"],
    ["cancel", "j"],
    ["resume", "j"],
]


@pytest.mark.parametrize("command", FOLLOWING, ids=lambda c: c[0])
def test_commands_that_follow_jobs_never_create_a_workspace(
    runner: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    before = _snapshot(tmp_path)
    result = runner.invoke(cli, ["batch", *command, "-w", "typo-dir"])
    assert result.exit_code == 2
    assert result.output == (
        "error: no workspace at typo-dir (no relay.db); `relay batch submit` creates one\n"
    )
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", [["submit", "r.jsonl", "-m", "fast"], ["list"]])
def test_a_path_that_cannot_hold_a_workspace_is_exit_2_without_a_traceback(
    runner: CliRunner, tmp_path: Path, case: str, command: list[str]
) -> None:
    make, problem = CASES[case]
    root = tmp_path / "root"
    root.mkdir()
    path = make(root)
    before = _snapshot(tmp_path)
    result = runner.invoke(cli, ["batch", *command, "-w", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ")
    if command[0] != "submit" and not path.parent.is_dir():
        problem = "(no relay.db); `relay batch submit` creates one"
    assert problem in result.output
    assert result.output.count("\n") == 1
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert _snapshot(tmp_path) == before


def test_submit_creates_the_workspace_the_others_then_follow(
    runner: CliRunner, tmp_path: Path
) -> None:
    submitted = runner.invoke(
        cli, ["batch", "submit", "r.jsonl", "-m", "fast", "--job-id", "j", "-w", "new-ws"]
    )
    assert submitted.exit_code == 0, submitted.output
    assert (tmp_path / "new-ws" / "relay.db").is_file()
    listed = runner.invoke(cli, ["batch", "list", "-w", "new-ws"])
    assert listed.exit_code == 0
    assert listed.output.startswith("j  completed  engine")


def test_a_database_another_process_keeps_locked_is_a_workspace_error(tmp_path: Path) -> None:
    from relay_core.batch._storage import storage_errors

    database = tmp_path / "relay.db"
    holder = sqlite3.connect(database, isolation_level=None)
    waiter = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(WorkspaceError) as caught, storage_errors(tmp_path):
            waiter.execute("INSERT INTO t VALUES (1)")
    finally:
        holder.close()
        waiter.close()
    message = str(caught.value)
    assert message.startswith(f"cannot write to the workspace {tmp_path}: {database}: locked")
    assert "another relay process" in message
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
