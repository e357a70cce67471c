"""Request bodies a hostile client sends relay-serve, refused with a 4xx in OpenAI's
shape before any upstream call: too large (413, while it arrives), nested too deep or
holding a lone surrogate (400)."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from serve_support import (
    CATALOG,
    CHAT,
    HELLO,
    RECORDED,
    Served,
    TroublePlugin,
    TroubleProvider,
    error_of,
)

import relay_mock
import relay_serve
from relay_core.testing import hub_for
from relay_serve import ServeSettings, create_app
from relay_serve._wire import MAX_DEPTH

Serve = Callable[..., Served]


# ---------------------------------------------------------------------------- body size


def test_a_body_declared_larger_than_the_limit_is_refused_unread(serve: Serve) -> None:
    server = serve(settings=ServeSettings(max_body_bytes=1000))
    with server.http() as http:
        small = http.post(CHAT, json=HELLO)
        large = http.post(
            CHAT, json={**RECORDED, "messages": [{"role": "user", "content": "x" * 2000}]}
        )
    assert small.status_code == 200
    assert large.status_code == 413
    assert error_of(large)["code"] == "request_too_large"
    assert "max_body_bytes" in error_of(large)["message"]
    assert TroubleProvider.calls == []


async def test_a_body_that_never_ends_is_refused_while_it_arrives() -> None:
    """No Content-Length, and more body for as long as the server reads: it stops at the
    limit and answers 413, having read no more than the limit and one chunk."""
    limit, chunk, cap = 64 * 1024, 16 * 1024, 100 * 1024 * 1024
    hub = hub_for(CATALOG, relay_mock, relay_serve, TroublePlugin())
    app = create_app(hub, ServeSettings(max_body_bytes=limit), close_hub=False)
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read >= cap:
            await asyncio.Event().wait()  # the body "finished": only a disconnect remains
        read += chunk
        return {"type": "http.request", "body": b" " * chunk, "more_body": read < cap}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": CHAT,
        "raw_path": CHAT.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    await hub.aclose()
    assert sent[0]["status"] == 413
    assert read <= limit + chunk
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_too_large"


def test_a_real_server_answers_an_endless_chunked_body_with_413(serve: Serve) -> None:
    """End to end through uvicorn: a chunked body that keeps coming is answered 413
    long before the client is done sending."""
    server = serve(settings=ServeSettings(max_body_bytes=64 * 1024))
    host, port = server.url.removeprefix("http://").split(":")
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    budget = 100 * 1024 * 1024
    answer = b""
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        sock.setblocking(False)
        sent = 0
        sending = True
        deadline = time.monotonic() + 30
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            wanted = [sock] if sending and sent < budget else []
            readable, writable, _ = select.select([sock], wanted, [], 1)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                answer += data
            elif writable:
                try:
                    sent += sock.send(chunk)
                except BlockingIOError:
                    pass
                except OSError:  # the server hung up; its answer may be waiting to be read
                    sending = False
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent < budget // 4


# ---------------------------------------------------------------------------- body content


def _nested(depth: int) -> str:
    """A request body nested ``depth`` deep: the body, its metadata, and lists in it."""
    lists = depth - 2
    deep = "[" * lists + '"deep"' + "]" * lists
    return json.dumps({**RECORDED, "metadata": {"x": "X"}}).replace('"X"', deep)


@pytest.mark.parametrize("depth", [1000, 5000, MAX_DEPTH + 1])
def test_json_nested_too_deep_is_a_400(serve: Serve, depth: int) -> None:
    text = _nested(depth)
    with serve().http() as http:
        answer = http.post(CHAT, content=text, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert f"more than {MAX_DEPTH} deep" in error_of(answer)["message"]
    assert TroubleProvider.calls == []


def test_json_nested_to_the_limit_is_served(serve: Serve) -> None:
    text = _nested(MAX_DEPTH)
    with serve().http() as http:
        answer = http.post(CHAT, content=text, headers={"content-type": "application/json"})
    assert answer.status_code == 502  # the recording provider's answer: it was called
    assert TroubleProvider.calls == ["ProviderUnavailable"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "fast", "messages": [{"role": "user", "content": "a\ud800b"}]}, None),
        ({**RECORDED, "messages": [{"role": "user", "content": "a\udfffb"}]}, None),
        ({**RECORDED, "metadata": {"k\ud800": "v"}}, "metadata"),
        ({**RECORDED, "user": "\udc00"}, "user"),
    ],
)
def test_a_lone_surrogate_is_a_400_before_any_upstream_call(
    serve: Serve, body: dict[str, Any], param: str | None
) -> None:
    # json.dumps writes a lone surrogate as the \ud800 escape, as a hostile client would.
    text = json.dumps(body)
    with serve().http() as http:
        answer = http.post(CHAT, content=text, headers={"content-type": "application/json"})
        streamed = http.post(
            CHAT,
            content=json.dumps({**body, "stream": True}),
            headers={"content-type": "application/json"},
        )
    for each in (answer, streamed):
        assert each.status_code == 400
        error = error_of(each)
        assert error["type"] == "invalid_request_error"
        assert "surrogate" in error["message"]
        assert error["param"] == (param or "messages[0].content")
    assert TroubleProvider.calls == []


async def test_a_client_gone_before_its_body_is_in_is_counted_not_failed() -> None:
    """A connection reset halfway through a body is the client's doing: a 499 counted
    as cancelled, not a 500 logged with a traceback as the server's failure."""
    hub = hub_for(CATALOG, relay_mock, relay_serve, TroublePlugin())
    app = create_app(hub, ServeSettings(), close_hub=False)
    messages = iter(
        [
            {"type": "http.request", "body": b'{"model": "fast", ', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": CHAT,
        "raw_path": CHAT.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    await hub.aclose()
    assert sent[0]["status"] == 499
    text = app.state.relay.metrics.render()
    assert 'relay_serve_cancelled_total{route="/v1/chat/completions"} 1' in text
    assert TroubleProvider.calls == []
