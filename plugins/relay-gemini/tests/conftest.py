"""Fixtures for relay-gemini's tests. Nothing here reaches the network: unit tests
answer through ``httpx.MockTransport``, wire-format tests replay the hand-written vcrpy
cassettes in ``cassettes/relay-gemini`` (record mode ``none`` unless RELAY_RECORD says
otherwise). Hubs load no entry points: each registers this plugin in code."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from gemini_support import CASSETTES, KEY

import relay_gemini
from relay_core import Hub, ProviderSettings, Secret
from relay_core.http import HttpClient, HttpPool
from relay_core.testing import cassette_player, hub_maker, recorded_waits
from relay_gemini._adapter import GeminiProvider


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Replaying needs a key only to build the adapter; recording uses the shell's real one.
    if os.environ.get("RELAY_RECORD", "none") == "none":
        monkeypatch.setenv("GEMINI_API_KEY", KEY)


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub with this plugin registered in code, answering through ``handler`` (or
    through the real transport, which cassettes replace); closed after the test."""
    with hub_maker(relay_gemini) as make:
        yield make


@pytest.fixture
def adapter() -> Callable[..., GeminiProvider]:
    """An adapter built directly over a MockTransport, for tests below the hub."""

    def make(handler: Callable[[httpx.Request], httpx.Response]) -> GeminiProvider:
        settings = ProviderSettings(name="gemini", api_key=Secret(KEY))
        pool = HttpPool(transport=httpx.MockTransport(handler))
        http = HttpClient(
            pool,
            settings,
            base_url=GeminiProvider.default_base_url,
            rules=GeminiProvider.error_rules,
        )
        return GeminiProvider(settings, http)

    return make


@pytest.fixture
def cassette() -> Callable[[str], AbstractContextManager[Any]]:
    """Replay ``cassettes/relay-gemini/<name>.yaml`` (relay_core.testing's player: method,
    URL and JSON body compared; RELAY_RECORD=once re-records with a real key, credentials
    filtered before anything is written)."""
    return cassette_player(CASSETTES)


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded
