"""Fake OpenAI-compatible backends for the pool and spawn tests. Standard library only.

:class:`FakeBackend` serves ``GET /v1/models``, ``GET /health`` and
``POST /v1/chat/completions`` (JSON or SSE, text or a tool call) on 127.0.0.1, after a
configurable delay, and answers 500 everywhere while ``failing`` is set. It counts the
chat calls it received (``attempts``) and answered (``calls``).

Run as a program (:func:`llama_main`), it stands in for llama.cpp's ``llama-server``:
``-m MODEL --host HOST --port PORT``; it fails like llama.cpp when the model file is
missing, answers ``/health`` with 503 while "loading" (``FAKE_LLAMA_LOADING`` seconds,
0.3 by default), exits on ``POST /crash`` and ignores SIGTERM when
``FAKE_LLAMA_IGNORE_SIGTERM`` is set.
Its ``/health`` body carries its pid, so a test can check that it is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


class FakeBackend:
    """An OpenAI-compatible server on a free port of 127.0.0.1, in a thread."""

    def __init__(self, name: str, *, latency: float = 0.0, port: int = 0) -> None:
        self.name = name
        self.latency = latency
        self.failing = False
        self.loading_until = 0.0
        self.calls = 0
        self.attempts = 0
        self.payloads: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", port), _handler(self))
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeBackend:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def answer(self, payload: dict[str, Any], authorization: str | None) -> tuple[int, Any]:
        """The status and body (a dict, or a list of SSE chunks) for a chat call."""
        time.sleep(self.latency)
        with self._lock:
            self.attempts += 1
            self.authorizations.append(authorization)
        if self.failing:
            # Careless servers echo what they were sent, credentials included.
            message = f"{self.name} is broken (authorization: {authorization})"
            return 500, {"error": {"message": message, "type": "server_error"}}
        with self._lock:
            self.calls += 1
            self.payloads.append(payload)
        if payload.get("tools"):
            call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": payload["tools"][0]["function"]["name"], "arguments": ""},
            }
            arguments = ['{"city": ', '"Paris"}']
            if payload.get("stream"):
                first = {**call, "index": 0}
                chunks = [{"tool_calls": [first]}] + [
                    {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                    for piece in arguments
                ]
                return 200, self._chunks(chunks, "tool_calls")
            call["function"]["arguments"] = "".join(arguments)
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return 200, self._completion(message, "tool_calls")
        text = f"{self.name} says: {payload['messages'][-1]['content']}"
        if payload.get("stream"):
            words = text.split(" ")
            pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
            return 200, self._chunks([{"content": p} for p in pieces], "stop")
        return 200, self._completion({"role": "assistant", "content": text}, "stop")

    def _completion(self, message: dict[str, Any], finish: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": self.name,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": USAGE,
        }

    def _chunks(self, deltas: list[dict[str, Any]], finish: str) -> list[dict[str, Any]]:
        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "model": self.name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        chunks = [chunk({"role": "assistant", **deltas[0]}, None)]
        chunks += [chunk(delta, None) for delta in deltas[1:]]
        chunks.append(chunk({}, finish))
        chunks.append({"id": "chatcmpl-1", "choices": [], "usage": USAGE})
        return chunks


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a probe cancelled by aclose) is no failure of the fake.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(backend: FakeBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet tests

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if backend.failing:
                self._send(500, {"error": {"message": f"{backend.name} is broken"}})
            elif self.path == "/health":
                if time.monotonic() < backend.loading_until:
                    self._send(503, {"error": {"code": 503, "message": "Loading model"}})
                else:
                    self._send(200, {"status": "ok", "pid": os.getpid()})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": backend.name}]})
            else:
                self._send(404, {"error": {"message": f"no {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            payload = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/crash":
                sys.stderr.write("fake llama-server: crashing on purpose\n")
                sys.stderr.flush()
                os._exit(3)
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no {self.path}"}})
                return
            status, body = backend.answer(payload, self.headers.get("authorization"))
            if status != 200 or not isinstance(body, list):
                self._send(status, body)
                return
            data = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in body)
            data += b"data: [DONE]\n\n"
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def llama_main() -> None:
    """A stand-in for ``llama-server -m MODEL --host HOST --port PORT``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    options, _ = parser.parse_known_args()
    print(f"fake llama-server {os.getpid()} loading {options.model}", file=sys.stderr, flush=True)
    if not os.path.exists(options.model):
        print(f"error: failed to load model '{options.model}'", file=sys.stderr, flush=True)
        sys.exit(1)
    if os.environ.get("FAKE_LLAMA_IGNORE_SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    backend = FakeBackend(os.path.basename(options.model), port=options.port)
    backend.loading_until = time.monotonic() + float(os.environ.get("FAKE_LLAMA_LOADING", "0.3"))
    backend.serve_forever()


if __name__ == "__main__":
    llama_main()
