"""httpx over aiohttp: the transport of the clients :class:`relay_core.http.HttpPool`
builds for the network.

httpx stays the API adapters use; only the sending is aiohttp's. Measured on an
instant local server, this takes about half the time per request of httpx's own async
transport, where httpcore asks anyio (through sniffio) for the current task and checks
each pooled connection with ``getpeername`` on every request.

What the wire sees stays what httpx built: the URL goes out exactly as encoded (a
signed request, such as Bedrock's SigV4 over ``%3A`` in a model id, must not be
re-quoted), and aiohttp's failures become httpx's own exceptions, which
:func:`relay_core.http.translate_transport_error` turns into Relay's.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
import yarl

if TYPE_CHECKING:
    import ssl

__all__ = ["AiohttpTransport"]


@contextmanager
def _as_httpx(request: httpx.Request, *, reading: bool) -> Iterator[None]:
    """aiohttp's failures as the httpx exceptions httpx's own transport raises."""
    try:
        yield
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as error:
        text = str(error) or type(error).__name__
        if isinstance(error, aiohttp.ConnectionTimeoutError):
            raise httpx.ConnectTimeout(text, request=request) from error
        raise httpx.ReadTimeout(text, request=request) from error
    except aiohttp.ClientConnectorError as error:
        raise httpx.ConnectError(str(error), request=request) from error
    except aiohttp.InvalidURL as error:
        raise httpx.UnsupportedProtocol(str(error), request=request) from error
    except aiohttp.ClientError as error:
        # The server hung up, reset the connection or sent a broken body.
        text = f"{type(error).__name__}: {error}"
        if reading:
            raise httpx.ReadError(text, request=request) from error
        raise httpx.RemoteProtocolError(text, request=request) from error


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx(self._request, reading=True):
            # Whatever has arrived, at once: a stream's events must not wait for a
            # buffer to fill.
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # Read whole, the connection goes back to the pool; cut short, it is closed.
        self._response.release()


def _forget(session: aiohttp.ClientSession) -> None:
    """Let go of the session of a transport dropped without being closed (an adapter
    built by hand, a hub never closed), quietly, as httpx's own clients were.

    Detached, the session does not say "Unclosed client session". Its connector, still
    holding connections once their loop has ended (an ``asyncio.run`` that did not
    close the hub), would say "Unclosed connector" through that loop's error handler:
    marked closed first, it says nothing, and the sockets close with their transports.
    A connector whose loop still runs is left to close its connections itself."""
    connector = session.connector
    session.detach()
    loop = getattr(connector, "_loop", None)
    close = getattr(connector, "_close", None)
    if loop is not None and loop.is_closed() and callable(close):
        close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests with one aiohttp session, made on the first request (on
    the loop the client serves). ``proxy`` is the proxy URL for every request, if any."""

    def __init__(self, *, ssl_context: ssl.SSLContext, proxy: str | None = None) -> None:
        self._ssl = ssl_context
        self._proxy = proxy
        self.session: aiohttp.ClientSession | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=256)
            self.session = aiohttp.ClientSession(connector=connector)
            weakref.finalize(self, _forget, self.session)
        timeout = request.extensions.get("timeout", {})
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:  # a streamed upload: aiohttp frames it itself
            data = request.stream
            request.headers.pop("transfer-encoding", None)
        url = yarl.URL(str(request.url), encoded=True)
        if url.user is not None or url.password is not None:
            # httpx has made any credentials in the URL a header already; like its own
            # transport, send the URL without them (aiohttp refuses both at once).
            url = url.with_user(None)
        with _as_httpx(request, reading=False):
            response = await self.session.request(
                request.method,
                url,
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,  # httpx follows them
                auto_decompress=False,  # httpx decodes
                proxy=self._proxy,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
            )
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
