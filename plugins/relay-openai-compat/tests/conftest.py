"""Fixtures for relay-openai-compat's tests. Hubs load no entry points: each registers the
plugin in code (discovery through the entry point has its own test, in a subprocess).
Nothing here leaves the machine: unit tests answer through ``httpx.MockTransport``,
wire-format tests replay ``cassettes/relay-openai-compat`` with vcrpy, and the local-server
tests talk to an HTTP server on 127.0.0.1 that the test itself starts and stops."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import relay_openai_compat
from relay_core import Hub
from relay_core.testing import FakeServer, cassette_player, hub_for, recorded_waits

# Key-shaped on purpose, so the masking of key-shaped text is exercised too.
FAKE_KEY = "sk-test-relaycompatFAKE0123456789abcdef"
KEY_VARS = (
    "TOGETHER_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
    "FIREWORKS_API_KEY",
    "OPENROUTER_API_KEY",
)
CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-openai-compat"
RECORD_MODE = os.environ.get("RELAY_RECORD", "none")


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Replaying needs a key only to build the adapter; recording uses the shell's real one.
    if RECORD_MODE == "none":
        for name in KEY_VARS:
            monkeypatch.setenv(name, FAKE_KEY)
    monkeypatch.delenv("OPENAI_ORG_ID", raising=False)
    monkeypatch.delenv("OPENAI_PROJECT_ID", raising=False)


def sse(events: list[Any]) -> bytes:
    """A ``text/event-stream`` body: one ``data:`` event per item, then ``[DONE]``."""
    text = "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)
    return (text + "data: [DONE]\n\n").encode()


class Server(FakeServer):
    """The core's fake server, whose streams end with ``data: [DONE]`` as every server
    of the family ends them."""

    def reply_sse(self, events: list[Any], *, named: bool = False, done: bool = True) -> None:
        super().reply_sse(events, named=named, done=done)


@pytest.fixture
def fake_key() -> str:
    return FAKE_KEY


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def make_hub(server: Server) -> Iterator[Callable[..., Hub]]:
    """A hub over catalog text with relay-openai-compat registered, answering from
    ``server`` (or from the network, i.e. a cassette or a local server, with network)."""
    hubs: list[Hub] = []

    def make(catalog_text: str = "", *, network: bool = False) -> Hub:
        transport = None if network else httpx.MockTransport(server)
        hub = hub_for(catalog_text, relay_openai_compat, transport=transport)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
def cassette() -> Callable[[str], Any]:
    """``with cassette("name"):`` replays ``cassettes/relay-openai-compat/name.yaml``; a
    request it does not hold (method, URL and JSON body compared) fails instead of going
    out."""
    return cassette_player(CASSETTES)


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """The hub's retry waits, recorded instead of slept through."""
    with recorded_waits() as recorded:
        yield recorded


# ---------------------------------------------------------------------------- local server


class LocalServer:
    """A tiny OpenAI-compatible server on 127.0.0.1: canned JSON for chat, canned SSE for
    streams; it records each request's path, headers and JSON body."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer: Any = None
        self.stream: list[Any] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's naming
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                recorder.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                if isinstance(body, dict) and body.get("stream"):
                    payload, kind = sse(recorder.stream), "text/event-stream"
                else:
                    payload, kind = json.dumps(recorder.answer).encode(), "application/json"
                self.send_response(200)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    served = LocalServer()
    served.thread.start()
    try:
        yield served
    finally:
        served.httpd.shutdown()
        served.httpd.server_close()
        served.thread.join()
