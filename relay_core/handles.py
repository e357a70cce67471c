"""The handles a hub resolves names to: :class:`ModelHandle` for a model alias or
``provider/model``, :class:`GroupHandle` for a group.

A handle is what the pipeline calls (``ModelTarget``/``GroupTarget``): it binds an alias
to its catalog entry and adapter, makes a request what that provider receives
(:meth:`ModelHandle.prepare`) and stamps what the core owns on its answer
(:meth:`ModelHandle.finish`). It is apart from :class:`~relay_core.hub.Hub`, which makes
and keeps the handles, because it is one idea, the per-model half of a call, and it uses
the hub only through its public API.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs

from relay_core.call_forms import Prompt, build_request, merge_kwargs, without_server_tools
from relay_core.calls import CallInfo
from relay_core.capabilities import required_capabilities
from relay_core.config import GroupConfig, ModelConfig
from relay_core.counting import count_locally, count_tokens
from relay_core.embeddings import EmbeddingRequest, EmbeddingResponse
from relay_core.errors import InvalidRequestError, UnsupportedCapability
from relay_core.log import Logger, get_logger
from relay_core.pipeline import CallOptions
from relay_core.pricing import PriceQuote, cost_of, quote
from relay_core.providers import Capability, Provider
from relay_core.routing import Router, router_for
from relay_core.sampling import honoured
from relay_core.tokens import TokenCount
from relay_core.types import Request, Response, StreamEvent

if TYPE_CHECKING:
    from relay_core.hub import Hub

__all__ = ["GroupHandle", "Handles", "ModelHandle"]


def _log() -> Logger:
    # The hub's logger: what a handle logs is the hub's doing to the call.
    return get_logger("relay.hub")


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
        self._generation = -1

    router = None  # what tells a model from a group in the pipeline

    def __repr__(self) -> str:
        return f"ModelHandle({self.alias!r} -> {self.config.target!r})"

    @property
    def adapter(self) -> Provider:
        """The provider adapter (built, with credentials resolved, on first use)."""
        adapters = self.hub.adapters
        # After hub.refresh_credentials() the adapter is built again, with its key.
        if self._adapter is None or self._generation != adapters.generation:
            self._generation = adapters.generation
            self._adapter = adapters.get(self.provider_name)
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
                _log().debug(
                    "server_tool_parts_left_out", provider=self.provider_name, parts=dropped
                )
                concrete = stripped
        for capability in sorted(required_capabilities(concrete), key=str):
            if not adapter.supports(capability):
                raise UnsupportedCapability(self.provider_name, str(capability), model=self.model)
        concrete = honoured(concrete, adapter.generation_settings, provider=self.provider_name)
        if not concrete.messages and not adapter.system_only:
            raise UnsupportedCapability(
                self.provider_name,
                "a request with a system prompt and no message (send a user message)",
                model=self.model,
            )
        return concrete

    def prepare_embedding(self, request: EmbeddingRequest) -> EmbeddingRequest:
        """An embedding request as the adapter receives it: the provider's model name,
        the catalog's ``provider_kwargs`` under the call's; raises
        :class:`UnsupportedCapability` when the provider does not embed."""
        if not self.adapter.supports(Capability.EMBEDDINGS):
            raise UnsupportedCapability(
                self.provider_name, str(Capability.EMBEDDINGS), model=self.model
            )
        return attrs.evolve(
            request,
            model=self.model,
            provider_kwargs=merge_kwargs(self.config.provider_kwargs, request.provider_kwargs),
        )

    def quote(self) -> PriceQuote:
        """The price this alias is billed at, with its provenance (see
        :func:`relay_core.pricing.quote`)."""
        catalog = self.hub.catalog
        profile_name = self.config.pricing_profile or catalog.defaults.pricing_profile
        return quote(
            self.hub.adapters.pricing_name(self.provider_name),
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
            count=self.count_locally,
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

    def finish_embedding(
        self,
        custom_id: str | None,
        response: EmbeddingResponse,
        started: float | None,
        *,
        batch: bool = False,
    ) -> EmbeddingResponse:
        """:meth:`finish` for an embedding answer: priced per input token."""
        return attrs.evolve(
            response,
            provider=self.provider_name,
            model=response.model or self.model,
            custom_id=custom_id,
            latency=None if started is None else time.perf_counter() - started,
            cost=cost_of(attrs.evolve(response.usage, output_tokens=0), self.quote(), batch=batch),
            metadata={**response.metadata, "alias": self.alias},
        )

    async def achat(self, prompt: Prompt | None = None, **options: Any) -> Response:
        """:meth:`Hub.achat` on this alias: the same ``prompt`` and options, without the
        alias looked up again."""
        request = build_request(self.alias, prompt, **options)
        return await self.hub.pipeline.call(self, request)

    async def aembed(
        self, texts: str | Sequence[str] | EmbeddingRequest, **options: Any
    ) -> EmbeddingResponse:
        """The vectors of ``texts`` from this alias: :meth:`Hub.aembed` without the model."""
        return await self.hub.aembed(self, texts, **options)

    def embed(
        self, texts: str | Sequence[str] | EmbeddingRequest, **options: Any
    ) -> EmbeddingResponse:
        """The blocking :meth:`aembed`."""
        return self.hub.run_sync(self.aembed(texts, **options))

    def chat(self, prompt: Prompt | None = None, **options: Any) -> Response:
        """The blocking :meth:`achat`: :meth:`Hub.chat` on this alias."""
        return self.hub.run_sync(self.achat(prompt, **options))

    def astream(self, prompt: Prompt | None = None, **options: Any) -> AsyncIterator[StreamEvent]:
        """:meth:`Hub.astream` on this alias: the answer as stream events."""
        request = build_request(self.alias, prompt, **options)
        return self.hub.pipeline.stream(self, request)

    def stream(self, prompt: Prompt | None = None, **options: Any) -> Iterator[StreamEvent]:
        """The blocking :meth:`astream`: :meth:`Hub.stream` on this alias."""
        return self.hub.run_sync_iter(self.astream(prompt, **options))

    async def acount_tokens(self, prompt: Prompt | None = None, **options: Any) -> TokenCount:
        """The input tokens ``prompt`` would take on this alias (:meth:`count`), built
        from the same arguments as :meth:`achat`."""
        request = build_request(self.alias, prompt, **options)
        return await self.count(request)

    def count_tokens(self, prompt: Prompt | None = None, **options: Any) -> TokenCount:
        """The blocking :meth:`acount_tokens`."""
        return self.hub.run_sync(self.acount_tokens(prompt, **options))

    def count_locally(self, concrete: Request) -> TokenCount:
        """The input tokens of a prepared request (:meth:`prepare`) without I/O, for a
        sync hook: the provider's tokenizer where the adapter has one, else the estimate."""
        return count_locally(self.adapter, concrete, provider=self.provider_name, model=self.model)

    async def count(self, request: Request) -> TokenCount:
        """The input tokens of ``request`` as this alias's model would count them.

        Not a call through the pipeline: a count is free and answers no prompt, so it is
        neither cached, audited, guarded nor priced. It is retried like a call (a count
        endpoint answers 429 and 5xx too). Without an exact count (no count endpoint, no
        tokenizer installed) it is :func:`~relay_core.tokens.estimate_tokens`, and says
        why in ``reason``.
        """
        concrete = self.prepare(request)
        return await count_tokens(
            self.adapter, concrete, provider=self.provider_name, model=self.model
        )


