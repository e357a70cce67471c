"""Fixtures for relay-mistral's tests. Nothing here reaches the network: unit tests
answer through ``httpx.MockTransport``, wire-format tests replay the hand-written vcrpy
cassettes in ``cassettes/relay-mistral`` (record mode ``none`` unless RELAY_RECORD says
otherwise). Hubs load no entry points: each registers this plugin in code."""

from __future__ import annotations

from mistral_support import CASSETTES, KEY

import relay_mistral
from relay_core.testing import plugin_fixtures

make_hub, cassette, waits, _keys = plugin_fixtures(
    relay_mistral, cassettes=CASSETTES, keys={"MISTRAL_API_KEY": KEY}
)
