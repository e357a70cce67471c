"""Fixtures for relay-mock's tests. Hubs load no entry points: each registers the mock
plugin in code, so the tests see exactly this plugin (discovery through the entry point
has its own tests, in subprocesses)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import relay_mock
from relay_core import Hub, ProviderSettings
from relay_core.testing import hub_for, recorded_waits
from relay_mock._batch import MemoryStore
from relay_mock._provider import MockProvider


@pytest.fixture(autouse=True)
def _fresh_batches() -> Iterator[None]:
    # The in-memory batch store is process-wide, like a provider's database: empty it
    # around every test so none sees another's batches.
    MemoryStore.records.clear()
    yield
    MemoryStore.records.clear()


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub over catalog text with relay-mock registered in code; closed after the test."""
    hubs: list[Hub] = []

    def make(catalog_text: str = "") -> Hub:
        hub = hub_for(catalog_text, relay_mock)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
def mock() -> Callable[..., MockProvider]:
    """An adapter built directly, with options, for tests below the hub."""

    def make(**options: Any) -> MockProvider:
        return MockProvider(ProviderSettings(name="mock", options=options))

    return make


class Clock:
    """A clock the test moves by hand: batch progress is a function of it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded
