"""Settings under ``plugins.otel``, the global providers as the default, discovery and a
light entry point."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import relay_mock
import relay_otel
from relay_core import ConfigError, parse_catalog
from relay_core.testing import hub_for
from relay_otel._settings import Settings


def test_no_section_means_defaults() -> None:
    settings = Settings.parse(parse_catalog(""))
    assert settings == Settings()
    assert settings.include_content is False


def test_include_content_is_read() -> None:
    catalog = parse_catalog("plugins:\n  otel:\n    include_content: true\n")
    assert Settings.parse(catalog).include_content is True


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (
            "plugins:\n  otel:\n    include_contents: true\n",
            "unknown setting 'include_contents'",
            3,
        ),
        (
            "plugins:\n  otel:\n    include_content: 'yes'\n",
            "include_content must be true or false",
            3,
        ),
        (
            "plugins:\n  otel:\n    tracer_provider: otlp\n",
            "tracer_provider is set in code only",
            3,
        ),
    ],
)
def test_a_bad_setting_is_an_error_at_its_line(text: str, message: str, line: int) -> None:
    catalog = parse_catalog(text, path="relay.yaml")
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.parse(catalog)
    assert f"relay.yaml:{line}" in str(raised.value)


def test_a_section_set_in_code_must_be_a_mapping() -> None:
    catalog = parse_catalog("")
    catalog.plugins["otel"] = True  # type: ignore[assignment]
    with pytest.raises(ConfigError, match="must be a mapping, not bool"):
        Settings.parse(catalog)


def test_a_bad_setting_stops_the_first_call() -> None:
    hub = hub_for("plugins:\n  otel:\n    sample: 0.5\n", relay_mock, relay_otel)
    with pytest.raises(ConfigError, match="unknown field 'sample'"):
        hub.chat("mock/echo", "hi")


@pytest.fixture
def global_providers() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    """Global SDK providers for one test."""
    with _global_providers() as providers:
        yield providers


@contextlib.contextmanager
def _global_providers() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    """Global SDK providers until the block ends. The OpenTelemetry API sets them once
    per process, so the API's own state is put back afterwards."""
    from opentelemetry.util._once import Once

    saved = (trace._TRACER_PROVIDER, metrics._internal._METER_PROVIDER)
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    metrics._internal._METER_PROVIDER_SET_ONCE = Once()
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    yield exporter, reader
    trace._TRACER_PROVIDER, metrics._internal._METER_PROVIDER = saved
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    metrics._internal._METER_PROVIDER_SET_ONCE = Once()


def test_without_providers_the_global_ones_are_used(
    global_providers: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, reader = global_providers
    with hub_for("", relay_mock, relay_otel) as hub:
        hub.chat("mock/echo", "hello")
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat echo"
    data = reader.get_metrics_data()
    assert data is not None
    names = {
        metric.name
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert names == {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"}


def test_with_no_provider_set_no_span_is_built_until_one_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Installed but not set up, the plugin must cost a call nothing: the API's proxies
    # would drop every span and measurement it built.
    built: list[str] = []
    common = relay_otel.OtelTracing._common

    def counted(self: Any, event: Any, response: Any) -> Any:
        built.append(event.kind)
        return common(self, event, response)

    monkeypatch.setattr(relay_otel.OtelTracing, "_common", counted)
    with hub_for("", relay_mock, relay_otel) as hub:
        hub.chat("mock/echo", "hello")
        assert built == []
        with _global_providers() as (exporter, _):
            hub.chat("mock/echo", "hello again")
    assert built == ["call.succeeded"]
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat echo"


def test_an_object_registered_in_code_records_calls(
    global_providers: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, _ = global_providers
    with hub_for("", relay_mock) as hub:
        hub.plugins.register(relay_otel.OtelTracing(include_content=True, catalog=hub.catalog))
        hub.chat("mock/echo", "hello")
    (span,) = exporter.get_finished_spans()
    assert "gen_ai.input.messages" in dict(span.attributes or {})


def test_the_entry_point_names_the_module() -> None:
    (entry,) = [ep for ep in entry_points(group="relay") if ep.name == "otel"]
    assert entry.value == "relay_otel"


def test_loading_the_plugin_does_not_import_opentelemetry() -> None:
    code = "import relay_otel, sys; print(any(m.startswith('opentelemetry') for m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
