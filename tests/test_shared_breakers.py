"""Circuit breakers whose state lives in a shared store: failures counted across workers,
an open breaker open for all of them, half-open probes limited across them, and a store
that does not answer leaves each process its own breaker."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from relay_core import BreakerSettings, CircuitOpen, ProviderUnavailable
from relay_core.breakers import CircuitBreaker
from relay_core.shared_breakers import (
    FRESH_FOR,
    RETRY_AFTER,
    BreakerView,
    MemoryBreakerStore,
    SharedBreaker,
)

DOWN = ProviderUnavailable("down")
SETTINGS = BreakerSettings(failures=3, reset_after=10.0, half_open_probes=1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryBreakerStore):
    """The memory store, counting its operations and failing while ``down``."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.operations = 0
        self.down = False

    def _check(self) -> None:
        self.operations += 1
        if self.down:
            raise ConnectionError("store unreachable")

    async def acquire(self, name: str, settings: BreakerSettings) -> tuple[bool, BreakerView]:
        self._check()
        return await super().acquire(name, settings)

    async def record(
        self, name: str, settings: BreakerSettings, *, failed: bool, probe: bool
    ) -> BreakerView:
        self._check()
        return await super().record(name, settings, failed=failed, probe=probe)

    async def release(self, name: str, settings: BreakerSettings) -> None:
        self._check()
        await super().release(name, settings)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> CountingStore:
    return CountingStore(clock)


def worker(store: CountingStore, clock: Clock, **kwargs: Any) -> SharedBreaker:
    """One process's breaker of ``acme/m`` over the shared store."""
    return SharedBreaker(SETTINGS, store, name="acme/m", clock=clock, **kwargs)


async def fail(breaker: SharedBreaker) -> None:
    passed = await breaker.acquire(provider="acme", model="m")
    await breaker.record(passed, DOWN)


async def succeed(breaker: SharedBreaker) -> None:
    passed = await breaker.acquire(provider="acme", model="m")
    await breaker.record(passed, None)


async def test_failures_on_several_workers_open_it_for_every_worker(
    store: CountingStore, clock: Clock
) -> None:
    one, two, three = worker(store, clock), worker(store, clock), worker(store, clock)
    await fail(one)
    await fail(two)
    await fail(one)  # three in a row, counted across workers
    assert one.state == "open"
    with pytest.raises(CircuitOpen) as caught:
        await three.acquire(provider="acme", model="m", custom_id="r1")
    assert caught.value.retry_after == pytest.approx(10.0)
    assert caught.value.custom_id == "r1"
    # Two had seen the breaker closed; it trusts that for FRESH_FOR at most.
    clock.now += FRESH_FOR
    with pytest.raises(CircuitOpen):
        await two.acquire(provider="acme", model="m")
    assert two.state == "open"


async def test_a_closed_breaker_costs_the_store_one_call_per_fresh_period(
    store: CountingStore, clock: Clock
) -> None:
    breaker = worker(store, clock)
    for _ in range(100):
        await succeed(breaker)
    assert store.operations == 1  # the first look; successes with nothing to reset
    clock.now += FRESH_FOR
    await succeed(breaker)
    assert store.operations == 2


async def test_a_success_resets_failures_other_workers_counted(
    store: CountingStore, clock: Clock
) -> None:
    one, two = worker(store, clock), worker(store, clock)
    await fail(one)
    await fail(one)
    await succeed(two)  # two asks the store first, so it knows of the failures
    await fail(one)
    await fail(one)
    assert one.state == "closed"


async def test_half_open_probes_are_limited_across_workers(
    store: CountingStore, clock: Clock
) -> None:
    one, two = worker(store, clock), worker(store, clock)
    for _ in range(3):
        await fail(one)
    clock.now += SETTINGS.reset_after
    probe = await two.acquire(provider="acme", model="m")
    assert probe == "probe"
    with pytest.raises(CircuitOpen):
        await one.acquire(provider="acme", model="m")  # the one probe is out
    await two.record(probe, None)
    assert two.state == "closed"
    clock.now += FRESH_FOR
    await succeed(one)
    assert one.state == "closed"


async def test_a_failed_probe_opens_it_again_everywhere(store: CountingStore, clock: Clock) -> None:
    one, two = worker(store, clock), worker(store, clock)
    for _ in range(3):
        await fail(one)
    clock.now += SETTINGS.reset_after
    await fail(two)
    with pytest.raises(CircuitOpen) as caught:
        await one.acquire(provider="acme", model="m")
    assert caught.value.retry_after == pytest.approx(SETTINGS.reset_after)


async def test_a_cancelled_probe_frees_its_slot_for_other_workers(
    store: CountingStore, clock: Clock
) -> None:
    one, two = worker(store, clock), worker(store, clock)
    for _ in range(3):
        await fail(one)
    clock.now += SETTINGS.reset_after
    probe = await one.acquire(provider="acme", model="m")
    await one.release(probe)
    assert await two.acquire(provider="acme", model="m") == "probe"


async def test_a_probe_lost_with_its_process_lapses(store: CountingStore, clock: Clock) -> None:
    one, two = worker(store, clock), worker(store, clock)
    for _ in range(3):
        await fail(one)
    clock.now += SETTINGS.reset_after
    assert await one.acquire(provider="acme", model="m") == "probe"  # then one is killed
    clock.now += SETTINGS.reset_after
    assert await two.acquire(provider="acme", model="m") == "probe"


async def test_a_store_that_does_not_answer_leaves_each_worker_its_own_breaker(
    store: CountingStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    logged: list[tuple[str, dict[str, Any]]] = []
    one = worker(store, clock, log=lambda event, **fields: logged.append((event, fields)))
    await fail(one)
    store.down = True
    clock.now += FRESH_FOR
    await succeed(one)  # the store fails: this call goes through the local breaker
    assert not one.available
    operations = store.operations
    for _ in range(3):
        await fail(one)
    assert one.state == "open"  # counted locally, from closed
    with pytest.raises(CircuitOpen):
        await one.acquire(provider="acme", model="m")
    assert store.operations == operations  # not asked again before RETRY_AFTER
    assert [event for event, _ in logged] == ["breaker.store_unavailable"]
    assert "store unreachable" in logged[0][1]["error"]

    store.down = False
    clock.now += RETRY_AFTER
    await succeed(one)  # the store answers again, and its state (closed) rules
    assert one.available
    assert one.state == "closed"
    assert [event for event, _ in logged] == [
        "breaker.store_unavailable",
        "breaker.store_recovered",
    ]


async def test_record_failing_on_the_store_counts_locally(
    store: CountingStore, clock: Clock
) -> None:
    one = worker(store, clock)
    passed = await one.acquire(provider="acme", model="m")
    store.down = True
    await one.record(passed, DOWN)
    assert not one.available
    assert isinstance(one.local, CircuitBreaker)


# -- through hubs --------------------------------------------------------------------------

CATALOG = """\
providers:
  scripted:
    max_retries: 0
    circuit_breaker: {failures: 2, reset_after: 60}
models:
  flaky: scripted/flaky
  steady: scripted/steady
groups:
  g: {strategy: fallback, members: [flaky, steady]}
"""


def test_two_hubs_sharing_a_store_share_their_breakers(make_hub: Any, scripted: Any) -> None:
    store = MemoryBreakerStore()
    one, two = make_hub(CATALOG), make_hub(CATALOG)
    one.pipeline.breakers.share(store)
    two.pipeline.breakers.share(store)
    scripted.script["flaky"] = [ProviderUnavailable("down", provider="scripted")] * 2
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            one.chat("flaky", "x")
    with pytest.raises(CircuitOpen, match="scripted/flaky"):
        two.chat("flaky", "x")
    assert len(scripted.received) == 2  # the other hub sent nothing
    assert two.breaker_states() == {"scripted/flaky": "open"}
    # A group on the other hub skips the member at once.
    assert two.chat("g", "x").metadata["route"]["member"] == "steady"
    assert two.chat("steady", "x").text == "echo: x"


def test_share_none_goes_back_to_breakers_of_this_hub(make_hub: Any, scripted: Any) -> None:
    store = MemoryBreakerStore()
    one, two = make_hub(CATALOG), make_hub(CATALOG)
    one.pipeline.breakers.share(store)
    two.pipeline.breakers.share(store)
    two.pipeline.breakers.share(None)
    scripted.script["flaky"] = [ProviderUnavailable("down", provider="scripted")] * 2
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            one.chat("flaky", "x")
    assert two.chat("flaky", "x").text == "echo: x"


def test_an_opened_shared_breaker_is_logged(
    make_hub: Any, scripted: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hub = make_hub(CATALOG)
    hub.pipeline.breakers.share(MemoryBreakerStore())
    scripted.script["flaky"] = [ProviderUnavailable("down", provider="scripted")] * 2
    with caplog.at_level(logging.INFO, logger="relay.hub"):
        for _ in range(2):
            with pytest.raises(ProviderUnavailable):
                hub.chat("flaky", "x")
    assert any("breaker.open" in r.getMessage() for r in caplog.records)
