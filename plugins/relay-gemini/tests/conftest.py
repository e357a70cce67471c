"""Fixtures for relay-gemini's tests. Nothing here reaches the network: unit tests
answer through ``httpx.MockTransport``, wire-format tests replay the hand-written vcrpy
cassettes in ``cassettes/relay-gemini`` (record mode ``none`` unless RELAY_RECORD says
otherwise). Hubs load no entry points: each registers this plugin in code."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from gemini_support import CASSETTES, KEY

import relay_gemini
from relay_core import ProviderSettings, Secret
from relay_core.http import HttpClient, HttpPool
from relay_core.testing import plugin_fixtures
from relay_gemini._adapter import GeminiProvider

make_hub, cassette, waits, _keys = plugin_fixtures(
    relay_gemini, cassettes=CASSETTES, keys={"GEMINI_API_KEY": KEY}
)


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
