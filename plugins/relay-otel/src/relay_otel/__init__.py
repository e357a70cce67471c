"""relay-otel: OpenTelemetry GenAI spans and metrics for every Relay call.

This module only configures; it stays light because it is imported whenever plugins
load. OpenTelemetry and the span builder (``relay_otel._tracing``) are imported when a
hub configures its plugins, before its first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay_core.plugin import hookimpl, lazy_exports

if TYPE_CHECKING:
    from collections.abc import Callable

    from relay_core.plugin import Catalog
    from relay_otel._tracing import OtelTracing

__all__ = ["OtelTracing"]

__version__ = "0.1.0"


@hookimpl
def relay_configure(catalog: Catalog) -> OtelTracing:
    """Tracing for this hub, as the catalog's ``plugins.otel`` says (on by default:
    installing the plugin is the switch)."""
    from relay_otel._settings import Settings
    from relay_otel._tracing import OtelTracing

    settings = Settings.parse(catalog)
    return OtelTracing(
        include_content=settings.include_content,
        tracer_provider=settings.tracer_provider,
        meter_provider=settings.meter_provider,
        catalog=catalog,
    )


__getattr__, __dir__ = lazy_exports(__name__, globals(), {"OtelTracing": "relay_otel._tracing"})


@hookimpl
def relay_register_settings(register: Callable[..., None]) -> None:
    # tracer_provider and meter_provider are given in code only, but a catalog built in
    # code may carry them.
    register("otel", fields=("include_content", "tracer_provider", "meter_provider"))
