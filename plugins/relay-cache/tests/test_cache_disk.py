"""The disk store: shared by hubs and processes, WAL, batched eviction, and failures
that cost a call to the provider but never the call itself."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cache_support import Calls, Clock

from relay_cache._disk import SCHEMA_VERSION, DiskCache
from relay_core import Cost, Hub, Response, Usage

MakeHub = Callable[..., Hub]


def disk_catalog(path: Path, extra: str = "") -> str:
    return f"plugins:\n  cache: {{backend: disk, path: {json.dumps(str(path))}{extra}}}\n"


def answer(text: str) -> Response:
    return Response(content=text, model="echo", provider="mock", usage=Usage(1, 1), cost=Cost(0.1))


@contextmanager
def database(path: Path) -> Iterator[sqlite3.Connection]:
    """A second connection to the file, as another program would open it."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def rows(path: Path) -> list[tuple[str, str]]:
    with database(path) as db:
        return db.execute("SELECT key, response FROM responses ORDER BY key").fetchall()


def cache_logs(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "relay.cache" and event in r.getMessage()]


async def test_two_hubs_on_one_file_share_answers(
    make_hub: MakeHub, calls: Calls, tmp_path: Path
) -> None:
    path = tmp_path / "nested" / "deeper" / "responses.db"  # parents are created
    first = await make_hub(disk_catalog(path)).achat("mock/echo", "shared", cache=True)
    second = await make_hub(disk_catalog(path)).achat("mock/echo", "shared", cache=True)
    assert calls.chat == 1
    assert second.metadata["cached"] is True
    assert second.metadata["cost_saved"] == first.cost.amount
    with database(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_answer_survives_the_process(tmp_path: Path) -> None:
    """Another interpreter, finding relay-cache and relay-mock by their entry points,
    fills the file; this process is then served from it."""
    path = tmp_path / "responses.db"
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(disk_catalog(path))
    code = f"""
        import json
        from relay_core import Hub
        with Hub.from_yaml({str(catalog)!r}) as hub:
            answer = hub.chat("mock/echo", "across processes", cache=True)
        print(json.dumps({{"text": answer.text, "cost": answer.cost.amount}}))
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["RELAY_PLUGINS"] = "mock,cache"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout.splitlines()[-1])

    from relay_core import Hub

    with Hub.from_yaml(catalog, autoload=False) as hub:
        import relay_cache
        import relay_mock

        hub.plugins.register(relay_mock, name="mock")
        hub.plugins.register(relay_cache, name="cache")
        hit = hub.chat("mock/echo", "across processes", cache=True)
    assert hit.metadata["cached"] is True
    assert hit.text == written["text"]
    assert hit.metadata["cost_saved"] == written["cost"]


async def test_an_unreadable_row_is_a_miss_deleted_and_logged(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "responses.db"
    store = DiskCache(path, max_entries=10, max_bytes=10**6, ttl=None, clock=clock)
    await store.put("garbled", answer("one"))
    await store.put("drifted", answer("two"))
    await store.put("fine", answer("three"))
    with database(path) as db:
        db.execute("UPDATE responses SET response = '{\"content\": [' WHERE key = 'garbled'")
        # A part type this Relay does not know: what a newer Relay's row looks like here.
        drifted = '{"content": [{"type": "hologram", "frames": 3}]}'
        db.execute("UPDATE responses SET response = ? WHERE key = 'drifted'", (drifted,))

    with caplog.at_level(logging.WARNING, logger="relay.cache"):
        assert await store.get("garbled") is None
        assert await store.get("drifted") is None
    assert len(cache_logs(caplog, "cache.unreadable")) == 2
    assert [key for key, _ in rows(path)] == ["fine"]
    assert await store.get("fine") == answer("three")
    assert not store.broken
    await store.aclose()


async def test_a_corrupt_row_through_the_hub_costs_one_provider_call(
    make_hub: MakeHub, calls: Calls, tmp_path: Path
) -> None:
    path = tmp_path / "responses.db"
    hub = make_hub(disk_catalog(path))
    await hub.achat("mock/echo", "hello", cache=True)
    with database(path) as db:
        db.execute("UPDATE responses SET response = 'not json'")
    answer = await hub.achat("mock/echo", "hello", cache=True)
    assert answer.text == "hello"
    assert "cached" not in answer.metadata
    assert (await hub.achat("mock/echo", "hello", cache=True)).metadata["cached"] is True
    assert calls.chat == 2


async def test_an_unusable_path_is_logged_once_and_calls_go_on(
    make_hub: MakeHub, calls: Calls, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # so even root cannot create the cache under it
    hub = make_hub(disk_catalog(blocker / "cache" / "responses.db"))
    with caplog.at_level(logging.WARNING, logger="relay.cache"):
        for _ in range(3):
            assert (await hub.achat("mock/echo", "still works", cache=True)).text == "still works"
    assert calls.chat == 3
    disabled = cache_logs(caplog, "cache.disabled")
    assert len(disabled) == 1
    assert "a-file" in disabled[0].getMessage()


async def test_a_file_that_is_not_a_database_turns_the_store_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "responses.db"
    path.write_bytes(b"this was never sqlite " * 100)
    store = DiskCache(path, max_entries=10, max_bytes=10**6, ttl=None)
    with caplog.at_level(logging.WARNING, logger="relay.cache"):
        await store.put("k", answer("x"))
        assert await store.get("k") is None
    assert store.broken
    assert len(cache_logs(caplog, "cache.disabled")) == 1
    assert path.read_bytes().startswith(b"this was never sqlite")  # left as it was


async def test_a_full_disk_turns_the_store_off_without_failing_calls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "responses.db"
    store = DiskCache(path, max_entries=1000, max_bytes=10**8, ttl=None)
    await store.put("small", answer("fits"))
    db = store._connection
    assert db is not None
    # SQLite's own way to say "the disk is full" (SQLITE_FULL) at the current size.
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    with caplog.at_level(logging.WARNING, logger="relay.cache"):
        await store.put("big", answer("x" * 200_000))
        await store.put("more", answer("y" * 200_000))
        assert await store.get("small") is None  # a no-op now, not an error
    assert store.broken
    disabled = cache_logs(caplog, "cache.disabled")
    assert len(disabled) == 1
    assert "full" in disabled[0].getMessage()
    await store.aclose()


async def test_a_file_from_a_newer_relay_cache_is_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "responses.db"
    with database(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.execute("CREATE TABLE responses (key TEXT, payload BLOB)")
    store = DiskCache(path, max_entries=10, max_bytes=10**6, ttl=None)
    with caplog.at_level(logging.WARNING, logger="relay.cache"):
        await store.put("k", answer("x"))
    assert store.broken
    assert "newer relay-cache" in cache_logs(caplog, "cache.disabled")[0].getMessage()
    with database(path) as db:
        assert db.execute("SELECT count(*) FROM responses").fetchone() == (0,)


async def test_eviction_runs_in_batches(tmp_path: Path, clock: Clock) -> None:
    store = DiskCache(tmp_path / "r.db", max_entries=100, max_bytes=10**8, ttl=None, clock=clock)
    for i in range(100):
        await store.put(f"k{i}", answer(str(i)))
    assert len(store) == 100
    await store.put("k100", answer("100"))  # past the bound: back to 90%
    assert len(store) == 90
    assert await store.get("k100") is not None
    assert await store.get("k10") is None
    assert await store.get("k11") is not None
    for i in range(101, 111):  # up to the bound again: no eviction on the way
        await store.put(f"k{i}", answer(str(i)))
    assert len(store) == 100
    await store.aclose()


async def test_expired_answers_are_swept_when_eviction_runs(tmp_path: Path, clock: Clock) -> None:
    store = DiskCache(tmp_path / "r.db", max_entries=10, max_bytes=10**8, ttl=60, clock=clock)
    for i in range(5):
        await store.put(f"old{i}", answer("old"))
    clock.advance(120)
    for i in range(6):
        await store.put(f"new{i}", answer("new"))  # the 11th put passes max_entries
    assert len(store) == 6  # the stale five went, no fresh one had to
    await store.aclose()


async def test_another_process_writes_are_seen_by_the_recount(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    one = DiskCache(path, max_entries=150, max_bytes=10**8, ttl=None)
    two = DiskCache(path, max_entries=150, max_bytes=10**8, ttl=None)
    for i in range(100):
        await one.put(f"a{i}", answer("a"))
    # `two` opened before those puts; its own estimate would never pass the bound, but
    # it counts again every 100 puts and finds 200 answers.
    for i in range(100):
        await two.put(f"b{i}", answer("b"))
    assert len(two) <= 150
    await one.aclose()
    await two.aclose()


async def test_a_closed_store_opens_again(tmp_path: Path) -> None:
    store = DiskCache(tmp_path / "r.db", max_entries=10, max_bytes=10**6, ttl=None)
    await store.put("k", answer("kept"))
    await store.aclose()
    assert store._connection is None
    assert await store.get("k") == answer("kept")
    await store.aclose()


async def test_no_provider_key_reaches_the_cache_file(
    make_hub: MakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-relaycachetest-9f8e7d6c5b4a39281706"
    monkeypatch.setenv("RELAY_CACHE_TEST_KEY", key)
    path = tmp_path / "responses.db"
    hub = make_hub(
        "providers:\n  mock: {api_key: $env.RELAY_CACHE_TEST_KEY}\n" + disk_catalog(path)
    )
    await hub.achat("mock/echo", "keep my secrets", cache=True)
    async for _ in hub.astream("mock/echo", "stream them too", cache=True):
        pass
    assert len(rows(path)) == 2
    files = [p for p in tmp_path.iterdir() if p.name.startswith("responses.db")]
    for file in files:
        assert key.encode() not in file.read_bytes()
