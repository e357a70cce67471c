"""Fixtures for relay-openai's tests. Hubs load no entry points: each registers the
plugin in code (discovery through the entry point has its own tests, in subprocesses).
Nothing here reaches the network: unit tests answer through ``httpx.MockTransport`` and
wire-format tests replay the cassettes in ``cassettes/relay-openai`` with vcrpy."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import relay_openai
from relay_core import Hub
from relay_core.testing import FakeServer, cassette_player, hub_for, recorded_waits

# Key-shaped on purpose, so the masking of key-shaped text is exercised too.
FAKE_KEY = "sk-test-relayopenaiFAKE0123456789abcdef"
CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-openai"
RECORD_MODE = os.environ.get("RELAY_RECORD", "none")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Replaying needs a key only to build the adapter; recording uses the shell's real one.
    if RECORD_MODE == "none":
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.delenv("OPENAI_ORG_ID", raising=False)
    monkeypatch.delenv("OPENAI_PROJECT_ID", raising=False)


@pytest.fixture
def fake_key() -> str:
    """The key the tests' hubs use (set as OPENAI_API_KEY when replaying)."""
    return FAKE_KEY


@pytest.fixture
def cassette_dir() -> Path:
    return CASSETTES


@pytest.fixture
def server() -> FakeServer:
    """A fake OpenAI: records every request and answers from a queue (the last answer
    repeats)."""
    return FakeServer()


@pytest.fixture
def make_hub(server: FakeServer) -> Iterator[Callable[..., Hub]]:
    """A hub over catalog text with relay-openai registered, answering from ``server``."""
    hubs: list[Hub] = []

    def make(catalog_text: str = "", *, network: bool = False) -> Hub:
        transport = None if network else httpx.MockTransport(server)
        hub = hub_for(catalog_text, relay_openai, transport=transport)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
def cassette() -> Callable[[str], Any]:
    """``with cassette("name"):`` replays ``cassettes/relay-openai/name.yaml``; a request
    it does not hold (method, URL and JSON body compared) fails instead of going out."""
    return cassette_player(CASSETTES)


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded
