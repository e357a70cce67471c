"""Fixtures for relay-cohere's tests. Nothing here reaches the network: unit tests
answer through ``httpx.MockTransport``, wire-format tests replay the hand-written vcrpy
cassettes in ``cassettes/relay-cohere`` (record mode ``none`` unless RELAY_RECORD says
otherwise). Hubs load no entry points: each registers this plugin in code."""

from __future__ import annotations

from cohere_support import CASSETTES, KEY

import relay_cohere
from relay_core.testing import plugin_fixtures

make_hub, cassette, waits, _keys = plugin_fixtures(
    relay_cohere, cassettes=CASSETTES, keys={"CO_API_KEY": KEY}
)
