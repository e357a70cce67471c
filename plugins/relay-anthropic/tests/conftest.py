"""Fixtures for relay-anthropic's tests. Nothing here reaches the network: unit tests
answer through ``httpx.MockTransport``, wire-format tests replay the hand-written vcrpy
cassettes in ``cassettes/relay-anthropic`` (record mode ``none`` unless RELAY_RECORD
says otherwise). Hubs load no entry points: each registers this plugin in code."""

from __future__ import annotations

import json
import os
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
from relay_core.testing import hub_for, recorded_waits


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub with this plugin registered in code, answering through ``handler`` (or
    through the real transport, which cassettes replace); closed after the test."""
    hubs: list[Hub] = []

    def make(
        handler: Callable[[httpx.Request], httpx.Response] | None = None, catalog: str = ""
    ) -> Hub:
        kwargs: dict[str, Any] = {}
        if handler is not None:
            kwargs["transport"] = httpx.MockTransport(handler)
        hub = hub_for(catalog, relay_anthropic, **kwargs)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


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
    """Replay ``cassettes/relay-anthropic/<name>.yaml``; RELAY_RECORD=once re-records
    (with a real key in the environment), credentials filtered before writing."""
    import vcr

    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode=os.environ.get("RELAY_RECORD", "none"),
        filter_headers=[
            "authorization",
            "x-api-key",
            "api-key",
            "x-goog-api-key",
            "openai-organization",
            "openai-project",
            "anthropic-organization-id",
            "cookie",
            "set-cookie",
        ],
        filter_query_parameters=["key"],
        match_on=["method", "scheme", "host", "port", "path", "query", "json_body"],
    )
    recorder.register_matcher("json_body", _same_json_body)

    def use(name: str) -> AbstractContextManager[Any]:
        return recorder.use_cassette(f"{name}.yaml")  # type: ignore[no-any-return]

    return use


def _same_json_body(sent: Any, recorded: Any) -> None:
    """Bodies match when they are the same JSON (or both empty), so a cassette pins
    exactly what the adapter sends, whatever the key order or spacing."""

    def value(body: Any) -> Any:
        if not body:
            return None
        return json.loads(body.decode() if isinstance(body, bytes) else body)

    assert value(sent.body) == value(recorded.body)


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded
