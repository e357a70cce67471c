"""The call pipeline: what happens to a call between the hub and a provider's adapter.

A call goes down a chain of layers, one concern each, to the adapter, and its answer
comes back up through them (:mod:`relay_core.pipeline.layers` has them, in the order of
``LAYERS``; :mod:`relay_core.pipeline.call` the call and reply they pass). A layer the
catalog and the installed plugins do not ask for is not in the chain.

``hub.pipeline`` is the hub's :class:`Pipeline`: the public way for the code that
drives calls itself (the tool loop, batch jobs and the engine, servers and plugins) to
send a call through it, or to redact and audit as the hub does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from relay_core.embeddings import EmbeddingRequest, EmbeddingResponse
from relay_core.errors import InvalidRequestError, PluginNotInstalled
from relay_core.pipeline.call import (
    Call,
    CallOptions,
    GroupTarget,
    Handler,
    Host,
    Layer,
    ModelTarget,
    Reply,
    deliver,
)
from relay_core.pipeline.layers import (
    LAYERS,
    Breakers,
    CacheStore,
    ChainSpec,
    compose,
    emit,
    parse_structured,
    redact,
    redact_inputs,
    restorers,
)
from relay_core.types import AuditEvent, Cost, Request, Response, StreamEvent

if TYPE_CHECKING:
    from relay_core.caching import ResponseCache

__all__ = [
    "LAYERS",
    "CallOptions",
    "GroupTarget",
    "ModelTarget",
    "Pipeline",
    "parse_structured",
]


class Pipeline:
    """What the hub does to a call, for the code that drives calls itself: the tool loop,
    batch jobs and the engine, servers and plugins. ``hub.pipeline`` is the hub's.

    Everything here is what :meth:`Hub.achat` does too (redaction, guardrails, cache,
    breaker, retries, deadline, routing, audit); these methods only let a caller that
    resolves its own target, makes its own requests or writes its own audit events take
    part in it without reaching into the hub.
    """

    def __init__(self, host: Host, *, prepare: Callable[[], None]) -> None:
        self._host = host
        self._prepare = prepare  # loads and configures the plugins, once
        self._store = CacheStore(host)
        self.breakers = Breakers(host)
        self._chains: dict[tuple[bool, bool, bool], Handler] = {}
        self._generation = -1

    # -- the chain ------------------------------------------------------------------------

    def layers(
        self, *, group: bool = False, cache_asked: bool = False, embedding: bool = False
    ) -> list[Layer]:
        """The layers a call passes, outermost first: those :data:`LAYERS` names that the
        catalog and the installed plugins ask for (for an ``embedding`` call: no
        guardrails, and the splitting of inputs beyond the adapter's limits)."""
        self._prepare()
        spec = ChainSpec(self._host, self._store, self.breakers, group, cache_asked, embedding)
        return [layer for kind in LAYERS if (layer := kind.build(spec)) is not None]

    def _chain(
        self, target: ModelTarget | GroupTarget, options: CallOptions, *, embedding: bool = False
    ) -> Handler:
        generation = self._host.plugins.generation
        if generation != self._generation:
            self._prepare()
            self._chains.clear()
            self._generation = self._host.plugins.generation
        key = (target.router is not None, options.cache is True, embedding)
        chain = self._chains.get(key)
        if chain is None:
            if options.cache and self._host.plugins.response_cache() is None:
                raise PluginNotInstalled(
                    "cache", "relay-cache", what="the response cache (asked for by this call)"
                )
            chain = self._chains[key] = compose(
                self.layers(group=key[0], cache_asked=key[1], embedding=embedding)
            )
        return chain

    @property
    def response_cache(self) -> ResponseCache | None:
        """The response cache's store, or ``None`` until a call asks for the cache."""
        return self._store.store

    # -- calls ----------------------------------------------------------------------------

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
        if deadline is None:
            deadline = self._host.catalog.defaults.deadline
        return CallOptions.starting_now(cache, deadline, job_id)

    async def call(
        self,
        target: ModelTarget | GroupTarget,
        request: Request,
        options: CallOptions | None = None,
    ) -> Response:
        """The answer to ``request`` from ``target`` (see :meth:`Hub.resolve`), through
        the whole pipeline: redacted on the way out and restored on the way back, a
        group routed over its members. The request's own ``model`` is not looked at.
        Raises what :meth:`Hub.achat` raises."""
        options = options or self.options()
        call = Call(target, request, options, streaming=False)
        reply = await self._chain(target, options)(call)
        return await reply.accepted()

    async def embed(
        self,
        target: ModelTarget | GroupTarget,
        request: EmbeddingRequest,
        options: CallOptions | None = None,
    ) -> EmbeddingResponse:
        """The vectors of ``request``'s inputs from ``target``, through the pipeline as a
        call goes (redaction, routing, cache, breaker, retries, cost, audit; no
        guardrails), split into calls within the adapter's ``embedding_limits``. The
        request's own ``model`` is not looked at. Raises :class:`InvalidRequestError` for
        no inputs, and what :meth:`Hub.aembed` raises."""
        if not request.inputs:
            raise InvalidRequestError(
                "an embedding request needs at least one input text",
                custom_id=request.custom_id,
            )
        options = options or self.options()
        call = Call(target, request, options, streaming=False)
        reply = await self._chain(target, options, embedding=True)(call)
        return await reply.embedded()

    def stream(
        self,
        target: ModelTarget | GroupTarget,
        request: Request,
        options: CallOptions | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """The answer to ``request`` from ``target`` as events, as :meth:`Hub.astream`
        yields them; closing the iterator early closes the provider's stream."""

        async def opening() -> Reply:
            chosen = options or self.options()
            call = Call(target, request, chosen, streaming=True)
            return await self._chain(target, chosen)(call)

        return deliver(opening)

    # -- redaction and audit --------------------------------------------------------------

    def redact(self, request: Request) -> Request:
        """``request`` as it may leave the process: every installed redactor applied, in
        registration order (the hub's plugins are configured first if no call has done
        it). A request already redacted is redacted again, so pass the original."""
        self._prepare()
        return redact(self._host, request)

    def redact_inputs(self, request: EmbeddingRequest) -> EmbeddingRequest:
        """An embedding request's inputs as they may leave the process: redacted as a
        prompt's text is (what a provider batch of embeddings sends)."""
        self._prepare()
        return redact_inputs(self._host, request)

    def audit_view(self, request: Request) -> Request:
        """``request`` redacted for an audit sink, which must never see what a redactor
        hides: like :meth:`redact`, with nothing kept to restore afterwards."""
        seen = self.redact(request)
        # Asking for the restorers of a view nothing is restored from lets a redactor
        # drop the placeholder map it keeps for one.
        restorers(self._host, seen)
        return seen

    @property
    def audited(self) -> bool:
        """Whether any audit sink is installed: build an event only when one is."""
        return bool(self._host.plugins.hook.relay_audit.get_hookimpls())

    def audit(self, event: AuditEvent) -> None:
        """Give ``event`` to every audit sink. A sink that raises is logged
        (``audit.sink_failed``) and skipped: auditing never fails the caller."""
        emit(self._host.plugins.hook.relay_audit.get_hookimpls(), event)

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
        sinks = self._host.plugins.hook.relay_audit.get_hookimpls()
        if sinks:
            event = AuditEvent(
                kind=kind,
                at=time.time(),
                job_id=job_id,
                provider=provider,
                cost=cost,
                metadata=metadata,
            )
            emit(sinks, event)
