"""The shared state's contract, held by both stores: this process's own (LocalState) and
Redis (RedisState, against a real ``redis-server`` the tests start). Every operation is
atomic: under many concurrent callers exactly ``limit`` units or places are granted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from relay_core.real_servers import RedisServer, redis_server
from relay_serve._redis_state import RedisState, where
from relay_serve._state import LocalState, SharedState, StateUnavailable


@pytest.fixture(scope="module")
def real_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(params=["local", "redis"])
async def state(request: pytest.FixtureRequest, real_redis: RedisServer) -> AsyncIterator[Any]:
    if request.param == "local":
        store: SharedState = LocalState()
    else:
        with redis.Redis.from_url(real_redis.url) as client:
            client.flushall()
        store = RedisState(real_redis.url)
    yield store
    await store.aclose()


async def test_exactly_the_limit_is_taken_by_many_at_once(state: SharedState) -> None:
    granted = await asyncio.gather(*(state.take("rpm:key:ci", 1, 25, 60) for _ in range(200)))
    assert sum(wait == 0 for wait in granted) == 25
    refused = [wait for wait in granted if wait]
    assert all(0 < wait <= 60 for wait in refused)
    assert await state.used("rpm:key:ci", 60) == 25


async def test_amounts_count_against_the_limit_and_add_counts_past_it(state: SharedState) -> None:
    assert await state.take("tpm:key:ci", 70, 100, 60) == 0
    assert await state.take("tpm:key:ci", 40, 100, 60) > 0  # would pass 100: nothing counted
    assert await state.used("tpm:key:ci", 60) == 70
    await state.add("tpm:key:ci", 500, 60)
    assert await state.used("tpm:key:ci", 60) == 570
    assert await state.used("tpm:key:other", 60) == 0


async def test_a_new_window_starts_from_zero(state: SharedState) -> None:
    # A window of 0.2 s: wait for the start of one, so the test does not straddle two.
    await asyncio.sleep(0.2 - time.time() % 0.2 + 0.01)
    assert await state.take("rpm:key:w", 1, 1, 0.2) == 0
    wait = await state.take("rpm:key:w", 1, 1, 0.2)
    assert 0 < wait <= 0.2
    await asyncio.sleep(wait + 0.02)
    assert await state.take("rpm:key:w", 1, 1, 0.2) == 0


async def test_exactly_the_limit_of_leases_is_granted_to_many_at_once(state: SharedState) -> None:
    holders = [f"request-{i}" for i in range(100)]
    granted = await asyncio.gather(*(state.lease("c:key:ci", 5, h, 10) for h in holders))
    assert sum(granted) == 5
    assert await state.held("c:key:ci") == 5
    winner = holders[granted.index(True)]
    assert await state.lease("c:key:ci", 5, winner, 10)  # a holder may take its own again
    await state.release("c:key:ci", winner)
    await state.release("c:key:ci", "never-held")
    assert await state.held("c:key:ci") == 4
    assert await state.lease("c:key:ci", 5, "late", 10)


async def test_leases_lapse_unless_renewed(state: SharedState) -> None:
    assert await state.lease("c:key:ci", 2, "dies", 0.3)
    assert await state.lease("c:key:ci", 2, "lives", 0.3)
    assert not await state.lease("c:key:ci", 2, "third", 0.3)
    for _ in range(3):
        await asyncio.sleep(0.15)
        await state.renew("c:key:ci", ["lives", "never-held"], 0.3)
    # "dies" lapsed (0.45 s without renewal); "never-held" was not created by renewing.
    assert await state.held("c:key:ci") == 1
    assert await state.lease("c:key:ci", 2, "third", 0.3)
    assert not await state.lease("c:key:ci", 2, "fourth", 0.3)


async def test_add_once_adds_once_and_only_to_counters_held(state: SharedState) -> None:
    await state.seed("spend:key:ci", 1.5, None)
    await state.seed("spend:key:ci", 99.0, None)  # held already: unchanged
    added = await asyncio.gather(
        *(
            state.add_once("req-1", {"spend:key:ci": 0.25, "spend:team:ml": 0.25}, 60)
            for _ in range(20)
        )
    )
    assert sum(added) == 1
    assert await state.totals(["spend:key:ci", "spend:team:ml"]) == [1.75, None]
    assert await state.add_once("req-2", {"spend:key:ci": 0.25}, 60)
    assert await state.totals(["spend:key:ci"]) == [2.0]


async def test_a_seeded_counter_expires(state: SharedState) -> None:
    await state.seed("spend:key:day", 3.0, 0.2)
    assert await state.totals(["spend:key:day"]) == [3.0]
    await asyncio.sleep(0.3)
    assert await state.totals(["spend:key:day"]) == [None]


# ---------------------------------------------------------------------------- Redis only


async def test_holds_on_spend_fit_the_limit_under_many_at_once(state: SharedState) -> None:
    await state.seed("spend:key:ci", 0.4, None)  # $0.40 of $1 spent: room for six $0.10s
    limits = {"spend:key:ci": 1.0, "spend:team:ml": 5.0}  # the team's counter not held: 0
    answers = await asyncio.gather(
        *(state.reserve(limits, f"request-{i}", 0.1, 60) for i in range(50))
    )
    assert answers.count(None) == 6
    refused = {answer for answer in answers if answer is not None}
    assert {position for position, _ in refused} == {0}  # the key's counter, not the team's
    assert {round(held, 6) for _, held in refused} == {0.6}
    # Given back, a hold makes room for another; dropping one twice, or one never
    # taken, changes nothing.
    holder = f"request-{answers.index(None)}"
    await state.unreserve(list(limits), holder)
    await state.unreserve(list(limits), holder)
    await state.unreserve(list(limits), "never-held")
    assert await state.reserve(limits, "late", 0.1, 60) is None
    assert await state.reserve(limits, "later", 0.1, 60) == (0, pytest.approx(0.6))


async def test_holds_lapse_and_spend_counts_against_them(state: SharedState) -> None:
    limits = {"spend:key:ci": 1.0}
    assert await state.reserve(limits, "dies", 0.5, 0.3) is None
    assert await state.reserve(limits, "too-much", 0.6, 0.3) == (0, pytest.approx(0.5))
    await asyncio.sleep(0.4)  # the dead holder's hold lapsed
    assert await state.reserve(limits, "lives", 0.6, 60) is None
    await state.seed("spend:key:ci", 0.3, None)
    # 0.3 spent + 0.6 held: 0.2 more would pass the dollar.
    assert await state.reserve(limits, "one-more", 0.2, 60) == (0, pytest.approx(0.6))
    assert await state.reserve(limits, "one-more", 0.1, 60) is None


async def test_redis_keys_are_prefixed_and_expire(real_redis: RedisServer) -> None:
    client = redis.Redis.from_url(real_redis.url)
    client.flushall()
    store = RedisState(real_redis.url)
    try:
        await store.take("rpm:key:ci", 1, 10, 60)
        await store.lease("concurrent:key:ci", 1, "r1", 10)
        keys = sorted(k.decode() for k in client.keys("*"))
        assert [k.rsplit(":", 1)[0] for k in keys] == [
            "relay:serve:concurrent:key",
            "relay:serve:rpm:key:ci",
        ]
        # Nothing outlives its use: the window its minute (and a second), the lease set
        # its last lease.
        assert all(0 < client.pttl(k) <= 61_000 for k in keys)
    finally:
        await store.aclose()
        client.close()


async def test_a_stopped_redis_is_unavailable_at_once_and_back_when_it_returns(
    tmp_path: Any,
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    store = RedisState(server.url.replace("redis://", "redis://:hunter2@"), timeout=0.25)
    try:
        assert await store.take("rpm:key:ci", 1, 10, 60) == 0
        server.stop()
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(StateUnavailable) as caught:
                await store.take("rpm:key:ci", 1, 10, 60)
        assert time.monotonic() - started < 2.0
        assert "hunter2" not in str(caught.value)
        assert f"127.0.0.1:{server.port}" in str(caught.value)
        server.start()
        assert await store.take("rpm:key:ci", 1, 10, 60) == 0  # an empty store again
        assert await store.used("rpm:key:ci", 60) == 1
    finally:
        await store.aclose()
        server.stop()


def test_where_never_shows_a_password() -> None:
    assert where("redis://:s3cret@cache.internal:6380/2") == "redis://cache.internal:6380/2"
    assert where("rediss://user:s3cret@cache/0") == "rediss://cache/0"
    assert "s3cret" not in repr(RedisState("redis://:s3cret@127.0.0.1:1/0"))
