"""Fixtures for relay-vertex's tests. Nothing here reaches the network: Vertex answers
through ``httpx.MockTransport`` or the hand-written cassettes in ``cassettes/relay-vertex``,
and the OAuth token endpoint is a server the tests start on 127.0.0.1. Hubs load no entry
points: each registers this plugin in code."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from vertex_support import (
    CASSETTES,
    PROJECT,
    RECORDING,
    TokenServer,
    private_key_pem,
    service_account,
)

import relay_vertex
from relay_core import Hub
from relay_core.testing import cassette_player, hub_for, recorded_waits

_PRIVATE_KEY = private_key_pem()  # generating one takes a moment: once per session


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The shell's Google settings must not steer the tests (recording uses them).
    if RECORDING:
        return
    for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def tokens() -> Iterator[TokenServer]:
    with TokenServer().running() as server:
        yield server


@pytest.fixture
def token_server(tokens: TokenServer) -> TokenServer:
    """The token endpoint, its record and settings fresh for each test."""
    tokens.grants.clear()
    tokens.expires_in = 3600
    tokens.refusal = None
    return tokens


@pytest.fixture
def private_key() -> str:
    return _PRIVATE_KEY


@pytest.fixture
def key_file(tmp_path: Path, token_server: TokenServer, private_key: str) -> Path:
    """A service-account key file whose token_uri is the test's token endpoint."""
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(service_account(token_server.url, private_key)))
    return path


@pytest.fixture
def catalog(key_file: Path) -> Callable[..., str]:
    """Catalog text for both providers with the test's key (``options`` added to each)."""

    def make(**options: Any) -> str:
        entry: dict[str, Any] = {"api_key": f"file:{key_file}", "max_retries": 0}
        if RECORDING:  # the shell's credentials and project
            del entry["api_key"]
            options.pop("project", None)
        entry["options"] = options
        return "providers: " + json.dumps(
            {"vertex": entry, "vertex-openai": {**entry, "options": dict(options)}}
        )

    return make


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub with this plugin registered in code, answering through ``handler`` (or
    through the real transport, which cassettes replace); closed after the test."""
    hubs: list[Hub] = []

    def make(catalog: str, handler: Callable[[httpx.Request], httpx.Response] | None = None) -> Hub:
        kwargs: dict[str, Any] = {}
        if handler is not None:
            kwargs["transport"] = httpx.MockTransport(handler)
        hub = hub_for(catalog, relay_vertex, **kwargs)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
def cassette() -> Callable[[str], AbstractContextManager[Any]]:
    """Replay ``cassettes/relay-vertex/<name>.yaml`` (relay_core.testing's player)."""
    return cassette_player(CASSETTES)


@pytest.fixture
def waits() -> Iterator[list[float]]:
    with recorded_waits() as recorded:
        yield recorded


__all__ = ["PROJECT"]
