"""MCP sessions and the private event loop that owns them.

An MCP session (the SDK's ``mcp.Client``) holds anyio task groups, which must be entered
and left by one task. Relay's hub is used from the caller's event loop (``arun_tools``)
and from its own loop thread (``run_tools``), so no caller's loop can own a session: the
loop of a call may be gone before the next one. Each :class:`Runner` (one per hub) runs
a private loop on a daemon thread; each server's :class:`Session` lives there, owned by
one long-lived task that enters the client, signals it is ready, and waits to be told to
stop. Callers on any loop hand coroutines over with :meth:`Runner.call`. One process (or
HTTP session) per server and hub follows, however many loops use the hub.

A session that breaks (the server's process died, the HTTP server went away) is shut
down where it broke, and the next use opens a new one: the call that saw it break is not
repeated (a tool may not be safe to run twice), its result says what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
from collections.abc import Coroutine, Mapping
from typing import IO, TYPE_CHECKING, Any, TypeVar

from relay_core.plugin import RelayError, ToolOutput, get_logger, mask

if TYPE_CHECKING:
    from mcp import Client

    from relay_mcp._settings import ServerSettings

__all__ = ["McpServerError", "Runner", "Session"]

T = TypeVar("T")

# How long a session may take to shut down (the SDK gives a stdio server 2 s after its
# stdin closes, then 2 s after SIGTERM) before its task is cancelled.
_CLOSE_TIMEOUT = 10.0
# The most tools/list pages read from one server: a server whose cursor never ends
# cannot hang a loop.
_MAX_PAGES = 100
_STDERR_TAIL = 1500

_log = get_logger("relay.mcp")


class McpServerError(RelayError):
    """An MCP server could not be started, reached or listed (``server`` names it).

    Raised by a toolset's ``list_tools``, so out of ``hub.run_tools``: the loop cannot
    start without the server's tools. A failure during a tool call is not raised: the
    model receives it as an error result. The message carries the end of a stdio
    server's standard error when there is one (secrets masked).
    """

    def __init__(self, server: str, message: str) -> None:
        self.server = server
        super().__init__(message)


class Runner:
    """A private event loop on a daemon thread, where every session of one hub lives."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="relay-mcp", daemon=True)
        self._thread.start()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and await its result from any loop.
        Cancelling the caller cancels ``coro``."""
        if asyncio.get_running_loop() is self.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        """Stop the loop and its thread (after the sessions were closed)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=_CLOSE_TIMEOUT)
        if not self._thread.is_alive():
            self.loop.close()


class Session:
    """The connection to one MCP server: opened on first use, owned by one task on the
    runner's loop, opened again on the use after it broke. Every method runs on the
    runner's loop."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.starts = 0
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._stderr: IO[str] | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    # -- what the toolset asks ------------------------------------------------------------

    async def list_tools(self) -> list[Any]:
        """Every tool the server lists (all pages), as the SDK's ``Tool`` models."""
        client = await self._connected()
        owner = self._owner
        tools: list[Any] = []
        cursor: str | None = None
        try:
            for _ in range(_MAX_PAGES):
                page = await asyncio.wait_for(
                    client.list_tools(cursor=cursor), self.settings.timeout
                )
                tools.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
        except Exception as error:
            if _breaks_session(error):
                await self._retire(owner)
            raise McpServerError(
                self.name, f"MCP server {self.name!r} could not list its tools: {_describe(error)}"
            ) from None
        return tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        """Run tool ``name`` (its MCP name): its output, or an error result saying what
        went wrong (a timeout, a refused call, a server that died)."""
        from relay_mcp._content import output_of

        try:
            client = await self._connected()
        except McpServerError as error:
            return ToolOutput(error.message, is_error=True)
        owner = self._owner
        timeout = self.settings.timeout
        try:
            # The SDK's own read timeout answers first and cancels the request on the
            # server; ours only bounds a transport that never answers at all.
            result = await asyncio.wait_for(
                client.call_tool(name, arguments, read_timeout_seconds=timeout), timeout + 5
            )
        except Exception as error:
            return await self._failed_call(name, error, owner)
        return output_of(result)

    async def _failed_call(
        self, name: str, error: Exception, owner: asyncio.Task[None] | None
    ) -> ToolOutput:
        from mcp import MCPError
        from mcp_types import REQUEST_TIMEOUT

        where = f"tool {name!r} of MCP server {self.name!r}"
        if isinstance(error, asyncio.TimeoutError) or (
            isinstance(error, MCPError) and error.code == REQUEST_TIMEOUT
        ):
            message = f"{where} did not answer within {self.settings.timeout:g} s"
        elif _breaks_session(error):
            tail = self._stderr_tail()  # read before the shutdown removes the file
            await self._retire(owner)
            _log.warning("mcp.connection_lost", server=self.name, tool=name)
            message = (
                f"{where} failed: the server closed the connection ({_describe(error)}); "
                f"it is started again on the next use{tail}"
            )
        elif isinstance(error, MCPError):
            message = f"{where} refused the call: {error.message} (MCP error {error.code})"
        else:
            message = f"{where} failed: {_describe(error)}"
        return ToolOutput(mask(message), is_error=True)

    # -- the connection ---------------------------------------------------------------

    async def _connected(self) -> Client:
        # A lock belongs to one loop, and the runner's loop is new after a close.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            if self._client is not None and self._owner is not None and not self._owner.done():
                return self._client
            # A session that broke, or whose opening was cancelled, is cleared first.
            await self.shutdown()
            return await self._open()

    async def _open(self) -> Client:
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._owner = asyncio.create_task(self._own(ready, self._stop), name=f"mcp:{self.name}")
        try:
            client = await asyncio.wait_for(asyncio.shield(ready), self.settings.connect_timeout)
        except asyncio.TimeoutError:
            tail = self._stderr_tail()
            await self.shutdown(now=True)
            raise McpServerError(
                self.name,
                f"MCP server {self.name!r} did not complete the MCP handshake within "
                f"{self.settings.connect_timeout:g} s{tail}",
            ) from None
        except BaseException:
            await self.shutdown(now=True)
            raise
        self._client = client
        self.starts += 1
        _log.info("mcp.connected", server=self.name, transport=self.settings.transport)
        return client

    async def _own(self, ready: asyncio.Future[Client], stop: asyncio.Event) -> None:
        """The one task that enters the session, keeps it, and leaves it."""
        from mcp import Client

        stderr: IO[str] | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = await self._transport(stack)
                stderr = self._stderr
                client = await stack.enter_async_context(
                    Client(transport, client_info=_client_info())
                )
                ready.set_result(client)
                await stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except Exception as error:
            if not ready.done():
                ready.set_exception(self._start_failure(error))
            else:
                _log.info("mcp.session_ended", server=self.name, error=mask(_describe(error)))
        finally:
            if self._owner is asyncio.current_task():
                self._client = None
            # Closed last: a failure above quotes the end of it.
            if stderr is not None:
                stderr.close()

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        settings = self.settings
        if settings.command is not None:
            from mcp import StdioServerParameters, stdio_client

            parameters = StdioServerParameters(
                command=settings.command[0],
                args=list(settings.command[1:]),
                env=_resolved(settings.env),
                cwd=settings.cwd,
            )
            # The server's standard error goes to a file of ours: its last lines explain
            # a server that will not start or that died. _own closes it.
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
            return stdio_client(parameters, errlog=self._stderr)
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        assert settings.url is not None
        # The SDK's defaults: a server may hold a response stream open for minutes.
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=_resolved(settings.headers), timeout=httpx2.Timeout(30.0, read=300.0)
            )
        )
        return streamable_http_client(settings.url, http_client=http)

    def _start_failure(self, error: Exception) -> RelayError:
        if isinstance(error, RelayError):  # an unresolvable credential: keep its type
            return error
        if isinstance(error, FileNotFoundError) and self.settings.command is not None:
            why = f"command {self.settings.command[0]!r} was not found"
        else:
            why = _describe(error)
        return McpServerError(
            self.name, f"MCP server {self.name!r} could not be started: {why}{self._stderr_tail()}"
        )

    def _stderr_tail(self) -> str:
        stderr = self._stderr
        if stderr is None or stderr.closed:
            return ""
        # pread leaves the offset the server's process shares with us alone.
        size = os.fstat(stderr.fileno()).st_size
        start = max(0, size - _STDERR_TAIL)
        tail = os.pread(stderr.fileno(), size - start, start).decode("utf-8", "replace").strip()
        return f"; the end of its standard error:\n{mask(tail)}" if tail else ""

    async def _retire(self, owner: asyncio.Task[None] | None) -> None:
        """Shut the session down if it is still the one that broke (a call that failed
        late must not end the session another call has opened since)."""
        if owner is not None and owner is self._owner:
            await self.shutdown()

    async def shutdown(self, *, now: bool = False) -> None:
        """End the session (stopping a stdio server's process); the next use opens a
        new one. ``now`` cancels a session still starting instead of waiting for it."""
        owner, self._owner = self._owner, None
        self._client = None
        if owner is None:
            return
        if self._stop is not None:
            self._stop.set()
        if now:
            owner.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(owner), _CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            owner.cancel()
            with contextlib.suppress(BaseException):
                await owner
        except BaseException:  # how it ended was reported where it ended
            pass


def _resolved(values: Mapping[str, Any]) -> dict[str, str]:
    return {key: value.resolve() for key, value in values.items()}


def _client_info() -> Any:
    from mcp import Implementation

    from relay_mcp import __version__

    return Implementation(name="relay-mcp", version=__version__)


def _leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or ``error`` itself."""
    inner = getattr(error, "exceptions", None)
    if not inner:
        return [error]
    return [leaf for each in inner for leaf in _leaves(each)]


def _breaks_session(error: BaseException) -> bool:
    """Whether ``error`` means the connection is gone (so the session is replaced)."""
    import anyio
    import httpx2
    from mcp import MCPError
    from mcp_types import CONNECTION_CLOSED

    for leaf in _leaves(error):
        if isinstance(leaf, MCPError):
            if leaf.code == CONNECTION_CLOSED:
                return True
        elif isinstance(
            leaf,
            (
                anyio.ClosedResourceError,
                anyio.BrokenResourceError,
                anyio.EndOfStream,
                httpx2.TransportError,
                OSError,
            ),
        ):
            return True
    return False


def _describe(error: BaseException) -> str:
    """One line for a person: each leaf exception's type and message, masked."""
    parts = []
    for leaf in _leaves(error):
        text = str(leaf) or "no details"
        parts.append(f"{type(leaf).__name__}: {text}")
    return mask("; ".join(dict.fromkeys(parts)))
