"""Fixtures for relay-cohere's tests. Nothing here reaches the network: unit tests
answer through ``httpx.MockTransport``, wire-format tests replay the hand-written vcrpy
cassettes in ``cassettes/relay-cohere`` (record mode ``none`` unless RELAY_RECORD says
otherwise). Hubs load no entry points: each registers this plugin in code."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from cohere_support import CASSETTES, KEY

import relay_cohere
from relay_core import Hub
from relay_core.testing import cassette_player, hub_maker, recorded_waits


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Replaying needs a key only to build the adapter; recording uses the shell's real one.
    if os.environ.get("RELAY_RECORD", "none") == "none":
        monkeypatch.setenv("CO_API_KEY", KEY)


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub with this plugin registered in code, answering through ``handler`` (or
    through the real transport, which cassettes replace); closed after the test."""
    with hub_maker(relay_cohere) as make:
        yield make


@pytest.fixture
def cassette() -> Callable[[str], AbstractContextManager[Any]]:
    """``with cassette("name"):`` replays ``cassettes/relay-cohere/name.yaml``."""
    return cassette_player(CASSETTES)


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded
