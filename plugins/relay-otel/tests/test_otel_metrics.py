"""The conventions' two client metrics: operation duration and token usage, with their
units, bucket boundaries and attributes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from otel_support import MemoryCache, Telemetry

from relay_core import EndEvent, Hub, ProviderUnavailable
from relay_otel._conventions import DURATION_BUCKETS, TOKEN_BUCKETS

MakeHub = Callable[..., Hub]

CATALOG = """\
providers:
  mock:
    max_retries: 0
    options:
      faults:
        down: {kind: server_error}
models:
  fast: mock/echo
"""


async def test_duration_is_recorded_per_call_in_seconds_with_the_documented_buckets(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(CATALOG)
    first = await hub.achat("fast", "one")
    second = await hub.achat("fast", "two words")

    metric = telemetry.metric("gen_ai.client.operation.duration")
    assert metric is not None
    assert metric.unit == "s"
    (point,) = telemetry.points("gen_ai.client.operation.duration")
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    assert point.count == 2
    assert first.latency is not None
    assert second.latency is not None
    assert point.sum == pytest.approx(first.latency + second.latency)
    assert dict(point.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "mock",
        "gen_ai.request.model": "echo",
        "gen_ai.response.model": first.model,
    }


async def test_token_usage_is_recorded_by_token_type(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(CATALOG)
    chat = await hub.achat("fast", "count these words please")
    events = [e async for e in hub.astream("fast", "and these")]
    streamed = events[-1].response if isinstance(events[-1], EndEvent) else None
    assert streamed is not None

    metric = telemetry.metric("gen_ai.client.token.usage")
    assert metric is not None
    assert metric.unit == "{token}"
    points = {p.attributes["gen_ai.token.type"]: p for p in telemetry.points(metric.name)}
    assert set(points) == {"input", "output"}
    for point in points.values():
        assert tuple(point.explicit_bounds) == TOKEN_BUCKETS
        assert point.count == 2  # the chat and the stream
        assert point.attributes["gen_ai.request.model"] == "echo"
    assert points["input"].sum == chat.usage.input_tokens + streamed.usage.input_tokens
    assert points["output"].sum == chat.usage.output_tokens + streamed.usage.output_tokens


async def test_a_failure_records_its_duration_with_the_error_type_and_no_tokens(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(CATALOG)
    with pytest.raises(ProviderUnavailable):
        await hub.achat("mock/down", "x")

    (point,) = telemetry.points("gen_ai.client.operation.duration")
    assert dict(point.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "mock",
        "gen_ai.request.model": "down",
        "error.type": "ProviderUnavailable",
    }
    assert telemetry.points("gen_ai.client.token.usage") == []


async def test_metrics_of_two_models_are_kept_apart(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(CATALOG)
    await hub.achat("mock/echo", "a")
    await hub.achat("mock/think", "b")
    models = sorted(
        str(p.attributes["gen_ai.request.model"])
        for p in telemetry.points("gen_ai.client.operation.duration")
    )
    assert models == ["echo", "think"]


async def test_a_cached_answer_adds_no_measurement(make_hub: MakeHub, telemetry: Telemetry) -> None:
    hub = make_hub("", MemoryCache())
    await hub.achat("mock/echo", "same", cache=True)
    await hub.achat("mock/echo", "same", cache=True)

    assert len(telemetry.spans()) == 2
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert {p.count for p in telemetry.points("gen_ai.client.token.usage")} == {1}
