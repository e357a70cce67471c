"""``backend: redis`` against a real redis-server: answers shared between hubs (as between
processes), Redis's expiry, the largest answer kept, an outage that costs no call, and
its settings."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterator

import pytest
import redis
from cache_support import Calls

from relay_cache import _check
from relay_cache._redis import RedisCache
from relay_cache._settings import Settings, open_store
from relay_core import ConfigError, Hub, PluginNotInstalled
from relay_core.config import parse_catalog
from relay_core.real_servers import RedisServer, redis_server

MakeHub = Callable[..., Hub]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


def catalog(url: str, **settings: object) -> str:
    extra = "".join(f", {key}: {value}" for key, value in settings.items())
    return f"plugins:\n  cache: {{backend: redis, url: '{url}'{extra}}}\n"


def keys(url: str) -> list[str]:
    with redis.Redis.from_url(url) as client:
        return sorted(key.decode() for key in client.keys("*"))


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "relay.cache" and event in r.getMessage()]


async def test_two_hubs_share_an_answer_under_a_hashed_key(
    server: RedisServer, make_hub: MakeHub, calls: Calls
) -> None:
    one, two = make_hub(catalog(server.url)), make_hub(catalog(server.url))
    first = await one.achat("mock/echo", "the secret plan", cache=True)
    second = await two.achat("mock/echo", "the secret plan", cache=True)

    assert calls.chat == 1
    assert second.metadata["cached"] is True
    assert second.text == first.text == "the secret plan"
    (key,) = keys(server.url)
    # The prefix, then a SHA-256: no request text in a key name.
    assert key.startswith("relay:cache:")
    assert len(key.removeprefix("relay:cache:")) == 64
    assert "secret" not in key
    await one.aclose()
    await two.aclose()


def test_the_sync_api_shares_it_too(server: RedisServer, make_hub: MakeHub, calls: Calls) -> None:
    one, two = make_hub(catalog(server.url)), make_hub(catalog(server.url))
    assert one.chat("mock/echo", "hello", cache=True).text == "hello"
    assert two.chat("mock/echo", "hello", cache=True).metadata["cached"] is True
    assert calls.chat == 1


async def test_an_answer_expires_after_ttl_by_redis(
    server: RedisServer, make_hub: MakeHub, calls: Calls
) -> None:
    hub = make_hub(catalog(server.url, ttl=0.3))
    await hub.achat("mock/echo", "fresh", cache=True)
    assert (await hub.achat("mock/echo", "fresh", cache=True)).metadata["cached"] is True
    with redis.Redis.from_url(server.url) as client:
        (key,) = client.keys("*")
        assert 0 < client.pttl(key) <= 300
    await asyncio.sleep(0.4)
    assert "cached" not in (await hub.achat("mock/echo", "fresh", cache=True)).metadata
    assert calls.chat == 2
    await hub.aclose()


async def test_ttl_null_keeps_answers_until_redis_evicts_them(server: RedisServer) -> None:
    store = open_store({"backend": "redis", "url": server.url, "ttl": None})
    from relay_core import Response

    await store.put("k", Response(content="kept"))
    with redis.Redis.from_url(server.url) as client:
        (key,) = client.keys("*")
        assert client.pttl(key) == -1  # no expiry
    await store.aclose()


async def test_an_answer_over_max_bytes_is_not_kept(
    server: RedisServer, make_hub: MakeHub, calls: Calls
) -> None:
    hub = make_hub(catalog(server.url, max_bytes="1 KiB"))
    await hub.achat("mock/echo", "short", cache=True)
    await hub.achat("mock/echo", "long " * 300, cache=True)
    await hub.achat("mock/echo", "long " * 300, cache=True)
    assert len(keys(server.url)) == 1
    assert calls.chat == 3
    await hub.aclose()


async def test_redis_down_costs_no_call_and_logs_once_per_outage(
    server: RedisServer, make_hub: MakeHub, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    hub = make_hub(catalog(server.url))
    await hub.achat("mock/echo", "before", cache=True)
    server.stop()
    with caplog.at_level(logging.INFO, logger="relay.cache"):
        for n in range(5):
            answer = await hub.achat("mock/echo", f"during {n}", cache=True)
            assert answer.text == f"during {n}"
        assert (await hub.achat("mock/echo", "before", cache=True)).text == "before"
        assert len(records(caplog, "cache.unavailable")) == 1
        store = hub.response_cache
        assert isinstance(store, RedisCache)
        assert not store.available

        server.start()  # back, and empty
        store._down_until = 0.0  # the next call tries at once, not after RETRY_AFTER
        await hub.achat("mock/echo", "after", cache=True)
        assert (await hub.achat("mock/echo", "after", cache=True)).metadata["cached"] is True
        assert store.available
        assert len(records(caplog, "cache.recovered")) == 1
        assert len(records(caplog, "cache.unavailable")) == 1
    assert calls.chat == 8
    # Redis's password would be in the URL, never in a log line.
    assert all("password" not in r.getMessage() for r in caplog.records)
    await hub.aclose()


async def test_while_redis_is_down_calls_do_not_wait_for_it(server: RedisServer) -> None:
    store = RedisCache(server.url, ttl=None, max_bytes=1024)
    server.stop()
    assert await store.get("a") is None  # the failure that starts the outage
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(100):
        assert await store.get("a") is None
    assert loop.time() - started < 0.05  # not one connect attempt each
    await store.aclose()


def test_a_log_names_redis_without_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RedisCache("redis://user:hunter2@127.0.0.1:1/0", ttl=None, max_bytes=1024)
    with caplog.at_level(logging.ERROR, logger="relay.cache"):
        assert asyncio.run(store.get("k")) is None
    (record,) = records(caplog, "cache.unavailable")
    assert "hunter2" not in record.getMessage()
    assert "@127.0.0.1:1/0" in record.getMessage()


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        ("{backend: redis}", 2, "plugins.cache.url must be the URL of a Redis server"),
        (
            "\n    backend: redis\n    url: 'http://user:pw@host'",
            4,
            "plugins.cache.url must be the URL of a Redis server",
        ),
        (
            "\n    backend: redis\n    url: redis://h\n    max_entries: 5",
            5,
            "plugins.cache.max_entries does not apply to backend: redis; Redis bounds",
        ),
        ("\n    backend: disk\n    url: redis://h", 4, "plugins.cache.url applies only to"),
        ("\n    prefix: 'x:'", 3, "plugins.cache.prefix applies only to backend: redis"),
    ],
)
def test_bad_redis_settings_name_file_and_line(section: str, line: int, message: str) -> None:
    parsed = parse_catalog(f"plugins:\n  cache: {section}\n", path="relay.yaml")
    with pytest.raises(ConfigError) as caught:
        _check(parsed)
    assert str(caught.value).startswith(f"relay.yaml:{line}:")
    assert caught.value.reason.startswith(message)
    assert "pw" not in str(caught.value)


def test_redis_settings_and_their_defaults() -> None:
    settings = Settings.parse({"backend": "redis", "url": "rediss://cache:6380/2"})
    assert (settings.url, settings.prefix, settings.max_bytes) == (
        "rediss://cache:6380/2",
        "relay:cache:",
        4 * 1024 * 1024,
    )
    assert Settings.parse({"backend": "redis", "url": "unix:///run/redis.sock"}).url


def test_a_missing_redis_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(PluginNotInstalled, match=r"pip install 'relay-cache\[redis\]'"):
        open_store({"backend": "redis", "url": "redis://127.0.0.1:6379/0"})


async def test_an_unreadable_answer_is_a_miss_and_is_removed(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisCache(server.url, ttl=None, max_bytes=1024)
    with redis.Redis.from_url(server.url) as client:
        client.set(store.key("k"), b"{not json")
    with caplog.at_level(logging.WARNING, logger="relay.cache"):
        assert await store.get("k") is None
    assert len(records(caplog, "cache.unreadable")) == 1
    assert keys(server.url) == []
    assert store.available
    await store.aclose()
