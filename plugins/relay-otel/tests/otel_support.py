"""Helpers shared by relay-otel's tests (a module with a name of its own: every plugin's
tests are collected in one run)."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from relay_core import Response, hookimpl


class Telemetry:
    """SDK providers whose spans and metrics the test reads back."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("the-application")

    def spans(self, name_prefix: str = "chat ") -> list[ReadableSpan]:
        """Finished spans made by relay-otel (not the application's own), oldest first."""
        return [s for s in self.exporter.get_finished_spans() if s.name.startswith(name_prefix)]

    def span(self) -> ReadableSpan:
        (only,) = self.spans()
        return only

    def metric(self, name: str) -> Metric | None:
        data = self.reader.get_metrics_data()
        if data is None:
            return None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        return metric
        return None

    def points(self, name: str) -> list[HistogramDataPoint]:
        metric = self.metric(name)
        if metric is None:
            return []
        return [p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)]


class MemoryCache:
    """A response cache plugin in a few lines, so a hit can be traced without
    depending on relay-cache."""

    def __init__(self) -> None:
        self.answers: dict[str, Response] = {}

    @hookimpl
    def relay_register_response_caches(self, register: Callable[..., None]) -> None:
        register("memory", lambda settings: self)

    async def get(self, key: str) -> Response | None:
        return self.answers.get(key)

    async def put(self, key: str, response: Response) -> None:
        self.answers[key] = response

    async def aclose(self) -> None:
        pass
