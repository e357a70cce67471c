"""One real Ray cluster on 127.0.0.1 for the whole module run (it takes seconds to
start), and a provider on loopback that notes when each call arrives."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from relay_core.real_servers import RayCluster, ray_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[RayCluster]:
    with ray_cluster(cpus=4) as running:
        # The driver (this process) must see the cluster on loopback, as the nodes do.
        saved = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        try:
            yield running
        finally:
            if saved is None:
                os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
            else:
                os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = saved


@pytest.fixture
def write_catalog() -> Any:
    return _write_catalog


class ArrivalServer:
    """An OpenAI-compatible ``/v1/chat/completions`` answering every call after
    ``delay`` seconds, with the time each arrived (``arrivals``) and the most calls it
    held at once (``most_in_flight``)."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.prompts: Counter[str] = Counter()
        self.delay = 0.0
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:  # the stdlib's naming
                with owner.lock:
                    owner.arrivals.append(time.monotonic())
                    owner.in_flight += 1
                    owner.most_in_flight = max(owner.most_in_flight, owner.in_flight)
                time.sleep(owner.delay)
                with owner.lock:
                    owner.in_flight -= 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"]
                if isinstance(text, list):
                    text = text[0]["text"]
                with owner.lock:
                    owner.prompts[text] += 1
                payload = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": f"echo: {text}"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ArrivalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture
def arrival_server() -> Iterator[ArrivalServer]:
    with ArrivalServer() as server:
        yield server


def _write_catalog(path: Path, *, latency: float = 0.0, extra: str = "") -> Path:
    """A catalog: ``echo`` answers at once, ``slow`` after ``latency`` seconds."""
    path.write_text(
        "providers:\n"
        "  mock:\n"
        "    options:\n"
        f"      faults: {{slow: {{kind: latency, seconds: {latency}}}}}\n"
        "models:\n"
        "  echo: mock/echo\n"
        "  slow: mock/slow\n" + extra
    )
    return path
