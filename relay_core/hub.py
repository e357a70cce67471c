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

from relay_core.bridge import LoopThread
from relay_core.caching import cache_key, served_from_cache
from relay_core.calls import CallInfo, Restorer
from relay_core.config import Catalog, GroupConfig, ModelConfig, ProviderConfig, load_catalog
from relay_core.errors import (
    ConfigError,
    CredentialError,
    GuardrailViolation,
    InvalidRequestError,
    MalformedResponse,
    PluginNotInstalled,
    ProviderError,
    RelayError,
    Timeout,
    UnsupportedCapability,
)
from relay_core.plugins import PluginRegistry
from relay_core.pricing import PriceQuote, cost_of, quote
from relay_core.providers import Capability, Provider, ProviderSettings
from relay_core.routing import (
    Candidate,
    Route,
    Router,
    RoutingContext,
    router_for,
)
from relay_core.streaming import closing_stream
from relay_core.types import (
    SERVER_TOOL_PARTS,
    AuditEvent,
    Cost,
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
    TextDelta,
    ThinkingPart,
    Tool,
)

if TYPE_CHECKING:
    from relay_core.breakers import CircuitBreaker
    from relay_core.caching import ResponseCache
    from relay_core.http import HttpPool
    from relay_core.log import Logger
    from relay_core.pricing import ModelInfo
    from relay_core.tools import Toolset

