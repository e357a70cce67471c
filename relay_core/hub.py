"""The Hub: one object to call any model in the catalog, sync or async.

::

    with Hub.from_yaml("relay.yaml") as hub:
        print(hub.chat("fast", "What is 2+2?").text)
        for event in hub.stream("fast", "Count to three"):
            ...

Each call goes through the same pipeline: resolve the alias (a model or a group), build
the concrete request (catalog params merged under the call's), redact, check
capabilities, run guardrails, call the adapter with retries, price the answer, audit.
The sync methods run on a private event loop thread, so they also work where an event
loop is already running (a notebook, an async web handler).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from relay_core.config import Catalog, GroupConfig, ModelConfig, ProviderConfig, load_catalog
from relay_core.errors import (
    CredentialError,
    InvalidRequestError,
    MalformedResponse,
    ProviderError,
    RelayError,
    UnsupportedCapability,
)
from relay_core.plugins import PluginRegistry
from relay_core.pricing import TIER_RANK, compute_cost
from relay_core.providers import Capability, Provider, ProviderSettings
from relay_core.types import (
    AuditEvent,
    DocumentPart,
    EndEvent,
    ErrorInfo,
    GenerationConfig,
    ImagePart,
    Message,
    Request,
    Response,
    ResponseSchema,
    StreamEvent,
    ThinkingPart,
    Tool,
)

if TYPE_CHECKING:
    from relay_core.http import HttpPool
    from relay_core.log import Logger

__all__ = ["Hub", "ModelHandle", "merge_kwargs"]

T = TypeVar("T")
Prompt = str | Message | Sequence[Message] | Request

_GENERATION_FIELDS = frozenset(a.name for a in attrs.fields(GenerationConfig))


def _tool(value: Tool | Mapping[str, Any], index: int) -> Tool:
    if isinstance(value, Tool):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(
            f"tools[{index}] must be a Tool or a mapping of name, description and "
            f"parameters, not {type(value).__name__}"
        )
    return Tool(**value)


def build_request(model: str, prompt: Prompt | None = None, **options: Any) -> Request:
    """A :class:`Request` from the convenient call forms.

    ``prompt`` is a string (one user turn), a message, a list of messages, or a whole
    request. ``options`` are Request fields (``system``, ``tools``, ``custom_id``...) or
    GenerationConfig fields (``temperature``, ``max_tokens``...), which override
    ``config``. ``response_schema`` takes a JSON Schema dict, a :class:`ResponseSchema`,
    or an attrs class or Pydantic model, whose instance the response then carries as
    ``parsed``.
    """
    generation = {k: options.pop(k) for k in list(options) if k in _GENERATION_FIELDS}
    schema = options.get("response_schema")
    if isinstance(schema, dict):
        options["response_schema"] = ResponseSchema(schema=schema)
    elif isinstance(schema, type):
        options["response_schema"] = ResponseSchema.from_type(schema)
    if "tools" in options:
        options["tools"] = tuple(_tool(t, i) for i, t in enumerate(options["tools"] or ()))
    if isinstance(prompt, Request):
        request = attrs.evolve(prompt, model=prompt.model or model, **options)
    else:
        if prompt is None:
            messages: tuple[Message, ...] = ()
        elif isinstance(prompt, str):
            messages = (Message.user(prompt),)
        elif isinstance(prompt, Message):
            messages = (prompt,)
        else:
            messages = tuple(prompt)
        request = Request(messages=messages, model=model, **options)
    if generation:
        request = attrs.evolve(
            request, config=request.config.merged(GenerationConfig(**generation))
        )
    if not request.messages:
        raise InvalidRequestError(
            "a request needs at least one message", custom_id=request.custom_id
        )
    return request


def merge_kwargs(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, key by key at every depth: a call that sets
    ``{"metadata": {"user_id": "u1"}}`` keeps the catalog's other metadata keys. Values
    that are not objects (lists included) are replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        under = merged.get(key)
        if isinstance(value, Mapping) and isinstance(under, Mapping):
            merged[key] = merge_kwargs(under, value)
        else:
            merged[key] = value
    return merged


def required_capabilities(request: Request) -> set[Capability]:
    """What a provider must support to serve ``request``."""
    needs = {Capability.CHAT}
    if request.tools:
        needs.add(Capability.TOOLS)
    if request.response_schema is not None:
        needs.add(Capability.STRUCTURED_OUTPUT)
    for part in request.parts:
        if isinstance(part, ImagePart):
            needs.add(Capability.VISION)
        elif isinstance(part, DocumentPart):
            needs.add(Capability.DOCUMENTS)
        elif isinstance(part, ThinkingPart):
            needs.add(Capability.THINKING)
    if request.config.thinks:
        needs.add(Capability.THINKING)
    return needs


class _LoopThread:
    """A private event loop on a daemon thread, for the sync API."""

    def __init__(self) -> None:
        import asyncio  # loaded with the first sync call: asyncio costs a cold start

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="relay-hub-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        import asyncio

        if threading.current_thread() is self._thread:
            coro.close()
            raise self._on_own_loop("await hub.achat(...)")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    @staticmethod
    def _on_own_loop(async_form: str) -> RuntimeError:
        # Waiting on the loop we are running on would never return.
        return RuntimeError(
            "a sync Hub method was called on the hub's own event loop (from a hook or "
            f"an adapter); use the async form ({async_form}) there"
        )

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """The items of ``agen``, which runs on the loop and hands them over through a
        queue: a round trip between the threads per item would cost more than most
        stream events take to parse. Leaving the loop early cancels ``agen``."""
        import asyncio
        import queue

        if threading.current_thread() is self._thread:
            raise self._on_own_loop("hub.astream(...)")
        handed: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

        async def pump() -> None:
            try:
                async for item in agen:
                    handed.put((True, item))
            except BaseException as error:
                handed.put((False, error))
                raise
            handed.put((False, None))

        future = asyncio.run_coroutine_threadsafe(pump(), self.loop)
        try:
            while True:
                more, value = handed.get()
                if more:
                    yield value
                elif value is None:
                    return
                else:
                    raise value
        finally:
            if not future.done():
                future.cancel()
                with contextlib.suppress(BaseException):
                    future.result(timeout=5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class ModelHandle:
    """A resolved alias, bound to its adapter: the fast path for hot loops.

    ``hub.get("fast")`` returns one; its ``achat`` / ``chat`` / ``astream`` / ``stream``
    take the same arguments as the hub's, minus the model.
    """

    def __init__(self, hub: Hub, alias: str, config: ModelConfig) -> None:
        self.hub = hub
        self.alias = alias
        self.config = config
        self.provider_name = config.provider
        self.model = config.model
        self._adapter: Provider | None = None

    def __repr__(self) -> str:
        return f"ModelHandle({self.alias!r} -> {self.config.target!r})"

    @property
    def adapter(self) -> Provider:
        """The provider adapter (built, with credentials resolved, on first use)."""
        if self._adapter is None:
            self._adapter = self.hub._adapter(self.provider_name)
        return self._adapter

    def prepare(self, request: Request) -> Request:
        """The request as the adapter receives it: provider's model name, catalog params
        under the call's, capabilities checked."""
        adapter = self.adapter
        concrete = attrs.evolve(
            request,
            model=self.model,
            config=self.config.params.merged(request.config),
            provider_kwargs=merge_kwargs(self.config.provider_kwargs, request.provider_kwargs),
        )
        for capability in sorted(required_capabilities(concrete), key=str):
            if not adapter.supports(capability):
                raise UnsupportedCapability(self.provider_name, str(capability), model=self.model)
        return concrete

    def finish(
        self,
        custom_id: str | None,
        response: Response,
        started: float | None,
        *,
        batch: bool = False,
    ) -> Response:
        """Stamp what the core owns on an adapter's response: provider, ids, latency, cost
        (at the batch price when ``batch``). ``started`` is a ``perf_counter`` reading, or
        None where latency means nothing (a provider batch)."""
        price, source = self.hub._price(
            self.config, self.hub._priced_as[self.provider_name], self.model
        )
        profile = None
        if self.config.pricing_profile:
            profile = self.hub.catalog.pricing_profiles[self.config.pricing_profile]
        return attrs.evolve(
            response,
            provider=self.provider_name,
            model=response.model or self.model,
            custom_id=custom_id,
            latency=None if started is None else time.perf_counter() - started,
            cost=compute_cost(response.usage, price, source, profile=profile, batch=batch),
            metadata={**response.metadata, "alias": self.alias},
        )

    async def achat(self, prompt: Prompt | None = None, **options: Any) -> Response:
        request = build_request(self.alias, prompt, **options)
        return await self.hub._call(self, request)

    def chat(self, prompt: Prompt | None = None, **options: Any) -> Response:
        return self.hub._sync(self.achat(prompt, **options))

    def astream(self, prompt: Prompt | None = None, **options: Any) -> AsyncIterator[StreamEvent]:
        request = build_request(self.alias, prompt, **options)
        return self.hub._stream(self, request)

    def stream(self, prompt: Prompt | None = None, **options: Any) -> Iterator[StreamEvent]:
        return self.hub._sync_iter(self.astream(prompt, **options))


