"""Per-key limits counted in the shared state: requests and tokens per minute and
requests at once, shared by servers over one Redis, refused in OpenAI's shape; and what
the server does while that Redis is down (``on_state_error``)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import CHAT, HELLO, Served, error_of

from relay_core import ConfigError
from relay_core.log import configure_logging
from relay_core.real_servers import RedisServer, redis_server
from relay_core.testing import hub_for
from relay_core.types import EndEvent, Request, Response, TextDelta, TextPart, Usage
from relay_serve import ApiKey, ServeSettings
from relay_serve._failover import Failover
from relay_serve._quota import Quota, RateLimited
from relay_serve._settings import Limits
from relay_serve._state import LocalState, StateUnavailable
from relay_serve._tally import StreamTally

Serve = Callable[..., Served]
KEY = "sk-relay-QUOTAkey0123456789abcdefXYZ"
AUTH = {"authorization": f"Bearer {KEY}"}
STALL = {"model": "stall", "messages": [{"role": "user", "content": "hold"}], "stream": True}


@pytest.fixture(scope="module")
def real_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def fresh_redis(real_redis: RedisServer) -> str:
    import redis

    with redis.Redis.from_url(real_redis.url) as client:
        client.flushall()
    return real_redis.url


def limited(
    state: str | None = None, on_state_error: str = "closed", **limits: Any
) -> ServeSettings:
    key = ApiKey.from_key("ci", KEY, limits=Limits(**limits))
    return ServeSettings(keys=(key,), state=state, on_state_error=on_state_error)  # type: ignore[arg-type]


def _inside_one_minute() -> None:
    """Wait for the next minute when this one is about to end, so that a test's few
    requests all fall in one fixed window."""
    left = 60 - time.time() % 60
    if left < 3:
        time.sleep(left + 0.05)


def test_servers_over_one_redis_share_a_keys_requests_per_minute(
    serve: Serve, fresh_redis: str
) -> None:
    settings = limited(fresh_redis, requests_per_minute=5)
    first, second = serve(settings=settings), serve(settings=settings)
    _inside_one_minute()
    answers = []
    for i in range(8):
        with (first if i % 2 else second).http() as http:
            answers.append(http.post(CHAT, json=HELLO, headers=AUTH))
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
    refused = answers[-1]
    error = error_of(refused)
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-limit-requests"] == "5"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-limit-tokens" not in refused.headers  # no token limit to report


def test_a_key_over_its_tokens_per_minute_is_refused_until_the_window_ends(
    serve: Serve, fresh_redis: str
) -> None:
    server = serve(settings=limited(fresh_redis, tokens_per_minute=4))
    _inside_one_minute()
    with server.http() as http:
        first = http.post(CHAT, json=HELLO, headers=AUTH)
        streamed = http.post(CHAT, json={**HELLO, "stream": True}, headers=AUTH)
    assert first.status_code == 200
    assert first.json()["usage"]["total_tokens"] >= 4  # the answer's real usage counted
    assert streamed.status_code == 429
    error = error_of(streamed)
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    assert streamed.headers["x-ratelimit-limit-tokens"] == "4"
    assert streamed.headers["x-ratelimit-remaining-tokens"] == "0"


@pytest.mark.parametrize("shared", [False, True], ids=["local", "redis"])
def test_max_concurrent_holds_a_place_per_request_until_it_ends(
    serve: Serve, real_redis: RedisServer, shared: bool
) -> None:
    import redis

    with redis.Redis.from_url(real_redis.url) as client:
        client.flushall()
    settings = limited(real_redis.url if shared else None, max_concurrent=1)
    server = serve(settings=settings)
    with server.http() as http:
        with http.stream("POST", CHAT, json=STALL, headers=AUTH) as holding:
            assert holding.status_code == 200
            refused = http.post(CHAT, json=HELLO, headers=AUTH)
            assert refused.status_code == 429
            assert error_of(refused)["code"] == "rate_limit_exceeded"
            assert refused.headers["retry-after"] == "1"
        # The client hung up: its place is given back as its request is cancelled.
        deadline = time.monotonic() + 5
        while (answer := http.post(CHAT, json=HELLO, headers=AUTH)).status_code == 429:
            assert time.monotonic() < deadline, "the stream's place was never given back"
            time.sleep(0.05)
        assert answer.status_code == 200
        models = http.get("/v1/models", headers=AUTH)  # lists take no place
        assert models.status_code == 200


# ---------------------------------------------------------------------------- outages


@pytest.fixture
def captured_logs() -> Iterator[list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = configure_logging("json", "DEBUG")
    collector = Collect()
    logging.getLogger("relay").addHandler(collector)
    yield lines
    logging.getLogger("relay").removeHandler(collector)
    logging.getLogger("relay").removeHandler(handler)
    logging.getLogger("relay").setLevel(logging.WARNING)


@pytest.fixture
def outage_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_closed_refuses_with_503_while_redis_is_down_and_recovers(
    serve: Serve, outage_redis: RedisServer, captured_logs: list[str]
) -> None:
    url = outage_redis.url.replace("redis://", "redis://:hunter2@")
    server = serve(settings=limited(url, requests_per_minute=1000))
    with server.http() as http:
        assert http.post(CHAT, json=HELLO, headers=AUTH).status_code == 200
        outage_redis.stop()
        down = [http.post(CHAT, json=HELLO, headers=AUTH) for _ in range(5)]
        outage_redis.start()
        deadline = time.monotonic() + 3
        while (back := http.post(CHAT, json=HELLO, headers=AUTH)).status_code == 503:
            assert time.monotonic() < deadline, "never recovered"
            time.sleep(0.1)
    for answer in down:
        assert answer.status_code == 503
        error = error_of(answer)
        assert (error["type"], error["code"]) == ("server_error", "state_unavailable")
        assert answer.headers["retry-after"] == "1"
        assert "hunter2" not in answer.text
    assert back.status_code == 200
    outages = [line for line in captured_logs if "serve.state_unavailable" in line]
    assert len(outages) == 1, outages  # one line per outage, not per request
    assert "hunter2" not in "\n".join(captured_logs)
    assert sum("serve.state_recovered" in line for line in captured_logs) == 1


def test_open_admits_under_local_limits_while_redis_is_down(
    serve: Serve, outage_redis: RedisServer, captured_logs: list[str]
) -> None:
    import redis

    server = serve(settings=limited(outage_redis.url, "open", requests_per_minute=3))
    _inside_one_minute()
    with server.http() as http:
        assert http.post(CHAT, json=HELLO, headers=AUTH).status_code == 200
        outage_redis.stop()
        # This process counts alone now, from zero: three more, then 429.
        down = [http.post(CHAT, json=HELLO, headers=AUTH).status_code for _ in range(4)]
        outage_redis.start()
        time.sleep(1.1)  # the next probe is due
        back = http.post(CHAT, json=HELLO, headers=AUTH)
    assert down == [200, 200, 200, 429]
    assert back.status_code == 200
    with redis.Redis.from_url(outage_redis.url) as client:  # counted in Redis again
        assert [k.decode().rsplit(":", 1)[0] for k in client.keys("*")] == [
            "relay:serve:rpm:key:ci"
        ]
    assert sum("serve.state_unavailable" in line for line in captured_logs) == 1
    assert sum("serve.state_recovered" in line for line in captured_logs) == 1


# ---------------------------------------------------------------------------- units


async def test_a_rate_limited_key_is_told_how_long_until_its_window_ends() -> None:
    now = [90.0]
    quota = Quota(LocalState(clock=lambda: now[0]), clock=lambda: now[0])
    key = ApiKey.from_key("ci", KEY, requests_per_minute=2)
    for _ in range(2):
        await (await quota.admit(key, "r")).close()
    with pytest.raises(RateLimited) as caught:
        await quota.admit(key, "r")
    assert caught.value.retry_after == 30  # the minute from 60 to 120 ends in 30 s
    assert caught.value.headers["retry-after"] == "30"
    now[0] = 120.0
    await (await quota.admit(key, "r")).close()
    await quota.aclose()


async def test_one_renewer_keeps_leases_past_their_ttl_until_released() -> None:
    quota = Quota(LocalState(), lease_ttl=0.3)
    key = ApiKey.from_key("ci", KEY, limits=Limits(max_concurrent=2))
    first = await quota.admit(key, "same-id")
    second = await quota.admit(key, "same-id")  # a client's request id is not unique
    await asyncio.sleep(0.8)  # more than twice the ttl: renewed all along
    assert await quota.state.held("concurrent:key:ci") == 2
    await first.close()
    await first.close()  # closing twice gives back one place
    assert await quota.state.held("concurrent:key:ci") == 1
    await second.close()
    assert await quota.state.held("concurrent:key:ci") == 0
    await quota.aclose()


async def test_an_admission_dropped_without_close_lapses_within_the_ttl() -> None:
    quota = Quota(LocalState(), lease_ttl=0.3)
    key = ApiKey.from_key("ci", KEY, limits=Limits(max_concurrent=1))
    kept = await quota.admit(key, "kept")
    await kept.close()
    dropped = await quota.admit(key, "dropped")
    del dropped  # as when a stream response is never started: nobody closes it
    gc.collect()
    await asyncio.sleep(0.5)
    assert await quota.state.held("concurrent:key:ci") == 0
    await quota.aclose()


async def test_tokens_of_a_stream_cut_short_are_estimated_and_counted() -> None:
    quota = Quota(LocalState())
    key = ApiKey.from_key("ci", KEY, limits=Limits(tokens_per_minute=1000))
    request = Request.from_prompt("x" * 400, model="mock/echo")
    cut, sent = await quota.admit(key, "cut"), StreamTally()
    cut.streaming(request, sent)
    sent.feed(TextDelta("y" * 80))  # then the client went away
    await cut.close()
    estimated = await quota.state.used("tpm:key:ci", 60)
    assert 100 + 20 <= estimated <= 140
    whole, sent = await quota.admit(key, "whole"), StreamTally()
    whole.streaming(request, sent)
    usage = Usage(input_tokens=7, output_tokens=5)
    sent.feed(EndEvent(Response(content=(TextPart("z"),), usage=usage)))
    await whole.close()
    assert await quota.state.used("tpm:key:ci", 60) == estimated + 12


# ---------------------------------------------------------------------------- settings


def test_state_settings_from_the_catalog() -> None:
    hub = hub_for(
        "plugins:\n  serve:\n    state: redis://:pw@cache:6379/0\n"
        "    on_state_error: open\n    state_timeout: 0.5\n"
    )
    settings = ServeSettings.from_catalog(hub.catalog)
    assert (settings.state, settings.on_state_error, settings.state_timeout) == (
        "redis://:pw@cache:6379/0",
        "open",
        0.5,
    )
    assert settings.shared_state
    assert not ServeSettings().shared_state
    assert "pw" not in repr(settings)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("state: http://:hunter2@cache/0", "plugins.serve.state must be a Redis URL"),
        ("state: 5", "plugins.serve.state must be a Redis URL"),
        ("on_state_error: maybe", "on_state_error must be closed or open"),
        ("state_timeout: 0", "state_timeout must be a number of seconds > 0"),
    ],
)
def test_bad_state_settings_point_at_their_line(setting: str, message: str) -> None:
    hub = hub_for(f"plugins:\n  serve:\n    max_queue: 4\n    {setting}\n")
    with pytest.raises(ConfigError) as caught:
        ServeSettings.from_catalog(hub.catalog)
    assert message in str(caught.value)
    assert ":4:" in str(caught.value)  # the setting's line
    assert "hunter2" not in str(caught.value)


def test_the_server_uses_redis_only_when_asked(serve: Serve) -> None:
    served = serve(settings=limited(None, requests_per_minute=2))
    assert isinstance(served.app.state.relay.quota.state, LocalState)
    with httpx.Client(base_url=served.url) as http:
        assert http.post(CHAT, json=HELLO, headers=AUTH).status_code == 200


# ---------------------------------------------------------------------------- the policy


class _Down(LocalState):
    """A store that is down until told otherwise, counting the calls that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.up = False
        self.calls = 0

    async def take(self, scope: str, amount: int, limit: int, window: float) -> float:
        self.calls += 1
        if not self.up:
            raise StateUnavailable("the shared state at redis://cache/0 did not answer")
        return await super().take(scope, amount, limit, window)


