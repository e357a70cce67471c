"""Spend and budgets: every answered request is in the ledger once, at Relay's cost; a
request that would pass a key's or a team's budget is refused before the upstream
call; ``relay spend``, ``/admin/spend`` and ``/metrics`` report it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner
from serve_support import CATALOG, Served, TroubleProvider, error_of
from starlette.testclient import TestClient

import relay_mock
import relay_serve
from relay_core.plugin import ConfigError
from relay_core.real_servers import postgres_server
from relay_core.testing import hub_for
from relay_serve import ApiKey, ServeSettings, create_app
from relay_serve._database import Database
from relay_serve._keyfields import parse_budget
from relay_serve._ledger import Ledger, SpendRow, ledger_for
from relay_serve._settings import Budget, Limits
from relay_serve._spend_report import parse_since, spend
from relay_serve._state import LocalState

PRICED = (
    CATALOG
    + """\
  pricey: {target: mock/echo, pricing: {input: 1000, output: 1000}}
  dear_stall: {target: trouble/stall, pricing: {input: 1000, output: 1000}}
  dear_trouble: {target: trouble/ProviderUnavailable, pricing: {input: 1000, output: 1000}}
"""
)
ALICE, BOB, CAROL = "sk-alice-0123456789abcdef", "sk-bob-0123456789abcdef", "sk-carol-0123456789"


def _rows(database: Database, where: str = "", params: tuple[Any, ...] = ()) -> list[Any]:
    return database.execute(
        "SELECT request_id, key_name, team, alias, target, input_tokens, output_tokens, "
        f"dollars, cost_source, priced_by, usage_source, cut FROM relay_spend {where} "
        "ORDER BY at",
        params,
    )


def _wait_rows(database: Database, count: int) -> list[Any]:
    deadline = time.monotonic() + 20
    while len(rows := _rows(database)) < count:
        assert time.monotonic() < deadline, f"{len(rows)} ledger rows, not {count}"
        time.sleep(0.05)
    return rows


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(str(tmp_path / "relay-serve.db"))
    yield database
    database.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as server:
        yield server.url


@pytest.fixture(params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database.open(str(tmp_path / "relay-serve.db"))
    else:
        database = Database.open(postgres_url)
        database.execute("DROP TABLE IF EXISTS relay_spend")
    yield database
    database.close()


def _row(**fields: Any) -> SpendRow:
    values: dict[str, Any] = {
        "request_id": "r1",
        "key": "alice",
        "team": "ml",
        "alias": "pricey",
        "target": "mock/echo",
        "input_tokens": 5,
        "output_tokens": 2,
        "dollars": 0.007,
        "cost_source": "user_override",
        "priced_by": "catalog",
    }
    return SpendRow(**{**values, **fields})


# ---------------------------------------------------------------------------- parsing


def test_a_budget_is_dollars_per_day_month_or_in_total() -> None:
    assert parse_budget("50/month") == Budget(50.0, "month")
    assert parse_budget("$12.5 / day") == Budget(12.5, "day")
    assert parse_budget("1000/total") == parse_budget("1000") == Budget(1000.0, "total")
    for wrong in ("50/week", "-5/day", "0/day", "lots/month", True):
        with pytest.raises(ValueError, match="dollars"):
            parse_budget(wrong)


def test_team_budgets_are_read_from_the_catalog_and_mistakes_point_at_their_line() -> None:
    from relay_core.config import parse_catalog

    good = parse_catalog("plugins:\n  serve:\n    teams:\n      ml: {budget: 500/month}\n")
    assert ServeSettings.from_catalog(good).teams == {"ml": (Budget(500.0, "month"),)}
    both = parse_catalog("plugins:\n  serve:\n    teams:\n      ml: {budget: [5/day, 50/total]}\n")
    assert ServeSettings.from_catalog(both).teams["ml"] == (Budget(5, "day"), Budget(50, "total"))
    bad = parse_catalog("plugins:\n  serve:\n    teams:\n      ml: {budget: 500/week}\n")
    with pytest.raises(ConfigError, match=r":4:.*teams\.ml: budget .*'500/week'"):
        ServeSettings.from_catalog(bad)


async def test_a_budget_keeps_its_ledger_beside_the_catalog(tmp_path: Path) -> None:
    from relay_core.config import parse_catalog

    path = tmp_path / "relay.yaml"
    path.write_text("plugins:\n  serve:\n    teams:\n      ml: {budget: 5/day}\n")
    settings = ServeSettings.from_catalog(parse_catalog(path.read_text(), path=str(path)))
    assert settings.database == str(tmp_path / "relay-serve.db")
    # Without budgets, admin keys or the file, a server keeps no ledger and writes no file.
    assert (
        ServeSettings.from_catalog(parse_catalog("models: {}\n", path=str(path))).database is None
    )
    assert settings.database is not None
    ledger = ledger_for(Database.open(settings.database))
    ledger.record(_row())
    assert (tmp_path / "relay-serve.db").is_file()
    assert len(list((tmp_path / "relay-serve.db.journal").iterdir())) == 1
    await ledger.aclose()
    assert len(_rows(ledger.database)) == 1
    ledger.database.close()


def test_since_takes_a_utc_date_or_an_age() -> None:
    assert parse_since("2026-12-01") == 1796083200.0
    assert parse_since("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86_400
    assert parse_since("12h", now=1_000_000.0) == 1_000_000.0 - 12 * 3_600
    with pytest.raises(ValueError, match="UTC date like 2026-12-01"):
        parse_since("last week")


# ---------------------------------------------------------------------------- ledger


async def test_a_row_reported_twice_is_one_row(database: Database, tmp_path: Path) -> None:
    ledger = Ledger(database, journal=tmp_path / "journal")
    row = _row()
    ledger.record(row)
    ledger.record(row)  # a retried report
    await ledger.flush()
    ledger.record(row)  # and one after the first was written
    await ledger.aclose()
    assert len(_rows(database)) == 1
    assert await ledger.spent(key="alice") == pytest.approx(0.007)
    assert list((tmp_path / "journal").iterdir()) == []  # flushed journals are dropped


async def test_spend_is_summed_by_key_team_and_time(database: Database) -> None:
    ledger = Ledger(database)
    old = time.time() - 40 * 86_400
    ledger.record(_row(request_id="a", at=old))
    ledger.record(_row(request_id="b", dollars=0.003))
    ledger.record(_row(request_id="c", key="bob", alias="other", dollars=None))
    assert await ledger.spent(key="alice") == pytest.approx(0.010)  # unflushed rows count
    await ledger.flush()
    assert await ledger.spent(key="alice", since=time.time() - 86_400) == pytest.approx(0.003)
    assert await ledger.spent(team="ml") == pytest.approx(0.010)
    by_model = await ledger.report(by="model")
    assert [(g["model"], g["requests"], g["unpriced_requests"]) for g in by_model] == [
        ("pricey", 2, 0),
        ("other", 1, 1),
    ]
    assert [g["requests"] for g in await ledger.report(by="day")] == [1, 2]
    await ledger.aclose()


async def test_rows_recorded_while_the_database_is_down_are_kept_in_the_journal(
    sqlite: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ledger's side of an outage (Database itself does not reconnect to a restarted
    # PostgreSQL yet): rows wait in their journal, not in memory, and go in once the
    # database answers again.
    journal = tmp_path / "journal"
    ledger = Ledger(sqlite, journal=journal)
    working = sqlite.run

    async def down(sql: str, params: Any = ()) -> Any:
        raise OSError("database down")

    monkeypatch.setattr(sqlite, "run", down)
    for n in range(3):
        ledger.record(_row(request_id=f"r{n}"))
        with pytest.raises(OSError, match="database down"):
            await ledger.flush()
    assert ledger._pending == []
    assert len(list(journal.iterdir())) == 3
    monkeypatch.setattr(sqlite, "run", working)
    ledger.record(_row(request_id="after"))
    await ledger.flush()
    assert sorted(row[0] for row in _rows(sqlite)) == ["after", "r0", "r1", "r2"]
    assert list(journal.iterdir()) == []
    await ledger.aclose()


def test_rows_of_a_worker_killed_before_its_flush_are_replayed(tmp_path: Path) -> None:
    # A worker records 50 answers and dies by SIGKILL before any flush: its journal is
    # all that is left of them, and the next ledger to start puts them in the database.
    path, journal = tmp_path / "relay-serve.db", tmp_path / "journal"
    child = textwrap.dedent(
        f"""
        import os, signal
        from relay_serve._database import Database
        from relay_serve._ledger import Ledger, SpendRow
        ledger = Ledger(Database.open({str(path)!r}), journal={str(journal)!r}, flush_every=3600)
        for n in range(50):
            ledger.record(SpendRow(request_id=f"r{{n}}", key="alice", team=None, alias="m",
                target="mock/echo", input_tokens=1, output_tokens=1, dollars=0.5,
                cost_source="snapshot"))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    died = subprocess.run([sys.executable, "-c", child], check=False, timeout=60)
    assert died.returncode == -9
    database = Database.open(str(path))
    assert _rows(database) == []
    import asyncio

    async def restart() -> int:
        ledger = Ledger(database, journal=journal)
        await ledger.start()
        await ledger.aclose()
        return len(_rows(database))

    assert asyncio.run(restart()) == 50
    assert list(journal.iterdir()) == []
    database.close()


async def test_local_state_forgets_lapsed_once_marks() -> None:
    # One mark per answered request: without pruning, memory grows with traffic.
    now = [0.0]
    state = LocalState(clock=lambda: now[0])
    await state.seed("spend", 0.0, None)
    for n in range(10_000):
        now[0] = float(n)
        assert await state.add_once(f"row{n}", {"spend": 1.0}, ttl=100.0)
    assert not await state.add_once("row9999", {"spend": 1.0}, ttl=100.0)
    assert await state.totals(["spend"]) == [10_000.0]
    assert len(state._once) <= 2048


# ---------------------------------------------------------------------------- the server


def _keys(*, key_budget: str | None = None, team: str | None = None) -> tuple[ApiKey, ...]:
    limits = Limits(budgets=(parse_budget(key_budget),) if key_budget else ())
    return (
        ApiKey.from_key("alice", ALICE, limits=limits, team=team),
        ApiKey.from_key("bob", BOB, team=team),
        ApiKey.from_key("carol", CAROL),
    )


def _chat(server: Served, key: str, model: str = "pricey", text: str = "hello there") -> Any:
    with server.http() as http:
        return http.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": model, "messages": [{"role": "user", "content": text}]},
        )


def test_every_answer_is_in_the_ledger_once_at_its_cost(
    serve: Callable[..., Served], sqlite: Database, tmp_path: Path
) -> None:
    ledger = Ledger(sqlite, journal=tmp_path / "journal")
    server = serve(PRICED, ServeSettings(keys=_keys(team="ml")), ledger=ledger)
    client = server.client(ALICE)
    answer = client.chat.completions.create(
        model="pricey",
        messages=[{"role": "user", "content": "hello there"}],
        extra_headers={"x-request-id": "req-1"},
    )
    chunks = list(
        server.client(BOB).chat.completions.create(
            model="pricey",
            messages=[{"role": "user", "content": "hello there"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    rows = _wait_rows(sqlite, 2)
    assert answer.usage is not None
    assert chunks[-1].usage is not None
    expected = (answer.usage.prompt_tokens + answer.usage.completion_tokens) * 1000 / 1e6
    assert rows[0] == (
        "req-1",
        "alice",
        "ml",
        "pricey",
        "mock/echo",
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
        pytest.approx(expected),
        "user_override",
        "catalog",
        "reported",
        0,
    )
    assert rows[1][1:5] == ("bob", "ml", "pricey", "mock/echo")
    assert rows[1][10:] == ("reported", 0)
    time.sleep(0.5)  # nothing is written twice later
    assert len(_rows(sqlite)) == 2
    samples = server.metrics(ALICE)
    assert samples['relay_serve_spend_dollars_total{key="alice",model="pricey"}'] == (
        pytest.approx(expected)
    )


def test_embeddings_are_budgeted_and_recorded_like_chat(
    serve: Callable[..., Served], sqlite: Database, tmp_path: Path
) -> None:
    catalog = PRICED + "  dear_vectors: {target: mock/embed, pricing: {input: 1000, output: 0}}\n"
    ledger = Ledger(sqlite, journal=tmp_path / "journal")
    # $0.05 a day at $1,000 per million input tokens: 50 tokens.
    server = serve(catalog, ServeSettings(keys=_keys(key_budget="0.05/day")), ledger=ledger)
    done = server.client(ALICE).embeddings.create(
        model="dear_vectors", input=["hello there", "again"], extra_headers={"x-request-id": "e-1"}
    )
    rows = _wait_rows(sqlite, 1)
    assert rows[0][:6] == (
        "e-1",
        "alice",
        None,
        "dear_vectors",
        "mock/embed",
        done.usage.prompt_tokens,
    )
    assert rows[0][7] == pytest.approx(done.usage.prompt_tokens * 1000 / 1e6)
    with pytest.raises(openai.RateLimitError) as raised:  # ~100 tokens of input alone
        server.client(ALICE).embeddings.create(model="dear_vectors", input=["x" * 400])
    assert raised.value.code == "insufficient_quota"
    assert len(_rows(sqlite)) == 1


def test_a_request_over_a_spent_budget_never_reaches_the_upstream(
    serve: Callable[..., Served], sqlite: Database
) -> None:
    ledger = Ledger(sqlite)
    ledger.record(_row(request_id="earlier", dollars=0.05))  # alice's day so far
    server = serve(PRICED, ServeSettings(keys=_keys(key_budget="0.05/day")), ledger=ledger)
    refused = _chat(server, ALICE, "dear_trouble")
    assert refused.status_code == 429
    error = error_of(refused)
    assert error["type"] == error["code"] == "insufficient_quota"
    assert "daily budget of key 'alice' ($0.05)" in error["message"]
    assert ALICE not in refused.text
    assert TroubleProvider.calls == []
    assert _chat(server, CAROL, "dear_trouble").status_code == 502  # no budget: called
    assert TroubleProvider.calls == ["ProviderUnavailable"]
    with pytest.raises(openai.RateLimitError) as raised:  # what the SDK makes of it
        server.client(ALICE).chat.completions.create(
            model="pricey", messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.code == "insufficient_quota"
    samples = server.metrics(ALICE)
    assert samples['relay_serve_rejected_total{reason="over_budget"}'] == 2


def test_a_request_whose_prompt_alone_would_pass_the_budget_is_refused(
    serve: Callable[..., Served], sqlite: Database
) -> None:
    # $0.02 a day at $1,000 per million input tokens: 20 tokens of prompt at most.
    server = serve(PRICED, ServeSettings(keys=_keys(key_budget="0.02/day")), ledger=Ledger(sqlite))
    long = _chat(server, ALICE, "dear_trouble", text="x" * 400)
    assert long.status_code == 429
    assert "costs at least $0.1" in error_of(long)["message"]
    assert TroubleProvider.calls == []
    assert _chat(server, ALICE, "pricey", text="hi").status_code == 200


def test_requests_in_flight_hold_their_least_cost_on_the_budget(
    serve: Callable[..., Served], sqlite: Database
) -> None:
    # dear_stall never answers: nothing is spent, so only what the requests in flight
    # hold keeps a burst of them from all reaching the upstream.
    server = serve(PRICED, ServeSettings(keys=_keys(key_budget="0.03/day")), ledger=Ledger(sqlite))
    refusals: list[str] = []

    def ask() -> None:
        payload = {"model": "dear_stall", "messages": [{"role": "user", "content": "hello"}]}
        headers = {"authorization": f"Bearer {ALICE}"}
        with httpx.Client(base_url=server.url, timeout=2) as http:
            try:
                answer = http.post("/v1/chat/completions", headers=headers, json=payload)
            except httpx.ReadTimeout:  # admitted and stalled: the client gives up
                return
        assert answer.status_code == 429, answer.text
        refusals.append(error_of(answer)["message"])

    burst = [threading.Thread(target=ask) for _ in range(20)]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join()
    admitted = len(TroubleProvider.calls)
    assert len(refusals) == 20 - admitted
    found = re.search(r"costs at least \$([0-9.]+)\.", refusals[0])
    assert found is not None, refusals[0]
    # "hello" costs $0.006 at least: five fit in $0.03, and no more went through.
    assert float(found.group(1)) == 0.006
    assert admitted == 5
    assert "after the requests in flight ($0.0300 held)" in refusals[0]
    # The clients gone, the stalled calls are cancelled and give their holds back.
    deadline = time.monotonic() + 10
    while len(TroubleProvider.cancelled) < admitted:
        assert time.monotonic() < deadline, TroubleProvider.cancelled
        time.sleep(0.05)
    time.sleep(0.2)
    assert _chat(server, ALICE, "dear_trouble").status_code == 502  # reached the upstream


def test_a_team_budget_is_shared_by_its_keys(
    serve: Callable[..., Served], sqlite: Database
) -> None:
    settings = ServeSettings(keys=_keys(team="ml"), teams={"ml": (parse_budget("0.01/month"),)})
    server = serve(PRICED, settings, ledger=Ledger(sqlite))
    assert _chat(server, ALICE).status_code == 200  # $0.007 of the team's $0.01
    refused = _chat(server, BOB)
    assert refused.status_code == 429
    assert "monthly budget of team 'ml' ($0.01) has $0.0030 left" in error_of(refused)["message"]
    assert _chat(server, CAROL).status_code == 200  # in no team


def test_a_stream_the_client_cuts_is_recorded_as_estimated(
    serve: Callable[..., Served], sqlite: Database
) -> None:
    server = serve(PRICED, ServeSettings(keys=_keys()), ledger=Ledger(sqlite))
    with server.http() as http:
        body = {
            "model": "dear_stall",
            "stream": True,
            "messages": [{"role": "user", "content": "hello"}],
        }
        headers = {"authorization": f"Bearer {ALICE}", "x-request-id": "cut-1"}
        with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as reply:
            for line in reply.iter_lines():
                if "partial" in line:
                    break  # the client leaves mid-stream
    rows = _wait_rows(sqlite, 1)
    request_id, key, _, alias, target, inputs, outputs, dollars, source, _, usage, cut = rows[0]
    assert (request_id, key, alias, target, usage, cut) == (
        "cut-1",
        "alice",
        "dear_stall",
        "trouble/stall",
        "estimated",
        1,
    )
    assert inputs > 0
    assert outputs == 2
    assert dollars == pytest.approx((inputs + outputs) * 1000 / 1e6)
    assert source == "user_override"


# ---------------------------------------------------------------------------- reports


def _filled(path: Path) -> None:
    database = Database.open(str(path))
    ledger = Ledger(database)
    day = 86_400.0
    start = 1796083200.0  # 2026-12-01
    for n, (key, team, alias, dollars, at) in enumerate(
        [
            ("alice", "ml", "pricey", 1.0, start - day),
            ("alice", "ml", "pricey", 2.0, start + 10),
            ("alice", "ml", "cheap", 0.5, start + day),
            ("bob", "ml", "pricey", 4.0, start + day),
            ("carol", None, "cheap", None, start + day),
        ]
    ):
        ledger.record(
            _row(request_id=f"r{n}", key=key, team=team, alias=alias, dollars=dollars, at=at)
        )
    import asyncio

    asyncio.run(ledger.aclose())
    database.close()


def test_relay_spend_reports_by_key_model_and_day_with_filters(tmp_path: Path) -> None:
    catalog = tmp_path / "relay.yaml"
    catalog.write_text("models: {}\n")
    _filled(tmp_path / "relay-serve.db")
    run = CliRunner().invoke
    table = run(spend, ["-c", str(catalog), "--since", "2026-12-01"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["key", "requests", "input", "tokens", "output", "tokens", "dollars"]
    assert lines[1].split()[:2] == ["bob", "1"]
    assert lines[1].endswith("4.000000")
    assert lines[2].split()[:2] == ["alice", "2"]
    assert lines[2].endswith("2.500000")
    assert lines[4].split()[0] == "total"
    assert lines[4].endswith("6.500000")
    assert "1 requests had no known price" in table.output
    found = json.loads(
        run(spend, ["-c", str(catalog), "--key", "alice", "--by", "model", "--json"]).output
    )
    assert [(g["model"], g["dollars"]) for g in found["groups"]] == [
        ("pricey", 3.0),
        ("cheap", 0.5),
    ]
    by_day = json.loads(
        run(spend, ["-c", str(catalog), "--team", "ml", "--by", "day", "--json"]).output
    )
    assert [(g["day"], g["dollars"]) for g in by_day["groups"]] == [
        ("2026-11-30", 1.0),
        ("2026-12-01", 2.0),
        ("2026-12-02", 4.5),
    ]
    wrong = run(spend, ["-c", str(catalog), "--since", "yesterday"])
    assert wrong.exit_code == 2
    assert "UTC date like 2026-12-01" in wrong.output
    empty = tmp_path / "other" / "relay.yaml"
    empty.parent.mkdir()
    empty.write_text("models: {}\n")
    missing = run(spend, ["-c", str(empty)])
    assert missing.exit_code == 2
    assert "no spend recorded yet" in missing.output
    assert "Traceback" not in missing.output


def test_admin_spend_answers_json_to_admin_keys_only(tmp_path: Path) -> None:
    _filled(tmp_path / "relay-serve.db")
    ops = "sk-relay-ops-0123456789abcdefghijklmnop"
    settings = ServeSettings(
        keys=_keys(),
        admin_keys=(ApiKey.from_key("ops", ops),),
        database=str(tmp_path / "relay-serve.db"),
    )
    app = create_app(hub_for(CATALOG, relay_mock, relay_serve), settings)
    with TestClient(app) as client:
        admin = {"authorization": f"Bearer {ops}"}
        assert client.get("/admin/spend").status_code == 401
        assert (
            client.get("/admin/spend", headers={"authorization": f"Bearer {ALICE}"}).status_code
            == 403
        )
        found = client.get(
            "/admin/spend",
            params={"team": "ml", "since": "2026-12-01", "by": "model"},
            headers=admin,
        ).json()
        assert found["since"] == "2026-12-01T00:00:00+00:00"
        assert [(g["model"], g["dollars"]) for g in found["groups"]] == [
            ("pricey", 6.0),
            ("cheap", 0.5),
        ]
        assert found["total"]["requests"] == 3
        bad = client.get("/admin/spend", params={"by": "colour"}, headers=admin)
        assert bad.status_code == 400
        assert error_of(httpx.Response(400, json=bad.json()))["message"].startswith("by must")
        odd = client.get("/admin/spend", params={"keys": "alice"}, headers=admin)
        assert "unknown parameter 'keys'" in odd.json()["error"]["message"]
