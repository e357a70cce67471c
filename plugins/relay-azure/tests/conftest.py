"""Fixtures for relay-azure's tests. Nothing here reaches the network: unit tests answer
through ``httpx.MockTransport``, wire-format tests replay the hand-written vcrpy cassettes
in ``cassettes/relay-azure`` (record mode ``none`` unless RELAY_RECORD says otherwise).
Hubs load no entry points: each registers this plugin in code."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from azure_support import CASSETTES, CATALOG, KEY

import relay_azure
from relay_core import Hub
from relay_core.testing import cassette_player, hub_for, recorded_waits


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Replaying needs a key only to build the adapter; recording uses the shell's real one.
    if os.environ.get("RELAY_RECORD", "none") == "none":
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
        monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
        monkeypatch.delenv("AZURE_OPENAI_AD_TOKEN", raising=False)


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub with this plugin registered in code, answering through ``handler`` (or
    through the real transport, which cassettes replace); closed after the test."""
    hubs: list[Hub] = []

    def make(
        handler: Callable[[httpx.Request], httpx.Response] | None = None,
        catalog: str = CATALOG,
    ) -> Hub:
        kwargs: dict[str, Any] = {}
        if handler is not None:
            kwargs["transport"] = httpx.MockTransport(handler)
        hub = hub_for(catalog, relay_azure, **kwargs)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
def cassette() -> Callable[[str], AbstractContextManager[Any]]:
    """``with cassette("name"):`` replays ``cassettes/relay-azure/name.yaml`` (method,
    URL with its api-version, and JSON body compared; RELAY_RECORD=once re-records)."""
    return cassette_player(CASSETTES)


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded
