"""Fixtures for relay-otel's tests. Every hub loads no entry points: relay-mock (the
provider) and relay-otel are registered in code, and relay-otel is given SDK providers
with in-memory exporters through its code-only settings, so no global state is touched."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from otel_support import Telemetry

import relay_mock
import relay_otel
from relay_core import Hub
from relay_core.testing import hub_for


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


@pytest.fixture
def make_hub(telemetry: Telemetry) -> Iterator[Callable[..., Hub]]:
    """A hub over catalog text with relay-mock, ``plugins`` and relay-otel registered in
    code; relay-otel configures itself from the catalog (``plugins.otel``) with the
    test's providers added, as an application would add them in code."""
    hubs: list[Hub] = []

    def make(catalog_text: str = "", *plugins: object) -> Hub:
        hub = hub_for(catalog_text, relay_mock, *plugins)
        settings: dict[str, Any] = hub.catalog.plugins.setdefault("otel", {})
        settings["tracer_provider"] = telemetry.tracer_provider
        settings["meter_provider"] = telemetry.meter_provider
        hub.plugins.register(relay_otel, name="otel")
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()
