"""One GenAI span per call of one model, through a real hub in front of relay-mock:
chat, streams, tool calls, errors, groups, cached answers, batch jobs, and parenting
under the application's span."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from otel_support import MemoryCache, Telemetry

import relay_otel
from relay_core import (
    BatchRequest,
    EndEvent,
    Hub,
    ProviderUnavailable,
    RelayClient,
    RelayError,
    Tool,
    parse_catalog,
)

MakeHub = Callable[..., Hub]

CATALOG = """\
providers:
  mock:
    max_retries: 0
    options:
      faults:
        down: {kind: server_error}
models:
  fast:
    target: mock/echo
    params: {temperature: 0.2, top_p: 0.9}
  broken: mock/down
groups:
  resilient: {strategy: fallback, members: [broken, fast]}
"""

WEATHER = Tool(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


async def test_a_chat_call_is_one_client_span_with_the_conventions_attributes(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(CATALOG)
    response = await hub.achat("fast", "What is 2+2?", max_tokens=50, seed=7, stop=["END"])

    span = telemetry.span()
    assert span.name == "chat echo"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "relay_otel"
    attributes = dict(span.attributes or {})
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "mock",
        "gen_ai.request.model": "echo",
        # the catalog's params under the call's own settings, as the provider got them
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.seed": 7,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.response.model": response.model,
        "gen_ai.response.id": response.id,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": response.usage.input_tokens,
        "gen_ai.usage.output_tokens": response.usage.output_tokens,
        "relay.alias": "fast",
        "relay.provider": "mock",
        "relay.streaming": False,
        "relay.cached": False,
        "relay.cost.amount": response.cost.amount,
        "relay.cost.currency": "USD",
        "relay.cost.source": "snapshot",
    }
    assert response.usage.input_tokens > 0
    assert response.cost.amount is not None


async def test_the_span_lasts_as_long_as_the_call(make_hub: MakeHub, telemetry: Telemetry) -> None:
    response = await make_hub().achat("mock/echo", "hello")
    span = telemetry.span()
    assert span.start_time is not None
    assert span.end_time is not None
    assert response.latency is not None
    assert abs((span.end_time - span.start_time) - response.latency * 1e9) < 1_000


async def test_an_async_call_is_a_child_of_the_applications_current_span(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub()
    with telemetry.tracer.start_as_current_span("handle-request") as app:
        await hub.achat("mock/echo", "inside")
    await hub.achat("mock/echo", "outside")

    inside, outside = telemetry.spans()
    assert inside.parent is not None
    assert inside.parent.span_id == app.get_span_context().span_id
    assert inside.context is not None
    assert inside.context.trace_id == app.get_span_context().trace_id
    assert outside.parent is None


def test_a_sync_call_is_a_child_of_the_callers_current_span_too(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    # The sync API runs the call on the hub's own loop thread; the caller's context
    # travels with it (run_coroutine_threadsafe copies it), so parenting holds.
    hub = make_hub()
    with telemetry.tracer.start_as_current_span("job") as app:
        hub.chat("mock/echo", "sync")
        events = list(hub.stream("mock/echo", "sync stream"))
    assert isinstance(events[-1], EndEvent)

    chat, stream = telemetry.spans()
    for span in (chat, stream):
        assert span.parent is not None
        assert span.parent.span_id == app.get_span_context().span_id


async def test_a_stream_is_one_span_ended_with_its_end_event(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(CATALOG)
    with telemetry.tracer.start_as_current_span("app") as app:
        events = [event async for event in hub.astream("fast", "one two three four")]
        end = events[-1]
        assert isinstance(end, EndEvent)
        # Nothing is recorded before the end event: the span is made at the end.
        assert len(events) > 3

    span = telemetry.span()
    attributes = dict(span.attributes or {})
    assert span.name == "chat echo"
    assert attributes["relay.streaming"] is True
    assert attributes["gen_ai.usage.output_tokens"] == end.response.usage.output_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert span.parent is not None
    assert span.parent.span_id == app.get_span_context().span_id


async def test_a_tool_call_answer_reports_its_finish_reason(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    response = await make_hub().achat("mock/echo", "Weather in Paris?", tools=[WEATHER])
    assert response.tool_calls
    assert dict(telemetry.span().attributes or {})["gen_ai.response.finish_reasons"] == (
        "tool_calls",
    )


@pytest.mark.parametrize(
    ("fault", "error_type", "status_code"),
    [
        ({"kind": "server_error"}, "ProviderUnavailable", 500),
        ({"kind": "rate_limit", "retry_after": 0.0}, "RateLimitError", 429),
        ({"kind": "malformed"}, "MalformedResponse", 200),  # the body arrived cut
    ],
)
async def test_a_failed_call_is_an_error_span_with_its_error_type(
    make_hub: MakeHub,
    telemetry: Telemetry,
    fault: dict[str, Any],
    error_type: str,
    status_code: int | None,
) -> None:
    hub = make_hub("providers: {mock: {max_retries: 0}}")
    with pytest.raises(RelayError) as raised:
        await hub.achat("mock/echo", "fail", provider_kwargs={"mock": {"fault": fault}})
    assert type(raised.value).__name__ == error_type

    span = telemetry.span()
    attributes = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == str(raised.value)
    assert attributes["error.type"] == error_type
    assert attributes.get("relay.error.status_code") == status_code
    assert "gen_ai.response.model" not in attributes
    assert "gen_ai.usage.input_tokens" not in attributes


async def test_a_failed_stream_is_an_error_span(make_hub: MakeHub, telemetry: Telemetry) -> None:
    hub = make_hub(CATALOG)
    with pytest.raises(ProviderUnavailable):
        async for _ in hub.astream("broken", "x"):
            pass
    span = telemetry.span()
    assert span.name == "chat down"
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["relay.streaming"] is True


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_group_makes_one_span_per_member_tried(
    make_hub: MakeHub, telemetry: Telemetry, streaming: bool
) -> None:
    hub = make_hub(CATALOG)
    with telemetry.tracer.start_as_current_span("app") as app:
        if streaming:
            events = [event async for event in hub.astream("resilient", "hello")]
            assert isinstance(events[-1], EndEvent)
        else:
            await hub.achat("resilient", "hello")

    failed, answered = telemetry.spans()
    assert failed.name == "chat down"
    assert failed.status.status_code is StatusCode.ERROR
    assert dict(failed.attributes or {})["error.type"] == "ProviderUnavailable"
    assert answered.name == "chat echo"
    assert answered.status.status_code is StatusCode.UNSET
    for span, member in ((failed, "broken"), (answered, "fast")):
        attributes = dict(span.attributes or {})
        assert attributes["relay.alias"] == member
        assert attributes["relay.group"] == "resilient"
        assert span.parent is not None
        assert span.parent.span_id == app.get_span_context().span_id


async def test_a_call_outside_a_group_names_no_group(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    await make_hub(CATALOG).achat("fast", "hello")
    assert "relay.group" not in dict(telemetry.span().attributes or {})


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_cached_answer_is_an_internal_span_that_used_no_tokens(
    make_hub: MakeHub, telemetry: Telemetry, streaming: bool
) -> None:
    hub = make_hub("", MemoryCache())
    await hub.achat("mock/echo", "again", cache=True)
    if streaming:
        events = [e async for e in hub.astream("mock/echo", "again", cache=True)]
        hit = events[-1].response if isinstance(events[-1], EndEvent) else None
    else:
        hit = await hub.achat("mock/echo", "again", cache=True)
    assert hit is not None
    assert hit.metadata["cached"] is True

    first, cached = telemetry.spans()
    assert first.kind is SpanKind.CLIENT
    assert dict(first.attributes or {})["relay.cached"] is False
    assert cached.kind is SpanKind.INTERNAL
    attributes = dict(cached.attributes or {})
    assert attributes["relay.cached"] is True
    assert attributes["relay.streaming"] is streaming
    assert attributes["relay.cost.amount"] == 0.0
    assert attributes["gen_ai.response.id"] == hit.id
    assert "gen_ai.usage.input_tokens" not in attributes
    assert "gen_ai.usage.output_tokens" not in attributes


async def test_provider_names_follow_the_catalog_and_the_server_is_named(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(
        """\
