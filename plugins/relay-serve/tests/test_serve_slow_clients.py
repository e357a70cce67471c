"""Slow and heavy clients cannot hold relay-serve: request deadlines, the bound on
connections, repeated log lines folded, the settings for them, and CPU-heavy work kept
off the event loop. (The attack at scale, against ``relay serve`` in its own process, is
in reliability/test_serve_load.py.)"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from serve_support import CATALOG, TroublePlugin

import relay_mock
import relay_serve
from relay_core.cli import cli
from relay_core.config import parse_catalog
from relay_core.errors import ConfigError
from relay_core.testing import hub_for
from relay_serve import ServeSettings, create_app
from relay_serve._connections import capacity, guarded_protocol
from relay_serve._logfold import RepeatFilter

TIMEOUT = 0.5
# How late a drop may come after its deadline on a busy test machine.
SLACK = 1.0


@pytest.fixture(params=["h11", "httptools"])
def guarded(request: pytest.FixtureRequest) -> Iterator[Callable[..., tuple[str, int]]]:
    """Start relay-serve behind the guarded protocol, on each of uvicorn's parsers:
    ``guarded(max_connections=4)`` gives its (host, port)."""
    running: list[tuple[uvicorn.Server, threading.Thread, socket.socket]] = []

    def start(max_connections: int = 64) -> tuple[str, int]:
        settings = ServeSettings(header_timeout=TIMEOUT, body_timeout=TIMEOUT)
        app = create_app(hub_for(CATALOG, relay_mock, relay_serve, TroublePlugin()), settings)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        protocol = guarded_protocol(settings, max_connections, http=request.param)
        config = uvicorn.Config(app, log_level="warning", ws="none", http=protocol)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread, sock))
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "the server stopped before it started"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.005)
        return "127.0.0.1", sock.getsockname()[1]

    yield start
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def _open(address: tuple[str, int], first: bytes) -> socket.socket:
    sock = socket.create_connection(address, timeout=5)
    if first:
        sock.sendall(first)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """How long until the server closes ``sock`` (failing past ``seconds``), reading
    and discarding whatever it sends first."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open over {seconds} s")
    finally:
        sock.close()
    return time.monotonic() - started


def _health(address: tuple[str, int]) -> httpx.Response:
    with httpx.Client(timeout=2) as client:
        return client.get(f"http://{address[0]}:{address[1]}/health")


# ---------------------------------------------------------------------------- deadlines


