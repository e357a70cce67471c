"""Fixtures for relay-pricing-snapshot's tests. Nothing here reaches the network: the
OpenRouter list replays from ``cassettes/relay-pricing-snapshot`` with vcrpy, and the
failure cases are answered by a server the tests start on 127.0.0.1. Every test gets
its own cache directory and a clean environment."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from relay_core import hookimpl
from relay_core.testing import cassette_player
from relay_pricing_snapshot import _openrouter

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-pricing-snapshot"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The cache directory of this test (``$RELAY_PRICING_CACHE_DIR``)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("RELAY_PRICING_CACHE_DIR", str(directory))
    for name in ("RELAY_PRICING_TTL", "RELAY_OPENROUTER_MODELS_URL", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    # "One warning per process": each test is a fresh process as far as warnings go.
    _openrouter._warned.clear()
    yield directory
    _openrouter._warned.clear()


@pytest.fixture
def cassette() -> Callable[[str], AbstractContextManager[Any]]:
    """``with cassette("openrouter_models"):`` replays the recorded model list."""
    return cassette_player(CASSETTES)


class FirstPartyProviders:
    """Registers relay-mock's adapter under real provider names, so the hub prices
    ``openai/gpt-4.1`` as ``openai`` (the mock answers any model by echoing)."""

    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        for name in ("openai", "anthropic", "gemini", "openrouter"):
            register(name, "relay_mock._provider:MockProvider")


@pytest.fixture
def providers() -> FirstPartyProviders:
    return FirstPartyProviders()


class Answers:
    """A tiny HTTP server on 127.0.0.1 answering every GET with ``status`` and
    ``body``; ``url`` is its models endpoint."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"
        self.requests = 0
        answers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                answers.requests += 1
                self.send_response(answers.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answers.body)))
                self.end_headers()
                self.wfile.write(answers.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/models"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Answers]:
    """A local models server, set as ``$RELAY_OPENROUTER_MODELS_URL``."""
    server = Answers()
    monkeypatch.setenv("RELAY_OPENROUTER_MODELS_URL", server.url)
    yield server
    server.close()
