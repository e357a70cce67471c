"""Fixtures for relay-anthropic's tests. Nothing here reaches the network: unit tests
answer through ``httpx.MockTransport``, wire-format tests replay the hand-written vcrpy
cassettes in ``cassettes/relay-anthropic`` (record mode ``none`` unless RELAY_RECORD
says otherwise). Hubs load no entry points: each registers this plugin in code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from anthropic_support import CASSETTES, KEY

import relay_anthropic
from relay_anthropic._adapter import AnthropicProvider
from relay_core import ProviderSettings, Secret
from relay_core.http import HttpClient, HttpPool
from relay_core.testing import plugin_fixtures

make_hub, cassette, waits, _keys = plugin_fixtures(
    relay_anthropic, cassettes=CASSETTES, keys={"ANTHROPIC_API_KEY": KEY}
)


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
