"""Keys made at runtime: the key store on SQLite and on a real PostgreSQL server, the
catalog's key fields, expiry, per-key models, `relay keys` and the admin API."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from serve_support import CATALOG, TroublePlugin, TroubleProvider

import relay_mock
import relay_serve
from relay_core.cli import cli
from relay_core.config import parse_catalog
from relay_core.errors import ConfigError
from relay_core.real_servers import PostgresServer, postgres_server
from relay_core.testing import hub_for
from relay_serve import ApiKey, ServeSettings, create_app
from relay_serve._database import Database
from relay_serve._keyfields import FieldError, read_fields
from relay_serve._keystore import KeyExists, KeyNotFound, KeyReader, KeyStore
from relay_serve._settings import Budget, hash_key

CHAT = "/v1/chat/completions"
HELLO = {"model": "fast", "messages": [{"role": "user", "content": "hello"}]}
ADMIN = "sk-relay-admin-0123456789abcdefghijklmnop"
CLIENT = "sk-relay-client-0123456789abcdefghijklmno"


# ---------------------------------------------------------------------------- databases


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


_numbers = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "keys.db")
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"keys_{next(_numbers)}"
    admin = Database.open(server.url)
    admin.execute(f"CREATE DATABASE {name}")
    admin.close()
    return server.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def stores(database_url: str) -> Iterator[Callable[..., KeyStore]]:
    """``stores()``: a key store on its own connection to the test's database."""
    opened: list[KeyStore] = []

    def open_one(**options: Any) -> KeyStore:
        opened.append(KeyStore(Database.open(database_url), **options))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


def _digest(secret: str) -> bytes:
    return bytes.fromhex(hash_key(secret).removeprefix("sha256:"))


def test_a_key_is_made_found_listed_and_revoked(stores: Callable[..., KeyStore]) -> None:
    store = stores()
    fields = read_fields(
        {"team": "ml", "models": ["fast"], "requests_per_minute": 5, "budget": "50/month"}
    )
    made = store.create("ci", fields)
    assert made.secret.startswith("sk-relay-")
    assert made.secret not in repr(made)
    key = store.find(_digest(made.secret))
    assert key is not None
    assert (key.name, key.team, key.requests_per_minute) == ("ci", "ml", 5)
    assert key.limits.models == ("fast",)
    assert key.limits.budgets == (Budget(50.0, "month"),)
    with pytest.raises(KeyExists, match="'ci'"):
        store.create("ci")
    [record] = store.list()
    assert record.name == "ci"
    assert record.id == made.record.id

    assert store.revoke("ci") == 1
    assert store.find(_digest(made.secret)) is None
    assert store.list() == []
    assert [r.name for r in store.list(revoked=True)] == ["ci"]
    with pytest.raises(KeyNotFound):
        store.revoke("ci")
    store.create("ci")  # a revoked key's name may be used again


def test_rotation_revokes_the_old_secret_after_its_grace(
    stores: Callable[..., KeyStore],
) -> None:
    now = [1_000_000.0]
    store = stores(clock=lambda: now[0])
    old = store.create("ci", read_fields({"models": ["fast"]}))
    new = store.rotate("ci", grace=3600)
    assert new.secret != old.secret
    assert new.record.replaces == old.record.id
    assert store.find(_digest(new.secret)).limits.models == ("fast",)  # type: ignore[union-attr]
    assert store.find(_digest(old.secret)) is not None  # within its grace
    now[0] += 3601
    assert store.find(_digest(old.secret)) is None
    assert store.find(_digest(new.secret)) is not None
    newer = store.rotate("ci")  # no grace: the old secret stops at once
    assert store.find(_digest(new.secret)) is None
    assert store.find(_digest(newer.secret)) is not None
    with pytest.raises(KeyNotFound):
        store.rotate("nobody")


def test_the_database_holds_hashes_never_secrets(
    stores: Callable[..., KeyStore], database_url: str
) -> None:
    store = stores()
    secrets = [store.create("ci").secret, store.rotate("ci").secret]
    rows = store.database.execute("SELECT * FROM relay_serve_keys")
    dump = repr(rows) + json.dumps([r.as_json() for r in store.list(revoked=True)])
    for secret in secrets:
        assert secret not in dump
        assert secret.removeprefix("sk-relay-")[:16] not in dump
        assert hash_key(secret).removeprefix("sha256:") in repr(rows)  # only the hash
        assert hash_key(secret).removeprefix("sha256:") not in json.dumps(
            [r.as_json() for r in store.list(revoked=True)]
        )
    if store.database.kind == "sqlite":
        store.close()
        raw = Path(database_url).read_bytes()
        raw += (
            Path(database_url + "-wal").read_bytes()
            if Path(database_url + "-wal").exists()
            else b""
        )
        assert not any(secret.encode() in raw for secret in secrets)


def test_a_second_store_on_the_same_database_sees_the_first_ones_keys(
    stores: Callable[..., KeyStore],
) -> None:
    made = stores().create("ci")
    other = stores()  # the tables exist: opening again neither fails nor resets them
    assert other.find(_digest(made.secret)) is not None


def test_a_store_written_by_a_newer_relay_serve_is_refused(
    stores: Callable[..., KeyStore],
) -> None:
    store = stores()
    store.database.execute("UPDATE relay_serve_schema SET version = 99 WHERE part = 'keys'")
    with pytest.raises(ConfigError, match="newer relay-serve"):
        stores()


def test_the_reader_forgets_within_half_a_second_and_never_remembers_unknown_keys(
    stores: Callable[..., KeyStore],
) -> None:
    store = stores()
    now = [0.0]
    reader = KeyReader(store, clock=lambda: now[0], size=2)
    secret = "sk-relay-not-made-yet-0123456789abcdef"
    assert asyncio.run(reader.find(_digest(secret))) is None
    made = store.create("ci")
    assert asyncio.run(reader.find(_digest(made.secret))) is not None  # no negative cache
    store.revoke("ci")
    now[0] = 0.4
    assert asyncio.run(reader.find(_digest(made.secret))) is not None  # kept for 0.5 s
    now[0] = 0.5
    assert asyncio.run(reader.find(_digest(made.secret))) is None
    for name in ("a", "b", "c", "d"):
        asyncio.run(reader.find(_digest(store.create(name).secret)))
    assert len(reader._recent) <= 2  # bounded, however many keys are presented


def test_requests_presenting_one_key_share_its_lookup(
    stores: Callable[..., KeyStore],
) -> None:
    store = stores()
    made = store.create("ci")
    lookups: list[bytes] = []
    real = store.afind

    async def counted(digest: bytes) -> ApiKey | None:
        lookups.append(digest)
        await asyncio.sleep(0.05)
        return await real(digest)

    store.afind = counted  # type: ignore[method-assign]
    reader = KeyReader(store)

    async def scenario() -> None:
        first = asyncio.ensure_future(reader.find(_digest(made.secret)))
        await asyncio.sleep(0)
        others = [asyncio.ensure_future(reader.find(_digest(made.secret))) for _ in range(5)]
        first.cancel()  # the client that asked first went away: the others still learn
        keys = await asyncio.gather(*others)
        assert [key.name for key in keys if key] == ["ci"] * 5

    asyncio.run(scenario())
    assert len(lookups) == 1


# ---------------------------------------------------------------------------- servers


def _settings(database: str, **options: Any) -> ServeSettings:
    return ServeSettings(
        database=database,
        admin_keys=(ApiKey.from_key("ops", ADMIN),),
        keys=(ApiKey.from_key("static", CLIENT),),
        **options,
    )


@pytest.fixture
def apps(database_url: str) -> Iterator[Callable[[], httpx.AsyncClient]]:
    """``apps()``: a client of a new server on its own connection to the database (a
    replica)."""
    made: list[Any] = []

    def start() -> httpx.AsyncClient:
        hub = hub_for(CATALOG, relay_mock, relay_serve, TroublePlugin())
        app = create_app(hub, _settings(database_url))
        made.append(app)
        transport = httpx.ASGITransport(app=app)
        return httpx.AsyncClient(transport=transport, base_url="http://localhost")

    TroubleProvider.calls.clear()
    yield start
    for app in made:
        app.state.relay.keystore.close()


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def _make(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    answer = await http.post("/admin/keys", json=fields, headers=_bearer(ADMIN))
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_key_made_on_one_replica_works_on_another_at_once_and_stops_within_a_second(
    apps: Callable[[], httpx.AsyncClient],
) -> None:
    async def scenario() -> None:
        one, two = apps(), apps()
        made = await _make(one, name="app")
        assert (await two.post(CHAT, json=HELLO, headers=_bearer(made["key"]))).status_code == 200
        answer = await one.post("/admin/keys/app/revoke", headers=_bearer(ADMIN))
        assert answer.json() == {"name": "app", "revoked": 1}
        revoked_at = time.monotonic()
        while (await two.post(CHAT, json=HELLO, headers=_bearer(made["key"]))).status_code == 200:
            await asyncio.sleep(0.05)
        assert time.monotonic() - revoked_at < 1.0
        refused = await two.post(CHAT, json=HELLO, headers=_bearer(made["key"]))
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"

    asyncio.run(scenario())


def test_rotation_over_the_admin_api(apps: Callable[[], httpx.AsyncClient]) -> None:
    async def scenario() -> None:
        http = apps()
        old = await _make(http, name="app", models=["fast"])
        answer = await http.post("/admin/keys/app/rotate", headers=_bearer(ADMIN))
        assert answer.status_code == 200
        new = answer.json()
        assert new["replaces"] == old["id"]
        assert new["models"] == ["fast"]
        await asyncio.sleep(0.55)  # past what the server keeps of the old key
        assert (await http.post(CHAT, json=HELLO, headers=_bearer(old["key"]))).status_code == 401
        assert (await http.post(CHAT, json=HELLO, headers=_bearer(new["key"]))).status_code == 200
        graced = await http.post(
            "/admin/keys/app/rotate", json={"grace": "1h"}, headers=_bearer(ADMIN)
        )
        assert (await http.post(CHAT, json=HELLO, headers=_bearer(new["key"]))).status_code == 200
        listed = (await http.get("/admin/keys", headers=_bearer(ADMIN))).json()["data"]
        assert [k["id"] for k in listed] == [new["id"], graced.json()["id"]]
        assert new["key"] not in json.dumps(listed)
        assert graced.json()["key"] not in json.dumps(listed)

    asyncio.run(scenario())


def test_an_expired_key_is_told_so(apps: Callable[[], httpx.AsyncClient]) -> None:
    async def scenario() -> None:
        http = apps()
        made = await _make(http, name="old", expires="2020-01-01")
        answer = await http.post(CHAT, json=HELLO, headers=_bearer(made["key"]))
        assert answer.status_code == 401
        error = answer.json()["error"]
        assert error["code"] == "invalid_api_key"
        assert "expired" in error["message"]
        assert made["key"] not in answer.text
        live = await _make(http, name="new", expires="2999-01-01T00:00:00Z")
        assert (await http.post(CHAT, json=HELLO, headers=_bearer(live["key"]))).status_code == 200

    asyncio.run(scenario())


def test_a_key_calls_only_its_models_and_lists_only_them(
    apps: Callable[[], httpx.AsyncClient],
) -> None:
    async def scenario() -> None:
        http = apps()
        made = await _make(http, name="narrow", models=["fast", "trouble/*"])
        headers = _bearer(made["key"])
        assert (await http.post(CHAT, json=HELLO, headers=headers)).status_code == 200
        for model in ("thinker", "mock/think"):
            answer = await http.post(CHAT, json={**HELLO, "model": model}, headers=headers)
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "model_not_found"
            unknown = await http.post(CHAT, json={**HELLO, "model": "nowhere"}, headers=headers)
            # Refused exactly like a model that does not exist: nothing to learn.
            assert answer.json()["error"]["message"] == unknown.json()["error"]["message"].replace(
                "nowhere", model
            )
        # The alias `stall` is trouble/stall: allowed through its target; its upstream
        # is called. Nothing was called for the refused ones.
        assert TroubleProvider.calls == []
        listed = (await http.get("/v1/models", headers=headers)).json()["data"]
        assert [m["id"] for m in listed] == ["fast", "stall"]
        assert (await http.get("/v1/models/fast", headers=headers)).status_code == 200
        assert (await http.get("/v1/models/thinker", headers=headers)).status_code == 404
        elsewhere = await http.post(
            "/v1/responses", json={"model": "thinker", "input": "hello"}, headers=headers
        )
        assert elsewhere.json()["error"]["code"] == "model_not_found"
        answered = await http.post(
            "/v1/responses", json={"model": "fast", "input": "hello"}, headers=headers
        )
        assert answered.status_code == 200, answered.text
        everything = (await http.get("/v1/models", headers=_bearer(CLIENT))).json()["data"]
        assert len(everything) == len(parse_catalog(CATALOG).aliases())

    asyncio.run(scenario())


def test_a_store_keys_rate_limit_holds(apps: Callable[[], httpx.AsyncClient]) -> None:
    async def scenario() -> None:
        http = apps()
        made = await _make(http, name="slow", requests_per_minute=1)
        assert (await http.post(CHAT, json=HELLO, headers=_bearer(made["key"]))).status_code == 200
        again = await http.post(CHAT, json=HELLO, headers=_bearer(made["key"]))
        assert again.status_code == 429
        assert again.json()["error"]["code"] == "rate_limit_exceeded"

    asyncio.run(scenario())


def test_the_admin_api_is_for_admin_keys(apps: Callable[[], httpx.AsyncClient]) -> None:
    async def scenario() -> None:
        http = apps()
        made = await _make(http, name="app")
        for key, status in ((None, 401), ("sk-relay-wrong-0123456789", 401), (CLIENT, 403)):
            headers = _bearer(key) if key else {}
            for method, path in (("GET", "/admin/keys"), ("POST", "/admin/keys/app/revoke")):
                answer = await http.request(method, path, headers=headers)
                assert answer.status_code == status, (key, path)
                assert set(answer.json()["error"]) >= {"message", "type", "code"}
        answer = await http.get("/admin/keys", headers=_bearer(made["key"]))
        assert answer.status_code == 403  # a store key is a client key too
        assert (await http.post(CHAT, json=HELLO, headers=_bearer(made["key"]))).status_code == 200

    asyncio.run(scenario())


def test_the_admin_api_refuses_bad_bodies_by_field(apps: Callable[[], httpx.AsyncClient]) -> None:
    async def scenario() -> None:
        http = apps()
        admin = _bearer(ADMIN)
        for body, param in (
            ({"name": "a", "budget": "lots"}, "budget"),
            ({"name": "a", "expires": "someday"}, "expires"),
            ({"name": "a", "colour": "red"}, "colour"),
            ({"name": "has space"}, "name"),
            ({"name": "a", "requests_per_minute": 0}, "requests_per_minute"),
        ):
            answer = await http.post("/admin/keys", json=body, headers=admin)
            assert answer.status_code == 400, body
            assert answer.json()["error"]["param"] == param
        await _make(http, name="a")
        answer = await http.post("/admin/keys", json={"name": "a"}, headers=admin)
        assert answer.status_code == 409
        form = await http.post(
            "/admin/keys",
            content=b"name=a",
            headers={**admin, "content-type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415
        huge = await http.post("/admin/keys", json={"name": "a" * 100_000}, headers=admin)
        assert huge.status_code == 413
        missing = await http.post("/admin/keys/nobody/revoke", headers=admin)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "key_not_found"

    asyncio.run(scenario())


def test_without_admin_keys_there_is_no_admin_api(tmp_path: Path) -> None:
    async def scenario() -> None:
        hub = hub_for(CATALOG, relay_mock, relay_serve)
        settings = ServeSettings(database=str(tmp_path / "k.db"))
        app = create_app(hub, settings)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as http:
            answer = await http.get("/admin/keys", headers=_bearer(ADMIN))
            assert answer.status_code == 404
            # A key store makes the server keyed, even before a key is in it.
            assert (await http.post(CHAT, json=HELLO)).status_code == 401
        app.state.relay.keystore.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------------------- catalog


def _serve_settings(tmp_path: Path, text: str) -> ServeSettings:
    path = tmp_path / "relay.yaml"
    path.write_text(text)
    from relay_core.config import load_catalog

    return ServeSettings.from_catalog(load_catalog(path))


HASH = "sha256:" + "ab" * 32


def test_catalog_keys_take_team_models_limits_budgets_and_expiry(tmp_path: Path) -> None:
    settings = _serve_settings(
        tmp_path,
        "plugins:\n  serve:\n    keys:\n"
        f"      - {{name: app, hash: '{HASH}', team: ml, models: [fast, 'openai/*'],\n"
        "         tokens_per_minute: 1000, max_concurrent: 4, budget: [50/month, 5/day],\n"
        "         expires: 2027-01-01}\n"
        f"      - {{name: ci, hash: 'sha256:{'cd' * 32}', budget: 100}}\n",
    )
    app, ci = settings.keys
    assert app.team == "ml"
    assert app.limits.models == ("fast", "openai/*")
    assert (app.limits.tokens_per_minute, app.limits.max_concurrent) == (1000, 4)
    assert app.limits.budgets == (Budget(50.0, "month"), Budget(5.0, "day"))
    assert app.expires_at == 1798761600.0  # 2027-01-01T00:00:00Z
    assert ci.limits.budgets == (Budget(100.0, "total"),)
    # Budgets are kept against the spend ledger: the default database, beside the catalog.
    assert settings.database == str(tmp_path / "relay-serve.db")


@pytest.mark.parametrize(
    ("entry", "line", "words"),
    [
        ("budget: 50/week", 5, "budget"),
        ("budget: [5/day, 6/day]", 5, "two budgets per day"),
        ("expires: 30d", 5, "expires"),
        ("expires: tomorrow", 5, "expires"),
        ("models: [1]", 5, "models"),
        ("max_concurrent: 0", 5, "max_concurrent"),
        ("team: 'a b'", 5, "team"),
        ("colour: red", 5, "unknown field 'colour'"),
    ],
)
def test_catalog_key_mistakes_name_their_line(
    tmp_path: Path, entry: str, line: int, words: str
) -> None:
    text = (
        "plugins:\n  serve:\n    keys:\n      - name: app\n"
        f"        {entry}\n        hash: '{HASH}'\n"
    )
    with pytest.raises(ConfigError) as caught:
        _serve_settings(tmp_path, text)
    assert f"relay.yaml:{line}:" in str(caught.value)
    assert words in str(caught.value)


def test_the_database_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _serve_settings(tmp_path, "plugins:\n  serve:\n    database: keys/k.db\n")
    assert settings.database == str(tmp_path / "keys" / "k.db")  # beside the catalog
    assert not settings.open
    with pytest.raises(ConfigError) as caught:
        _serve_settings(
            tmp_path, "plugins:\n  serve:\n    database: postgresql://relay:Hunter2pass@db/relay\n"
        )
    assert "Hunter2pass" not in str(caught.value)
    assert "relay.yaml:3:" in str(caught.value)
    assert "$env" in str(caught.value)
    settings = _serve_settings(tmp_path, "plugins:\n  serve:\n    database: $env.RELAY_DB\n")
    assert settings.database == "$env.RELAY_DB"
    in_code = ServeSettings(database="postgresql://relay:Hunter2pass@db/relay")
    assert "Hunter2pass" not in repr(in_code)
    # admin keys need somewhere to keep keys: the default file beside the catalog.
    settings = _serve_settings(
        tmp_path, f"plugins:\n  serve:\n    admin_keys: [{{name: ops, hash: '{HASH}'}}]\n"
    )
    assert settings.database == str(tmp_path / "relay-serve.db")
    with pytest.raises(ConfigError, match="unknown field 'team'"):
        _serve_settings(
            tmp_path,
            f"plugins:\n  serve:\n    admin_keys: [{{name: ops, hash: '{HASH}', team: x}}]\n",
        )


def test_an_env_database_is_read_when_the_store_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay_serve._keystore import open_store

    with pytest.raises(ConfigError, match="RELAY_TEST_DB is not set"):
        open_store("$env.RELAY_TEST_DB")
    monkeypatch.setenv("RELAY_TEST_DB", str(tmp_path / "env.db"))
    open_store("$env.RELAY_TEST_DB").close()
    assert (tmp_path / "env.db").exists()


def test_key_fields_read_relative_expiry_and_refuse_nonsense() -> None:
    now = 1_000_000.0
    assert read_fields({"expires": "30d"}, now=now).expires_at == now + 30 * 86400
    assert read_fields({"models": "fast, openai/*"}).limits.models == ("fast", "openai/*")
    with pytest.raises(FieldError) as caught:
        read_fields({"budget": "-5/day"})
    assert caught.value.field == "budget"


# ---------------------------------------------------------------------------- command


@pytest.fixture
def relay_keys(tmp_path: Path) -> Callable[..., Any]:
    relay_serve.relay_register_commands(cli)
    catalog = tmp_path / "relay.yaml"
    catalog.write_text("models:\n  fast: mock/echo\n")

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["keys", *args, "-c", str(catalog)])

    return run


def test_relay_keys_makes_lists_rotates_and_revokes(
    relay_keys: Callable[..., Any], tmp_path: Path
) -> None:
    made = relay_keys(
        "create", "ci", "--team", "ml", "--models", "fast,openai/*", "--rpm", "5",
        "--budget", "50/month", "--budget", "5/day", "--expires", "2027-01-01",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    secret = re.search(r"^key: (sk-relay-\S+)$", made.output, re.M)
    assert secret
    assert made.output.count(secret[1]) == 1  # shown once
    store = KeyStore.open(str(tmp_path / "relay-serve.db"))  # the default, beside the catalog
    key = store.find(_digest(secret[1]))
    store.close()
    assert key is not None
    assert key.limits.budgets == (Budget(50.0, "month"), Budget(5.0, "day"))

    listed = relay_keys("list")
    assert listed.exit_code == 0
    assert "ci" in listed.output
    assert "fast,openai/*" in listed.output
    assert secret[1] not in listed.output
    assert hash_key(secret[1])[7:19] not in listed.output
    [entry] = json.loads(relay_keys("list", "--json").output)
    assert (entry["name"], entry["team"], entry["expires_at"]) == (
        "ci",
        "ml",
        "2027-01-01T00:00:00Z",
    )

    rotated = relay_keys("rotate", "ci", "--grace", "1h")
    assert rotated.exit_code == 0
    assert re.search(r"^key: sk-relay-", rotated.output, re.M)
    assert relay_keys("revoke", "ci").exit_code == 0
    assert json.loads(relay_keys("list", "--json").output) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("create", "ci", "--budget", "lots"), "--budget"),
        (("create", "ci", "--expires", "someday"), "--expires"),
        (("create", "bad name"), "name must be"),
        (("revoke", "nobody"), "no live key is named 'nobody'"),
        (("rotate", "nobody"), "no live key is named 'nobody'"),
        (("rotate", "nobody", "--grace", "soon"), "--grace"),
    ],
)
def test_relay_keys_mistakes_are_one_error_line(
    relay_keys: Callable[..., Any], args: tuple[str, ...], words: str
) -> None:
    result = relay_keys(*args)
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert words in result.output
    assert "Traceback" not in result.output


def test_relay_keys_refuses_a_duplicate_name(relay_keys: Callable[..., Any]) -> None:
    assert relay_keys("create", "ci").exit_code == 0
    again = relay_keys("create", "ci")
    assert again.exit_code == 2
    assert "error: a key named 'ci' exists" in again.output


def test_relay_validate_knows_the_key_settings(tmp_path: Path) -> None:
    relay_serve.relay_register_commands(cli)
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(
        "plugins:\n  serve:\n    database: $env.RELAY_DB\n"
        f"    admin_keys: [{{name: ops, hash: '{HASH}'}}]\n"
        f"    keys: [{{name: ci, hash: 'sha256:{'cd' * 32}', budget: 5/day, team: ml}}]\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(catalog)])
    assert result.exit_code == 0, result.output
    catalog.write_text(
        f"plugins:\n  serve:\n    keys: [{{name: ci, hash: '{HASH}', budget: 5/year}}]\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(catalog)])
    assert result.exit_code == 2
    assert f"{catalog}:3:" in result.output


def test_no_secret_reaches_a_log(
    apps: Callable[[], httpx.AsyncClient],
    relay_keys: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    import logging

    request_finalizer = request.addfinalizer
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="relay")
    # Directly on relay's logger too: other tests may have stopped it propagating.
    relay_logger = logging.getLogger("relay")
    relay_logger.addHandler(caplog.handler)
    request_finalizer(lambda: relay_logger.removeHandler(caplog.handler))
    secrets: list[str] = []

    async def scenario() -> None:
        http = apps()
        made = await _make(http, name="app")
        secrets.append(made["key"])
        await http.post(CHAT, json=HELLO, headers=_bearer(made["key"]))
        rotated = await http.post("/admin/keys/app/rotate", headers=_bearer(ADMIN))
        secrets.append(rotated.json()["key"])
        await http.post("/admin/keys/app/revoke", headers=_bearer(ADMIN))
        await http.post(CHAT, json=HELLO, headers=_bearer(made["key"]))

    asyncio.run(scenario())
    made = relay_keys("create", "cli")
    secrets.append(made.output.split("key: ", 1)[1].split()[0])
    assert "serve.admin" in caplog.text
    for secret in secrets:
        assert secret not in caplog.text
        assert hash_key(secret)[7:] not in caplog.text


def test_a_postgresql_outage_refuses_store_keys_with_503_until_it_ends() -> None:
    async def scenario(server: PostgresServer) -> None:
        hub = hub_for(CATALOG, relay_mock, relay_serve)
        app = create_app(hub, _settings(server.url))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            made = await _make(http, name="app")
            await asyncio.sleep(0.55)  # nothing kept from the check above
            server.stop()
            answer = await http.post(CHAT, json=HELLO, headers=_bearer(made["key"]))
            assert answer.status_code == 503
            assert answer.json()["error"]["type"] == "server_error"
            assert (await http.post(CHAT, json=HELLO, headers=_bearer(CLIENT))).status_code == 200
            health = await http.get("/health", headers=_bearer(made["key"]))
            assert health.status_code == 503
            admin = await http.get("/admin/keys", headers=_bearer(ADMIN))
            assert admin.status_code == 500
            assert admin.json()["error"]["message"] == (
                "The admin request failed; see the server's log."
            )
            server.start()
            # The lost connection is replaced at the next lookup.
            answer = await http.post(CHAT, json=HELLO, headers=_bearer(made["key"]))
            assert answer.status_code == 200
        app.state.relay.keystore.close()

    with postgres_server() as server:
        asyncio.run(scenario(server))


def test_a_database_url_from_an_unset_variable_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELAY_TEST_KEYS_DB", raising=False)
    with pytest.raises(ConfigError) as caught:
        Database.open("$env.RELAY_TEST_KEYS_DB")
    assert str(caught.value) == (
        "plugins.serve.database is $env.RELAY_TEST_KEYS_DB, but the environment variable "
        "RELAY_TEST_KEYS_DB is not set"
    )
    monkeypatch.setenv("RELAY_TEST_KEYS_DB", str(tmp_path / "keys.db"))
    opened = Database.open("$env.RELAY_TEST_KEYS_DB")
    try:
        assert opened.kind == "sqlite"
        assert (tmp_path / "keys.db").exists()
    finally:
        opened.close()
