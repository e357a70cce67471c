"""Fixtures for relay-openai's tests. Hubs load no entry points: each registers the
plugin in code (discovery through the entry point has its own tests, in subprocesses).
Nothing here reaches the network: unit tests answer through ``httpx.MockTransport`` and
wire-format tests replay the cassettes in ``cassettes/relay-openai`` with vcrpy."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import relay_openai
from relay_core import Hub
from relay_core.testing import hub_for, recorded_waits

# Key-shaped on purpose, so the masking of key-shaped text is exercised too.
FAKE_KEY = "sk-test-relayopenaiFAKE0123456789abcdef"
CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-openai"
RECORD_MODE = os.environ.get("RELAY_RECORD", "none")
FILTER_HEADERS = [
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "openai-organization",
    "openai-project",
    "anthropic-organization-id",
    "cookie",
    "set-cookie",
]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Replaying needs a key only to build the adapter; recording uses the shell's real one.
    if RECORD_MODE == "none":
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.delenv("OPENAI_ORG_ID", raising=False)
    monkeypatch.delenv("OPENAI_PROJECT_ID", raising=False)


class Server:
    """A fake OpenAI: records every request and answers from a queue (the last answer
    repeats)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answers: list[httpx.Response] = []

    def reply(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.answers.append(httpx.Response(status, json=body, headers=headers))

    def reply_sse(self, events: list[Any], *, named: bool = False) -> None:
        text = ""
        for event in events:
            data = event if isinstance(event, str) else json.dumps(event)
            if named and isinstance(event, dict):
                text += f"event: {event['type']}\n"
            text += f"data: {data}\n\n"
        self.answers.append(
            httpx.Response(
                200, content=text.encode(), headers={"content-type": "text/event-stream"}
            )
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer

    @property
    def sent(self) -> Any:
        """The JSON body of the last request."""
        return json.loads(self.requests[-1].content)


@pytest.fixture
def fake_key() -> str:
    """The key the tests' hubs use (set as OPENAI_API_KEY when replaying)."""
    return FAKE_KEY


@pytest.fixture
def cassette_dir() -> Path:
    return CASSETTES


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def make_hub(server: Server) -> Iterator[Callable[..., Hub]]:
    """A hub over catalog text with relay-openai registered, answering from ``server``."""
    hubs: list[Hub] = []

    def make(catalog_text: str = "", *, network: bool = False) -> Hub:
        transport = None if network else httpx.MockTransport(server.handler)
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
    import vcr

    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode=RECORD_MODE,
        filter_headers=FILTER_HEADERS,
        filter_query_parameters=["key"],
        match_on=["method", "scheme", "host", "port", "path", "query", "body"],
        decode_compressed_response=True,
    )

    def use(name: str) -> Any:
        return recorder.use_cassette(f"{name}.yaml", allow_playback_repeats=False)

    return use


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded
