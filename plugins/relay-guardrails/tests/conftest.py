"""Fixtures for relay-guardrails' tests. Hubs load no entry points: relay-mock (the
provider) and relay-guardrails are registered in code, and the guardrails configure
themselves from the catalog text as they would when installed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import relay_guardrails
import relay_mock
from relay_core import Hub
from relay_core.testing import hub_for, recorded_waits


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub over catalog text with relay-mock, relay-guardrails and ``plugins``
    registered in code; closed after the test."""
    hubs: list[Hub] = []

    def make(catalog_text: str = "", *plugins: object) -> Hub:
        hub = hub_for(catalog_text, relay_mock, relay_guardrails, *plugins)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded
