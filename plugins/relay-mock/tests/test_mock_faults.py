"""Injected faults: each kind, per model and per request, ``times`` with the hub's retries,
and bad fault specs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay_core import (
    ConfigError,
    InvalidRequestError,
    MalformedResponse,
    ProviderError,
    ProviderSettings,
    ProviderUnavailable,
    RateLimitError,
    Request,
    TextDelta,
    Timeout,
)
from relay_mock._provider import MockProvider

CATALOG = """\
providers:
  mock:
    max_retries: 2
    options:
      faults:
        flaky: {kind: server_error}
        limited: {kind: rate_limit, times: 2, retry_after: 0.01}
        garbled: {kind: malformed, times: 1}
        stuck: {kind: timeout, times: 1, seconds: 0.01}
        slow: {kind: latency, seconds: 0.01}
        broken: {kind: explode}
"""


def _fault(**fault: Any) -> dict[str, Any]:
    return {"mock": {"fault": fault}}


def test_a_rate_limit_that_passes_is_retried_after_its_retry_after(
    make_hub: Any, waits: list[float]
) -> None:
    answer = make_hub(CATALOG).chat("mock/limited", "hello")
    assert answer.text == "hello"
    assert answer.metadata["retries"] == ["RateLimitError", "RateLimitError"]
    assert waits == [0.01, 0.01]


def test_a_rate_limit_that_stays_exhausts_the_retries(make_hub: Any, waits: list[float]) -> None:
    hub = make_hub(CATALOG)
    with pytest.raises(RateLimitError) as caught:
        hub.chat(
            "mock/echo", "hi", provider_kwargs=_fault(kind="rate_limit", retry_after=0.01),
            custom_id="req-7",
        )  # fmt: skip
    error = caught.value
    assert (error.provider, error.model, error.custom_id) == ("mock", "echo", "req-7")
    assert (error.status_code, error.retry_after, error.retryable) == (429, 0.01, True)
    assert "attempt 3" in str(error)
    assert waits == [0.01, 0.01]  # max_retries 2: three attempts, two waits


def test_a_server_error_on_every_attempt(make_hub: Any, waits: list[float]) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        make_hub(CATALOG).chat("mock/flaky", "hi", custom_id="c-1")
    assert (caught.value.status_code, caught.value.model, caught.value.custom_id) == (
        500,
        "flaky",
        "c-1",
    )
    assert len(waits) == 2


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "server_error", "times": 1}, "ProviderUnavailable"),
        ({"kind": "timeout", "times": 1}, "Timeout"),
        ({"kind": "timeout", "times": 1, "seconds": 0.01}, "Timeout"),
        ({"kind": "malformed", "times": 1}, "MalformedResponse"),
        ({"kind": "server_error", "times": 2, "latency": 0.01}, "ProviderUnavailable"),
    ],
)
def test_each_kind_fails_its_first_attempts_then_the_retry_succeeds(
    make_hub: Any, waits: list[float], fault: dict[str, Any], error: str
) -> None:
    answer = make_hub(CATALOG).chat(
        "mock/echo", "hello", provider_kwargs={"mock": {"fault": fault}}
    )
    assert answer.text == "hello"
    assert answer.metadata["retries"] == [error] * fault["times"]


def test_catalog_faults_apply_to_their_model_only(make_hub: Any, waits: list[float]) -> None:
    hub = make_hub(CATALOG)
    assert hub.chat("mock/garbled", "x").metadata["retries"] == ["MalformedResponse"]
    assert hub.chat("mock/stuck", "x").metadata["retries"] == ["Timeout"]
    assert hub.chat("mock/slow", "x").text == "x"
    assert "retries" not in hub.chat("mock/echo", "x").metadata


def test_a_request_fault_replaces_its_models(make_hub: Any, waits: list[float]) -> None:
    hub = make_hub(CATALOG)
    answer = hub.chat("mock/flaky", "x", provider_kwargs=_fault(kind="latency", seconds=0.001))
    assert answer.text == "x"


async def test_a_drip_spaces_a_streams_pieces_but_not_its_start(make_hub: Any) -> None:
    import time

    hub = make_hub(CATALOG)
    text, gap = "one two three four", 0.05
    arrived = []
    async for event in hub.astream(
        "mock/echo", text, provider_kwargs=_fault(kind="drip", seconds=gap)
    ):
        if isinstance(event, TextDelta):
            arrived.append(time.monotonic())
    assert len(arrived) == 4
    assert arrived[-1] - arrived[0] >= 3 * gap * 0.9
    started = time.monotonic()
    assert (await hub.achat("mock/echo", text, provider_kwargs=_fault(kind="drip", seconds=5))).text
    assert time.monotonic() - started < 1


async def test_times_counts_attempts_per_request(mock: Any) -> None:
    adapter = mock(faults={"echo": {"kind": "server_error", "times": 1}})
    first, second = Request.from_prompt("a", model="echo"), Request.from_prompt("b", model="echo")
    with pytest.raises(ProviderUnavailable, match="attempt 1 of 1 failing"):
        await adapter.chat(first)
    assert (await adapter.chat(first)).text == "a"
    with pytest.raises(ProviderUnavailable):
        await adapter.chat(second)  # another request has its own count
    # custom_id is not part of the request's identity: a resend is the same request.
    assert (await adapter.chat(Request.from_prompt("b", model="echo", custom_id="z"))).text == "b"
    never = mock(faults={"echo": {"kind": "server_error", "times": 0}})
    assert (await never.chat(first)).text == "a"


async def test_a_malformed_answer_goes_through_the_parse_path(mock: Any) -> None:
    request = Request.from_prompt("x", model="echo", custom_id="m-1")
    adapter = mock(faults={"echo": {"kind": "malformed"}})
    with pytest.raises(MalformedResponse, match="answer is not JSON") as caught:
        await adapter.chat(request)
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)
    assert (caught.value.provider, caught.value.custom_id, caught.value.retryable) == (
        "mock",
        "m-1",
        True,
    )


async def test_a_delay_longer_than_the_timeout_times_out() -> None:
    settings = ProviderSettings(
        name="mock", timeout=0.01, options={"faults": {"echo": {"kind": "latency", "seconds": 5}}}
    )
    with pytest.raises(Timeout, match=r"within the 0\.01s timeout"):
        await MockProvider(settings).chat(Request.from_prompt("x", model="echo"))


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("rate_limit", "a fault is a mapping"),
        ({"kind": "explode"}, "kind 'explode' is not one of drip, latency, malformed, rate_limit"),
        ({}, "kind None is not one of"),
        ({"kind": "timeout", "tiems": 2}, "unknown key 'tiems'"),
        ({"kind": "timeout", "times": -1}, "times must be 0 or more"),
        ({"kind": "timeout", "times": 1.5}, "times must be a whole number"),
        ({"kind": "rate_limit", "retry_after": -1}, "retry_after must be a number of seconds"),
        ({"kind": "server_error", "retry_after": 1}, "retry_after applies to rate_limit"),
        ({"kind": "server_error", "seconds": 1}, "seconds applies to drip, latency and timeout"),
        ({"kind": "latency"}, "a latency fault needs seconds"),
        ({"kind": "latency", "latency": "soon"}, "latency must be a number"),
    ],
)
def test_a_bad_fault_says_what_is_wrong(make_hub: Any, fault: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as caught:
        make_hub(CATALOG).chat("mock/echo", "x", provider_kwargs={"mock": {"fault": fault}})
    assert "provider_kwargs['mock']['fault']" in str(caught.value)
    assert not caught.value.retryable


def test_a_bad_catalog_fault_names_its_place(make_hub: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        make_hub(CATALOG).chat("mock/broken", "x")
    assert "providers.mock.options.faults['broken']" in str(caught.value)
    assert "kind 'explode'" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fautls": {}}, "unknown option 'fautls'"),
        ({"faults": ["x"]}, "faults must map model names"),
        ({"batch_duration": -1}, "batch_duration must be seconds"),
        ({"batch_expiry": 0}, "batch_expiry must be seconds > 0"),
        ({"clock": 5}, "clock must be a function"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MockProvider(ProviderSettings(name="mock", options=options))


def test_every_fault_error_is_a_provider_error_with_context(make_hub: Any) -> None:
    hub = make_hub("providers:\n  mock: {max_retries: 0}\n")
    for kind, status in (("rate_limit", 429), ("server_error", 500), ("timeout", None)):
        with pytest.raises(ProviderError) as caught:
            hub.chat("mock/m", "x", provider_kwargs=_fault(kind=kind), custom_id=f"id-{kind}")
        error = caught.value
        assert (error.provider, error.model, error.custom_id, error.status_code) == (
            "mock",
            "m",
            f"id-{kind}",
            status,
        )