@pytest.mark.parametrize("policy", ["closed", "open"])
async def test_a_down_store_is_tried_at_most_once_a_second(
    policy: str, captured_logs: list[str]
) -> None:
    now = [0.0]
    store = _Down()
    failover = Failover(store, policy, where="redis://cache/0", clock=lambda: now[0])  # type: ignore[arg-type]
    outcomes = []
    for tick in range(30):  # three seconds of requests, ten a second
        now[0] = tick / 10
        try:
            outcomes.append(await failover.take("rpm:key:ci", 1, 100, 60))
        except StateUnavailable:
            outcomes.append(None)
    assert store.calls == 3  # the first, then one probe a second
    if policy == "closed":
        assert outcomes == [None] * 30
    else:
        assert outcomes == [0.0] * 30  # admitted under this process's own count
        assert await failover.local.used("rpm:key:ci", 60) == 30
    store.up = True
    now[0] = 3.0
    assert await failover.take("rpm:key:ci", 1, 100, 60) == 0.0
    assert not failover.down
    assert await store.used("rpm:key:ci", 60) == 1  # counted in the store again
    logged = [line for line in captured_logs if "serve.state_" in line]
    assert len(logged) == 2, logged  # the outage's start and its end, nothing between
    assert "state_unavailable" in logged[0]
    assert "state_recovered" in logged[1]


def test_every_model_route_counts_against_the_same_limits(serve: Serve, fresh_redis: str) -> None:
    server = serve(settings=limited(fresh_redis, requests_per_minute=4, max_concurrent=1))
    _inside_one_minute()
    body = {"model": "fast", "input": "x"}
    with server.http() as http:
        with http.stream(
            "POST", "/v1/responses", json={**body, "stream": True}, headers=AUTH
        ) as streaming:
            assert streaming.status_code == 200
            streaming.read()  # the whole stream: its place is given back at its end
        answers = [
            http.post("/v1/embeddings", json=body, headers=AUTH),
            http.post("/v1/responses", json=body, headers=AUTH),
            http.get("/v1/models/fast", headers=AUTH),
            http.post(CHAT, json=HELLO, headers=AUTH),
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].headers["x-ratelimit-remaining-requests"] == "0"
