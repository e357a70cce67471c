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

from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from relay_core.adapters import Adapters, credentials_in_code
from relay_core.bridge import SyncBridge
from relay_core.call_forms import (
    Prompt,
    build_embedding_request,
    build_request,
    merge_kwargs,
    request_of_call,
    without_server_tools,
)
from relay_core.candidates import Candidates
from relay_core.config import Catalog, CredentialResolver, load_catalog
from relay_core.configured import ConfiguredPlugins
from relay_core.embeddings import EmbeddingRequest, EmbeddingResponse, InputType
from relay_core.errors import InvalidRequestError
from relay_core.handles import GroupHandle, Handles, ModelHandle
from relay_core.pipeline import CallOptions, Pipeline, parse_structured
from relay_core.plugins import PluginRegistry
from relay_core.pricing import ModelInfo
from relay_core.providers import Provider
from relay_core.routing import Candidate, Router, RoutingContext
from relay_core.secrets import Secret
from relay_core.tokens import TokenCount
from relay_core.tools import ToolLoop, Toolset, choose_toolsets, offered_toolsets
from relay_core.types import Request, Response, StreamEvent

if TYPE_CHECKING:
    from relay_core.caching import ResponseCache

# The call forms, the handles and the pipeline's names are re-exported: code imports
# them from here (relay_core.hub.build_request, ModelHandle...).
__all__ = [
    "CallOptions",
    "GroupHandle",
    "Hub",
    "ModelHandle",
    "Pipeline",
    "Prompt",
    "build_request",
    "merge_kwargs",
    "parse_structured",
    "without_server_tools",
]

T = TypeVar("T")


class Hub:
    """Calls models by alias. Build it with :meth:`from_yaml` or from a :class:`Catalog`.

    ``plugins`` is the hub's :class:`PluginRegistry`; register an in-code plugin with
    ``hub.plugins.register(obj)``. ``autoload=False`` loads no entry points (for tests
    and for applications that register exactly what they use). ``transport`` replaces
    the network for every provider (``httpx.MockTransport`` in tests).

    ``credentials`` gives providers' keys in code, by provider name (the catalog's key,
    ``openai``): a :class:`Secret`, a reference string (``$env.NAME``), or a callable
    returning the key (sync or async; called when the adapter is built, and again after
    :meth:`refresh_credentials`). They win over the catalog's ``api_key``. A plain
    string that is not a reference is a :class:`CredentialError`: wrap a key in
    ``Secret`` so that nothing ever prints it.
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        plugins: PluginRegistry | None = None,
        autoload: bool = True,
        transport: Any = None,
        credentials: Mapping[str, Secret | CredentialResolver | str] | None = None,
    ) -> None:
        self.catalog = catalog or Catalog()
        self.plugins = plugins or PluginRegistry(autoload=autoload)
        keys = credentials_in_code(credentials or {}, self.catalog, self.plugins)
        self._handles = Handles(self)
        self._setup = ConfiguredPlugins(self.catalog, self.plugins)
        self._bridge = SyncBridge()
        self.adapters = Adapters(self.catalog, self.plugins, transport, credentials=keys)
        self.pipeline = Pipeline(self, prepare=self._setup.configure)
        self._candidates = Candidates(self.adapters, self._handle, self.pipeline.breakers)

    def refresh_credentials(self, provider: str | None = None) -> list[str]:
        """Resolve keys again: the adapters of ``provider`` (default: all) are built
        anew by the next call, calling their resolver, reading their reference (a
        secret manager's, past its cache) or environment variable again. For a key
        rotated while the application runs, e.g. on an :class:`AuthenticationError`.
        Calls in flight finish with the old key. Returns the providers refreshed."""
        return self.adapters.refresh(provider)

    @classmethod
    def from_yaml(cls, path: str | Path, **kwargs: Any) -> Hub:
        """A hub over the catalog file at ``path`` (see :func:`load_catalog`).

        A ``plugins:`` section that no installed plugin reads, or an unknown field in
        one, is a :class:`ConfigError` here already (with ``autoload=False``, at the
        first call, once the application has registered its plugins)."""
        hub = cls(load_catalog(path), **kwargs)
        if hub.catalog.plugins and (kwargs.get("autoload", True) or "plugins" in kwargs):
            hub._setup.check_sections(warn=False)  # warnings come with the first call
        return hub

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
        return self._handles.resolve(alias)

    def built_adapters(self) -> dict[str, Provider]:
        """The adapters built so far, by provider name: what a server reports on (an
        adapter is built on the first call that needs it, never by this)."""
        return self.adapters.built()

    def configure_plugins(self) -> None:
        """Load the entry points and register what each plugin configures for this hub's
        catalog, checking the catalog's ``plugins:`` sections first (a
        :class:`ConfigError` for a mistake in one). The first call does this by itself;
        call it to find such mistakes before any call (``relay validate`` does). Runs
        once; later calls do nothing."""
        self._setup.configure()

    # -- breakers, cache, routing candidates ---------------------------------------------

    @property
    def response_cache(self) -> ResponseCache | None:
        """The response cache's store, or ``None`` until a call asks for the cache (a
        hub whose calls never do opens none)."""
        return self.pipeline.response_cache

    def breaker_states(self) -> dict[str, str]:
        """The state of every circuit breaker used so far (``closed``, ``open`` or
        ``half_open``), by ``provider/model``."""
        return self.pipeline.breakers.states()

    def candidate(self, alias: str) -> Candidate:
        """What routers know about ``alias``: capabilities, price, context window, tags,
        and whether its circuit is open."""
        return self._candidates.of(alias)

    def model_info(self, provider: str, model: str) -> ModelInfo | None:
        """What the installed pricing sources that list models know of ``provider/model``
        (the best tier first), or ``None``."""
        return self._candidates.model_info(provider, model)

    def routing_context(
        self, request: Request, aliases: Sequence[str], *, needs: frozenset[str] | None = None
    ) -> RoutingContext:
        """What a router is told about ``request`` and the ``aliases`` it may choose
        (``needs``: what the call needs of them, when not what ``request`` uses)."""
        return RoutingContext(request, aliases, self.candidate, needs=needs)

    # -- public calls -------------------------------------------------------------------

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
        model, request = request_of_call(model, prompt, **options)
        options_ = self.pipeline.options(cache=cache, deadline=deadline)
        return await self.pipeline.call(self._handle(model), request, options_)

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
        model, request = request_of_call(model, prompt, **options)
        options_ = self.pipeline.options(cache=cache, deadline=deadline)
        return self.pipeline.stream(self._handle(model), request, options_)

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

    async def acount_tokens(
        self, model: str | Request | None = None, prompt: Prompt | None = None, **options: Any
    ) -> TokenCount:
        """How many input tokens ``prompt`` is for ``model``: a
        :class:`~relay_core.tokens.TokenCount`, exact where the provider counts (its count
        endpoint, or its tokenizer), an estimate that says so otherwise. Takes what
        :meth:`achat` takes (``system``, ``tools``...). A group counts for the member its
        router would try first."""
        model, request = request_of_call(model, prompt, **options)
        handle = self._handle(model)
        if isinstance(handle, GroupHandle):
            handle = handle.first_member(request)
        return await handle.count(request)

    def count_tokens(
        self, model: str | Request | None = None, prompt: Prompt | None = None, **options: Any
    ) -> TokenCount:
        """The sync form of :meth:`acount_tokens`."""
        return self._sync(self.acount_tokens(model, prompt, **options))

    async def achat_routed(
        self,
        router: Router,
        prompt: Prompt | None = None,
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
        members = list(aliases) if aliases is not None else sorted(self.catalog.models)
        group = GroupHandle(self, type(router).__name__, None, router=router, members=members)
        options_ = self.pipeline.options(cache=cache, deadline=deadline)
        return await self.pipeline.call(group, request, options_)

    def chat_routed(
        self,
        router: Router,
        prompt: Prompt | None = None,
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

    # -- embeddings -----------------------------------------------------------------------

    async def aembed(
        self,
        model: str | ModelHandle | EmbeddingRequest | None,
        texts: str | Sequence[str] | EmbeddingRequest | None = None,
        *,
        dimensions: int | None = None,
        input_type: InputType | None = None,
        custom_id: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        provider_kwargs: Mapping[str, Any] | None = None,
        cache: bool | None = None,
        deadline: float | None = None,
    ) -> EmbeddingResponse:
        """The vectors of ``texts``, one per text in order (a single string: one vector).

        ``model`` is an alias, ``provider/model`` or group (routed over its members
        that declare ``embeddings``), or a whole :class:`EmbeddingRequest`.
        ``dimensions`` asks for shorter vectors, ``input_type`` says what they are for
        (``query``, ``document``...); ``cache`` and ``deadline`` as for :meth:`achat`.
        Texts beyond the provider's limits per call are sent in several calls and
        joined back in order. Raises :class:`UnsupportedCapability` for a model that
        does not embed, :class:`InvalidRequestError` for no texts."""
        if isinstance(model, EmbeddingRequest):
            model, texts = model.model, model
        request = build_embedding_request(
            model if isinstance(model, str) else "",
            texts,
            dimensions=dimensions,
            input_type=input_type,
            custom_id=custom_id,
            tags=tags,
            metadata=metadata,
            provider_kwargs=provider_kwargs,
        )
        target = model if isinstance(model, ModelHandle) else self._handle(model)
        options = self.pipeline.options(cache=cache, deadline=deadline)
        return await self.pipeline.embed(target, request, options)

    def embed(
        self,
        model: str | ModelHandle | EmbeddingRequest | None,
        texts: str | Sequence[str] | EmbeddingRequest | None = None,
        **options: Any,
    ) -> EmbeddingResponse:
        """The sync form of :meth:`aembed`."""
        return self._sync(self.aembed(model, texts, **options))

    # -- the tool loop --------------------------------------------------------------------

    def toolsets(self) -> dict[str, Toolset]:
        """The toolsets plugins offer this hub (``relay_toolsets``), by name."""
        self._setup.configure()
        return offered_toolsets(self.plugins)

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
        model, request = request_of_call(model, prompt, **options)
        loop = ToolLoop(
            pipeline=self.pipeline,
            handle=self._handle(model),
            options=self.pipeline.options(cache=cache, deadline=deadline),
            toolsets=choose_toolsets(toolsets, self.toolsets),
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

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to its end on the hub's own event loop thread and return its
        result (or raise its error): how the sync API calls the async one, with the
        pools and adapters the sync calls share. Raises ``RuntimeError`` when called
        from that loop itself (use the async form there)."""
        return self._sync(coro)

    def run_sync_iter(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Iterate ``agen`` from sync code, each item produced on the hub's event loop
        thread: how the sync API streams (:meth:`stream`, ``ModelHandle.stream``). Raises
        ``RuntimeError`` when iterated on that loop itself (use the async form there)."""
        return self._sync_iter(agen)

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._bridge.run(coro)

    def _sync_iter(self, agen: AsyncIterator[T]) -> Iterator[T]:
        return self._bridge.iterate(agen)

    async def aclose(self) -> None:
        """Close pooled connections (of this loop and of the sync loop), adapters, the
        response cache's store and what plugins configured for this hub."""
        await self._setup.aclose()
        for adapter in [*self.adapters.built().values(), *self.adapters.retired()]:
            await adapter.aclose()
        if self.response_cache is not None:
            await self.response_cache.aclose()
        await self.adapters.pool.aclose()
        thread = self._bridge.detach()
        if thread is not None:
            import asyncio

            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self.adapters.pool.aclose(), thread.loop)
            )
            thread.stop()

    def close(self) -> None:
        """Close pooled connections; the hub can still be used afterwards (it reopens)."""
        if self._setup.configured:
            self._bridge.run(self._setup.aclose())
        thread = self._bridge.detach()
        if thread is not None:
            thread.run(self.adapters.pool.aclose())
            for adapter in [*self.adapters.built().values(), *self.adapters.retired()]:
                thread.run(adapter.aclose())
            if self.response_cache is not None:
                thread.run(self.response_cache.aclose())
            thread.stop()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Hub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
