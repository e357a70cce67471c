"""The pool provider as users reach it: ``pool/<model>`` through a hub, in front of fake
OpenAI-compatible backends on 127.0.0.1 (see ``_backends``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from _backends import FakeBackend

import relay_serve
from relay_core import (
    ConfigError,
    EndEvent,
    Hub,
    ProviderUnavailable,
    TextDelta,
    Tool,
    ToolCallDelta,
)
from relay_core.testing import hub_for, recorded_waits
from relay_serve._pool import PoolProvider

Start = Callable[..., FakeBackend]


@pytest.fixture
def start() -> Iterator[Start]:
    """Start fake backends; all are stopped after the test."""
    with ExitStack() as stack:

        def start(name: str, **kwargs: Any) -> FakeBackend:
            return stack.enter_context(FakeBackend(name, **kwargs))

        yield start


def catalog(urls: list[str], **options: Any) -> str:
    settings = {"backends": urls, **options}
    return json.dumps({"providers": {"pool": {"options": settings}}})  # JSON is YAML


@pytest.fixture
async def make_hub() -> AsyncIterator[Callable[..., Hub]]:
    hubs: list[Hub] = []

    def make(urls: list[str], **options: Any) -> Hub:
        hubs.append(hub_for(catalog(urls, **options), relay_serve))
        return hubs[-1]

    yield make
    for hub in hubs:
        await hub.aclose()


def pool_of(hub: Hub) -> PoolProvider:
    adapter = hub.get("pool/qwen").adapter
    assert isinstance(adapter, PoolProvider)
    return adapter


async def gather_limited(count: int, concurrency: int, call: Callable[[int], Any]) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with gate:
            return await call(i)

    return await asyncio.gather(*(one(i) for i in range(count)))


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll a state the pool reaches on its own (probes run in the background)."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never: {what}")


# -- answers ----------------------------------------------------------------------------


async def test_a_call_reaches_a_backend_through_the_hub(start: Start, make_hub: Any) -> None:
    backend = start("alpha")
    hub = make_hub([backend.url])

    response = await hub.achat("pool/qwen", "hello")

    assert response.text == "alpha says: hello"
    assert response.provider == "pool"
    assert response.usage.output_tokens == 4
    assert response.metadata["backend"] == backend.url
    assert backend.payloads[0]["model"] == "qwen"


async def test_streaming_through_the_pool(start: Start, make_hub: Any) -> None:
    backend = start("alpha")
    hub = make_hub([backend.url])

    events = [event async for event in hub.astream("pool/qwen", "stream me")]

    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "alpha says: stream me"
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.text == text
    assert end.response.metadata["backend"] == backend.url
    assert pool_of(hub).snapshot()[0].served == 1


async def test_tool_calls_through_the_pool(start: Start, make_hub: Any) -> None:
    backend = start("alpha")
    hub = make_hub([backend.url])
    weather = Tool(
        "weather",
        "The weather in a city",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )

    response = await hub.achat("pool/qwen", "Weather in Paris?", tools=[weather])
    events = [e async for e in hub.astream("pool/qwen", "Weather in Paris?", tools=[weather])]

    assert backend.payloads[0]["tools"][0]["function"]["name"] == "weather"
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("weather", {"city": "Paris"})]
    assert any(isinstance(e, ToolCallDelta) for e in events)
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.tool_calls == response.tool_calls


# -- choosing ---------------------------------------------------------------------------


async def test_a_heterogeneous_pool_sends_most_traffic_to_the_fast_backend(
    start: Start, make_hub: Any
) -> None:
    fast = start("fast", latency=0.02)
    slow = start("slow", latency=0.1)  # five times slower
    hub = make_hub([slow.url, fast.url])

    await gather_limited(200, 8, lambda i: hub.achat("pool/qwen", f"q{i}"))

    assert fast.calls + slow.calls == 200
    assert fast.calls >= 140, (fast.calls, slow.calls)
    assert slow.calls >= 1  # measured, and used when the fast one is loaded enough
    states = {s.url: s for s in pool_of(hub).snapshot()}
    fast_ewma, slow_ewma = states[fast.url].ewma, states[slow.url].ewma
    assert fast_ewma is not None
    assert slow_ewma is not None
    assert fast_ewma < slow_ewma
    assert all(s.in_flight == 0 for s in states.values())


async def test_equal_backends_share_concurrent_traffic(start: Start, make_hub: Any) -> None:
    backends = [start(name, latency=0.02) for name in ("a", "b", "c")]
    hub = make_hub([b.url for b in backends])

    await gather_limited(60, 6, lambda i: hub.achat("pool/qwen", f"q{i}"))

    assert all(b.calls > 0 for b in backends), [b.calls for b in backends]


async def test_every_backend_is_measured_even_one_call_at_a_time(
    start: Start, make_hub: Any
) -> None:
    backends = [start(name) for name in ("a", "b", "c")]
    hub = make_hub([b.url for b in backends])

    for i in range(3):
        await hub.achat("pool/qwen", f"q{i}")

    assert [b.calls for b in backends] == [1, 1, 1]


# -- failing and recovering -------------------------------------------------------------


async def test_a_failed_call_is_retried_on_another_backend(start: Start, make_hub: Any) -> None:
    broken, good = start("broken"), start("good")
    broken.failing = True
    # Probes far apart: only the call's own failure can teach the pool here.
    hub = make_hub([broken.url, good.url], health_interval=3600, max_failures=5)
    pool = pool_of(hub)
    pool.backends[1].in_flight = 1  # so that the first attempt goes to the broken one

    with recorded_waits() as waits:
        response = await hub.achat("pool/qwen", "hi")

    assert response.text == "good says: hi"
    assert response.metadata["retries"] == ["ProviderUnavailable"]
    assert len(waits) == 1
    broken_state = pool.snapshot()[0]
    assert broken_state.healthy  # five failures allowed
    assert "HTTP 500" in (broken_state.last_error or "")


async def test_a_failing_backend_is_removed_and_returns_after_recovering(
    start: Start, make_hub: Any
) -> None:
    backends = [start(name, latency=0.01) for name in ("a", "b", "c")]
    flaky = backends[2]
    hub = make_hub([b.url for b in backends], health_interval=0.05, max_failures=2)
    pool = pool_of(hub)
    await hub.achat("pool/qwen", "warm up")

    flaky.failing = True
    with recorded_waits():
        await wait_until(lambda: not pool.snapshot()[2].healthy, "the flaky backend is removed")
        served_before = flaky.calls
        answers = await gather_limited(40, 6, lambda i: hub.achat("pool/qwen", f"q{i}"))

    assert flaky.calls == served_before  # nothing reached it while it was out
    assert {a.metadata["backend"] for a in answers} == {backends[0].url, backends[1].url}
    assert "HTTP 500" in (pool.snapshot()[2].last_error or "")

    flaky.failing = False
    await wait_until(lambda: pool.snapshot()[2].healthy, "the flaky backend returns")
    await gather_limited(40, 6, lambda i: hub.achat("pool/qwen", f"r{i}"))

    assert flaky.calls > served_before


async def test_calls_remove_a_failing_backend_between_probes(start: Start, make_hub: Any) -> None:
    good, broken = start("good"), start("broken")
    hub = make_hub([good.url, broken.url], health_interval=3600, max_failures=2)
    pool = pool_of(hub)
    broken.failing = True

    with recorded_waits():
        answers = await gather_limited(20, 4, lambda i: hub.achat("pool/qwen", f"q{i}"))
        assert not pool.snapshot()[1].healthy  # no probe since the first: calls did it
        attempts = broken.attempts
        answers += await gather_limited(20, 4, lambda i: hub.achat("pool/qwen", f"r{i}"))

    assert all(a.text.startswith("good says") for a in answers)  # retried when it failed
    assert attempts >= 1
    assert broken.attempts == attempts  # never called again once removed


async def test_no_healthy_backend_is_provider_unavailable_naming_them(
    start: Start, make_hub: Any
) -> None:
    broken = start("broken")
    broken.failing = True
    gone = start("gone")
    gone.__exit__()  # nothing listens on its port any more
    hub = make_hub([broken.url, gone.url], health_interval=3600, max_failures=1)

    with recorded_waits(), pytest.raises(ProviderUnavailable) as caught:
        await hub.achat("pool/qwen", "hi")

    message = str(caught.value)
    assert "no healthy backend" in message
    assert f"{broken.url}: " in message
    assert "HTTP 500" in message
    assert f"{gone.url}: " in message
    assert "ConnectError" in message
    assert not any(state.healthy for state in pool_of(hub).snapshot())


async def test_a_backend_down_at_start_is_found_by_the_first_probe(
    start: Start, make_hub: Any
) -> None:
    good, down = start("good"), start("down")
    down.failing = True
    # The good one first: the call goes there (ties go to the first listed), so only the
    # probe can find the other one down.
    hub = make_hub([good.url, down.url], health_interval=0.05, max_failures=1)
    pool = pool_of(hub)

    await hub.achat("pool/qwen", "first")  # starts the probes
    await wait_until(lambda: not pool.snapshot()[1].healthy, "the probe removes it")

    assert down.attempts == 0
    assert pool.snapshot()[1].last_error.startswith("health probe:")  # type: ignore[union-attr]


async def test_aclose_stops_the_probes(start: Start, make_hub: Any) -> None:
    backend = start("alpha")
    hub = make_hub([backend.url], health_interval=0.01)
    await hub.achat("pool/qwen", "hi")
    watcher = pool_of(hub)._watcher
    assert watcher is not None
    assert not watcher.done()

    await hub.aclose()

    assert watcher.cancelled()


# -- options ----------------------------------------------------------------------------


async def test_backends_come_from_the_environment_without_options(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = start("a"), start("b")
    # Without a path, a backend's URL gets /v1: what llama.cpp, vLLM and Ollama serve.
    monkeypatch.setenv("RELAYSERVE_BACKENDS", f"{a.url[:-3]}, {b.url}")
    hub = hub_for("", relay_serve)
    try:
        await hub.achat("pool/qwen", "hi")
        assert [s.url for s in pool_of(hub).snapshot()] == [a.url, b.url]
    finally:
        await hub.aclose()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"backends": "http://127.0.0.1:1/v1"}, "providers.pool.options.backends must be a"),
        ({"backends": []}, "providers.pool.options.backends must be a non-empty list"),
        ({"backends": ["http://a:1/v1", 3]}, "providers.pool.options.backends[1] must be a URL"),
        ({"backends": ["ftp://a/v1"]}, "providers.pool.options.backends[0]: 'ftp://a/v1' is not"),
        ({"backends": ["http://a:1/v1?x=1"]}, "without ?query"),
        ({"backends": ["http://a:1/v1", "http://a:1/v1/"]}, "names http://a:1/v1 more than once"),
        ({"health_interval": 0}, "providers.pool.options.health_interval must be seconds > 0"),
        ({"max_failures": 0}, "providers.pool.options.max_failures must be a whole number"),
        ({"max_failures": True}, "providers.pool.options.max_failures must be a whole number"),
        ({"weight": 2}, "providers.pool.options: unknown option 'weight'; a pool takes backends"),
        ({"stream_usage": "yes"}, "providers.pool.options.stream_usage must be true or false"),
    ],
)
async def test_bad_options_are_config_errors_naming_the_option(
    options: dict[str, Any], expected: str
) -> None:
    settings = {"backends": ["http://127.0.0.1:1/v1"], **options}
    hub = hub_for(json.dumps({"providers": {"pool": {"options": settings}}}), relay_serve)

    with pytest.raises(ConfigError) as caught:
        await hub.achat("pool/qwen", "hi")

    assert expected in str(caught.value)


async def test_no_backends_anywhere_says_where_to_list_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RELAYSERVE_BACKENDS", raising=False)
    hub = hub_for("", relay_serve)

    with pytest.raises(ConfigError) as caught:
        await hub.achat("pool/qwen", "hi")

    assert "providers.pool.options.backends" in str(caught.value)
    assert "RELAYSERVE_BACKENDS=" in str(caught.value)


async def test_a_bad_url_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELAYSERVE_BACKENDS", "127.0.0.1:8081")
    hub = hub_for("", relay_serve)

    with pytest.raises(ConfigError, match=r"RELAYSERVE_BACKENDS: '127\.0\.0\.1:8081' is not"):
        await hub.achat("pool/qwen", "hi")


async def test_relay_openai_compat_options_reach_every_backend(start: Start, make_hub: Any) -> None:
    backend = start("alpha")
    hub = make_hub([backend.url], max_tokens_field="max_completion_tokens")

    await hub.achat("pool/qwen", "hi", max_tokens=5)

    assert backend.payloads[0]["max_completion_tokens"] == 5
    assert "max_tokens" not in backend.payloads[0]


async def test_the_key_reaches_every_backend_and_no_error_or_log_line(
    start: Start, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-pool-canary-7f3a9c2e5b1d"
    monkeypatch.setenv("POOL_KEY", key)
    caplog.set_level(logging.DEBUG, logger="relay")
    good, broken = start("good"), start("broken")
    broken.failing = True  # and echoes the authorization header it received
    text = catalog([good.url, broken.url], health_interval=3600, max_failures=1)
    hub = hub_for(text.replace('"options"', '"api_key": "$env.POOL_KEY", "options"'), relay_serve)
    try:
        pool_of(hub).backends[0].in_flight = 1  # the first attempt goes to the broken one
        with recorded_waits():
            await hub.achat("pool/qwen", "hi")
        good.failing = True
        with recorded_waits(), pytest.raises(ProviderUnavailable) as caught:
            await hub.achat("pool/qwen", "hi again")
        snapshot = pool_of(hub).snapshot()
    finally:
        await hub.aclose()

    assert good.authorizations[0] == f"Bearer {key}"
    assert broken.authorizations[0] == f"Bearer {key}"
    assert "good is broken (authorization: Bearer ***)" in str(caught.value)  # masked
    assert key not in str(caught.value)
    assert all(key not in (state.last_error or "") for state in snapshot)
    assert "pool.backend_removed" in caplog.text
    assert key not in caplog.text