__all__ = [
    "CallOptions",
    "GroupHandle",
    "Hub",
    "ModelHandle",
    "Pipeline",
    "merge_kwargs",
    "parse_structured",
    "without_server_tools",
]

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
    elif schema is not None and not isinstance(schema, ResponseSchema):
        raise InvalidRequestError(
            "response_schema must be a JSON Schema object, a ResponseSchema or a class, "
            f"not {type(schema).__name__}",
            custom_id=options.get("custom_id"),
        )
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
    if not request.messages and not request.system:
        raise InvalidRequestError(
            "a request needs at least one message or a system prompt",
            custom_id=request.custom_id,
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


def without_server_tools(request: Request) -> Request:
    """``request`` without the records of tools a provider ran itself
    (:class:`~relay_core.types.ServerToolCallPart`, ``ServerToolResultPart``), and
    without the messages that held nothing else.

    For a provider that does not run server tools (no ``Capability.SERVER_TOOLS``):
    the records are of work another provider did, encrypted or in its own form, which
    this one can neither check nor use, and its API would refuse them. The answer's
    text, with its citations as plain text, stays. The hub logs what it left out
    (``server_tool_parts_left_out``, at debug level).
    """
    if not any(isinstance(part, SERVER_TOOL_PARTS) for part in request.parts):
        return request
    messages = []
    for message in request.messages:
        kept = tuple(p for p in message.content if not isinstance(p, SERVER_TOOL_PARTS))
        if kept:
            messages.append(attrs.evolve(message, content=kept))
    return attrs.evolve(request, messages=tuple(messages))


_UNSET: Any = object()


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
        self.breaker: Any = _UNSET  # looked up on the first call (None: no breaker)

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
        if not adapter.supports(Capability.SERVER_TOOLS):
            stripped = without_server_tools(concrete)
            if stripped is not concrete:
                dropped = sum(1 for _ in concrete.parts) - sum(1 for _ in stripped.parts)
                self.hub._log.debug(
                    "server_tool_parts_left_out", provider=self.provider_name, parts=dropped
                )
                concrete = stripped
        for capability in sorted(required_capabilities(concrete), key=str):
            if not adapter.supports(capability):
                raise UnsupportedCapability(self.provider_name, str(capability), model=self.model)
        if not concrete.messages and not adapter.system_only:
            raise UnsupportedCapability(
                self.provider_name,
                "a request with a system prompt and no message (send a user message)",
                model=self.model,
            )
        return concrete

    def quote(self) -> PriceQuote:
        """The price this alias is billed at, with its provenance (see
        :func:`relay_core.pricing.quote`)."""
        catalog = self.hub.catalog
        profile_name = self.config.pricing_profile or catalog.defaults.pricing_profile
        return quote(
            self.hub._pricing_name(self.provider_name),
            self.model,
            self.hub.plugins.pricing_sources(),
            override=self.config.pricing,
            profile=catalog.pricing_profiles[profile_name] if profile_name else None,
            profile_name=profile_name,
        )

    def call_info(self, options: CallOptions, *, streaming: bool = False) -> CallInfo:
        """What the per-call hooks are told about a call of this alias."""
        return CallInfo(
            alias=self.alias,
            provider=self.provider_name,
            model=self.model,
            group=options.group,
            job_id=options.job_id,
            streaming=streaming,
            quote=self.quote,
        )

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
        return attrs.evolve(
            response,
            provider=self.provider_name,
            model=response.model or self.model,
            custom_id=custom_id,
            latency=None if started is None else time.perf_counter() - started,
            cost=cost_of(response.usage, self.quote(), batch=batch),
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


class GroupHandle:
    """A catalog group: its name, its settings and the router of its strategy (what
    :meth:`Hub.resolve` returns for a group; :meth:`Pipeline.call` routes it per call)."""

    def __init__(self, hub: Hub, alias: str, config: GroupConfig) -> None:
        self.hub = hub
        self.alias = alias
        self.config = config
        self.router = router_for(config)


@attrs.frozen
class CallOptions:
    """What a call asked of the pipeline beyond the request itself. Made by
    :meth:`Pipeline.options`, which starts the deadline's clock: make one per call (or
    one per tool loop, whose deadline bounds every round)."""

    cache: bool | None = None
    deadline: float | None = None
    deadline_at: float | None = None  # on time.monotonic()
    job_id: str | None = None
    group: str | None = None  # the group routing this call, for hooks and audit

    def left(self) -> float | None:
        return None if self.deadline_at is None else self.deadline_at - time.monotonic()

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    async def bounded(self, work: Awaitable[T], handle: ModelHandle) -> T:
        import asyncio

        try:
            return await asyncio.wait_for(work, max(self.left() or 0.0, 0.0))
        except TimeoutError:
            raise Timeout(
                f"the call's deadline of {self.deadline:g}s passed",
                provider=handle.provider_name,
                model=handle.model,
            ) from None


_NO_OPTIONS = CallOptions()


class _Attempts:
    """The members a routed call tried, for the route record and the final error."""

    def __init__(self, name: str, route: Route) -> None:
        self.name = name
        self.route = route
        self.failures: list[dict[str, str]] = []
        self.last_error: RelayError | None = None

    def failed(self, member: str, error: RelayError) -> None:
        self.failures.append({"member": member, "error": type(error).__name__})
        self.last_error = error

    def answered_by(self, member: str) -> dict[str, Any]:
        reason = self.route.reason
        if self.failures:
            reason += f"; answered after {len(self.failures)} member(s) failed"
        return {
            "group": self.name,
            "strategy": self.route.strategy,
            "member": member,
            "reason": reason,
            "failed": list(self.failures),
            "skipped": [{"member": m, "reason": why} for m, why in self.route.skipped],
        }

    def give_up(self, options: CallOptions) -> RelayError:
        if self.last_error is not None and not options.expired():
            return self.last_error
        if options.expired():
            tried = ", ".join(f["member"] for f in self.failures) or "none"
            return Timeout(
                f"the call's deadline of {options.deadline:g}s passed in {self.name!r} "
                f"(members tried: {tried})"
            )
        skipped = "; ".join(f"{m}: {why}" for m, why in self.route.skipped)
        return UnsupportedCapability(
            self.name, f"this request ({skipped})" if skipped else "this request (no member)"
        )


async def _restoring(
    events: AsyncIterator[StreamEvent], restorers: Sequence[Restorer]
) -> AsyncIterator[StreamEvent]:
    """``events`` with redacted values put back: text deltas through each restorer's
    ``feed`` (what one keeps back comes out with its ``flush`` before the end event),
    the final response through ``restore``."""
    async with closing_stream(events):
        async for event in events:
            if isinstance(event, TextDelta):
                text = event.text
                for restorer in restorers:
                    text = restorer.feed(text)
                if text or event.signature:
                    yield attrs.evolve(event, text=text)
                continue
            if isinstance(event, EndEvent):
                tail = ""
                for index, restorer in enumerate(restorers):
                    flushed = restorer.flush()
                    for later in restorers[index + 1 :]:
                        flushed = later.feed(flushed)
                    tail += flushed
                if tail:
                    yield TextDelta(tail)
                response = event.response
                for restorer in restorers:
                    response = restorer.restore(response)
                yield EndEvent(response)
                continue
            yield event


def _with_route(event: StreamEvent, route: dict[str, Any]) -> StreamEvent:
    if not isinstance(event, EndEvent):
        return event
    response = event.response
    return EndEvent(attrs.evolve(response, metadata={**response.metadata, "route": route}))


def parse_structured(request: Request, response: Response) -> Response:
    """``response`` with ``parsed`` set when the request names a class to parse into
    (``response_schema`` with a Python type), read from the answer's JSON text; the
    response unchanged otherwise, or when the answer was cut off at the length limit.

    The one definition of how a structured answer is read: a plugin that rewrites an
    answer's text (relay-redact restoring values) parses it again with this. Raises
    :class:`MalformedResponse` when the text does not fit the schema."""
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
    # A malformed request fails everywhere; anything else may work elsewhere, and so
    # may a request a guardrail refused this member only.
    if isinstance(error, GuardrailViolation):
        return error.try_next
    return isinstance(error, (ProviderError, UnsupportedCapability)) and not isinstance(
        error, InvalidRequestError
    )


class Pipeline:
    """What the hub does to a call, for the code that drives calls itself: the tool loop,
    batch jobs and the engine, servers and plugins. ``hub.pipeline`` is the hub's.

    Everything here is what :meth:`Hub.achat` does too (redaction, guardrails, cache,
    breaker, retries, deadline, routing, audit); these methods only let a caller that
    resolves its own target, makes its own requests or writes its own audit events take
    part in it without reaching into the hub.
    """

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def options(
        self,
        *,
        cache: bool | None = None,
        deadline: float | None = None,
        job_id: str | None = None,
    ) -> CallOptions:
        """The options of one call (or of one tool loop): ``cache`` on or off (default:
        the alias's or the catalog's setting), a ``deadline`` in seconds from now
        (default: ``defaults.deadline``), the ``job_id`` audit events and hooks carry.
        Raises :class:`InvalidRequestError` for a deadline that is not above 0."""
        return self._hub._options(cache, deadline, job_id=job_id)

    async def call(
        self,
        target: ModelHandle | GroupHandle,
        request: Request,
        options: CallOptions | None = None,
    ) -> Response:
        """The answer to ``request`` from ``target`` (see :meth:`Hub.resolve`), through
        the whole pipeline: redacted on the way out and restored on the way back, a
        group routed over its members. The request's own ``model`` is not looked at.
        Raises what :meth:`Hub.achat` raises."""
        return await self._hub._call(target, request, options)

    def redact(self, request: Request) -> Request:
        """``request`` as it may leave the process: every installed redactor applied, in
        registration order (the hub's plugins are configured first if no call has done
        it). A request already redacted is redacted again, so pass the original."""
        return self._hub._redact(request)

    def audit_view(self, request: Request) -> Request:
        """``request`` redacted for an audit sink, which must never see what a redactor
        hides: like :meth:`redact`, with nothing kept to restore afterwards."""
        seen = self._hub._redact(request)
        # Asking for the restorers of a view nothing is restored from lets a redactor
        # drop the placeholder map it keeps for one.
        self._hub._restorers(seen)
        return seen

    @property
    def audited(self) -> bool:
        """Whether any audit sink is installed: build an event only when one is."""
        return bool(self._hub.plugins.hook.relay_audit.get_hookimpls())

    def audit(self, event: AuditEvent) -> None:
        """Give ``event`` to every audit sink. A sink that raises is logged
        (``audit.sink_failed``) and skipped: auditing never fails the caller."""
        self._hub._emit(event)

    def audit_job(
        self,
        kind: str,
        job_id: str,
        *,
        provider: str | None = None,
        cost: Cost | None = None,
        **metadata: Any,
    ) -> None:
        """Audit a step of batch job ``job_id`` (``job.started``, ``batch.submitted``,
        ...) stamped with the current time, ``metadata`` as the event's; nothing is
        built when no sink is installed."""
        self._hub._audit_job(kind, job_id, provider=provider, cost=cost, **metadata)


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
        self._handles: dict[str, ModelHandle | GroupHandle] = {}
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self._cache_store: ResponseCache | None = None
        self._candidates: dict[str, Candidate] = {}
        self._listings: dict[tuple[int, str], dict[str, ModelInfo]] = {}
        self._configured = False
        self._configured_plugins: list[object] = []
        self._adapters: dict[str, Provider] = {}
        self._priced_as: dict[str, str] = {}
        self._lock = threading.Lock()
        self._loop_thread: LoopThread | None = None
        self.pipeline = Pipeline(self)

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
        """A hub over the catalog file at ``path`` (see :func:`load_catalog`).

        A ``plugins:`` section that no installed plugin reads, or an unknown field in
        one, is a :class:`ConfigError` here already (with ``autoload=False``, at the
        first call, once the application has registered its plugins)."""
        hub = cls(load_catalog(path), **kwargs)
        if hub.catalog.plugins and (kwargs.get("autoload", True) or "plugins" in kwargs):
            hub._check_sections(warn=False)  # warnings come with the first call
        return hub

    def _check_sections(self, *, warn: bool = True) -> None:
        from relay_core.sections import check_sections, raise_all

        errors, warnings = check_sections(self.catalog, self.plugins)
        raise_all(errors)
        for warning in warnings if warn else ():
            self._log.warning("plugin_section_ignored", reason=str(warning))

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

    def resolve(self, alias: str | None = None) -> ModelHandle | GroupHandle:
        """The handle of a model alias, ``provider/model`` or group (default:
        ``defaults.model``), made once and kept: what :meth:`Pipeline.call` takes.
        Raises :class:`InvalidRequestError` for no name and :class:`UnknownAlias` for a
        name the catalog does not know."""
        return self._handle(alias)

    def _handle(self, alias: str | None) -> ModelHandle | GroupHandle:
        name = alias or self.catalog.defaults.model
        if not name:
            raise InvalidRequestError("no model given and the catalog sets no defaults.model")
        handle = self._handles.get(name)
        if handle is None:
            config = self.catalog.lookup(name)
            handle = (
                GroupHandle(self, name, config)
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

    def _pricing_name(self, provider: str) -> str:
        # Pricing sources know providers by their registered name (`mock`), not by the
        # catalog key a user chose for one (`offline: {plugin: mock}`).
        return self._priced_as.get(provider) or self.catalog.plugin_of(provider)

    # -- redaction and audit ------------------------------------------------------------

    def _configure_plugins(self) -> None:
        """Load the entry points and register what each plugin configures for this hub's
        catalog (once, before the first call: a redactor must see the first request)."""
        self.plugins.load()
        with self._lock:
            if self._configured:
                return
            # Before any plugin configures itself: a misspelt guardrails section must
            # stop the hub, not leave its calls unguarded.
            self._check_sections()
            for impl in self.plugins.hook.relay_configure.get_hookimpls():
                configured = impl.function(
                    **{arg: self.catalog for arg in impl.argnames if arg == "catalog"}
                )
                name = f"{impl.plugin_name}:configured"
                # A registry shared by several hubs keeps the first hub's configuration.
                if configured is not None and not self.plugins.pm.has_plugin(name):
                    self.plugins.register(configured, name=name)
                    self._configured_plugins.append(configured)
            self._configured = True

    def _redact(self, request: Request) -> Request:
        if not self._configured:
            self._configure_plugins()
        for impl in reversed(self.plugins.hook.relay_redact.get_hookimpls()):
            redacted = impl.function(request=request)
            if redacted is not None:
                request = redacted
        return request

    def _audit(
        self,
        kind: str,
        handle: ModelHandle,
        request: Request,
        options: CallOptions,
        **fields: Any,
    ) -> None:
        if not self.plugins.hook.relay_audit.get_hookimpls():
            return
        caller = request.metadata.get("caller")
        # A tool loop's model calls say which loop and round they belong to.
        loop = request.metadata.get("tool_loop")
        if isinstance(loop, dict):
            fields["metadata"] = {
                **fields.get("metadata", {}),
                "loop": loop.get("id"),
                "step": loop.get("step"),
            }
        self._emit(
            AuditEvent(
                kind=kind,
                at=time.time(),
                alias=handle.alias,
                provider=handle.provider_name,
                model=handle.model,
                custom_id=request.custom_id,
                job_id=options.job_id,
                group=options.group,
                caller=caller if isinstance(caller, str) else None,
                tags=request.tags,
                request=request,
                **fields,
            )
        )

    def _restorers(self, request: Request) -> list[Restorer]:
        """The restorers offered for the answer to the redacted ``request``, in the
        order to apply them (the reverse of the redactors')."""
        if not self.plugins.hook.relay_restorer.get_hookimpls():
            return []
        # pluggy returns results last-registered first; redaction ran first-registered
        # first, so this is already the reverse order.
        return [r for r in self.plugins.hook.relay_restorer(request=request) if r is not None]

    def _audit_job(
        self,
        kind: str,
        job_id: str,
        *,
        provider: str | None = None,
        cost: Cost | None = None,
        **metadata: Any,
    ) -> None:
        if self.plugins.hook.relay_audit.get_hookimpls():
            self._emit(
                AuditEvent(
                    kind=kind,
                    at=time.time(),
                    job_id=job_id,
                    provider=provider,
                    cost=cost,
                    metadata=metadata,
                )
            )

    def _emit(self, event: AuditEvent) -> None:
        for impl in self.plugins.hook.relay_audit.get_hookimpls():
            try:
                impl.function(event=event)
            except Exception as error:  # a failing sink must not fail the call
                self._log.error("audit.sink_failed", plugin=impl.plugin_name, error=str(error))

    # -- breakers, cache, routing candidates ---------------------------------------------

    def _breaker(self, handle: ModelHandle) -> CircuitBreaker | None:
        if handle.breaker is not _UNSET:
            known: CircuitBreaker | None = handle.breaker
            return known
        provider = self.catalog.providers.get(handle.provider_name)
        settings = (
            provider.circuit_breaker if provider is not None else None
        ) or self.catalog.defaults.circuit_breaker
        breaker = None
        if settings is not None:
            from relay_core.breakers import CircuitBreaker

            with self._lock:
                # Aliases of one provider/model share its breaker.
                breaker = self._breakers.setdefault(
                    (handle.provider_name, handle.model),
                    CircuitBreaker(
                        settings, name=handle.config.target, on_change=self._breaker_moved
                    ),
                )
        handle.breaker = breaker
        return breaker

    def _breaker_moved(self, name: str, old: str, new: str) -> None:
        log = self._log.warning if new == "open" else self._log.info
        log("breaker." + new, target=name, was=old)

    @property
    def response_cache(self) -> ResponseCache | None:
        """The response cache's store, or ``None`` until a call asks for the cache (a
        hub whose calls never do opens none)."""
        return self._cache_store

    def breaker_states(self) -> dict[str, str]:
        """The state of every circuit breaker used so far (``closed``, ``open`` or
        ``half_open``), by ``provider/model``."""
        with self._lock:
            breakers = list(self._breakers.values())
        return {breaker.name: breaker.state for breaker in breakers}

    def _response_cache(
        self, handle: ModelHandle, request: Request, options: CallOptions
    ) -> tuple[ResponseCache | None, str]:
        wanted = options.cache
        if wanted is None:
            wanted = handle.config.cache
        if wanted is None:
            wanted = self.catalog.defaults.cache
        if not wanted:
            return None, ""
        if self._cache_store is None:
            offered = self.plugins.response_cache()
            if offered is None:
                raise PluginNotInstalled(
                    "cache", "relay-cache", what="the response cache (asked for by this call)"
                )
            name, factory = offered
            with self._lock:
                if self._cache_store is None:
                    try:
                        self._cache_store = factory(self.catalog.plugins.get(name, {}))
                    except ConfigError as error:
                        if error.line is None:  # the factory sees a mapping, not the file
                            raise self.catalog.error(error.reason, ("plugins", name)) from None
                        raise
        return self._cache_store, cache_key(handle.config.target, request)

    async def _from_cache(
        self,
        cache: ResponseCache,
        key: str,
        handle: ModelHandle,
        request: Request,
        concrete: Request,
        started: float,
        kind: str,
        call: CallInfo,
        options: CallOptions,
    ) -> Response | None:
        """The stored answer to ``concrete`` as this call's response (post guardrails
        run, audited as ``<kind>.cached``), or ``None`` on a miss."""
        try:
            hit = await cache.get(key)
        except Exception as error:  # a broken cache costs a call, never the answer
            self._log.error("cache.failed", operation="get", error=repr(error))
            return None
        if hit is None:
            return None
        response = served_from_cache(
            parse_structured(concrete, hit), request.custom_id, time.perf_counter() - started
        )
        self.plugins.hook.relay_guardrail_post(request=concrete, response=response, call=call)
        self._audit(
            f"{kind}.cached",
            handle,
            request,
            options,
            usage=response.usage,
            cost=response.cost,
            latency=response.latency,
            response=response,
        )
        return response

    async def _cache_put(self, cache: ResponseCache, key: str, response: Response) -> None:
        try:
            await cache.put(key, response)
        except Exception as error:
            self._log.error("cache.failed", operation="put", error=repr(error))

    def candidate(self, alias: str) -> Candidate:
        """What routers know about ``alias``: capabilities, price, context window, tags,
        and whether its circuit is open."""
        known = self._candidates.get(alias)
        if known is None:
            known = self._candidates[alias] = self._describe(self._handle(alias))
        handle = self._handles.get(alias)
        if isinstance(handle, ModelHandle):
            breaker = self._breaker(handle)
            if breaker is not None and breaker.state == "open":
                return attrs.evolve(known, available=False)
        return known

    def _describe(self, handle: ModelHandle | GroupHandle) -> Candidate:
        if isinstance(handle, GroupHandle):
            members = [self.candidate(member) for member in handle.config.members]
            return Candidate(
                alias=handle.alias,
                capabilities=frozenset[str]().union(*(m.capabilities for m in members)),
            )
        entry = self.plugins.provider(self.catalog.plugin_of(handle.provider_name))
        capabilities = {str(c) for c in entry.load().capabilities}
        info = self.model_info(handle.provider_name, handle.model)
        if info is not None and info.capabilities:
            capabilities &= set(info.capabilities) | {"chat", "stream", "batch"}
        quoted = handle.quote()
        return Candidate(
            alias=handle.alias,
            target=handle.config.target,
            capabilities=frozenset(capabilities),
            price=quoted.effective(),
            price_tier=quoted.tier,
            context_window=info.context_window if info is not None else None,
            tags=handle.config.tags,
        )

    def model_info(self, provider: str, model: str) -> ModelInfo | None:
        """What the installed pricing sources that list models know of ``provider/model``
        (the best tier first), or ``None``."""
        from relay_core.pricing import ListingSource, by_tier

        name = self._pricing_name(provider)
        sources = [s for s in self.plugins.pricing_sources() if isinstance(s, ListingSource)]
        for source in by_tier(sources):
            index = self._listings.get((id(source), name))
            if index is None:
                index = {info.model: info for info in source.models(name)}
                self._listings[(id(source), name)] = index
            if model in index:
                return index[model]
        return None

    def routing_context(self, request: Request, aliases: Sequence[str]) -> RoutingContext:
        """What a router is told about ``request`` and the ``aliases`` it may choose."""
        return RoutingContext(request, aliases, self.candidate)

    # -- the call pipeline --------------------------------------------------------------

    async def _call(
        self,
        handle: ModelHandle | GroupHandle,
        request: Request,
        options: CallOptions | None = None,
    ) -> Response:
        options = options or self._options()
        if isinstance(handle, GroupHandle):
            return await self._call_routed(
                handle.alias, handle.router, request, options, handle.config.members
            )
        request = self._redact(request)
        response = await self._call_model(handle, request, options)
        for restorer in self._restorers(request):
            response = restorer.restore(response)
        return response

    async def _call_model(
        self, handle: ModelHandle, request: Request, options: CallOptions
    ) -> Response:
        """One call of one model, for a redacted request: the answer as redacted.
        Whatever ends it with a Relay error (the provider, a guardrail, a capability
        the provider lacks) is audited as ``call.failed``."""
        started = time.perf_counter()
        retries: list[str] = []
        try:
            concrete = handle.prepare(request)
            call = handle.call_info(options, streaming=False)
            self.plugins.hook.relay_guardrail_pre(request=concrete, call=call)
            cache, key = self._response_cache(handle, concrete, options)
            if cache is not None:
                hit = await self._from_cache(
                    cache, key, handle, request, concrete, started, "call", call, options
                )
                if hit is not None:
                    return hit
            response = await self._guarded(
                handle,
                request,
                lambda: self._retrying(
                    handle, lambda: self._answer(handle, concrete), retries, options
                ),
            )
            response = handle.finish(request.custom_id, response, started)
            self.plugins.hook.relay_guardrail_post(request=concrete, response=response, call=call)
        except RelayError as error:
            if isinstance(error, ProviderError):
                _add_context(error, handle, request)
            self._audit(
                "call.failed",
                handle,
                request,
                options,
                error=ErrorInfo.from_exception(error),
                latency=time.perf_counter() - started,
            )
            raise
        if cache is not None:
            await self._cache_put(cache, key, response)
        if retries:
            response = attrs.evolve(response, metadata={**response.metadata, "retries": retries})
        self._audit(
            "call.succeeded",
            handle,
            request,
            options,
            usage=response.usage,
            cost=response.cost,
            latency=response.latency,
            response=response,
        )
        self._log.debug(
            "call.succeeded",
            alias=handle.alias,
            provider=handle.provider_name,
            model=response.model,
            latency=response.latency,
        )
        return response

    async def _guarded(
        self, handle: ModelHandle, request: Request, call: Callable[[], Awaitable[T]]
    ) -> T:
        """``call()`` behind the circuit breaker of ``handle``'s provider and model."""
        breaker = self._breaker(handle)
        if breaker is None:
            return await call()
        breaker.acquire(
            provider=handle.provider_name, model=handle.model, custom_id=request.custom_id
        )
        try:
            result = await call()
        except ProviderError as error:
            breaker.record(error)
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.record(None)
        return result

    async def _answer(self, handle: ModelHandle, request: Request) -> Response:
        # Parsed inside the retried call: an answer that does not fit the schema is a
        # malformed answer, worth another attempt like any other.
        return parse_structured(request, await handle.adapter.chat(request))

    async def _retrying(
        self,
        handle: ModelHandle,
        call: Callable[[], Awaitable[T]],
        retries: list[str],
        options: CallOptions,
    ) -> T:
        from relay_core.http import RetryPolicy, retrying

        left = options.left()
        policy = RetryPolicy(max_attempts=handle.adapter.settings.max_retries + 1, deadline=left)

        def on_retry(attempt: int, error: ProviderError, wait: float) -> None:
            retries.append(type(error).__name__)
            self._log.warning(
                "call.retry",
                alias=handle.alias,
                attempt=attempt,
                error=type(error).__name__,
                wait=round(wait, 3),
            )

        if left is None:
            return await retrying(call, policy, on_retry=on_retry)
        return await options.bounded(retrying(call, policy, on_retry=on_retry), handle)

    def _route(
        self,
        name: str,
        router: Router,
        request: Request,
        options: CallOptions,
        aliases: Sequence[str],
    ) -> tuple[_Attempts, CallOptions]:
        """Ask ``router`` for the order of a routed call; its members are called with
        options naming the group."""
        route = router.route(request, self.routing_context(request, aliases))
        return _Attempts(name, route), attrs.evolve(options, group=name)

    async def _call_routed(
        self,
        name: str,
        router: Router,
        request: Request,
        options: CallOptions,
        aliases: Sequence[str],
    ) -> Response:
        attempts, options = self._route(name, router, request, options, aliases)
        for member in attempts.route.order:
            if options.expired():
                break
            try:
                response = await self._call(self._handle(member), request, options)
            except RelayError as error:
                if not _worth_next_member(error):
                    raise
                attempts.failed(member, error)
                continue
            return attrs.evolve(
                response, metadata={**response.metadata, "route": attempts.answered_by(member)}
            )
        raise attempts.give_up(options)

    async def _stream(
        self,
        handle: ModelHandle | GroupHandle,
        request: Request,
        options: CallOptions | None = None,
    ) -> AsyncIterator[StreamEvent]:
        options = options or self._options()
        # Every layer closes the stream it reads, so that stopping early anywhere (the
        # caller, or a layer at the end event) closes the adapter's HTTP stream at once.
        if isinstance(handle, GroupHandle):
            routed = self._stream_routed(
                handle.alias, handle.router, request, options, handle.config.members
            )
            async with closing_stream(routed):
                async for event in routed:
                    yield event
            return
        request = self._redact(request)
        events = self._stream_model(handle, request, options)
        restorers = self._restorers(request)
        if restorers:
            events = _restoring(events, restorers)
        async with closing_stream(events):
            async for event in events:
                yield event

    async def _stream_model(
        self, handle: ModelHandle, request: Request, options: CallOptions
    ) -> AsyncIterator[StreamEvent]:
        """One stream of one model, for a redacted request: events as redacted.
        Whatever ends it with a Relay error is audited as ``stream.failed``."""
        started = time.perf_counter()
        try:
            concrete = handle.prepare(request)
            if not handle.adapter.supports(Capability.STREAM):
                raise UnsupportedCapability(handle.provider_name, "stream", model=handle.model)
            call = handle.call_info(options, streaming=True)
            self.plugins.hook.relay_guardrail_pre(request=concrete, call=call)
            cache, key = self._response_cache(handle, concrete, options)
            if cache is not None:
                hit = await self._from_cache(
                    cache, key, handle, request, concrete, started, "stream", call, options
                )
                if hit is not None:
                    from relay_core.streaming import replay

                    for event in replay(hit):
                        yield event
                    return
            events = await self._guarded(
                handle, request, lambda: self._open_stream(handle, concrete, options)
            )
            async with closing_stream(events):
                async for event in events:
                    if isinstance(event, EndEvent):
                        response = handle.finish(
                            request.custom_id, parse_structured(concrete, event.response), started
                        )
                        self.plugins.hook.relay_guardrail_post(
                            request=concrete, response=response, call=call
                        )
                        if cache is not None:
                            await self._cache_put(cache, key, response)
                        self._audit(
                            "stream.succeeded",
                            handle,
                            request,
                            options,
                            usage=response.usage,
                            cost=response.cost,
                            latency=response.latency,
                            response=response,
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
        except RelayError as error:
            if isinstance(error, ProviderError):
                _add_context(error, handle, request)
            self._audit(
                "stream.failed",
                handle,
                request,
                options,
                error=ErrorInfo.from_exception(error),
                latency=time.perf_counter() - started,
            )
            raise

    async def _open_stream(
        self, handle: ModelHandle, request: Request, options: CallOptions
    ) -> AsyncIterator[StreamEvent]:
        """The adapter's stream with its first event already received, so that a failure
        before any output is retried like a chat call; later failures are not (and do
        not count against the circuit breaker: the provider did answer)."""
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

        head, stream = await self._retrying(handle, first, retries, options)

        async def chained() -> AsyncIterator[StreamEvent]:
            async with closing_stream(stream):
                yield head
                async for event in stream:
                    yield event

        return chained()

    async def _stream_routed(
        self,
        name: str,
        router: Router,
        request: Request,
        options: CallOptions,
        aliases: Sequence[str],
    ) -> AsyncIterator[StreamEvent]:
        attempts, options = self._route(name, router, request, options, aliases)
        for member in attempts.route.order:
            if options.expired():
                break
            stream = self._stream(self._handle(member), request, options)
            async with closing_stream(stream):
                try:
                    head = await stream.__anext__()
                except RelayError as error:
                    if not _worth_next_member(error):
                        raise
                    attempts.failed(member, error)
                    continue
                # Once output has reached the caller, the member is chosen for good.
                route_info = attempts.answered_by(member)
                if isinstance(head, EndEvent):
                    yield _with_route(head, route_info)
                    return
                yield head
                async for event in stream:
                    yield _with_route(event, route_info) if isinstance(event, EndEvent) else event
                return
        raise attempts.give_up(options)

    # -- public calls -------------------------------------------------------------------

    def _options(
        self,
        cache: bool | None = None,
        deadline: float | None = None,
        *,
        job_id: str | None = None,
    ) -> CallOptions:
        deadline = deadline if deadline is not None else self.catalog.defaults.deadline
        if deadline is None and cache is None and job_id is None:
            return _NO_OPTIONS
        if deadline is not None and not deadline > 0:
            raise InvalidRequestError(
                f"deadline must be a number of seconds above 0, not {deadline}"
            )
        return CallOptions(
            cache=cache,
            deadline=deadline,
            deadline_at=None if deadline is None else time.monotonic() + deadline,
            job_id=job_id,
        )

    async def achat(
        self,
        model: str | Request | None = None,
        prompt: Prompt | None = None,
        *,
        cache: bool | None = None,
        deadline: float | None = None,
        **options: Any,
    ) -> Response:
        """Send one request and return the whole answer.

        ``hub.achat("fast", "Hi")``, ``hub.achat("fast", [Message.user(...)], tools=[...])``
        or ``hub.achat(Request(...))``. Options are Request or GenerationConfig fields.
        ``cache`` switches the response cache on or off for this call (default: the
        alias's or the catalog's setting); ``deadline`` bounds the whole call in seconds,
        retries and fallbacks included (default: ``defaults.deadline``).
        """
        if isinstance(model, Request):
            model, prompt = model.model, model
        request = build_request(model or "", prompt, **options)
        return await self._call(self._handle(model), request, self._options(cache, deadline))

    def chat(
        self,
        model: str | Request | None = None,
        prompt: Prompt | None = None,
        *,
        cache: bool | None = None,
        deadline: float | None = None,
        **options: Any,
    ) -> Response:
        """The sync form of :meth:`achat`."""
        return self._sync(self.achat(model, prompt, cache=cache, deadline=deadline, **options))

    def astream(
        self,
        model: str | Request | None = None,
        prompt: Prompt | None = None,
        *,
        cache: bool | None = None,
        deadline: float | None = None,
        **options: Any,
    ) -> AsyncIterator[StreamEvent]:
        """Yield the answer as typed events; the last is an ``EndEvent`` with the whole
        response (cost and latency included). ``cache`` and ``deadline`` as for
        :meth:`achat`; a cached answer is replayed as events."""
        if isinstance(model, Request):
            model, prompt = model.model, model
        request = build_request(model or "", prompt, **options)
        return self._stream(self._handle(model), request, self._options(cache, deadline))

    def stream(
        self,
        model: str | Request | None = None,
        prompt: Prompt | None = None,
        *,
        cache: bool | None = None,
        deadline: float | None = None,
        **options: Any,
    ) -> Iterator[StreamEvent]:
        """The sync form of :meth:`astream`."""
        return self._sync_iter(
            self.astream(model, prompt, cache=cache, deadline=deadline, **options)
        )

    async def achat_routed(
        self,
        router: Router,
        prompt: Prompt,
        *,
        aliases: Sequence[str] | None = None,
        cache: bool | None = None,
        deadline: float | None = None,
        **options: Any,
    ) -> Response:
        """Let ``router`` pick the alias: it sees the request and every alias of
        ``aliases`` (default: the catalog's models) as :class:`~relay_core.routing.Candidate`
        values, and returns the order to try. The hub falls back along that order on
        retryable or unavailable errors, and records the decision in
        ``response.metadata["route"]`` (``member``, ``reason``, ``failed``, ``skipped``)."""
        request = build_request("", prompt, **options)
        name = type(router).__name__
        return await self._call_routed(
            name,
            router,
            request,
            self._options(cache, deadline),
            list(aliases) if aliases is not None else sorted(self.catalog.models),
        )

    def chat_routed(
        self,
        router: Router,
        prompt: Prompt,
        *,
        aliases: Sequence[str] | None = None,
        cache: bool | None = None,
        deadline: float | None = None,
        **options: Any,
    ) -> Response:
        """The sync form of :meth:`achat_routed`."""
        return self._sync(
            self.achat_routed(
                router, prompt, aliases=aliases, cache=cache, deadline=deadline, **options
            )
        )

    # -- the tool loop --------------------------------------------------------------------

    def toolsets(self) -> dict[str, Toolset]:
        """The toolsets plugins offer this hub (``relay_toolsets``), by name."""
        if not self._configured:
            self._configure_plugins()
        found: dict[str, Toolset] = {}
        for impl in self.plugins.hook.relay_toolsets.get_hookimpls():
            for toolset in impl.function() or ():
                if toolset.name in found:
                    raise ConfigError(
                        f"two toolsets are named {toolset.name!r} (one from plugin "
                        f"{impl.plugin_name!r}): rename one of them"
                    )
                found[toolset.name] = toolset
        return found

    def _chosen_toolsets(self, chosen: Sequence[str | Toolset] | None) -> list[Toolset]:
        offered = (
            self.toolsets() if chosen is None or any(isinstance(t, str) for t in chosen) else {}
        )
        if chosen is None:
            return list(offered.values())
        picked: list[Toolset] = []
        for toolset in chosen:
            if not isinstance(toolset, str):
                picked.append(toolset)
            elif toolset in offered:
                picked.append(offered[toolset])
            else:
                known = (
                    ", ".join(sorted(offered)) or "none (is relay-mcp installed and configured?)"
                )
                raise ConfigError(f"no toolset named {toolset!r}; the hub has: {known}")
        return picked

    async def arun_tools(
        self,
        model: str | Request | None = None,
        prompt: Prompt | None = None,
        *,
        toolsets: Sequence[str | Toolset] | None = None,
        max_steps: int = 8,
        cache: bool | None = None,
        deadline: float | None = None,
        **options: Any,
    ) -> Response:
        """Call the model with tools and run the tools it asks for until it answers.

        ``toolsets`` names the hub's toolsets to offer (default: all of them; see
        :meth:`toolsets`) or passes :class:`~relay_core.tools.Toolset` objects, such as
        a :class:`~relay_core.tools.FunctionToolset`. Each round calls the model
        (``model`` is an alias, group or ``provider/model``, as for :meth:`achat`), runs
        the tool calls of its answer concurrently, and sends the results back. It ends
        at an answer without tool calls, at a call of a tool no toolset runs (a tool
        given in ``tools=``: the answer is returned for you to run it), or after
        ``max_steps`` model calls (the last answer's tool calls are then not run).

        The answer is the last model answer, with ``steps`` holding every round (each
        answer that asked for tools and the :class:`~relay_core.types.ToolRun` of each
        call), ``usage`` and ``cost`` summed over all model calls, and
        ``metadata["tool_loop"]`` saying why it stopped (``answer``, ``caller_tool``,
        ``max_steps``). Audit sinks see each model call, each tool run
        (``tool.succeeded``/``tool.failed``) and ``tool_loop.finished``. ``deadline``
        bounds the whole loop, the tools' time included: a tool still running at the
        deadline is sent back as an error, and the model call after it raises
        :class:`~relay_core.Timeout`.
        """
        from relay_core.tools import ToolLoop

        if isinstance(model, Request):
            model, prompt = model.model, model
        request = build_request(model or "", prompt, **options)
        loop = ToolLoop(
            hub=self,
            handle=self._handle(model),
            options=self._options(cache, deadline),
            toolsets=self._chosen_toolsets(toolsets),
            max_steps=max_steps,
        )
        return await loop.run(request)

    def run_tools(
        self,
        model: str | Request | None = None,
        prompt: Prompt | None = None,
        *,
        toolsets: Sequence[str | Toolset] | None = None,
        max_steps: int = 8,
        cache: bool | None = None,
        deadline: float | None = None,
        **options: Any,
    ) -> Response:
        """The sync form of :meth:`arun_tools`."""
        return self._sync(
            self.arun_tools(
                model,
                prompt,
                toolsets=toolsets,
                max_steps=max_steps,
                cache=cache,
                deadline=deadline,
                **options,
            )
        )

    # -- sync plumbing and lifetime -----------------------------------------------------

    def _loop(self) -> LoopThread:
        with self._lock:
            if self._loop_thread is None:
                self._loop_thread = LoopThread()
            return self._loop_thread

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to its end on the hub's own event loop thread and return its
        result (or raise its error): how the sync API calls the async one, with the
        pools and adapters the sync calls share. Raises ``RuntimeError`` when called
        from that loop itself (use the async form there)."""
        return self._sync(coro)

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop().run(coro)

    def _sync_iter(self, agen: AsyncIterator[T]) -> Iterator[T]:
        return self._loop().iterate(agen)

    async def _close_configured(self) -> None:
        # What relay_configure returned may hold files (audit sinks), connections or
        # processes (MCP servers): its aclose() is awaited, or its close() called.
        for configured in self._configured_plugins:
            try:
                aclose = getattr(configured, "aclose", None)
                if callable(aclose):
                    await aclose()
                    continue
                close = getattr(configured, "close", None)
                if callable(close):
                    close()
            except Exception as error:
                self._log.error("plugin.close_failed", plugin=repr(configured), error=repr(error))

    async def aclose(self) -> None:
        """Close pooled connections (of this loop and of the sync loop), adapters, the
        response cache's store and what plugins configured for this hub."""
        await self._close_configured()
        for adapter in list(self._adapters.values()):
            await adapter.aclose()
        if self._cache_store is not None:
            await self._cache_store.aclose()
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
        if self._configured_plugins:
            self._loop().run(self._close_configured())
        if self._loop_thread is not None:
            thread = self._loop_thread
            thread.run(self._pool.aclose())
            for adapter in list(self._adapters.values()):
                thread.run(adapter.aclose())
            if self._cache_store is not None:
                thread.run(self._cache_store.aclose())
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
