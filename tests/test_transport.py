"""The network transport HttpPool builds when no test transport is given (httpx over
aiohttp): it carries real requests, honours the proxy variables as httpx would, turns
aiohttp's failures into the right Relay errors, and is closed with the pool. Every
server here is on 127.0.0.1; nothing reaches the network."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from relay_core.errors import ProviderUnavailable, Timeout
from relay_core.http import HttpClient, HttpPool
from relay_core.providers import ProviderSettings

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BODY = b'{"ok": true}'
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


async def _request_line(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    await reader.readexactly(length)
    return head.split(b"\r\n")[0]


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Serve], Awaitable[str]]]:
    """Start a server on 127.0.0.1 answering with ``serve``; its base URL."""
    servers: list[asyncio.Server] = []
    handlers: list[asyncio.Task[None]] = []

    async def start(serve: Serve) -> str:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await serve(reader, writer)
            finally:
                writer.close()

        running = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(running)
        port = running.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    yield start
    for running in servers:
        running.close()
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    for running in servers:
        await running.wait_closed()


def _client(pool: HttpPool, base_url: str, timeout: float = 5.0) -> HttpClient:
    return HttpClient(pool, ProviderSettings(name="acme", timeout=timeout), base_url=base_url)


async def test_requests_go_over_the_network_transport_which_the_pool_closes(
    server: Callable[[Serve], Awaitable[str]],
) -> None:
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                seen.append(await _request_line(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(ANSWER)
            await writer.drain()
        writer.close()

    base_url = await server(serve)
    pool = HttpPool()
    client = _client(pool, base_url)
    assert await client.json("POST", "/chat", json={"n": 1}) == {"ok": True}
    assert await client.json("POST", "/chat", json={"n": 2}) == {"ok": True}
    assert seen == [b"POST /v1/chat HTTP/1.1"] * 2
    pooled = pool.client("acme", base_url.rstrip("/"), timeout=5.0)
    session = pooled._transport.session  # type: ignore[attr-defined]
    assert not session.closed
    await pool.aclose()
    assert pooled.is_closed
    assert session.closed


async def test_the_proxy_variables_are_honoured(
    server: Callable[[Serve], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bytes]] = []

    def answering(name: str) -> Serve:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append((name, await _request_line(reader)))
            writer.write(ANSWER)
            await writer.drain()
            writer.close()

        return serve

    proxy_url = (await server(answering("proxy"))).removesuffix("/v1")
    direct_url = await server(answering("direct"))
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    pool = HttpPool()
    assert await _client(pool, "http://api.acme.test/v1").json("GET", "/models") == {"ok": True}
    assert await _client(pool, direct_url).json("GET", "/models") == {"ok": True}
    assert seen == [
        ("proxy", b"GET http://api.acme.test/v1/models HTTP/1.1"),
        ("direct", b"GET /v1/models HTTP/1.1"),
    ]
    await pool.aclose()


async def test_a_refused_connection_is_provider_unavailable_not_a_timeout() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    pool = HttpPool()
    with pytest.raises(ProviderUnavailable) as caught:
        await _client(pool, f"http://127.0.0.1:{port}/v1").json("GET", "/models")
    assert not isinstance(caught.value, Timeout)
    assert caught.value.provider == "acme"
    await pool.aclose()


async def test_a_server_that_hangs_up_is_provider_unavailable_and_a_silent_one_times_out(
    server: Callable[[Serve], Awaitable[str]],
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_line(reader)
        writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_line(reader)
        await asyncio.sleep(10)

    pool = HttpPool()
    with pytest.raises(ProviderUnavailable) as caught:
        await _client(pool, await server(hang_up)).json("POST", "/chat", json={})
    assert not isinstance(caught.value, Timeout)
    with pytest.raises(Timeout):
        await _client(pool, await server(silent), timeout=0.3).json("POST", "/chat", json={})
    await pool.aclose()


async def test_the_url_goes_out_exactly_as_encoded(
    server: Callable[[Serve], Awaitable[str]],
) -> None:
    # A signed request (Bedrock's SigV4) is signed over the path as encoded: re-quoting
    # "%3A" to ":" on the way out would break the signature.
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _request_line(reader))
        writer.write(ANSWER)
        await writer.drain()

    pool = HttpPool()
    client = _client(pool, await server(serve))
    await client.json("POST", "/model/anthropic.claude-v1%3A0/converse?a=b%2Fc", json={})
    assert seen == [b"POST /v1/model/anthropic.claude-v1%3A0/converse?a=b%2Fc HTTP/1.1"]
    await pool.aclose()


async def test_credentials_in_the_url_go_as_a_header_never_in_the_request(
    server: Callable[[Serve], Awaitable[str]],
) -> None:
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(ANSWER)
        await writer.drain()

    pool = HttpPool()
    base = (await server(serve)).replace("http://", "http://admin:S3cret@")
    client = _client(pool, base)
    assert await client.json("POST", "/chat", json={}) == {"ok": True}
    head = heads[0].decode()
    assert head.startswith("POST /v1/chat HTTP/1.1")
    assert "S3cret" not in head.split("\r\n")[0]
    assert "Basic YWRtaW46UzNjcmV0" in head  # admin:S3cret, as httpx's own transport sends
    await pool.aclose()


def test_a_pool_never_closed_says_nothing_when_its_loop_has_ended() -> None:
    # httpx's own clients, dropped unclosed, were silent; a script that runs
    # asyncio.run(main()) and forgets hub.aclose() must not print "Unclosed ..." either.
    script = textwrap.dedent(
        """
        import asyncio, gc
        from relay_core.http import HttpClient, HttpPool
        from relay_core.providers import ProviderSettings

        BODY = b'{"ok": true}'
        ANSWER = b"HTTP/1.1 200 OK\\r\\ncontent-length: %d\\r\\n\\r\\n%s" % (len(BODY), BODY)

        async def main():
            async def serve(reader, writer):
                await reader.readuntil(b"\\r\\n\\r\\n")
                writer.write(ANSWER)
                await writer.drain()
                await asyncio.sleep(3600)  # keeps the connection open, as a server does

            server = await asyncio.start_server(serve, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            pool = HttpPool()
            client = HttpClient(
                pool, ProviderSettings(name="acme"), base_url=f"http://127.0.0.1:{port}"
            )
            assert await client.json("GET", "/") == {"ok": True}

        asyncio.run(main())
        gc.collect()
        print("answered")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "answered", done.stderr
    assert "Unclosed" not in done.stderr, done.stderr
