"""The HTTP server: OpenAI's Chat Completions API in front of a Relay hub.

Routes: ``POST /v1/chat/completions`` (JSON or server-sent events), ``GET /v1/models``,
``GET /health``, ``GET /metrics``; embeddings, responses and ``GET /v1/models/{id}``
are in ``relay_serve._routes``, which passes its requests through the same steps.
Every request first passes the browser guard (``relay_serve._guard``: its Host and
Origin). A chat request then passes, in order:
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
import functools
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive

from relay_core.plugin import (
    CredentialError,
    EmbeddingRequest,
    PluginNotInstalled,
    ProviderConflict,
    ProviderError,
    RelayError,
    StreamEvent,
    get_logger,
)
from relay_core.plugin import Request as RelayRequest
from relay_serve._allowed import check_model, visible_models
from relay_serve._auth import Gatekeeper, Unauthorized
from relay_serve._budgets import Hold
from relay_serve._chat_frames import ChatFrames as _ChatFrames
from relay_serve._guard import BrowserGuard, bound_names
from relay_serve._keystore import KeyStoreUnavailable
from relay_serve._limits import Gate
from relay_serve._metrics import CONTENT_TYPE, Metrics
from relay_serve._quota import Admission, Quota, RateLimited, open_state
from relay_serve._redis_breakers import share_breakers, state_url
from relay_serve._refusals import refusal
from relay_serve._settings import ApiKey, ServeSettings
from relay_serve._spending import Spending
from relay_serve._streaming import (
    CLIENT_GONE,
    EventStream,
    close_events,
    event_stream,
    until_disconnect,
)
from relay_serve._wire import (
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
    from relay_serve._admin import AdminGuard
    from relay_serve._keystore import KeyStore
    from relay_serve._ledger import Ledger
    from relay_serve._state import SharedState

__all__ = ["create_app"]

T = TypeVar("T")
# What a model route asks the hub: a chat request, or an embedding request.
Asked = TypeVar("Asked", RelayRequest, EmbeddingRequest)

CHAT = "/v1/chat/completions"
# What a client may send as its request id: echoed in a header and written to logs,
# so no spaces, quotes or control characters, and no novel-length ids.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

_log = get_logger("relay.serve")


class _Disconnected(Exception):
    """The client went away while its request waited."""


def create_app(
    hub: Hub,
    settings: ServeSettings | None = None,
    *,
    close_hub: bool = True,
    host: str | None = None,
    ledger: Ledger | None = None,
    state: SharedState | None = None,
) -> Any:
    """A Starlette application serving ``hub`` under OpenAI's HTTP API.

    ``settings`` are the checked ``plugins.serve`` values (default: open, 16 calls at
    once, 64 waiting). With ``close_hub`` the hub's connections are closed when the
    application shuts down (they belong to the server's event loop). ``host`` is the
    name or address the server is bound to: requests for it are answered like those
    for loopback's names and ``settings.allowed_hosts``. Spend is recorded in ``ledger``
    (default: in ``settings.database``, if any; flushed on shutdown), and budgets and
    per-key limits counted in ``state`` (default: the Redis of ``settings.state``, else
    this process).
    """
    from relay_serve import _routes  # it builds on this module

    settings = settings or ServeSettings()
    owns_state = state is None
    server = _Server(hub, settings, ledger, state)
    breakers = share_breakers(hub, state_url(settings))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await server.spending.start()
        yield
        await server.quota.aclose()
        await server.spending.aclose()
        if server.keystore is not None:
            server.keystore.close()
        if owns_state:
            await server.state.aclose()
        if breakers is not None:
            await breakers.aclose()
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
            *_routes.routes(server),
            Route("/health", server.health, methods=["GET"]),
            Route("/metrics", server.metrics_text, methods=["GET"]),
            *server.admin_routes(),
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
    def __init__(
        self,
        hub: Hub,
        settings: ServeSettings,
        ledger: Ledger | None = None,
        state: SharedState | None = None,
    ) -> None:
        self.hub = hub
        self.settings = settings
        self.metrics = Metrics()
        self.state = state or open_state(settings)
        self.quota = Quota(self.state)
        self.keystore, self.gatekeeper = _gatekeeper(settings)
        if ledger is None and self.keystore is not None:
            from relay_serve._ledger import ledger_for

            # One connection for keys and spend, closed with the key store.
            ledger = ledger_for(self.keystore.database, hub.catalog.path)
        self.spending = Spending(hub, self.state, ledger, self.metrics, settings.teams)
        #: For admin routes of other modules (``/admin/spend``), with ``admin_only``.
        self.admin_guard: AdminGuard | None = None
        self.gate = Gate(settings.max_concurrency, settings.max_queue, self.metrics.gauges)
        self.credentials_missing: set[str] = set()

    # -- routes -------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        return await self.exchange(request, CHAT, "chatcmpl-", self._chat)

    async def _chat(self, exchange: Exchange) -> Response:
        call = parse_chat(decode_body(exchange.body), request_id=exchange.request_id)
        exchange.label = self._label(call.model)
        call = attrs.evolve(call, request=await self._ready(exchange, call.request))
        receive = exchange.request.receive
        if call.stream:
            head, events = await _unless_disconnected(receive, self._open(call.request))
            encoder = ChunkEncoder(
                exchange.request_id, call.model, int(time.time()), call.include_usage
            )
            return event_stream(self, exchange, _ChatFrames(encoder), head, events, call.request)
        answer = await _unless_disconnected(receive, self._answer(call.request))
        exchange.answered(self.spending, answer)
        created = int(time.time())
        body = completion(answer, id=exchange.request_id, model=call.model, created=created)
        return JSONResponse(body, headers={"x-request-id": exchange.request_id})

    async def exchange(
        self,
        request: Request,
        route: str,
        id_prefix: str,
        answer: Callable[[Exchange], Awaitable[Response]],
    ) -> Response:
        """Serve one model request on ``route``: its admission (:meth:`_intake`), then
        ``answer``, which parses it, calls the hub and writes the answer; then its
        metrics and log line, and its key's hold given back. A client that leaves, or an
        error anywhere, ends it here in OpenAI's shape."""
        given = _request_id(request)
        exchange = Exchange(request, route, given or id_prefix + uuid.uuid4().hex)
        try:
            exchange.key, exchange.admission, exchange.body = await self._intake(
                request, given, exchange.request_id
            )
            response = await answer(exchange)
        except _Disconnected:
            self.metrics.cancelled(route)
            self._done(exchange.request_id, exchange.label, CLIENT_GONE, exchange.started, route)
            return Response(status_code=CLIENT_GONE)
        except Exception as error:
            return self._error(error, exchange.request_id, exchange.label, exchange.started, route)
        finally:
            if exchange.admission is not None:
                await exchange.admission.close()
            self.spending.release(exchange.hold)  # none left once answered or streaming
        if not isinstance(response, EventStream):  # a stream is counted when it ends
            self._done(exchange.request_id, exchange.label, 200, exchange.started, route)
        return response

    async def models(self, request: Request) -> Response:
        try:
            key = await self._admit(request, "models", concurrent=False)
        except Exception as error:
            return self._error(error, _request_id(request) or "", "", None)
        aliases = visible_models(key, self.hub.catalog)
        return JSONResponse(models_list(aliases, created=int(time.time())))

    async def health(self, request: Request) -> Response:
        if not self.settings.open:
            if "authorization" not in request.headers:
                return JSONResponse({"status": "ok"})  # alive, and nothing more
            try:
                await self.gatekeeper.identify(request.headers["authorization"])
            except (Unauthorized, KeyStoreUnavailable) as error:
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
                await self.gatekeeper.identify(request.headers.get("authorization"))
            except (Unauthorized, KeyStoreUnavailable) as error:
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

    def admin_routes(self) -> list[Route]:
        """``/admin/*`` (keys, and spend when there is a ledger), when admin keys are
        configured."""
        if not self.settings.admin_keys or self.keystore is None:
            return []
        from relay_serve._admin import AdminGuard, admin_routes

        self.admin_guard = AdminGuard(self.settings.admin_keys, self.gatekeeper)
        routes = admin_routes(self.admin_guard, self.keystore)
        ledger = self.spending.ledger
        if ledger is not None:
            from relay_serve._admin import admin_only
            from relay_serve._spend_report import admin_spend

            spend = admin_only(self.admin_guard, functools.partial(admin_spend, ledger))
            routes.append(Route("/admin/spend", spend, methods=["GET"]))
        return routes

    async def _intake(
        self, request: Request, given: str | None, request_id: str
    ) -> tuple[ApiKey | None, Admission, bytes]:
        """The admission every model route shares, in order: the client's request id
        (``given``, as :func:`_request_id` read it), the content type, the key and its
        limits, then the body (bounded). Returns the key (None when open), its
        :class:`Admission` (the route closes it when its answer or stream ends) and the
        body."""
        if given is None:
            raise WireError(
                "X-Request-ID must be 1 to 128 letters, digits and . _ : - "
                "(starting with a letter or digit).",
                "X-Request-ID",
            )
        _check_json_type(request)
        key, admission = await self._admitted(request, request_id)
        try:
            return key, admission, await _body(request, self.settings.max_body_bytes)
        except BaseException:
            await admission.close()
            raise

    async def _ready(self, exchange: Exchange, asked: Asked) -> Asked:
        """What every model route does between parsing a request and calling upstream:
        the model is looked up (an unknown one, or one the key may not call, is refused
        before queueing), who asked goes into the metadata (for guardrails and audit
        sinks: the key's name, never the key), and the key's budgets are checked, the
        request's least cost held on them (``exchange.hold``)."""
        key = exchange.key
        self.hub.catalog.lookup(asked.model or "")
        check_model(key, asked.model or "", self.hub.catalog)
        if key is not None:
            asked = attrs.evolve(asked, metadata=tagged(asked.metadata, key))
        exchange.hold = await self.spending.check(key, asked)
        return asked

    async def _admit(
        self, request: Request, request_id: str, *, concurrent: bool = False
    ) -> ApiKey | None:
        """The caller's key, counted against its limits by a request that ends at once
        (``concurrent=False``: it takes no ``max_concurrent`` place)."""
        key, admission = await self._admitted(request, request_id, concurrent=concurrent)
        await admission.close()
        return key

    async def _admitted(
        self, request: Request, request_id: str, *, concurrent: bool = True
    ) -> tuple[ApiKey | None, Admission]:
        key = await self.gatekeeper.admit(request.headers.get("authorization"))
        try:
            return key, await self.quota.admit(key, request_id, concurrent=concurrent)
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

    async def _answer(self, call: RelayRequest) -> Any:
        async with self.gate.slot():
            return await self.hub.achat(call)

    async def _open(self, call: RelayRequest) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
        """A slot and the stream's first event, so that a refusal or an upstream error
        before any output is an HTTP status rather than an error inside a 200 stream.
        The slot is released when the stream is closed."""
        await self.gate.acquire()
        events = self.hub.astream(call)
        try:
            return await events.__anext__(), events
        except BaseException:
            self.gate.release()
            await close_events(events)
            raise

    # -- outcomes -----------------------------------------------------------------------

    def _failed(self, error: BaseException, request_id: str, label: str) -> ErrorAnswer:
        """Count and log ``error``; the answer the client gets for it."""
        refused = refusal(error, request_id)
        if refused is not None:
            if refused.reason is not None:
                self.metrics.rejected(refused.reason)
            if refused.log is not None:  # repeats are folded by the server's log filter
                _log.error(refused.log, request_id=request_id, detail=str(error))
            return refused.answer
        answer = error_answer(error, request_id, label)
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
        self,
        error: BaseException,
        request_id: str,
        label: str,
        started: float | None,
        route: str = CHAT,
    ) -> Response:
        answer = self._failed(error, request_id, label)
        if started is not None:
            self._done(request_id, label, answer.status, started, route)
        headers = {**answer.headers, "x-request-id": request_id} if request_id else answer.headers
        return JSONResponse(answer.body, status_code=answer.status, headers=headers)

    def _done(
        self, request_id: str, label: str, status: int, started: float, route: str = CHAT
    ) -> None:
        seconds = time.perf_counter() - started
        self.metrics.request(route, label, status, seconds)
        _log.info(
            "serve.request",
            request_id=request_id,
            route=route,
            model=label,
            status=status,
            seconds=round(seconds, 4),
        )


# ---------------------------------------------------------------------------- helpers


def _gatekeeper(settings: ServeSettings) -> tuple[KeyStore | None, Gatekeeper]:
    """The key store ``settings.database`` names (if any) and the gatekeeper over it and
    the catalog's keys."""
    if settings.database is None:
        return None, Gatekeeper(settings.keys)
    from relay_serve._keystore import KeyReader, open_store

    store = open_store(settings.database)
    return store, Gatekeeper(settings.keys, store=KeyReader(store))


def tagged(metadata: Mapping[str, Any], key: ApiKey) -> dict[str, Any]:
    """``metadata`` with who asked, for guardrails and audit sinks: the key's name,
    never the key ("caller" is what audit events report as who made the call)."""
    return {**metadata, "serve_key": key.name, "caller": key.name}


@attrs.define
class Exchange:
    """One model request as it passes the server: its id, when it began, its metrics
    label once the model is known, its key, its hold on the key's limits and the one on
    its budgets (a stream takes those over and gives them back when it ends) and its
    body."""

    request: Request
    route: str
    request_id: str
    started: float = attrs.field(factory=time.perf_counter)
    label: str = ""
    key: ApiKey | None = None
    admission: Admission | None = None
    hold: Hold | None = None
    body: bytes = b""

    def answered(self, spending: Spending, answer: Any) -> None:
        """Record a whole answer: its spend (which gives back the budgets' hold), and its
        tokens against the key's limits."""
        hold, self.hold = self.hold, None
        spending.answered(self.request_id, self.label, self.key, answer, hold)
        if self.admission is not None:
            self.admission.answered(answer.usage)


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

    watcher = asyncio.ensure_future(until_disconnect(receive))
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
