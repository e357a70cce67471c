"""Circuit breakers: open after a run of failures, probe when half open, close on
success; an open breaker fails a call at once and a group skips that member."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core import (
    BreakerSettings,
    CircuitOpen,
    ContextWindowExceeded,
    InvalidRequestError,
    ProviderUnavailable,
    RateLimitError,
)
from relay_core.breakers import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(failures: int = 3, reset_after: float = 10.0, probes: int = 1) -> tuple[Any, Clock]:
    clock = Clock()
    moves: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        BreakerSettings(failures=failures, reset_after=reset_after, half_open_probes=probes),
        name="acme/m",
        clock=clock,
        on_change=lambda name, old, new: moves.append((old, new)),
    )
    breaker.moves = moves  # type: ignore[attr-defined]
    return breaker, clock


DOWN = ProviderUnavailable("down")


def fail(breaker: CircuitBreaker, error: BaseException = DOWN) -> None:
    breaker.acquire(provider="acme", model="m")
    breaker.record(error)


def test_opens_after_the_configured_run_of_failures() -> None:
    breaker, _ = make(failures=3)
    fail(breaker)
    fail(breaker)
    assert breaker.state == "closed"
    fail(breaker)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as caught:
        breaker.acquire(provider="acme", model="m", custom_id="r7")
    error = caught.value
    assert (error.retry_after, error.provider, error.custom_id) == (10.0, "acme", "r7")
    assert not error.retryable
    assert "3 calls in a row failed" in str(error)


def test_a_success_resets_the_run() -> None:
    breaker, _ = make(failures=2)
    fail(breaker)
    breaker.acquire(provider="acme", model="m")
    breaker.record(None)
    fail(breaker)
    assert breaker.state == "closed"


def test_errors_about_the_request_do_not_count() -> None:
    breaker, _ = make(failures=1)
    fail(breaker, InvalidRequestError("bad"))
    fail(breaker, ContextWindowExceeded("too long"))
    assert breaker.state == "closed"
    fail(breaker, RateLimitError("slow down"))
    assert breaker.state == "open"


def test_half_open_lets_probes_through_and_a_success_closes() -> None:
    breaker, clock = make(failures=1, reset_after=10.0, probes=1)
    fail(breaker)
    clock.now += 9.9
    with pytest.raises(CircuitOpen) as caught:
        breaker.acquire(provider="acme", model="m")
    assert caught.value.retry_after == pytest.approx(0.1)
    clock.now += 0.1
    assert breaker.state == "half_open"
    breaker.acquire(provider="acme", model="m")  # the probe
    with pytest.raises(CircuitOpen):
        breaker.acquire(provider="acme", model="m")  # only one probe at a time
    breaker.record(None)
    assert breaker.state == "closed"
    assert breaker.moves == [  # type: ignore[attr-defined]
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_a_failed_probe_opens_it_again_for_a_full_period() -> None:
    breaker, clock = make(failures=3, reset_after=10.0)
    for _ in range(3):
        fail(breaker)
    clock.now += 10
    fail(breaker)  # one failure is enough when half open
    assert breaker.state == "open"
    clock.now += 9
    assert breaker.state == "open"


def test_a_cancelled_probe_frees_its_slot() -> None:
    breaker, clock = make(failures=1)
    fail(breaker)
    clock.now += 10
    breaker.acquire(provider="acme", model="m")
    breaker.release()
    breaker.acquire(provider="acme", model="m")  # not refused


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


def test_an_open_breaker_fails_calls_without_sending_them(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    scripted.script["flaky"] = [ProviderUnavailable("down", provider="scripted")] * 2
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            hub.chat("flaky", "x")
    with pytest.raises(CircuitOpen, match="scripted/flaky"):
        hub.chat("flaky", "x")
    assert len(scripted.received) == 2
    assert hub.breaker_states() == {"scripted/flaky": "open"}
    # Per provider *and model*: the other model of the provider is unaffected.
    assert hub.chat("steady", "x").text == "echo: x"


def test_a_group_skips_a_member_whose_breaker_is_open(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    scripted.script["flaky"] = [ProviderUnavailable("down", provider="scripted")] * 2
    for _ in range(2):
        hub.chat("g", "x")
    route = hub.chat("g", "x").metadata["route"]
    assert route["member"] == "steady"
    assert route["failed"] == [{"member": "flaky", "error": "CircuitOpen"}]
    assert [r.model for r in scripted.received] == ["flaky", "steady", "flaky", "steady", "steady"]


def test_breakers_are_off_unless_configured(make_hub: Any, scripted: Any) -> None:
    hub = make_hub("providers:\n  scripted: {max_retries: 0}\n")
    scripted.script["m"] = [ProviderUnavailable("down", provider="scripted")] * 10
    for _ in range(10):
        with pytest.raises(ProviderUnavailable):
            hub.chat("scripted/m", "x")
    assert hub.breaker_states() == {}


def test_streams_count_toward_the_breaker(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    scripted.script["flaky"] = [ProviderUnavailable("down", provider="scripted")] * 2
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            list(hub.stream("flaky", "x"))
    with pytest.raises(CircuitOpen):
        list(hub.stream("flaky", "x"))
    events = list(hub.stream("g", "x"))
    assert events[-1].response.metadata["route"]["member"] == "steady"
