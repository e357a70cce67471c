"""The workspace store as a plugin point: a store registered for a URL scheme holds a
workspace's records while its files stay in the directory; a scheme nobody registered,
or an unset ``$env.NAME``, is a typed error naming what to do, from the API and the CLI."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relay_core import BatchInputError, BatchRequest, ConfigError, PluginRegistry, RelayClient
from relay_core import cli as cli_module
from relay_core.batch import WorkspaceView
from relay_core.batch._workspace import Workspace
from relay_core.batch.stores import SQLiteStore, UniqueViolation
from relay_core.cli import cli
from relay_core.plugin import hookimpl
from relay_core.testing import hub_for

CATALOG = "models:\n  fast: scripted/one\n"


class ElsewhereStores:
    """Registers ``elsewhere://PATH``: a SQLite file at PATH, away from the workspace."""

    opened: list[tuple[str, bool]]

    def __init__(self) -> None:
        self.opened = []

    @hookimpl
    def relay_register_workspace_stores(self, register: Any) -> None:
        def factory(url: str, *, read_only: bool) -> SQLiteStore:
            self.opened.append((url, read_only))
            path = Path(url.removeprefix("elsewhere://"))
            return SQLiteStore(str(path.parent), path, read_only=read_only)

        register("elsewhere", factory)


@pytest.fixture
def stores() -> ElsewhereStores:
    return ElsewhereStores()


@pytest.fixture
def hub(scripted: Any, stores: ElsewhereStores) -> Iterator[Any]:
    made = hub_for(CATALOG, scripted)
    made.plugins.register(stores, name="elsewhere")
    yield made
    made.close()


def test_a_registered_store_holds_the_records_and_the_directory_the_files(
    tmp_path: Path, hub: Any, stores: ElsewhereStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = tmp_path / "db" / "records.db"
    records.parent.mkdir()
    monkeypatch.setenv("TEAM_STORE", f"elsewhere://{records}")
    with RelayClient(tmp_path / "ws", hub=hub, store="$env.TEAM_STORE") as client:
        client.submit_batch(
            [BatchRequest(id="a", prompt="x"), BatchRequest(id="b", prompt="y")],
            job_id="j1",
            model="fast",
            mode="engine",
        )
        assert [item.custom_id for item in client.retrieve_batch_results("j1")] == ["a", "b"]
    assert stores.opened == [(f"elsewhere://{records}", False)]
    assert not (tmp_path / "ws" / "relay.db").exists()
    assert (tmp_path / "ws" / "jobs" / "j1" / "results.jsonl").is_file()
    with sqlite3.connect(records) as db:
        assert db.execute("SELECT job_id, status FROM jobs").fetchall() == [("j1", "completed")]
    db.close()
    # A second client, and a read-only view, find the job through the same URL.
    with RelayClient(tmp_path / "ws", hub=hub, store=f"elsewhere://{records}") as again:
        assert again.get_job("j1").counts.completed == 2
    view = WorkspaceView(tmp_path / "ws", store=_sqlite_at(records, read_only=True))
    try:
        assert [job.job_id for job in view.jobs()] == ["j1"]
    finally:
        view.close()


def _sqlite_at(path: Path, *, read_only: bool) -> SQLiteStore:
    return SQLiteStore(str(path.parent), path, read_only=read_only)


def test_a_duplicate_custom_id_is_named_on_any_store(tmp_path: Path, hub: Any) -> None:
    records = tmp_path / "records.db"
    requests = [BatchRequest(id=i, prompt="x") for i in ("a", "b", "a")]
    with (
        RelayClient(tmp_path / "ws", hub=hub, store=f"elsewhere://{records}") as client,
        pytest.raises(BatchInputError, match="custom_id 'a' is used twice: by request 0 and by"),
    ):
        client.submit_batch(requests, job_id="dup", model="fast", mode="engine")


def test_a_unique_violation_is_one_exception_type(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    try:
        insert = "INSERT INTO items (job_id, idx, custom_id) VALUES (?, ?, ?)"
        with workspace.transaction() as db:
            db.execute(insert, ("j", 0, "a"))
        with pytest.raises(UniqueViolation), workspace.transaction() as db:
            db.execute(insert, ("j", 1, "a"))
        assert workspace.query("SELECT count(*) FROM items")[0][0] == 1
    finally:
        workspace.close()


def test_an_unknown_scheme_names_the_plugin_to_install(tmp_path: Path) -> None:
    registry = PluginRegistry(autoload=False)
    with pytest.raises(ConfigError, match=r"pip install relay-postgres") as caught:
        Workspace(tmp_path / "ws", store="postgresql://relay:s3cret@db/jobs", plugins=registry)
    assert "s3cret" not in str(caught.value)
    assert not (tmp_path / "ws").exists()
    with pytest.raises(ConfigError, match=r"no workspace store handles mysql:// URLs"):
        Workspace(tmp_path / "ws", store="mysql://db/jobs", plugins=registry)


def test_an_unset_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable RELAY_NO_SUCH_STORE is not set"):
        Workspace(tmp_path / "ws", store="$env.RELAY_NO_SUCH_STORE")


def test_the_cli_reports_an_unknown_store_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the built-ins, whatever is installed: no store plugin.
    monkeypatch.setattr(cli_module, "_shared_registry", PluginRegistry(autoload=False))
    monkeypatch.setenv("RELAY_WORKSPACE_STORE", "postgresql://relay:s3cret@db/jobs")
    result = CliRunner().invoke(cli, ["batch", "list", "-w", str(tmp_path)])
    assert result.exit_code != 0
    assert "pip install relay-postgres" in result.output
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output


def test_clients_creating_one_new_workspace_at_once_all_open_it(tmp_path: Path) -> None:
    # A job's submitter and a watcher started together both find no directory; the one
    # that loses the race to create it must open it, not fail or remove it.
    import threading

    for attempt in range(20):
        directory = tmp_path / f"ws{attempt}"
        start = threading.Barrier(4)
        errors: list[BaseException] = []

        def open_it(
            directory: Path = directory,
            start: threading.Barrier = start,
            errors: list[BaseException] = errors,
        ) -> None:
            start.wait()
            try:
                Workspace(directory).close()
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert (directory / "relay.db").is_file()
