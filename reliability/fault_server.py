"""An OpenAI-compatible chat server that fails on purpose, and counts what it did.

``POST /v1/chat/completions`` answers a valid ``chat.completion`` (or an SSE stream for
``stream: true``) whose text is the request's last user message, with usage. A seeded
schedule decides, per request and attempt, whether it fails instead:

=============== ====================================================== ===============
kind            what the client sees                                   billed?
=============== ====================================================== ===============
rate_limit      429 with ``Retry-After`` (a fraction of a second)      no
server_error    500                                                    no
unavailable     503                                                    no
timeout         nothing until after the client's timeout, then the     yes, and lost
                answer (a real provider finishes what it started)
reset           the socket closed (RST) without an answer              no
malformed       200 with half a JSON body (streams: a broken event)    yes, and lost
drip            a valid answer, sent slowly (inside the timeout)       yes
sse_cut         an SSE stream cut mid-event, connection reset          yes, and lost
                (stream requests only)
=============== ====================================================== ===============

Three more kinds are never drawn, only chosen by a test's ``chooser``: ``drip_long`` (each
piece inside the timeout, the whole four times longer), ``sse_cut_clean`` (a stream cut
mid-event by a clean close of a body with no length) and ``status:NNN`` (an error answer
with that status).

A request is known by its last user message, which the tests make unique
(``req-000123``). For each one the server counts how often it was received, how many
answers it billed, how many it delivered whole, how often it was received again after
an answer had been delivered, which faults hit it, and which billed answers were lost in
transit (malformed, cut, or sent after the client gave up): only those may be billed
twice.

The schedule is a function of ``(seed, request, attempt)``, so a run is reproducible
whatever order the threads see the requests in. Standard library only.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["BILLED", "FAULT_KINDS", "LOST_IN_TRANSIT", "FaultServer", "Tally"]

FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "unavailable",
    "timeout",
    "reset",
    "malformed",
    "drip",
    "sse_cut",
)
# Answers a real provider charges for: it generated them, whatever became of them.
BILLED = frozenset({"ok", "drip", "drip_long", "timeout", "malformed", "sse_cut", "sse_cut_clean"})
# Billed answers the client cannot use: the only honest reason to pay for a request twice.
LOST_IN_TRANSIT = frozenset({"timeout", "malformed", "sse_cut", "sse_cut_clean"})

DEFAULT_RATES: Mapping[str, float] = {
    "rate_limit": 0.06,
    "server_error": 0.04,
    "unavailable": 0.04,
    "timeout": 0.02,
    "reset": 0.04,
    "malformed": 0.03,
    "drip": 0.03,
    "sse_cut": 0.03,
}


@dataclass
class Tally:
    """What happened to one request (one unique last user message)."""

    received: int = 0
    billed: int = 0
    delivered: int = 0
    # Received again after an answer had been delivered whole: the client sent a
    # request it already had the answer to.
    after_delivery: int = 0
    faults: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)


Chooser = Callable[[str, int, bool], str]


class FaultServer:
    """The server, on 127.0.0.1 and a free port, served by threads.

    ``rates`` maps fault kinds to probabilities per attempt (the rest are clean answers);
    ``client_timeout`` is the timeout the client was given, which the ``timeout`` fault
    outlasts and ``drip`` stays inside; ``retry_after`` lists the waits a 429 may ask for;
    ``latency`` is a (min, max) delay before every answer; ``echo_auth`` puts the
    request's Authorization header into error bodies, as careless providers do;
    ``chooser(request_id, attempt, stream) -> kind`` replaces the seeded schedule.
    ``on_receive(request_id)`` runs under the server's lock as each request arrives.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        rates: Mapping[str, float] | None = None,
        client_timeout: float = 1.0,
        retry_after: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2),
        latency: tuple[float, float] = (0.0, 0.0),
        echo_auth: bool = False,
        chooser: Chooser | None = None,
    ) -> None:
        self.seed = seed
        self.rates = dict(DEFAULT_RATES if rates is None else rates)
        unknown = set(self.rates) - set(FAULT_KINDS)
        if unknown or sum(self.rates.values()) > 1:
            raise ValueError(f"bad fault rates: {self.rates}")
        self.client_timeout = client_timeout
        self.retry_after = retry_after
        self.latency = latency
        self.echo_auth = echo_auth
        self.chooser = chooser
        self.on_receive: Callable[[str], None] | None = None
        self.epoch = 0
        self.lock = threading.Lock()
        self.tallies: dict[str, Tally] = {}
        self.injected: Counter[str] = Counter()
        self.received = 0
        self.open: Counter[str] = Counter()
        self.authorizations: list[str] = []
        self.handler_errors: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _handler_class(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # -- lifetime -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the schedule ---------------------------------------------------------------------

    def kind_for(self, request_id: str, attempt: int, stream: bool) -> str:
        """``ok`` or the fault this attempt at ``request_id`` gets."""
        if self.chooser is not None:
            return self.chooser(request_id, attempt, stream)
        draw = random.Random(f"{self.seed}/{request_id}/{attempt}").random()
        for kind in FAULT_KINDS:
            rate = self.rates.get(kind, 0.0)
            if draw < rate:
                if kind == "sse_cut" and not stream:
                    return "ok"
                return kind
            draw -= rate
        return "ok"

    # -- what the tests read --------------------------------------------------------------

    def tally(self, request_id: str) -> Tally:
        with self.lock:
            return self.tallies.get(request_id) or Tally()

    def snapshot(self) -> dict[str, Any]:
        """Everything received so far, and what is being answered right now (call it
        under ``lock``, e.g. from ``on_receive``, for an exact picture)."""
        return {
            "received": {rid for rid, t in self.tallies.items() if t.received},
            "delivered": {rid for rid, t in self.tallies.items() if t.delivered},
            "open": {rid for rid, n in self.open.items() if n > 0},
        }

    def wait_quiet(self, seconds: float = 15.0) -> None:
        """Wait until every answer the server started is finished (a ``timeout`` fault
        still sleeps after its client gave up; a killed client's answers still go out)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if not any(self.open.values()):
                    return
            time.sleep(0.02)
        raise AssertionError("the fault server never went quiet")

    def totals(self) -> dict[str, Any]:
        with self.lock:
            tallies = list(self.tallies.values())
            return {
                "requests": len(tallies),
                "received": self.received,
                "billed": sum(t.billed for t in tallies),
                "delivered": sum(t.delivered for t in tallies),
                "faults": dict(sorted(self.injected.items())),
            }

    # -- bookkeeping (called by the handler) ---------------------------------------------

    def _arrive(self, request_id: str, stream: bool) -> str:
        with self.lock:
            tally = self.tallies.setdefault(request_id, Tally())
            attempt = tally.received
            tally.received += 1
            tally.epochs.append(self.epoch)
            if tally.delivered:
                tally.after_delivery += 1
            self.received += 1
            self.open[request_id] += 1
            kind = self.kind_for(request_id, attempt, stream)
            if kind != "ok":
                tally.faults.append(kind)
                self.injected[kind] += 1
            if kind in BILLED:
                tally.billed += 1
            if self.on_receive is not None:
                self.on_receive(request_id)
            return kind

    def _finish(self, request_id: str, kind: str, delivered: bool) -> None:
        with self.lock:
            tally = self.tallies[request_id]
            self.open[request_id] -= 1
            if kind in LOST_IN_TRANSIT:
                tally.lost.append(kind)
            elif kind in BILLED:
                if delivered:
                    tally.delivered += 1
                else:
                    tally.lost.append(f"{kind} (client gone)")

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Dozens of clients connect at once: the default backlog of 5 would drop SYNs and
    # turn into connect timeouts that are the test's doing, not the client's.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-answer is part of the plan


def _last_user_text(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
    return ""


def _completion(request_id: str, prompt: str, model: str, n: int) -> dict[str, Any]:
    tokens = max(1, len(prompt.split()))
    return {
        "id": f"chatcmpl-{request_id}-{n}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": prompt},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": tokens + 3,
            "completion_tokens": tokens,
            "total_tokens": 2 * tokens + 3,
        },
    }


def _chunks(request_id: str, prompt: str, model: str, n: int) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{request_id}-{n}",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    pieces = [prompt[i : i + 4] for i in range(0, len(prompt), 4)] or [""]
    tokens = max(1, len(prompt.split()))
    return [
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": piece}) for piece in pieces),
        chunk({}, finish="stop"),
        {
            "id": f"chatcmpl-{request_id}-{n}",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": tokens + 3,
                "completion_tokens": tokens,
                "total_tokens": 2 * tokens + 3,
            },
        },
    ]


def _handler_class(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # the stdlib's naming
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                body = None
            authorization = self.headers.get("authorization") or ""
            if authorization:
                with server.lock:
                    server.authorizations.append(authorization)
            if self.path.rstrip("/") != "/v1/chat/completions" or not isinstance(body, dict):
                self._json(404, {"error": {"message": f"no route {self.path}"}})
                return
            prompt = _last_user_text(body)
            stream = bool(body.get("stream"))
            kind = server._arrive(prompt, stream)
            delivered = False
            try:
                server._sleep(random.uniform(*server.latency))
                delivered = self._answer(kind, prompt, str(body.get("model") or ""), stream)
            except OSError:
                delivered = False
            finally:
                server._finish(prompt, kind, delivered)

        # -- answers ----------------------------------------------------------------------

        def _answer(self, kind: str, prompt: str, model: str, stream: bool) -> bool:
            """Send what ``kind`` says; return whether a billed answer went out whole."""
            n = server.tally(prompt).received
            if kind == "rate_limit":
                wait = random.Random(f"{server.seed}/{prompt}/{n}/wait").choice(server.retry_after)
                self._error(429, "Rate limit reached; slow down.", {"retry-after": f"{wait:g}"})
            elif kind == "server_error":
                self._error(500, "The server had an error while processing your request.")
            elif kind == "unavailable":
                self._error(503, "The engine is currently overloaded, please try again later.")
            elif kind.startswith("status:"):
                status = int(kind.partition(":")[2])
                self._error(status, "Incorrect API key provided." if status == 401 else "Error.")
            elif kind == "reset":
                # SO_LINGER 0: close() sends RST, as a crashed proxy does.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()
            elif kind == "timeout":
                server._sleep(server.client_timeout + 0.3)
                self._json(200, _completion(prompt, prompt, model, n))
            elif stream:
                return self._stream(kind, prompt, model, n)
            elif kind == "malformed":
                text = json.dumps(_completion(prompt, prompt, model, n)).encode()
                self._raw(200, "application/json", text[: len(text) // 2])
            elif kind in ("drip", "drip_long"):
                text = json.dumps(_completion(prompt, prompt, model, n)).encode()
                whole = server.client_timeout * (0.4 if kind == "drip" else 4.0)
                self._raw(200, "application/json", text, drip=whole)
                return True
            else:
                self._json(200, _completion(prompt, prompt, model, n))
                return True
            return False

        def _error(self, status: int, message: str, headers: Mapping[str, str] = {}) -> None:
            if server.echo_auth:
                message += f" You sent: {self.headers.get('authorization') or '(nothing)'}"
            error = {"message": message, "type": "error", "code": status}
            self._json(status, {"error": error}, headers)

        def _json(self, status: int, payload: Any, headers: Mapping[str, str] = {}) -> None:
            self._raw(status, "application/json", json.dumps(payload).encode(), headers)

        def _raw(
            self,
            status: int,
            media_type: str,
            data: bytes,
            headers: Mapping[str, str] = {},
            *,
            drip: float | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("content-type", media_type)
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if drip is None:
                self.wfile.write(data)
                return
            # In pieces, ``drip`` seconds in all; each gap well inside the client's timeout.
            pieces = max(8, int(drip / server.client_timeout * 2) + 1)
            gap = drip / pieces
            step = max(1, len(data) // pieces + 1)
            for start in range(0, len(data), step):
                self.wfile.write(data[start : start + step])
                self.wfile.flush()
                server._sleep(gap)

        def _stream(self, kind: str, prompt: str, model: str, n: int) -> bool:
            chunks = _chunks(prompt, prompt, model, n)
            events = [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks]
            events.append(b"data: [DONE]\n\n")
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            if kind == "sse_cut_clean":
                # No length and no chunking: the body ends when the connection closes,
                # so a cut looks, on the wire, like the end of the answer.
                self.send_header("connection", "close")
                self.end_headers()
                keep = max(1, len(events) // 2)
                self.wfile.write(b"".join(events[:keep]) + events[keep][: len(events[keep]) // 2])
                self.wfile.flush()
                self.close_connection = True
                return False
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()

            def send(data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            if kind == "sse_cut":
                keep = max(1, len(events) // 2)
                for event in events[:keep]:
                    send(event)
                send(events[keep][: len(events[keep]) // 2])
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()
                return False
            if kind == "malformed":
                events[1] = events[1][: len(events[1]) // 2] + b"\n\n"
            gap = server.client_timeout * 0.4 / len(events) if kind == "drip" else 0.0
            for event in events:
                send(event)
                server._sleep(gap)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return kind != "malformed"

    return Handler
