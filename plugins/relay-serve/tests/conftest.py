"""Fixtures for relay-serve's tests: the real server (uvicorn on 127.0.0.1, port 0, in a
background thread) in front of relay-mock, the ``trouble`` provider and relay-serve's own
``pool``. Hubs load no entry points: each registers exactly those in code."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from serve_support import CATALOG, Served, TroublePlugin, TroubleProvider

import relay_mock
import relay_serve
from relay_core.testing import hub_for
from relay_serve import ServeSettings, create_app


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start relay-serve: ``serve(catalog_text=CATALOG, settings=ServeSettings())``;
    other keywords go to :func:`create_app` (``ledger=``, ``state=``)."""
    servers: list[tuple[uvicorn.Server, threading.Thread, socket.socket]] = []

    def start(
        catalog: str = CATALOG, settings: ServeSettings | None = None, **options: Any
    ) -> Served:
        hub = hub_for(catalog, relay_mock, relay_serve, TroublePlugin())
        app = create_app(hub, settings or ServeSettings(), **options)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, log_level="warning", ws="none", http="h11", lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread, sock))
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "the server stopped before it started"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.005)
        served.append(Served(f"http://127.0.0.1:{sock.getsockname()[1]}", app))
        return served[-1]

    served: list[Served] = []
    TroubleProvider.cancelled.clear()
    TroubleProvider.calls.clear()
    yield start
    for each in served:
        each.close()
    for server, thread, sock in servers:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