class _GroupHandle:
    """Members of a group in the order this call should try them."""

    def __init__(self, hub: Hub, alias: str, config: GroupConfig) -> None:
        self.hub = hub
        self.alias = alias
        self.config = config
        self._turn = itertools.count()

    def order(self) -> list[str]:
        members = list(self.config.members)
        if self.config.strategy == "round_robin":
            start = next(self._turn) % len(members)
            members = members[start:] + members[:start]
        return members


def _parsed(request: Request, response: Response) -> Response:
    """``response`` with ``parsed`` set when the request names a class to parse into."""
    schema = request.response_schema
    if schema is None or schema.python_type is None or response.finish_reason == "length":
        return response
    try:
        from relay_core.validation import without_optional_nulls

        data = without_optional_nulls(response.json(), schema.schema)
        validate = getattr(schema.python_type, "model_validate", None)
        if callable(validate):
            parsed = validate(data)
        else:
            from relay_core.serialize import structure

            parsed = structure(data, schema.python_type)
    except Exception as error:  # json, cattrs and pydantic each raise their own kind
        raise MalformedResponse(
            f"the answer does not fit {schema.name}: {error}",
            model=request.model,
            custom_id=request.custom_id,
        ) from error
    return attrs.evolve(response, parsed=parsed)


def _add_context(error: ProviderError, handle: ModelHandle, request: Request) -> None:
    error.provider = error.provider or handle.provider_name
    error.model = error.model or handle.model
    error.custom_id = error.custom_id or request.custom_id