def test_a_client_slow_to_send_its_headers_is_disconnected(
    guarded: Callable[..., tuple[str, int]],
) -> None:
    address = guarded()
    sock = _open(address, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    for _ in range(3):  # a header now and then does not reset the clock
        time.sleep(TIMEOUT / 4)
        sock.sendall(b"X-Slow: 1\r\n")
    assert _closed_within(sock, TIMEOUT + SLACK) < TIMEOUT + SLACK


def test_a_connection_that_sends_nothing_is_disconnected(
    guarded: Callable[..., tuple[str, int]],
) -> None:
    sock = _open(guarded(), b"")
    assert _closed_within(sock, TIMEOUT + SLACK) <= TIMEOUT + SLACK


def test_a_client_slow_to_send_its_body_is_disconnected(
    guarded: Callable[..., tuple[str, int]],
) -> None:
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    sock = _open(guarded(), head)
    assert _closed_within(sock, TIMEOUT + SLACK) < TIMEOUT + SLACK


def test_a_kept_alive_connection_gets_the_same_deadline_for_its_next_request(
    guarded: Callable[..., tuple[str, int]],
) -> None:
    sock = _open(guarded(), b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200")
    time.sleep(TIMEOUT * 1.5)  # idle between requests is the keep-alive timeout's business
    sock.sendall(b"GET /health HTTP/1.1\r\n")
    assert _closed_within(sock, TIMEOUT + SLACK) < TIMEOUT + SLACK


def test_prompt_clients_are_answered_as_before(
    guarded: Callable[..., tuple[str, int]],
) -> None:
    host, port = guarded()
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=5) as client:
        for _ in range(3):  # on one kept-alive connection
            answer = client.post(
                "/v1/chat/completions",
                json={"model": "fast", "messages": [{"role": "user", "content": "hello"}]},
            )
            assert answer.status_code == 200
            assert answer.json()["choices"][0]["message"]["content"] == "hello"


# ---------------------------------------------------------------------------- the limit


def test_at_the_connection_limit_the_slowest_sender_makes_room(
    guarded: Callable[..., tuple[str, int]],
) -> None:
    address = guarded(max_connections=4)
    slow = [_open(address, b"GET /health HTTP/1.1\r\n") for _ in range(4)]
    time.sleep(0.1)
    started = time.monotonic()
    assert _health(address).status_code == 200
    assert time.monotonic() - started < TIMEOUT  # not after the slow ones timed out
    # The oldest of them gave up its place, at once.
    assert _closed_within(slow[0], 0.2) < 0.2
    for sock in slow[1:]:
        sock.close()


def test_at_the_limit_a_newcomer_is_dropped_when_everyone_is_being_answered(
    guarded: Callable[..., tuple[str, int]],
) -> None:
    address = guarded(max_connections=2)
    body = b'{"model": "stall", "messages": [{"role": "user", "content": "hi"}]}'
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    busy = [_open(address, request) for _ in range(2)]  # answers that never come
    time.sleep(0.2)
    newcomer = _open(address, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert _closed_within(newcomer, 1.0) < 1.0
    for sock in busy:
        sock.close()


def test_the_limit_and_backlog_fit_under_the_open_file_limit() -> None:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    room = capacity(ServeSettings())
    assert 1 <= room.connections <= 4096
    assert 16 <= room.backlog <= 2048
    if soft != resource.RLIM_INFINITY:
        assert room.connections <= soft // 2
        # What asyncio may accept in one go, and as many not yet closed, fit too.
        assert room.connections + 2 * room.backlog < soft
    assert capacity(ServeSettings(max_connections=10)).connections == 10


def test_a_limit_beyond_the_hard_file_limit_is_a_config_error() -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard open-file limit to exceed on this machine")
    with pytest.raises(ConfigError, match="max_connections"):
        capacity(ServeSettings(max_connections=hard))


# ---------------------------------------------------------------------------- settings


def _settings(section: str) -> ServeSettings:
    text = "plugins:\n  serve:\n" + section
    return ServeSettings.from_catalog(parse_catalog(text, path="relay.yaml"))


def test_the_guards_are_read_from_the_catalog_with_safe_defaults() -> None:
    defaults = ServeSettings()
    assert (defaults.header_timeout, defaults.body_timeout) == (10.0, 30.0)
    assert defaults.max_connections is None
    settings = _settings("    header_timeout: 2\n    body_timeout: 4.5\n    max_connections: 300\n")
    assert (settings.header_timeout, settings.body_timeout) == (2.0, 4.5)
    assert settings.max_connections == 300


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ("    header_timeout: 0\n", "header_timeout must be a number of seconds > 0"),
        ("    body_timeout: .inf\n", "body_timeout must be a number of seconds > 0"),
        ("    header_timeout: soon\n", "header_timeout must be a number of seconds > 0"),
        ("    max_connections: 0\n", "max_connections must be a whole number >= 1"),
        ("    max_connections: 1.5\n", "max_connections must be a whole number >= 1"),
    ],
)
def test_bad_guard_settings_point_at_their_line(section: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(section)
    assert (caught.value.file, caught.value.line) == ("relay.yaml", 3)
    assert words in caught.value.reason


def test_relay_validate_knows_the_guard_settings(tmp_path: Path) -> None:
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(
        "models: {fast: mock/echo}\nplugins:\n  serve:\n"
        "    header_timeout: 5\n    body_timeout: 20\n    max_connections: 100\n"
    )
    result = CliRunner().invoke(cli, ["--config", str(catalog), "validate"])
    assert result.exit_code == 0, result.output
    catalog.write_text("plugins:\n  serve:\n    header_timeout: -1\n")
    result = CliRunner().invoke(cli, ["--config", str(catalog), "validate"])
    assert result.exit_code == 2, result.output
    assert "relay.yaml:3" in result.output
    assert "header_timeout" in result.output


# ---------------------------------------------------------------------------- the log


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def folded() -> Iterator[tuple[logging.Logger, list[logging.LogRecord], _Clock]]:
    clock = _Clock()
    lines: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = lines.append  # type: ignore[method-assign]
    fold = RepeatFilter(window=10.0, clock=clock)
    handler.addFilter(fold)
    logger = logging.getLogger("relay-test.fold")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, lines, clock
    fold.flush()
    logger.removeHandler(handler)


def test_repeated_lines_are_folded_into_a_count(
    folded: tuple[logging.Logger, list[logging.LogRecord], _Clock],
) -> None:
    logger, lines, clock = folded
    for port in range(1000):  # lines differing only in numbers are one kind
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            logger.error("accept failed on fd %d", port, exc_info=True)
    logger.warning("something else")
    assert [line.getMessage() for line in lines] == ["accept failed on fd 0", "something else"]
    assert lines[0].exc_info is not None
    clock.now = 10.0
    logger.error("accept failed on fd %d", 1000, exc_info=True)
    assert lines[-1].getMessage() == "accept failed on fd 1000 (repeated 999 times)"
    assert lines[-1].exc_info is None  # the traceback once, not with every count


def test_a_count_not_yet_written_is_written_at_shutdown() -> None:
    lines: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = lines.append  # type: ignore[method-assign]
    fold = RepeatFilter()
    handler.addFilter(fold)
    logger = logging.getLogger("relay-test.flush")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for _ in range(5):
            logger.warning("dropped a slow connection")
        fold.flush()
    finally:
        logger.removeHandler(handler)
    assert [line.getMessage() for line in lines] == [
        "dropped a slow connection",
        "dropped a slow connection (repeated 4 times)",
    ]


# ---------------------------------------------------------------------------- heavy work


def test_health_answers_while_a_request_makes_the_provider_work_hard(
    guarded: Callable[..., tuple[str, int]],
) -> None:
    host, port = guarded()
    url = f"http://{host}:{port}"

    async def race() -> tuple[httpx.Response, list[float]]:
        # About the most work relay-mock accepts (nearly its MAX_CHARS, each character
        # drawn apart): half a second of CPU, which must not stop the event loop.
        heavy = {
            "model": "fast",
            "messages": [{"role": "user", "content": "a list"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "many",
                    "schema": {
                        "type": "array",
                        "minItems": 2_700,
                        "items": {"type": "string", "format": "uuid"},
                    },
                },
            },
        }
        waits: list[float] = []  # of the checks answered while the call still ran
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            call = asyncio.ensure_future(client.post("/v1/chat/completions", json=heavy))
            await asyncio.sleep(0.05)
            while not call.done():
                started = time.monotonic()
                assert (await client.get("/health")).status_code == 200
                if not call.done():
                    waits.append(time.monotonic() - started)
                await asyncio.sleep(0.01)
            return await call, waits

    answer, waits = asyncio.run(race())
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["choices"][0]["message"]["content"]) > 2_700 * 36
    # A blocked loop answers no check before the call is done: how many are answered
    # meanwhile depends on the machine's speed, that one is and promptly does not.
    assert waits, "no health check was answered while the heavy call ran"
    assert max(waits) < 0.25, waits


def test_a_schema_beyond_the_mock_limit_is_refused_at_once(
    guarded: Callable[..., tuple[str, int]],
) -> None:
    host, port = guarded()
    heavy = {
        "model": "fast",
        "messages": [{"role": "user", "content": "a list"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "many", "schema": {"type": "array", "minItems": 100_000_000}},
        },
    }
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        answer = client.post(f"http://{host}:{port}/v1/chat/completions", json=heavy)
    assert time.monotonic() - started < 1.0
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert "minItems 100000000" in message
    assert "at most 10000 values" in message


async def test_a_stream_whose_first_send_fails_gives_back_its_slot() -> None:
    # The connection breaks as the stream's head is sent: the frames' generator never
    # starts, so closing it runs none of its cleanup; the response must give the slot
    # back itself, or the server loses one for good each time.
    app = create_app(hub_for(CATALOG, relay_mock, relay_serve), ServeSettings(max_concurrency=1))
    server = app.state.relay
    body = b'{"model": "fast", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    delivered = False

    async def receive() -> dict[str, object]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client says nothing more
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        raise OSError("connection reset by peer")

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")],
    }
    with pytest.raises(BaseException):  # noqa: B017, PT011 - whatever the server makes of it
        await app(scope, receive, send)
    assert (server.gate.in_flight, server.gate.waiting) == (0, 0)
    samples = server.metrics.render({})
    assert 'relay_serve_cancelled_total{route="/v1/chat/completions"} 1' in samples
    await server.hub.aclose()
