"""Spans and metrics built from Relay's audit events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from relay_core.plugin import hookimpl
from relay_otel import _content
from relay_otel import _conventions as semconv

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider
    from opentelemetry.util.types import AttributeValue

    from relay_core.plugin import AuditEvent, Catalog, GenerationConfig, Request, Response

__all__ = ["OtelTracing"]

_NAME = "relay_otel"
_VERSION = "0.1.0"
_CALL_KINDS = ("call.", "stream.")
_TOOL_KINDS = ("tool.succeeded", "tool.failed")


class OtelTracing:
    """Records every Relay call as an OpenTelemetry GenAI span, and its duration and
    token counts as the conventions' metrics.

    Installed, the plugin builds one of these per hub from the catalog's
    ``plugins.otel``. To register one in code instead (with the plugin not installed,
    or blocked, so calls are not recorded twice)::

        hub.plugins.register(OtelTracing(include_content=True, catalog=hub.catalog))

    ``tracer_provider`` and ``meter_provider`` default to the global ones. ``catalog``
    lets spans carry the catalog's params and the server address; without it they
    carry what the audit event alone says.
    """

    def __init__(
        self,
        *,
        include_content: bool = False,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.include_content = include_content
        self._catalog = catalog
        self._servers: dict[str, dict[str, AttributeValue]] = {}
        self._given = tracer_provider is not None or meter_provider is not None
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(
            _NAME, _VERSION, schema_url=semconv.SCHEMA_URL
        )
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(
            _NAME, _VERSION, schema_url=semconv.SCHEMA_URL
        )
        self._duration = meter.create_histogram(
            semconv.OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            semconv.TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=semconv.TOKEN_BUCKETS,
        )

    @hookimpl
    def relay_audit(self, event: AuditEvent) -> None:
        """One span per call of one model (per member tried, for a group), built when
        the call ends, and one per tool the tool loop runs; batch job events make none."""
        if not self._given and not _providers_set():
            return
        if event.kind in _TOOL_KINDS:
            self._tool_span(event)
            return
        if not event.kind.startswith(_CALL_KINDS) or event.model is None:
            return
        outcome = event.kind.partition(".")[2]
        response = event.response if outcome != "failed" else None
        common = self._common(event, response)
        attributes = {**common, **self._details(event, outcome, response)}
        end = int(event.at * 1e9)
        start = end - int((event.latency or 0.0) * 1e9)
        # Started and ended at once, in the caller's context: the current span when the
        # call was made (async or sync API alike) is the parent.
        span = self._tracer.start_span(
            f"{semconv.OPERATION} {event.model}",
            kind=SpanKind.INTERNAL if outcome == "cached" else SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        if event.error is not None:
            span.set_status(Status(StatusCode.ERROR, event.error.message))
        span.end(end_time=end)
        self._record_metrics(event, outcome, response, common)

    def _tool_span(self, event: AuditEvent) -> None:
        """An ``execute_tool`` span (INTERNAL: the tool ran where the loop did, or on
        an MCP server the toolset talks to), beside the chat spans of its loop."""
        tool = str(event.metadata.get("tool", ""))
        attributes: dict[str, AttributeValue] = {
            semconv.OPERATION_NAME: semconv.EXECUTE_TOOL,
            semconv.TOOL_NAME: tool,
            semconv.TOOL_TYPE: "function",
            "relay.toolset": str(event.metadata.get("toolset", "")),
            "relay.tool_loop.id": str(event.metadata.get("loop", "")),
            "relay.tool_loop.step": int(event.metadata.get("step", 0)),
        }
        if event.metadata.get("call_id"):
            attributes[semconv.TOOL_CALL_ID] = str(event.metadata["call_id"])
        if event.alias:
            attributes["relay.alias"] = event.alias
        if event.error is not None:
            attributes[semconv.ERROR_TYPE] = event.error.kind
        if self.include_content and event.tool_run is not None:
            import json

            attributes[semconv.TOOL_CALL_ARGUMENTS] = json.dumps(
                event.tool_run.call.arguments, ensure_ascii=False
            )
            attributes[semconv.TOOL_CALL_RESULT] = event.tool_run.result.content
        end = int(event.at * 1e9)
        span = self._tracer.start_span(
            f"{semconv.EXECUTE_TOOL} {tool}",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=end - int((event.latency or 0.0) * 1e9),
        )
        if event.error is not None:
            span.set_status(Status(StatusCode.ERROR, event.error.message))
        span.end(end_time=end)

    # -- attributes -----------------------------------------------------------------------

    def _common(self, event: AuditEvent, response: Response | None) -> dict[str, AttributeValue]:
        """The attributes spans and metrics share."""
        provider = event.provider or ""
        registered = self._catalog.plugin_of(provider) if self._catalog else provider
        attributes: dict[str, AttributeValue] = {
            semconv.OPERATION_NAME: semconv.OPERATION,
            semconv.PROVIDER_NAME: semconv.provider_name(registered),
            semconv.REQUEST_MODEL: event.model or "",
            **self._server(provider),
        }
        if response is not None and response.model:
            attributes[semconv.RESPONSE_MODEL] = response.model
        if event.error is not None:
            attributes[semconv.ERROR_TYPE] = event.error.kind
        return attributes

    def _details(
        self, event: AuditEvent, outcome: str, response: Response | None
    ) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {}
        request = event.request
        if request is not None:
            attributes.update(_request_attributes(self._config(event, request)))
            if request.response_schema is not None:
                attributes[semconv.OUTPUT_TYPE] = "json"
        if response is not None:
            attributes.update(_response_attributes(response, cached=outcome == "cached"))
        attributes.update(self._relay_attributes(event, outcome, response))
        if self.include_content:
            attributes.update(_content_attributes(request, response))
        return attributes

    def _config(self, event: AuditEvent, request: Request) -> GenerationConfig:
        """The request's settings with the catalog's params under them, as the provider
        received them (the audit event carries the request before they are merged)."""
        model = self._catalog.models.get(event.alias or "") if self._catalog else None
        return model.params.merged(request.config) if model is not None else request.config

    def _relay_attributes(
        self, event: AuditEvent, outcome: str, response: Response | None
    ) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {
            "relay.alias": event.alias or "",
            "relay.provider": event.provider or "",
            "relay.streaming": event.kind.startswith("stream."),
            "relay.cached": outcome == "cached",
        }
        group = self._group(event)
        if group is not None:
            attributes["relay.group"] = group
        optional: dict[str, Any] = {
            "relay.job_id": event.job_id,
            "relay.custom_id": event.custom_id,
            "relay.caller": event.caller,
            "relay.tags": list(event.tags) or None,
        }
        if event.cost is not None:
            optional.update(
                {
                    "relay.cost.amount": event.cost.amount,
                    "relay.cost.currency": event.cost.currency,
                    "relay.cost.source": event.cost.source,
                }
            )
        if response is not None:
            retries = response.metadata.get("retries")
            optional["relay.retries"] = [str(r) for r in retries] if retries else None
        if event.error is not None:
            optional["relay.error.status_code"] = event.error.status_code
            optional["relay.error.retryable"] = event.error.retryable
        attributes.update({k: v for k, v in optional.items() if v is not None})
        return attributes

    def _group(self, event: AuditEvent) -> str | None:
        # The core names the group (or router) that routed the call.
        return event.group

    def _server(self, provider: str) -> dict[str, AttributeValue]:
        """``server.address`` and ``server.port`` of a provider whose base URL the
        catalog sets (adapters' default URLs are not visible to plugins)."""
        known = self._servers.get(provider)
        if known is None:
            settings = self._catalog.providers.get(provider) if self._catalog else None
            known = _address(settings.base_url) if settings and settings.base_url else {}
            self._servers[provider] = known
        return known

    # -- metrics --------------------------------------------------------------------------

    def _record_metrics(
        self,
        event: AuditEvent,
        outcome: str,
        response: Response | None,
        common: dict[str, AttributeValue],
    ) -> None:
        if outcome == "cached":
            return  # no model was called: nothing to time or count
        if event.latency is not None:
            self._duration.record(event.latency, attributes=common)
        if response is not None:
            usage = response.usage
            for token_type, count in (
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
            ):
                self._tokens.record(count, attributes={**common, semconv.TOKEN_TYPE: token_type})


def _providers_set() -> bool:
    """Whether a tracer or meter provider has been set globally. Until one is, the API
    hands out proxies that drop every span and measurement: installed but not set up,
    the plugin then skips building them, which cost a call about as much as the rest
    of its bookkeeping. Checked per event, so a provider set later is used at once."""
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return True
    # The unset meter provider's class is not public; any other class is a real one.
    return type(metrics.get_meter_provider()).__name__ != "_ProxyMeterProvider"


def _request_attributes(config: GenerationConfig) -> dict[str, AttributeValue]:
    settings: dict[str, Any] = {
        semconv.REQUEST_TEMPERATURE: config.temperature,
        semconv.REQUEST_TOP_P: config.top_p,
        semconv.REQUEST_MAX_TOKENS: config.max_tokens,
        semconv.REQUEST_SEED: config.seed,
        semconv.REQUEST_STOP_SEQUENCES: list(config.stop) if config.stop else None,
    }
    return {key: value for key, value in settings.items() if value is not None}


def _response_attributes(response: Response, *, cached: bool) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        semconv.RESPONSE_FINISH_REASONS: [response.finish_reason],
    }
    if response.id:
        attributes[semconv.RESPONSE_ID] = response.id
    if not cached:  # a stored answer used no tokens this time
        usage = response.usage
        attributes[semconv.USAGE_INPUT_TOKENS] = usage.input_tokens
        attributes[semconv.USAGE_OUTPUT_TOKENS] = usage.output_tokens
        if usage.cached_input_tokens:
            attributes["relay.usage.cached_input_tokens"] = usage.cached_input_tokens
        if usage.reasoning_tokens:
            attributes["relay.usage.reasoning_tokens"] = usage.reasoning_tokens
    return attributes


def _content_attributes(
    request: Request | None, response: Response | None
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    if request is not None:
        if request.system:
            attributes[semconv.SYSTEM_INSTRUCTIONS] = _content.system_instructions(request.system)
        attributes[semconv.INPUT_MESSAGES] = _content.input_messages(request)
        if request.tools:
            attributes[semconv.TOOL_DEFINITIONS] = _content.tool_definitions(request)
    if response is not None:
        attributes[semconv.OUTPUT_MESSAGES] = _content.output_messages(response)
    return attributes


def _address(base_url: str) -> dict[str, AttributeValue]:
    parts = urlsplit(base_url)
    if not parts.hostname:
        return {}
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    address: dict[str, AttributeValue] = {semconv.SERVER_ADDRESS: parts.hostname}
    if port is not None:
        address[semconv.SERVER_PORT] = port
    return address
