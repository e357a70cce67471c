"""Circuit breakers shared through a real redis-server: hubs with a store each (as in two
processes) see one breaker, probes are limited across them, and a Redis that stops
leaves each hub its own breakers until it is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis

import relay_mock
from relay_core import BreakerSettings, CircuitOpen, Hub, ProviderUnavailable
from relay_core.real_servers import RedisServer, redis_server
from relay_core.testing import hub_for
from relay_serve._redis_breakers import RedisBreakerStore, share_breakers, state_url

CATALOG = """\
providers:
  mock:
    max_retries: 0
    circuit_breaker: {failures: 2, reset_after: %s}
"""
FAIL = {"mock": {"fault": {"kind": "server_error"}}}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture
async def hubs(server: RedisServer) -> AsyncIterator[list[Hub]]:
    """Three hubs over one Redis, each with a store (a client) of its own."""
    made = [hub_for(CATALOG % 0.5, relay_mock) for _ in range(3)]
    stores = [share_breakers(hub, server.url) for hub in made]
    yield made
    for hub, store in zip(made, stores, strict=True):
        assert store is not None
        await store.aclose()
        await hub.aclose()


async def fail(hub: Hub, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(ProviderUnavailable):
            await hub.achat("mock/echo", "x", provider_kwargs=FAIL)


async def test_failures_on_two_hubs_open_the_breaker_on_a_third(hubs: list[Hub]) -> None:
    one, two, three = hubs
    await fail(one)
    await fail(two)  # the second in a row, counted in Redis
    with pytest.raises(CircuitOpen, match="mock/echo") as caught:
        await three.achat("mock/echo", "x")
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 0.5
    assert three.breaker_states() == {"mock/echo": "open"}


async def test_after_reset_after_one_probe_goes_through_and_closes_it(hubs: list[Hub]) -> None:
    one, two, _ = hubs
    await fail(one, 2)
    with pytest.raises(CircuitOpen):
        await two.achat("mock/echo", "x")
    await asyncio.sleep(0.55)
    assert (await two.achat("mock/echo", "probe")).text == "probe"
    assert two.breaker_states() == {"mock/echo": "closed"}
    await asyncio.sleep(0.5)  # what one saw (open) is no longer trusted
    assert (await one.achat("mock/echo", "again")).text == "again"


async def test_half_open_probes_are_limited_across_hubs(server: RedisServer) -> None:
    settings = BreakerSettings(failures=1, reset_after=0.2, half_open_probes=1)
    one, two = RedisBreakerStore(server.url), RedisBreakerStore(server.url)
    await one.record("p/m", settings, failed=True, probe=False)
    assert (await two.acquire("p/m", settings))[0] is False
    await asyncio.sleep(0.25)
    allowed, view = await one.acquire("p/m", settings)
    assert (allowed, view.state) == (True, "half_open")
    assert (await two.acquire("p/m", settings))[0] is False  # the one probe is out
    await one.release("p/m", settings)  # cancelled: its slot is free again
    assert (await two.acquire("p/m", settings))[0] is True
    view = await two.record("p/m", settings, failed=False, probe=True)
    assert (view.state, view.failures) == ("closed", 0)
    await one.aclose()
    await two.aclose()


async def test_a_probe_lost_with_its_process_lapses(server: RedisServer) -> None:
    settings = BreakerSettings(failures=1, reset_after=0.2, half_open_probes=1)
    store = RedisBreakerStore(server.url)
    await store.record("p/m", settings, failed=True, probe=False)
    await asyncio.sleep(0.25)
    assert (await store.acquire("p/m", settings))[0] is True  # then its process dies
    assert (await store.acquire("p/m", settings))[0] is False
    await asyncio.sleep(0.25)
    assert (await store.acquire("p/m", settings))[0] is True
    await store.aclose()


async def test_a_breaker_is_one_expiring_hash_named_for_its_target(
    server: RedisServer, hubs: list[Hub]
) -> None:
    await fail(hubs[0])
    with redis.Redis.from_url(server.url) as client:
        assert client.keys("*") == [b"relay:breaker:mock/echo"]
        assert client.hget("relay:breaker:mock/echo", "f") == b"1"
        assert 0 < client.ttl("relay:breaker:mock/echo") <= 3600


async def test_redis_down_falls_back_to_local_breakers_and_recovers(
    server: RedisServer, hubs: list[Hub], caplog: pytest.LogCaptureFixture
) -> None:
    one, two, _ = hubs
    await fail(one)
    server.stop()
    await asyncio.sleep(0.5)  # past the cached view: the next call asks Redis
    with caplog.at_level(logging.INFO, logger="relay.hub"):
        assert (await two.achat("mock/echo", "still answered")).text == "still answered"
        await fail(two, 2)  # counted by two alone, from closed
        with pytest.raises(CircuitOpen):
            await two.achat("mock/echo", "x")
        assert (await one.achat("mock/echo", "one has its own")).text == "one has its own"
    unavailable = [r for r in caplog.records if "breaker.store_unavailable" in r.getMessage()]
    assert len(unavailable) == 2  # once for each hub, not once per call

    server.start()  # back, and empty: every breaker closed
    await asyncio.sleep(1.0)  # RETRY_AFTER: then the hubs ask Redis again
    with caplog.at_level(logging.INFO, logger="relay.hub"):
        assert (await two.achat("mock/echo", "back")).text == "back"
    assert any("breaker.store_recovered" in r.getMessage() for r in caplog.records)
    await fail(one)
    await fail(two)
    with pytest.raises(CircuitOpen):
        await hubs[2].achat("mock/echo", "x")


def test_state_url_reads_a_redis_url_from_the_serve_settings() -> None:
    def settings(state: Any) -> Any:
        return SimpleNamespace(state=state)

    assert state_url(settings("redis://cache:6379/1")) == "redis://cache:6379/1"
    assert state_url(settings(SimpleNamespace(url="rediss://h/0"))) == "rediss://h/0"
    assert state_url(settings("local")) is None
    assert state_url(settings(None)) is None
    assert state_url(SimpleNamespace()) is None  # a relay-serve without the setting