class GroupHandle:
    """A catalog group: its name, its settings and the router of its strategy (what
    :meth:`Hub.resolve` returns for a group; :meth:`Pipeline.call` routes it per call)."""

    def __init__(
        self,
        hub: Hub,
        alias: str,
        config: GroupConfig | None,
        *,
        router: Router | None = None,
        members: Sequence[str] = (),
    ) -> None:
        self.hub = hub
        self.alias = alias
        self.config = config
        # A group of the catalog routes by its strategy; hub.achat_routed brings its own.
        self.router: Router = router or router_for(cast("GroupConfig", config))
        self.members: Sequence[str] = config.members if config is not None else members

    def first_member(self, request: Request) -> ModelHandle:
        """The member the router would try first for ``request`` (what a group's token
        count is for); :class:`InvalidRequestError` when it routes to none."""
        route = self.router.route(request, self.hub.routing_context(request, self.members))
        if not route.order:
            raise InvalidRequestError(
                f"group {self.alias!r} routes this request to no member ({route.reason})",
                custom_id=request.custom_id,
            )
        return self.hub.get(route.order[0])


class Handles:
    """One hub's handles by name, each made on first use and kept: a handle keeps its
    adapter, so a hot loop over one alias pays the catalog lookup once."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._made: dict[str, ModelHandle | GroupHandle] = {}

    def __repr__(self) -> str:
        return f"Handles({sorted(self._made)})"

    def resolve(self, alias: str | None) -> ModelHandle | GroupHandle:
        """The handle of a model alias, ``provider/model`` or group (default: the
        catalog's ``defaults.model``); see :meth:`Hub.resolve`."""
        catalog = self.hub.catalog
        name = alias or catalog.defaults.model
        if not name:
            raise InvalidRequestError("no model given and the catalog sets no defaults.model")
        handle = self._made.get(name)
        if handle is None:
            config = catalog.lookup(name)
            handle = (
                GroupHandle(self.hub, name, config)
                if isinstance(config, GroupConfig)
                else ModelHandle(self.hub, name, config)
            )
            self._made[name] = handle
        return handle
