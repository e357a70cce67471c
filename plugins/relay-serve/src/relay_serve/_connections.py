"""Connections bounded in time and in number, so that slow clients cannot hold the server.

uvicorn bounds the wait between requests on a kept-alive connection, not the time a
client takes to send one: a client sending a header byte every few seconds (slowloris)
keeps its connection, and a file descriptor, as long as it likes, and a thousand such
clients use up the process's open files, after which nobody gets in, ``/health``
included. uvicorn's own ``limit_concurrency`` does not help: past it every request is
answered 503, the health check's too.

:func:`guarded_protocol` makes uvicorn's HTTP/1.1 protocol (httptools where installed,
else h11) with two guards:

- A deadline for every request: ``header_timeout`` seconds from its first byte (or from
  the connection's opening) until its headers are in, then ``body_timeout`` until its
  body is. Past it the connection is dropped.
- At most ``max_connections`` open at once. A connection beyond that evicts the one
  that has spent longest sending its request, or, when every connection is being
  answered, is dropped itself. A request that arrives whole, as a health check's or any
  ordinary client's does, spends no time sending, so it is never the one evicted: the
  server keeps answering while an attack fills the slots, and the attack's own
  connections go first.

:func:`capacity` is the number of connections the process can afford.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from typing import Any

import attrs

from relay_core.plugin import ConfigError, get_logger
from relay_serve._cork import CorkedTransport
from relay_serve._settings import ServeSettings

__all__ = ["Capacity", "capacity", "guarded_protocol"]

_log = get_logger("relay.serve")

# File descriptors kept for everything but client connections: upstream connections,
# logs, the catalog, the listening sockets.
_RESERVE = 64
# Without a limit set, a connection may take half the open files, up to this many.
_MOST = 4096
_WITHOUT_RLIMIT = 1024  # where the limit cannot be read (Windows)
_MOST_BACKLOG = 2048  # uvicorn's default
_LEAST_BACKLOG = 16


@attrs.frozen
class Capacity:
    """How many connections the server keeps open at most, and how many it accepts
    at once (the listening socket's backlog: asyncio accepts that many in one go,
    before any of them can be turned away)."""

    connections: int
    backlog: int


def capacity(settings: ServeSettings) -> Capacity:
    """The connections the process can afford: ``settings.max_connections``, or half
    its open-file limit when unset, and a backlog that fits in what is left.

    Every connection accepted takes a file until it is closed, and asyncio accepts a
    whole backlog before the protocol sees one of them: at the file limit it stops
    accepting for a second, and logs a traceback each time. So the limit, a backlog
    and the files turned away but not yet closed must fit under the open-file limit.
    A ``max_connections`` that does not fit raises that limit as far as it may go, and is
    a :class:`ConfigError` when that is not far enough.
    """
    if sys.platform == "win32":
        return Capacity(settings.max_connections or _WITHOUT_RLIMIT, _MOST_BACKLOG)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return Capacity(settings.max_connections or _MOST, _MOST_BACKLOG)
    wanted = settings.max_connections
    if wanted is None:
        wanted = max(1, min(_MOST, (soft - _RESERVE) // 2))
    needed = wanted + _RESERVE + 2 * _LEAST_BACKLOG
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise ConfigError(
                f"plugins.serve.max_connections is {wanted}, but this process may open "
                f"only {hard} files (`ulimit -Hn`) and needs about {needed - wanted} "
                "besides: lower max_connections or raise the limit"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        soft = needed
    # Accepted at once, then as many turned away before the loop closes them.
    backlog = min(_MOST_BACKLOG, (soft - _RESERVE - wanted) // 2)
    return Capacity(wanted, backlog)


def guarded_protocol(
    settings: ServeSettings, max_connections: int, http: str = "auto"
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol class with the deadlines and the limit of the
    module's description; give it to ``uvicorn.Config(http=...)``. ``http`` is
    ``"httptools"``, ``"h11"`` or ``"auto"`` (httptools when installed, as
    ``relay-serve[fast]`` does: it parses a request in a fraction of h11's time). Each
    call makes a class with its own count of connections (one per server)."""
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    if http not in ("h11", "httptools"):
        raise ValueError(f"http must be auto, h11 or httptools, not {http!r}")
    # Open connections not yet being closed by the guard, and, oldest first, those
    # sending a request (a dict as an ordered set).
    live: set[_Guard] = set()
    sending: dict[_Guard, None] = {}

    class _Guard(asyncio.Protocol):
        """What both parsers' guards share; each subclass says when a request starts
        to arrive, when its headers are in, and when it is whole."""

        loop: asyncio.AbstractEventLoop
        transport: asyncio.Transport
        _deadline: asyncio.TimerHandle | None = None
        _reading_body = False

        def connection_made(self, transport: Any) -> None:
            # A response's head and body in one write (relay_serve._cork).
            super().connection_made(CorkedTransport(transport, self.loop))
            live.add(self)
            if len(live) > max_connections:
                victim = next(iter(sending), None)
                _log.warning(
                    "serve.connections_full",
                    max_connections=max_connections,
                    dropped="the slowest sender" if victim else "the newcomer",
                )
                if victim is None:
                    self._drop()
                    return
                victim._drop()
            self._expect_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._settle()
            live.discard(self)
            super().connection_lost(exc)

        def _expect_headers(self) -> None:
            self._reading_body = False
            self._expect(settings.header_timeout)

        def _expect_body(self) -> None:
            """The headers are in and the body is not: its own deadline starts."""
            if self._deadline is not None and not self._reading_body:
                self._reading_body = True
                self._expect(settings.body_timeout)

        def _expect(self, seconds: float) -> None:
            """Drop the connection unless the request is in within ``seconds``."""
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(seconds, self._drop)
            sending.pop(self, None)
            sending[self] = None

        def _settle(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            sending.pop(self, None)

        def _drop(self) -> None:
            # abort, not close: close would wait to send what is buffered to a client
            # that may not be reading either.
            self._settle()
            live.discard(self)
            if not self.transport.is_closing():
                self.transport.abort()

    return _on_h11(_Guard) if http == "h11" else _on_httptools(_Guard)


def _on_h11(guard: type[Any]) -> type[asyncio.Protocol]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    # The peer has sent everything it will for this request.
    received = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR, h11.SWITCHED_PROTOCOL)

    class _GuardedH11(guard, H11Protocol):  # type: ignore[misc]
        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self.conn.their_state is h11.IDLE:
                self._expect_headers()  # the next request on a kept-alive connection
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # A pipelined request may be half in already; its clock runs from now.
            if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
                self._expect_headers()
            self._follow()

        def _follow(self) -> None:
            state = self.conn.their_state
            if state in received:
                self._settle()
            elif state is h11.SEND_BODY:
                self._expect_body()

    return _GuardedH11


def _on_httptools(guard: type[Any]) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class _GuardedHttpTools(guard, HttpToolsProtocol):  # type: ignore[misc]
        # The parser calls back as it goes: a request has begun, its headers are in,
        # it is whole. Between the last and the next begin the client owes nothing.
        _in_request = False
        _headers_in = False

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and not self._in_request:
                self._expect_headers()  # the next request on a kept-alive connection
            super().data_received(data)
            if self._in_request and self._headers_in:
                self._expect_body()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_request, self._headers_in = True, False
            if self._deadline is None:  # pipelined behind one just completed
                self._expect_headers()

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._headers_in = True

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_request = False
            self._settle()

    return _GuardedHttpTools
