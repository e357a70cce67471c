"""Fixtures for relay-anthropic's tests. Nothing here reaches the network: unit tests
answer through ``httpx.MockTransport``, wire-format tests replay the hand-written vcrpy
cassettes in ``cassettes/relay-anthropic`` (record mode ``none`` unless RELAY_RECORD
says otherwise). Hubs load no entry points: each registers this plugin in code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from anthropic_support import CASSETTES, KEY

import relay_anthropic
from relay_anthropic._adapter import AnthropicProvider
from relay_core import Hub, ProviderSettings, Secret
from relay_core.http import HttpClient, HttpPool
from relay_core.testing import cassette_player, hub_maker, recorded_waits


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub with this plugin registered in code, answering through ``handler`` (or
    through the real transport, which cassettes replace); closed after the test."""
    with hub_maker(relay_anthropic) as make:
        yield make


@pytest.fixture
def adapter() -> Callable[..., AnthropicProvider]:
    """An adapter built directly over a MockTransport, for tests below the hub."""

    def make(
        handler: Callable[[httpx.Request], httpx.Response], **options: Any
    ) -> AnthropicProvider:
        settings = ProviderSettings(name="anthropic", api_key=Secret(KEY), options=options)
        pool = HttpPool(transport=httpx.MockTransport(handler))
        http = HttpClient(
            pool,
            settings,
            base_url=AnthropicProvider.default_base_url,
            rules=AnthropicProvider.error_rules,
        )
        return AnthropicProvider(settings, http)

    return make


@pytest.fixture
def cassette() -> Callable[[str], AbstractContextManager[Any]]:
    """Replay ``cassettes/relay-anthropic/<name>.yaml`` (relay_core.testing's player:
    record mode from RELAY_RECORD, default ``none``; JSON bodies matched as JSON)."""
    return cassette_player(CASSETTES)


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded
