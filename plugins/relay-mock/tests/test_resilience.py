"""Groups, routing and circuit breakers against relay-mock's scripted faults: members
fail the way real providers do (500s, rate limits, timeouts, cut bodies, bad requests)
and the application keeps answering."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from relay_core import (
    BatchRequest,
    CircuitOpen,
    EndEvent,
    Hub,
    InvalidRequestError,
    ProviderUnavailable,
    RelayClient,
    Timeout,
    Tool,
    parse_catalog,
)

CATALOG = """\
providers:
  mock:
    max_retries: 1
    options:
      faults:
        down: {kind: server_error}
        garbled: {kind: malformed}
        hung: {kind: latency, seconds: 5}
        limited: {kind: rate_limit, times: 1, retry_after: 0.5}
  backup:
    plugin: mock
    max_retries: 0
    timeout: 0.2
    circuit_breaker: {failures: 2, reset_after: 600}
    options:
      faults:
        down: {kind: server_error}
        hung: {kind: latency, seconds: 5}
models:
  primary-down: mock/down
  primary-garbled: mock/garbled
  primary-limited: mock/limited
  echo: mock/echo
  thinker: mock/think
  backup-down: backup/down
  backup-hung: backup/hung
groups:
  resilient: {strategy: fallback, members: [primary-down, primary-garbled, echo]}
  limited-first: {strategy: fallback, members: [primary-limited, echo]}
  guarded: {strategy: fallback, members: [backup-down, echo]}
  patient: {strategy: fallback, members: [backup-hung, echo]}
  cheapest: {strategy: lowest_cost, members: [thinker, echo]}
"""


@pytest.fixture
def hub(make_hub: Callable[..., Hub], waits: list[float]) -> Hub:
    return make_hub(CATALOG)


def test_fallback_skips_members_that_fail_after_their_retries(hub: Hub, waits: list[float]) -> None:
    response = hub.chat("resilient", "still there?")
    assert response.text == "still there?"
    route = response.metadata["route"]
    assert route["member"] == "echo"
    assert route["failed"] == [
        {"member": "primary-down", "error": "ProviderUnavailable"},
        {"member": "primary-garbled", "error": "MalformedResponse"},
    ]
    assert len(waits) == 2  # one retry each before moving on (max_retries: 1)


def test_a_rate_limit_is_retried_at_the_same_member_not_passed_on(
    hub: Hub, waits: list[float]
) -> None:
    route = hub.chat("limited-first", "once more").metadata["route"]
    assert route["member"] == "primary-limited"
    assert route["failed"] == []
    assert waits == [0.5]  # the Retry-After the mock sent


def test_a_bad_request_is_not_tried_elsewhere(hub: Hub) -> None:
    weather = Tool(name="weather", description="Weather", parameters={"type": "object"})
    with pytest.raises(InvalidRequestError, match="tool_choice"):
        hub.chat("resilient", "x", tools=[weather], tool_choice="stocks")


def test_a_slow_member_times_out_and_the_next_answers(hub: Hub) -> None:
    route = hub.chat("patient", "hello").metadata["route"]
    assert route["member"] == "echo"
    assert route["failed"] == [{"member": "backup-hung", "error": "Timeout"}]


def test_an_open_breaker_skips_the_member_at_once(hub: Hub) -> None:
    for _ in range(2):
        assert hub.chat("guarded", "x").metadata["route"]["member"] == "echo"
    assert hub.breaker_states() == {"backup/down": "open"}
    route = hub.chat("guarded", "x").metadata["route"]
    assert route["failed"] == [{"member": "backup-down", "error": "CircuitOpen"}]
    with pytest.raises(CircuitOpen) as caught:
        hub.chat("backup-down", "x")
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 590


def test_a_deadline_stops_retries_and_fallbacks(hub: Hub) -> None:
    with pytest.raises(Timeout, match="deadline"):
        hub.chat(
            "mock/echo",
            "x",
            provider_kwargs={"mock": {"fault": {"kind": "latency", "seconds": 5}}},
            deadline=0.1,
        )


def test_streams_fall_back_before_any_output(hub: Hub) -> None:
    events = list(hub.stream("resilient", "streamed answer"))
    assert isinstance(events[-1], EndEvent)
    response = events[-1].response
    assert response.text == "streamed answer"
    assert response.metadata["route"]["member"] == "echo"


def test_lowest_cost_uses_the_mock_price_list(hub: Hub) -> None:
    response = hub.chat("cheapest", "how much?")
    assert response.metadata["route"]["member"] == "echo"
    assert response.cost.source == "snapshot"
    assert response.cost.priced_by == "relay-mock price list"


def test_a_batch_job_over_a_group_loses_nothing(tmp_path: Path, waits: list[float]) -> None:
    with RelayClient(tmp_path / "ws", config=parse_catalog(CATALOG)) as client:
        client.submit_batch(
            [BatchRequest(id=f"r{i}", prompt=f"question {i}") for i in range(20)],
            job_id="through-a-group",
            model="resilient",
        )
        items = list(client.iter_results("through-a-group"))
    assert [item.custom_id for item in items] == [f"r{i}" for i in range(20)]
    assert all(item.response is not None for item in items)
    assert {item.response.metadata["route"]["member"] for item in items if item.response} == {
        "echo"
    }


def test_without_a_healthy_member_the_last_error_is_raised(hub: Hub) -> None:
    with pytest.raises(ProviderUnavailable):
        hub.chat("primary-down", "x")