providers:
  offline: {plugin: mock, base_url: "https://llm.internal.example:8443/v1"}
  plain: {plugin: mock, base_url: "http://10.0.0.7/v1"}
"""
    )
    await hub.achat("offline/echo", "hello")
    await hub.achat("plain/echo", "hello")
    await hub.achat("mock/echo", "hello")

    offline, plain, mock = (dict(s.attributes or {}) for s in telemetry.spans())
    assert offline["gen_ai.provider.name"] == "mock"
    assert offline["relay.provider"] == "offline"
    assert (offline["server.address"], offline["server.port"]) == ("llm.internal.example", 8443)
    assert (plain["server.address"], plain["server.port"]) == ("10.0.0.7", 80)
    assert "server.address" not in mock


@pytest.mark.parametrize(
    ("relay_name", "convention"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("gemini", "gcp.gemini"),
        ("mistral", "mistral_ai"),
        ("groq", "groq"),
        ("deepseek", "deepseek"),
        ("xai", "x_ai"),
        ("together", "together"),
        ("mock", "mock"),
    ],
)
def test_relay_provider_names_map_to_the_well_known_values(
    relay_name: str, convention: str
) -> None:
    from relay_otel._conventions import provider_name

    assert provider_name(relay_name) == convention


async def test_caller_tags_and_retries_are_recorded(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    from relay_core.testing import recorded_waits

    hub = make_hub("providers: {mock: {max_retries: 2}}")
    fault = {"kind": "rate_limit", "times": 1, "retry_after": 0.0}
    with recorded_waits():
        await hub.achat(
            "mock/echo",
            "hi",
            tags=["eval"],
            metadata={"caller": "team-a"},
            provider_kwargs={"mock": {"fault": fault}},
        )
    attributes = dict(telemetry.span().attributes or {})
    assert attributes["relay.caller"] == "team-a"
    assert attributes["relay.tags"] == ("eval",)
    assert attributes["relay.retries"] == ("RateLimitError",)


def test_an_engine_batch_job_makes_a_span_per_request(tmp_path: Path, telemetry: Telemetry) -> None:
    catalog = parse_catalog(CATALOG)
    catalog.plugins["otel"] = {
        "tracer_provider": telemetry.tracer_provider,
        "meter_provider": telemetry.meter_provider,
    }
    with RelayClient(tmp_path / "ws", config=catalog) as client:
        # Registered under its entry point's name, so an installed copy is not loaded again.
        client.hub.plugins.register(relay_otel, name="otel")
        client.submit_batch(
            [BatchRequest(id=f"r{i}", prompt=f"question {i}") for i in range(3)],
            job_id="traced",
            model="resilient",
        )
        items = list(client.iter_results("traced"))
    assert all(item.response is not None for item in items)

    spans = telemetry.spans()
    assert len(spans) == 6  # per request: the failing member, then the answering one
    assert {dict(s.attributes or {})["relay.job_id"] for s in spans} == {"traced"}
    answered = sorted(
        dict(s.attributes or {})["relay.custom_id"]
        for s in spans
        if s.status.status_code is StatusCode.UNSET
    )
    assert answered == ["r0", "r1", "r2"]


def test_each_tool_the_tool_loop_runs_is_an_execute_tool_span(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    from relay_core import FunctionToolset

    def get_weather(city: str) -> str:
        """The weather in a city."""
        if city == "Atlantis":
            raise LookupError("no such city")
        return f"sunny in {city}"

    hub = make_hub(CATALOG + "plugins: {otel: {include_content: true}}\n")
    scripted = [
        {"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"id": "c2", "name": "get_weather", "arguments": {"city": "Atlantis"}},
    ]

    answer = hub.run_tools(
        "fast",
        "Weather in Paris and Atlantis?",
        toolsets=[FunctionToolset("weather", get_weather)],
        provider_kwargs={"mock": {"tool_calls": scripted}},
    )

    assert len(answer.steps) == 1
    tools = {s.attributes["gen_ai.tool.call.id"]: s for s in telemetry.spans("execute_tool ")}
    assert set(tools) == {"c1", "c2"}
    paris, atlantis = tools["c1"], tools["c2"]
    assert paris.name == "execute_tool get_weather"
    assert paris.kind is SpanKind.INTERNAL
    assert paris.attributes["gen_ai.operation.name"] == "execute_tool"
    assert paris.attributes["relay.toolset"] == "weather"
    assert paris.attributes["relay.tool_loop.step"] == 1
    assert paris.attributes["gen_ai.tool.call.arguments"] == '{"city": "Paris"}'
    assert paris.attributes["gen_ai.tool.call.result"] == "sunny in Paris"
    assert atlantis.status.status_code is StatusCode.ERROR
    assert atlantis.attributes["error.type"] == "LookupError"
    # Both model calls of the loop are chat spans, as any call.
    assert len(telemetry.spans("chat ")) == 2


def test_tool_arguments_and_results_stay_out_of_spans_by_default(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    from relay_core import FunctionToolset

    def lookup(account: str) -> str:
        """Look an account up."""
        return f"balance of {account}: 12"

    hub = make_hub(CATALOG)
    hub.run_tools(
        "fast",
        "Balance?",
        toolsets=[FunctionToolset("bank", lookup)],
        provider_kwargs={
            "mock": {
                "tool_calls": [{"id": "c1", "name": "lookup", "arguments": {"account": "A-7"}}]
            }
        },
    )

    (span,) = telemetry.spans("execute_tool ")
    assert span.attributes is not None
    assert span.attributes["gen_ai.tool.name"] == "lookup"
    assert not any("A-7" in str(value) for value in span.attributes.values())
