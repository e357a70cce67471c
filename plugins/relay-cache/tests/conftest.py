"""Fixtures for relay-cache's tests. Every hub loads no entry points: relay-mock (the
provider) and relay-cache are registered in code, so the tests see exactly those two."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from cache_support import Calls, Clock

import relay_cache
import relay_mock
from relay_core import Hub, Request, Response, StreamEvent
from relay_core.testing import hub_for
from relay_mock._provider import MockProvider


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Counts the mock adapter's calls: a hit must not reach it."""
    counted = Calls()
    chat, stream = MockProvider.chat, MockProvider.stream

    async def counting_chat(self: MockProvider, request: Request) -> Response:
        if counted.inner:  # the mock's stream answers through its own chat
            counted.inner -= 1
        else:
            counted.chat += 1
        return await chat(self, request)

    async def counting_stream(self: MockProvider, request: Request) -> AsyncIterator[StreamEvent]:
        counted.stream += 1
        counted.inner += 1
        async for event in stream(self, request):
            yield event

    monkeypatch.setattr(MockProvider, "chat", counting_chat)
    monkeypatch.setattr(MockProvider, "stream", counting_stream)
    return counted


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub over catalog text with relay-mock and relay-cache registered in code.

    ``plugins`` are registered too (before relay-cache); ``clock=`` goes into the cache's
    settings (code only). The hub does not close its cache store, so this fixture does.
    """
    hubs: list[Hub] = []

    def make(catalog_text: str = "", *plugins: object, clock: Any = None) -> Hub:
        hub = hub_for(catalog_text, relay_mock, *plugins)
        hub.plugins.register(relay_cache, name="cache")
        if clock is not None:
            hub.catalog.plugins.setdefault("cache", {})["clock"] = clock
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()  # closes the store of a hub used through the sync API
        store = hub.response_cache
        if store is not None:  # one used only through the async API: its loop is gone
            asyncio.run(store.aclose())
