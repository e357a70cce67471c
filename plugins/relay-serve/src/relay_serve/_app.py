"""The HTTP server: OpenAI's Chat Completions API in front of a Relay hub.

Routes: ``POST /v1/chat/completions`` (JSON or server-sent events), ``GET /v1/models``,
``GET /health``, ``GET /metrics``. Every request first passes the browser guard
(``relay_serve._guard``: its Host and Origin). A chat request then passes, in order:
its request id is checked, its content type (JSON only), its key and the key's rate
limit, its body is read (up to ``max_body_bytes``) and parsed into a Relay
:class:`~relay_core.Request`, its model looked up, then it waits for an upstream slot
(or is refused at once when the queue is full) and the hub answers. A client that goes
away at any point cancels whatever its request was waiting for.

With keys configured, ``/metrics`` and the details of ``/health`` need one too; a
``/health`` without ``Authorization`` is then a bare liveness answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from relay_core.plugin import (
    CredentialError,
    EndEvent,
    PluginNotInstalled,
    ProviderConflict,
    ProviderError,
    RelayError,
    StreamEvent,
    get_logger,
)
from relay_serve._auth import Gatekeeper, RateLimited, Unauthorized
from relay_serve._guard import BrowserGuard, bound_names
from relay_serve._limits import Gate, Overloaded
from relay_serve._metrics import CONTENT_TYPE, Metrics
from relay_serve._settings import ApiKey, ServeSettings
from relay_serve._wire import (
    ChatCall,
    ChunkEncoder,
    ErrorAnswer,
    WireError,
    completion,
    decode_body,
    error_answer,
    error_body,
    models_list,
    parse_chat,
)

if TYPE_CHECKING:
    from relay_core import Hub

__all__ = ["create_app"]

T = TypeVar("T")

CHAT = "/v1/chat/completions"
# What a client may send as its request id: echoed in a header and written to logs,
# so no spaces, quotes or control characters, and no novel-length ids.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# nginx's "client closed request": logged and counted, never sent (nobody is listening).
_CLIENT_GONE = 499

_log = get_logger("relay.serve")


class _Disconnected(Exception):
    """The client went away while its request waited."""


def create_app(
    hub: Hub,
    settings: ServeSettings | None = None,
    *,
    close_hub: bool = True,
    host: str | None = None,
) -> Any:
    """A Starlette application serving ``hub`` under OpenAI's HTTP API.

    ``settings`` are the checked ``plugins.serve`` values (default: open, 16 calls at
    once, 64 waiting). With ``close_hub`` the hub's connections are closed when the
    application shuts down (they belong to the server's event loop). ``host`` is the
    name or address the server is bound to: requests for it are answered like those
    for loopback's names and ``settings.allowed_hosts``.
    """
    settings = settings or ServeSettings()
    server = _Server(hub, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if close_hub:
            await hub.aclose()

    # The guard first: a request it refuses never reaches CORS, nor a route.
    middleware = [
        Middleware(
            BrowserGuard,
            allowed_hosts=(*settings.allowed_hosts, *bound_names(host)),
            cors_origins=settings.cors_origins,
        )
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                # The SDKs add headers of their own (x-stainless-*); keys travel in
                # Authorization, never in cookies, so no credentials mode.
                allow_headers=["*"],
                expose_headers=["x-request-id", "retry-after"],
            )
        )
    app = Starlette(
        middleware=middleware,
        routes=[
            Route(CHAT, server.chat, methods=["POST"]),
            Route("/v1/models", server.models, methods=["GET"]),
            Route("/health", server.health, methods=["GET"]),
            Route("/metrics", server.metrics_text, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.relay = server
    return app


async def _http_error(request: Request, error: Exception) -> Response:
    # Unknown paths and methods, in OpenAI's shape like every other error.
    status = error.status_code if isinstance(error, HTTPException) else 500
    message = f"Invalid URL ({request.method} {request.url.path})"
    return JSONResponse(error_body(message, "invalid_request_error"), status_code=status)


class _Server:
    def __init__(self, hub: Hub, settings: ServeSettings) -> None:
        self.hub = hub
        self.settings = settings
        self.metrics = Metrics()
        self.gatekeeper = Gatekeeper(settings.keys)
        self.gate = Gate(settings.max_concurrency, settings.max_queue, self.metrics.gauges)
        self.credentials_missing: set[str] = set()

    # -- routes -------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        started = time.perf_counter()
        given = _request_id(request)
        request_id = given or "chatcmpl-" + uuid.uuid4().hex
        label = ""
        try:
            if given is None:
                raise WireError(
                    "X-Request-ID must be 1 to 128 letters, digits and . _ : - "
                    "(starting with a letter or digit).",
                    "X-Request-ID",
                )
            _check_json_type(request)
            key = self._admit(request)
            raw = await _body(request, self.settings.max_body_bytes)
            call = parse_chat(decode_body(raw), request_id=request_id)
            label = self._label(call.model)
            self.hub.catalog.lookup(call.model)  # an unknown model is refused before queueing
            if key is not None:  # for guardrails and audit sinks: who asked, never the key
                # "caller" is what audit events report as who made the call.
                metadata = {**call.request.metadata, "serve_key": key.name, "caller": key.name}
                call = attrs.evolve(call, request=attrs.evolve(call.request, metadata=metadata))
            if call.stream:
                head, events = await _unless_disconnected(request.receive, self._open(call))
                return _EventStream(
                    self._sse(call, head, events, label=label, started=started),
                    request_id,
                )
            answer = await _unless_disconnected(request.receive, self._answer(call))
        except _Disconnected:
            self.metrics.cancelled(CHAT)
            self._done(request_id, label, _CLIENT_GONE, started)
            return Response(status_code=_CLIENT_GONE)
        except Exception as error:
            return self._error(error, request_id, label, started)
        created = int(time.time())
        body = completion(answer, id=request_id, model=call.model, created=created)
        self._done(request_id, label, 200, started)
        return JSONResponse(body, headers={"x-request-id": request_id})

    async def models(self, request: Request) -> Response:
        try:
            self._admit(request)
        except Exception as error:
            return self._error(error, _request_id(request) or "", "", None)
        return JSONResponse(models_list(self.hub.catalog.aliases(), created=int(time.time())))

    async def health(self, request: Request) -> Response:
        if not self.settings.open:
            if "authorization" not in request.headers:
                return JSONResponse({"status": "ok"})  # alive, and nothing more
            try:
                self.gatekeeper.identify(request.headers["authorization"])
            except Unauthorized as error:
                return self._error(error, "", "", None)
        backends = self._backends()
        every = [state for states in backends.values() for state in states]
        return JSONResponse(
            {
                # Degraded, not down: calls to other upstreams still work.
                "status": "degraded" if every and not any(s.healthy for s in every) else "ok",
                # Which of `relay serve --workers N`'s processes answered.
                "worker_pid": os.getpid(),
                "in_flight": self.gate.in_flight,
                "queue_depth": self.gate.waiting,
                "max_concurrency": self.gate.max_concurrency,
                "max_queue": self.gate.max_queue,
                "backends": {
                    provider: [attrs.asdict(state) for state in states]
                    for provider, states in backends.items()
                },
                # provider/model -> closed | open | half_open, for catalogs that switch
                # circuit breakers on; empty otherwise.
                "breakers": self.hub.breaker_states(),
            }
        )

    async def metrics_text(self, request: Request) -> Response:
        if not self.settings.open:
            try:
                self.gatekeeper.identify(request.headers.get("authorization"))
            except Unauthorized as error:
                return self._error(error, "", "", None)
        return PlainTextResponse(self.metrics.render(self._backends()), media_type=CONTENT_TYPE)

    def _backends(self) -> dict[str, list[Any]]:
        """The backend states of every pool the server has used, by provider name."""
        from relay_serve._pool import PoolProvider

        return {
            name: adapter.snapshot()
            for name, adapter in self.hub.built_adapters().items()
            if isinstance(adapter, PoolProvider)
        }

    # -- the pipeline -------------------------------------------------------------------

    def _admit(self, request: Request) -> ApiKey | None:
        try:
            return self.gatekeeper.admit(request.headers.get("authorization"))
        except RateLimited:
            self.metrics.rejected("rate_limited")
            raise

    def _label(self, model: str) -> str:
        """The metrics label for ``model``: catalog aliases as they are; ``provider/model``
        by its provider when that is known, else ``other``, so clients cannot grow the
        label space by inventing names."""
        if model in self.hub.catalog.models or model in self.hub.catalog.groups:
            return model
        provider = model.partition("/")[0]
        if provider in self.hub.catalog.providers:
            return f"{provider}/*"
        try:
            self.hub.plugins.provider(provider)
        except (PluginNotInstalled, ProviderConflict):
            return "other"
        return f"{provider}/*"

    async def _answer(self, call: ChatCall) -> Any:
        async with self.gate.slot():
            return await self.hub.achat(call.request)

    async def _open(self, call: ChatCall) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
        """A slot and the stream's first event, so that a refusal or an upstream error
        before any output is an HTTP status rather than an error inside a 200 stream.
        The slot is released when the stream is closed."""
        await self.gate.acquire()
        events = self.hub.astream(call.request)
        try:
            return await events.__anext__(), events
        except BaseException:
            self.gate.release()
            await _close(events)
            raise

    async def _sse(
        self,
        call: ChatCall,
        head: StreamEvent,
        events: AsyncIterator[StreamEvent],
        *,
        label: str,
        started: float,
    ) -> AsyncIterator[bytes]:
        request_id = call.request.custom_id or ""
        encoder = ChunkEncoder(request_id, call.model, int(time.time()), call.include_usage)
        status = _CLIENT_GONE
        try:
            event: StreamEvent | None = head
            while event is not None:
                for chunk in encoder.encode(event):
                    yield _sse_data(chunk)
                if isinstance(event, EndEvent):
                    status = 200
                    yield b"data: [DONE]\n\n"
                    return
                event = await anext(events, None)
            raise RuntimeError("the hub's stream ended without its end event")
        except Exception as error:
            # The 200 is sent: the error travels as the stream's last event.
            answer = self._failed(error, request_id, label)
            status = answer.status
            yield _sse_data(answer.body)
        finally:
            if status == _CLIENT_GONE:
                self.metrics.cancelled(CHAT)
            self.gate.release()
            await _close(events)
            self._done(request_id, label, status, started)

    # -- outcomes -----------------------------------------------------------------------

    def _failed(self, error: BaseException, request_id: str, label: str) -> ErrorAnswer:
        """Count and log ``error``; the answer the client gets for it."""
        answer = error_answer(error, request_id, label)
        if isinstance(error, Overloaded):
            self.metrics.rejected("queue_full")
            answer = ErrorAnswer(
                429,
                error_body(str(error), "server_overloaded", code="queue_full"),
                {"retry-after": str(int(error.retry_after))},
            )
        elif isinstance(error, Unauthorized):
            answer = ErrorAnswer(
                401, error_body(str(error), "invalid_request_error", code=error.code)
            )
        elif isinstance(error, RateLimited):
            answer = ErrorAnswer(
                429,
                error_body(str(error), "requests", code="rate_limit_exceeded"),
                {"retry-after": str(int(error.retry_after))},
            )
        if isinstance(error, ProviderError):
            self.metrics.upstream_error(type(error).__name__)
        if isinstance(error, CredentialError):
            # Every call to the alias fails the same way until the operator acts: one
            # log line says so, not one per request.
            if label not in self.credentials_missing:
                self.credentials_missing.add(label)
                _log.error("serve.credentials_missing", model=label, detail=str(error))
        elif answer.status >= 500:
            # The client got a fixed sentence; the details are for the operator.
            _log.error(
                "serve.failed",
                request_id=request_id,
                model=label,
                error=type(error).__name__,
                detail=str(error),
                exc_info=not isinstance(error, RelayError),
            )
        return answer

    def _error(
        self, error: BaseException, request_id: str, label: str, started: float | None
    ) -> Response:
        answer = self._failed(error, request_id, label)
        if started is not None:
            self._done(request_id, label, answer.status, started)
        headers = {**answer.headers, "x-request-id": request_id} if request_id else answer.headers
        return JSONResponse(answer.body, status_code=answer.status, headers=headers)

    def _done(self, request_id: str, label: str, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        self.metrics.request(CHAT, label, status, seconds)
        _log.info(
            "serve.request",
            request_id=request_id,
            route=CHAT,
            model=label,
            status=status,
            seconds=round(seconds, 4),
        )


# ---------------------------------------------------------------------------- helpers


def _request_id(request: Request) -> str | None:
    """The client's request id if it sent a valid one; "" if it sent none; None if the
    one it sent is not acceptable."""
    value = request.headers.get("x-request-id") or request.headers.get("request-id")
    if value is None:
        return ""
    return value if _REQUEST_ID.match(value) else None


def _check_json_type(request: Request) -> None:
    """Refuse any body but JSON: a browser sends form posts and ``text/plain`` from any
    web page without asking the server first, but never JSON."""
    given = request.headers.get("content-type", "")
    if given.partition(";")[0].strip().lower() != "application/json":
        raise WireError(
            f"The request body must be JSON, sent as Content-Type: application/json "
            f"(not {given or 'none'!r}).",
            status=415,
            code="unsupported_media_type",
        )


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limit``
    bytes: before reading when Content-Length says so, else while it arrives, so a
    client cannot make the server hold more than ``limit`` bytes of it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:  # gone before its body was in: a 499, not a failure
        raise _Disconnected from None
    return b"".join(chunks)


def _too_large(limit: int) -> WireError:
    return WireError(
        f"The request body is larger than this server's limit of {limit} bytes "
        "(plugins.serve.max_body_bytes).",
        status=413,
        code="request_too_large",
    )


def _sse_data(chunk: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


async def _close(events: AsyncIterator[Any]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Run ``work`` unless the client disconnects first: then cancel it (the upstream
    call with it) and raise :class:`_Disconnected`.

    ``work`` runs in this task, and one watcher task cancels this task if the client
    goes: a task per request fewer, and no ``asyncio.wait`` over two (its futures and
    callbacks), on the path every request takes."""
    this = asyncio.current_task()
    assert this is not None
    gone = False

    def cancel(watcher: asyncio.Future[None]) -> None:
        nonlocal gone
        if not watcher.cancelled() and watcher.exception() is None:
            gone = True
            this.cancel()

    watcher = asyncio.ensure_future(_until_disconnect(receive))
    watcher.add_done_callback(cancel)
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            if sys.version_info >= (3, 11):
                this.uncancel()  # ours, handled: an enclosing timeout must not count it
            raise _Disconnected from None
        raise
    finally:
        watcher.remove_done_callback(cancel)
        watcher.cancel()


class _EventStream(StreamingResponse):
    """``text/event-stream`` from an async iterator of ready-made SSE frames, cancelled
    as soon as the client disconnects (not at the next write, which for a slow upstream
    may be minutes away)."""

    def __init__(self, frames: AsyncIterator[bytes], request_id: str) -> None:
        super().__init__(
            frames,
            media_type="text/event-stream",
            headers={"x-request-id": request_id, "cache-control": "no-cache"},
        )
        self.frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def pump(cancel: Callable[[], None]) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for frame in self.frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            cancel()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(pump, group.cancel_scope.cancel)
                await _until_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            # Outside the cancelled scope, so the hub's stream can close cleanly.
            await _close(self.frames)
