"""Fixtures for relay-redact's tests: hubs that load no entry points and register
relay-mock and this plugin in code, so each test sees exactly these two."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import relay_mock
import relay_redact
from relay_core import Hub
from relay_core.testing import hub_for, recorded_waits
from relay_mock._batch import MemoryStore


@pytest.fixture(autouse=True)
def _fresh_batches() -> Iterator[None]:
    MemoryStore.records.clear()
    yield
    MemoryStore.records.clear()


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub over catalog text with relay-mock and relay-redact registered; closed after
    the test. Extra plugins (a capturing sink...) come after the catalog text."""
    hubs: list[Hub] = []

    def make(catalog_text: str = "", *plugins: object) -> Hub:
        hub = hub_for(catalog_text, relay_mock, relay_redact, *plugins)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
def waits() -> Iterator[list[float]]:
    with recorded_waits() as recorded:
        yield recorded