def _worth_next_member(error: RelayError) -> bool:
    # A malformed request fails everywhere; anything else may work elsewhere.
    return isinstance(error, (ProviderError, UnsupportedCapability)) and not isinstance(
        error, InvalidRequestError
    )


class Hub:
    """Calls models by alias. Build it with :meth:`from_yaml` or from a :class:`Catalog`.

    ``plugins`` is the hub's :class:`PluginRegistry`; register an in-code plugin with
    ``hub.plugins.register(obj)``. ``autoload=False`` loads no entry points (for tests
    and for applications that register exactly what they use). ``transport`` replaces
    the network for every provider (``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        plugins: PluginRegistry | None = None,
        autoload: bool = True,
        transport: Any = None,
    ) -> None:
        self.catalog = catalog or Catalog()
        self.plugins = plugins or PluginRegistry(autoload=autoload)
        self._transport = transport
        self._http_pool: HttpPool | None = None
        self._logger: Logger | None = None
        self._handles: dict[str, ModelHandle | _GroupHandle] = {}
        self._adapters: dict[str, Provider] = {}
        self._priced_as: dict[str, str] = {}
        self._lock = threading.Lock()
        self._loop_thread: _LoopThread | None = None

    # asyncio, httpx and logging load on the first call, not when the hub is built.
    @property
    def _pool(self) -> HttpPool:
        if self._http_pool is None:
            from relay_core.http import HttpPool

            self._http_pool = HttpPool(transport=self._transport)
        return self._http_pool

    @property
    def _log(self) -> Logger:
        if self._logger is None:
            from relay_core.log import get_logger

            self._logger = get_logger("relay.hub")
        return self._logger

    @classmethod
    def from_yaml(cls, path: str | Path, **kwargs: Any) -> Hub:
        """A hub over the catalog file at ``path`` (see :func:`load_catalog`)."""
        return cls(load_catalog(path), **kwargs)

    def __repr__(self) -> str:
        return f"Hub(catalog={self.catalog.path!r}, aliases={len(self.catalog.aliases())})"

    # -- resolution ---------------------------------------------------------------------

    def get(self, alias: str | None = None) -> ModelHandle:
        """The bound handle of a model alias or ``provider/model`` (groups: use
        :meth:`achat` with the group's name, which routes per call)."""
        handle = self._handle(alias)
        if not isinstance(handle, ModelHandle):
            raise InvalidRequestError(
                f"{handle.alias!r} is a group; call hub.chat({handle.alias!r}, ...)"
            )
        return handle

    def _handle(self, alias: str | None) -> ModelHandle | _GroupHandle:
        name = alias or self.catalog.defaults.model
        if not name:
            raise InvalidRequestError("no model given and the catalog sets no defaults.model")
        handle = self._handles.get(name)
        if handle is None:
            config = self.catalog.lookup(name)
            handle = (
                _GroupHandle(self, name, config)
                if isinstance(config, GroupConfig)
                else ModelHandle(self, name, config)
            )
            self._handles[name] = handle
        return handle

    def built_adapters(self) -> dict[str, Provider]:
        """The adapters built so far, by provider name: what a server reports on (an
        adapter is built on the first call that needs it, never by this)."""
        with self._lock:
            return dict(self._adapters)

    def _adapter(self, provider: str) -> Provider:
        with self._lock:
            adapter = self._adapters.get(provider)
            if adapter is None:
                adapter = self._adapters[provider] = self._build_adapter(provider)
            return adapter

    def _build_adapter(self, name: str) -> Provider:
        from relay_core.http import HttpClient

        config = self.catalog.providers.get(name, ProviderConfig())
        entry = self.plugins.provider(self.catalog.plugin_of(name))
        # Pricing sources know providers by their registered name (`mock`), not by the
        # catalog key a user chose for one (`offline: {plugin: mock}`).
        self._priced_as[name] = entry.name
        adapter_cls = entry.load()
        defaults = entry.defaults
        defaults_options = defaults.get("options", {})
        settings = ProviderSettings(
            name=name,
            api_key=self._api_key(
                name, config, defaults.get("api_key_env", adapter_cls.api_key_env)
            ),
            base_url=config.base_url or defaults.get("base_url") or adapter_cls.default_base_url,
            timeout=config.timeout or self.catalog.defaults.timeout,
            max_retries=(
                config.max_retries
                if config.max_retries is not None
                else self.catalog.defaults.max_retries
            ),
            headers=dict(config.headers),
            options={**defaults_options, **config.options},
        )
        http = HttpClient(
            self._pool, settings, base_url=settings.base_url, rules=adapter_cls.error_rules
        )
        return adapter_cls(settings, http)

    def _api_key(self, name: str, config: ProviderConfig, env_var: str | None) -> Any:
        from relay_core.credentials import resolve_credential

        if config.api_key is not None:
            return resolve_credential(
                config.api_key,
                self.plugins,
                where=self.catalog.where(("providers", name, "api_key")),
            )
        if env_var is None:
            return None
        from relay_core.config import CredentialRef

        try:
            return resolve_credential(CredentialRef("env", env_var), self.plugins)
        except CredentialError:
            raise CredentialError(
                f"provider {name!r} needs an API key: set {env_var}, or give "
                f"providers.{name}.api_key in the catalog as a reference",
                file=self.catalog.path,
            ) from None

    def _price(self, config: ModelConfig, provider: str, model: str) -> tuple[Any, Any]:
        if config.pricing is not None:
            return config.pricing, "user_override"
        best = None
        for source in sorted(
            self.plugins.pricing_sources(), key=lambda s: TIER_RANK.get(s.tier, 9)
        ):
            price = source.price(provider, model)
            if price is not None:
                best = (price, source.tier)
                break
        return best or (None, "unknown")

    # -- the call pipeline --------------------------------------------------------------

    def _redact(self, request: Request) -> Request:
        for impl in reversed(self.plugins.hook.relay_redact.get_hookimpls()):
            redacted = impl.function(request=request)
            if redacted is not None:
                request = redacted
        return request

    def _audit(self, kind: str, handle: ModelHandle, request: Request, **fields: Any) -> None:
        if not self.plugins.hook.relay_audit.get_hookimpls():
            return
        self._emit(
            AuditEvent(
                kind=kind,
                at=time.time(),
                alias=handle.alias,
                provider=handle.provider_name,
                model=handle.model,
                custom_id=request.custom_id,
                **fields,
            )
        )

    def _audit_job(
        self, kind: str, job_id: str, *, provider: str | None = None, **metadata: Any
    ) -> None:
        if self.plugins.hook.relay_audit.get_hookimpls():
            self._emit(
                AuditEvent(
                    kind=kind, at=time.time(), job_id=job_id, provider=provider, metadata=metadata
                )
            )

    def _emit(self, event: AuditEvent) -> None:
        for impl in self.plugins.hook.relay_audit.get_hookimpls():
            try:
                impl.function(event=event)
            except Exception as error:  # a failing sink must not fail the call
                self._log.error("audit.sink_failed", plugin=impl.plugin_name, error=str(error))

    async def _call(self, handle: ModelHandle | _GroupHandle, request: Request) -> Response:
        if isinstance(handle, _GroupHandle):
            return await self._call_group(handle, request)
        request = self._redact(request)
        concrete = handle.prepare(request)
        self.plugins.hook.relay_guardrail_pre(request=concrete)
        started = time.perf_counter()
        retries: list[str] = []
        try:
            response = await self._retrying(handle, lambda: self._answer(handle, concrete), retries)
        except ProviderError as error:
            _add_context(error, handle, request)
            self._audit(
                "call.failed",
                handle,
                request,
                error=ErrorInfo.from_exception(error),
                latency=time.perf_counter() - started,
            )
            raise
        response = handle.finish(request.custom_id, response, started)
        if retries:
            response = attrs.evolve(response, metadata={**response.metadata, "retries": retries})
        self.plugins.hook.relay_guardrail_post(request=concrete, response=response)
        self._audit(
            "call.succeeded",
            handle,
            request,
            usage=response.usage,
            cost=response.cost,
            latency=response.latency,
        )
        self._log.debug(
            "call.succeeded",
            alias=handle.alias,
            provider=handle.provider_name,
            model=response.model,
            latency=response.latency,
        )
        return response

    async def _answer(self, handle: ModelHandle, request: Request) -> Response:
        # Parsed inside the retried call: an answer that does not fit the schema is a
        # malformed answer, worth another attempt like any other.
        return _parsed(request, await handle.adapter.chat(request))

    async def _retrying(
        self, handle: ModelHandle, call: Callable[[], Awaitable[T]], retries: list[str]
    ) -> T:
        from relay_core.http import RetryPolicy, retrying

        policy = RetryPolicy(max_attempts=handle.adapter.settings.max_retries + 1)

        def on_retry(attempt: int, error: ProviderError, wait: float) -> None:
            retries.append(type(error).__name__)
            self._log.warning(
                "call.retry",
                alias=handle.alias,
                attempt=attempt,
                error=type(error).__name__,
                wait=round(wait, 3),
            )

        return await retrying(call, policy, on_retry=on_retry)

    async def _call_group(self, group: _GroupHandle, request: Request) -> Response:
        attempts: list[dict[str, str]] = []
        last_error: RelayError | None = None
        for member in group.order():
            try:
                response = await self._call(self._handle(member), request)
            except RelayError as error:
                if not _worth_next_member(error):
                    raise
                attempts.append({"member": member, "error": type(error).__name__})
                last_error = error
                continue
            route = {
                "group": group.alias,
                "strategy": group.config.strategy,
                "member": member,
                "reason": "first healthy member"
                if attempts
                else (
                    "next in rotation" if group.config.strategy == "round_robin" else "first member"
                ),
                "failed": attempts,
            }
            return attrs.evolve(response, metadata={**response.metadata, "route": route})
        assert last_error is not None
        raise last_error

    async def _stream(
        self, handle: ModelHandle | _GroupHandle, request: Request
    ) -> AsyncIterator[StreamEvent]:
        if isinstance(handle, _GroupHandle):
            async for event in self._stream_group(handle, request):
                yield event
            return
        request = self._redact(request)
        concrete = handle.prepare(request)
        if not handle.adapter.supports(Capability.STREAM):
            raise UnsupportedCapability(handle.provider_name, "stream", model=handle.model)
        self.plugins.hook.relay_guardrail_pre(request=concrete)
        started = time.perf_counter()
        try:
            events = await self._open_stream(handle, concrete)
            async for event in events:
                if isinstance(event, EndEvent):
                    response = handle.finish(
                        request.custom_id, _parsed(concrete, event.response), started
                    )
                    self.plugins.hook.relay_guardrail_post(request=concrete, response=response)
                    self._audit(
                        "stream.succeeded",
                        handle,
                        request,
                        usage=response.usage,
                        cost=response.cost,
                        latency=response.latency,
                    )
                    yield EndEvent(response)
                    return
                yield event
            raise MalformedResponse(
                "stream ended before its end event",
                provider=handle.provider_name,
                model=handle.model,
                custom_id=request.custom_id,
            )
        except ProviderError as error:
            _add_context(error, handle, request)
            self._audit(
                "stream.failed",
                handle,
                request,
                error=ErrorInfo.from_exception(error),
                latency=time.perf_counter() - started,
            )
            raise

    async def _open_stream(
        self, handle: ModelHandle, request: Request
    ) -> AsyncIterator[StreamEvent]:
        """The adapter's stream with its first event already received, so that a failure
        before any output is retried like a chat call; later failures are not."""
        retries: list[str] = []

        async def first() -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
            stream = handle.adapter.stream(request)
            try:
                head = await stream.__anext__()
            except StopAsyncIteration:
                raise MalformedResponse(
                    "stream ended before its first event",
                    provider=handle.provider_name,
                    model=handle.model,
                ) from None
            return head, stream

        head, stream = await self._retrying(handle, first, retries)

        async def chained() -> AsyncIterator[StreamEvent]:
            yield head
            async for event in stream:
                yield event

        return chained()

    async def _stream_group(
        self, group: _GroupHandle, request: Request
    ) -> AsyncIterator[StreamEvent]:
        last_error: RelayError | None = None
        for member in group.order():
            stream = self._stream(self._handle(member), request)
            try:
                head = await stream.__anext__()
            except RelayError as error:
                if not _worth_next_member(error):
                    raise
                last_error = error
                continue
            yield head
            async for event in stream:
                yield event
            return
        assert last_error is not None
        raise last_error

    # -- public calls -------------------------------------------------------------------

    async def achat(
        self, model: str | Request | None = None, prompt: Prompt | None = None, **options: Any
    ) -> Response:
        """Send one request and return the whole answer.

        ``hub.achat("fast", "Hi")``, ``hub.achat("fast", [Message.user(...)], tools=[...])``
        or ``hub.achat(Request(...))``. Options are Request or GenerationConfig fields.
        """
        if isinstance(model, Request):
            model, prompt = model.model, model
        request = build_request(model or "", prompt, **options)
        return await self._call(self._handle(model), request)

    def chat(
        self, model: str | Request | None = None, prompt: Prompt | None = None, **options: Any
    ) -> Response:
        """The sync form of :meth:`achat`."""
        return self._sync(self.achat(model, prompt, **options))

    def astream(
        self, model: str | Request | None = None, prompt: Prompt | None = None, **options: Any
    ) -> AsyncIterator[StreamEvent]:
        """Yield the answer as typed events; the last is an ``EndEvent`` with the whole
        response (cost and latency included)."""
        if isinstance(model, Request):
            model, prompt = model.model, model
        request = build_request(model or "", prompt, **options)
        return self._stream(self._handle(model), request)

    def stream(
        self, model: str | Request | None = None, prompt: Prompt | None = None, **options: Any
    ) -> Iterator[StreamEvent]:
        """The sync form of :meth:`astream`."""
        return self._sync_iter(self.astream(model, prompt, **options))

    # -- sync plumbing and lifetime -----------------------------------------------------

    def _loop(self) -> _LoopThread:
        with self._lock:
            if self._loop_thread is None:
                self._loop_thread = _LoopThread()
            return self._loop_thread

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop().run(coro)

    def _sync_iter(self, agen: AsyncIterator[T]) -> Iterator[T]:
        return self._loop().iterate(agen)

    async def aclose(self) -> None:
        """Close pooled connections (of this loop and of the sync loop) and adapters."""
        for adapter in list(self._adapters.values()):
            await adapter.aclose()
        await self._pool.aclose()
        if self._loop_thread is not None:
            import asyncio

            thread, self._loop_thread = self._loop_thread, None
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self._pool.aclose(), thread.loop)
            )
            thread.stop()

    def close(self) -> None:
        """Close pooled connections; the hub can still be used afterwards (it reopens)."""
        if self._loop_thread is not None:
            thread = self._loop_thread
            thread.run(self._pool.aclose())
            for adapter in list(self._adapters.values()):
                thread.run(adapter.aclose())
            self._loop_thread = None
            thread.stop()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Hub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
