"""Fixtures for relay-audit's tests. Hubs load no entry points: relay-mock (the
provider) and relay-audit are registered in code, so a test sees exactly those two."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from audit_support import MakeHub

import relay_audit
import relay_mock
from relay_core import Hub
from relay_core.testing import hub_for, recorded_waits


@pytest.fixture
def make_hub() -> Iterator[MakeHub]:
    """A hub over catalog text with relay-mock and relay-audit registered in code."""
    hubs: list[Hub] = []

    def make(catalog_text: str, *plugins: object) -> Hub:
        hub = hub_for(catalog_text, relay_mock, relay_audit, *plugins)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        plugin = relay_audit.audit_plugin(hub)
        if plugin is not None:
            plugin.close()
        hub.close()


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded
