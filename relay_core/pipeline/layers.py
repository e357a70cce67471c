"""The layers of the call pipeline, one concern each, in the order of :data:`LAYERS`.

Each layer's ``build`` returns ``None`` when the catalog and the installed plugins do not
ask for it, and the chain is then made without it: a hub with no audit sink pays nothing
for auditing, one with no breaker configured nothing for breakers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from relay_core.breakers import CircuitBreaker
from relay_core.caching import cache_key, served_from_cache
from relay_core.embeddings import EmbeddingRequest, EmbeddingResponse
from relay_core.errors import (
    ConfigError,
    GuardrailViolation,
    InvalidRequestError,
    MalformedResponse,
    PluginNotInstalled,
    ProviderError,
    RelayError,
    Timeout,
    UnsupportedCapability,
)
from relay_core.log import Logger, get_logger
from relay_core.pipeline.call import (
    Answer,
    Call,
    CallOptions,
    Handler,
    Host,
    Layer,
    ModelTarget,
    Reply,
)
from relay_core.pipeline.embedding import (
    EMBEDDING_NEEDS,
    Splitting,
    as_asked,
    as_prompt,
    from_prompt,
)
from relay_core.providers import Capability
from relay_core.serialize import structure
from relay_core.shared_breakers import BreakerStore, SharedBreaker
from relay_core.types import (
    AuditEvent,
    ErrorInfo,
    Request,
    Response,
    StreamEvent,
    TextDelta,
)
from relay_core.validation import without_optional_nulls

if TYPE_CHECKING:
    from relay_core.caching import ResponseCache
    from relay_core.calls import Restorer
    from relay_core.config import BreakerSettings
    from relay_core.routing import Route

__all__ = [
    "LAYERS",
    "Accounting",
    "Auditing",
    "Breakers",
    "CacheStore",
    "ChainSpec",
    "CircuitBreaking",
    "Guardrails",
    "Preparing",
    "Redaction",
    "ResponseCaching",
    "Retrying",
    "Routing",
    "Splitting",
    "answer",
    "compose",
    "parse_structured",
    "redact",
    "redact_inputs",
    "restorers",
]


def _log() -> Logger:
    return get_logger("relay.hub")


# -- redaction ----------------------------------------------------------------------------


def redact(host: Host, request: Request) -> Request:
    """``request`` with every installed redactor applied, first-registered first."""
    for impl in reversed(host.plugins.hook.relay_redact.get_hookimpls()):
        redacted = impl.function(request=request)
        if redacted is not None:
            request = redacted
    return request


def restorers(host: Host, request: Request) -> list[Restorer]:
    """The restorers offered for the answer to the redacted ``request``, in the order to
    apply them (the reverse of the redactors')."""
    if not host.plugins.hook.relay_restorer.get_hookimpls():
        return []
    # pluggy returns results last-registered first; redaction ran first-registered
    # first, so this is already the reverse order.
    return [r for r in host.plugins.hook.relay_restorer(request=request) if r is not None]


def redact_inputs(host: Host, request: EmbeddingRequest) -> EmbeddingRequest:
    """An embedding call's inputs redacted as a prompt's text is (nothing comes back to
    restore: vectors hold no text)."""
    prompt = redact(host, as_prompt(request))
    # Asking for the restorers of a prompt nothing is restored into lets a redactor drop
    # the placeholder map it keeps for one.
    restorers(host, prompt)
    return from_prompt(request, prompt)


class _Restoring:
    """Puts redacted values back into one answer: a stream's text piece by piece (what a
    restorer keeps back comes out before the end), the whole response at the end."""

    def __init__(self, found: Sequence[Restorer]) -> None:
        self.restorers = found

    def delta(self, event: StreamEvent) -> StreamEvent | None:
        if not isinstance(event, TextDelta):
            return event
        text = event.text
        for restorer in self.restorers:
            text = restorer.feed(text)
        return attrs.evolve(event, text=text) if text or event.signature else None

    def tail(self) -> list[StreamEvent]:
        tail = ""
        for index, restorer in enumerate(self.restorers):
            flushed = restorer.flush()
            for later in self.restorers[index + 1 :]:
                flushed = later.feed(flushed)
            tail += flushed
        return [TextDelta(tail)] if tail else []

    async def end(self, response: Response) -> Response:
        for restorer in self.restorers:
            response = restorer.restore(response)
        return response


class Redaction:
    """Redacts the request before anything else sees it (routing, audit, the provider)
    and restores the answer on its way back."""

    def __init__(self, host: Host) -> None:
        self.host = host

    @classmethod
    def build(cls, chain: ChainSpec) -> Redaction | None:
        hook = chain.host.plugins.hook
        wanted = hook.relay_redact.get_hookimpls() or hook.relay_restorer.get_hookimpls()
        return cls(chain.host) if wanted else None

    async def handle(self, inner: Handler, call: Call) -> Reply:
        if isinstance(call.request, EmbeddingRequest):
            call.request = redact_inputs(self.host, call.request)
            return await inner(call)
        call.request = redact(self.host, call.request)
        found = restorers(self.host, call.request)
        reply = await inner(call)
        if not found:
            return reply
        restoring = _Restoring(found)
        return await reply.then(restoring.end, delta=restoring.delta, tail=restoring.tail)


# -- routing ------------------------------------------------------------------------------


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


def _worth_next_member(error: RelayError) -> bool:
    # A malformed request fails everywhere; anything else may work elsewhere, and so
    # may a request a guardrail refused this member only.
    if isinstance(error, GuardrailViolation):
        return error.try_next
    return isinstance(error, (ProviderError, UnsupportedCapability)) and not isinstance(
        error, InvalidRequestError
    )


class Routing:
    """Sends a group's call to its members in the order its router gives, moving on
    from a member that fails in a way another may not; once a member's answer (or a
    stream's first event) is in, that member is chosen for good."""

    def __init__(self, host: Host) -> None:
        self.host = host

    @classmethod
    def build(cls, chain: ChainSpec) -> Routing | None:
        return cls(chain.host) if chain.group else None

    async def handle(self, inner: Handler, call: Call) -> Reply:
        group = call.target
        if isinstance(call.request, EmbeddingRequest):
            # Routers read requests: they see the inputs as a prompt, and that the call
            # needs members able to embed.
            request = as_prompt(call.request)
            context = self.host.routing_context(request, group.members, needs=EMBEDDING_NEEDS)
        else:
            request = call.request
            context = self.host.routing_context(request, group.members)
        route = group.router.route(request, context)
        attempts = _Attempts(group.alias, route)
        options = attrs.evolve(call.options, group=group.alias)
        for member in route.order:
            if options.expired():
                break
            target = self.host.resolve(member)
            member_call = call.to(target, options)
            try:
                if target.router is not None:  # a group among the members
                    reply = await self.handle(inner, member_call)
                else:
                    reply = await inner(member_call)
            except RelayError as error:
                if not _worth_next_member(error):
                    raise
                attempts.failed(member, error)
                continue
            return await reply.then(partial(_with_route, attempts.answered_by(member)))
        raise attempts.give_up(options)


async def _with_route(route: dict[str, Any], response: Answer) -> Answer:
    return attrs.evolve(response, metadata={**response.metadata, "route": route})


# -- one model's call ---------------------------------------------------------------------


class Auditing:
    """Tells the audit sinks how each model call ended: ``call.succeeded``,
    ``call.cached`` or ``call.failed`` (``stream.*`` for streams, ``embed.*`` for
    embedding calls, whose inputs the event's ``request`` holds as a prompt and whose
    ``response`` is left out: vectors are no content to record)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.sinks = host.plugins.hook.relay_audit.get_hookimpls()

    @classmethod
    def build(cls, chain: ChainSpec) -> Auditing | None:
        wanted = chain.host.plugins.hook.relay_audit.get_hookimpls()
        return cls(chain.host) if wanted else None

    async def handle(self, inner: Handler, call: Call) -> Reply:
        try:
            reply = await inner(call)
        except RelayError as error:
            self.failed(call, error)
            raise
        return await reply.then(partial(self.succeeded, call), failed=partial(self.failed, call))

    async def succeeded(self, call: Call, response: Answer) -> Answer:
        outcome = "cached" if response.metadata.get("cached") else "succeeded"
        fields: dict[str, Any] = {}
        if isinstance(response, Response):
            fields["response"] = response
        self.emit(
            call,
            outcome,
            usage=response.usage,
            cost=response.cost,
            latency=response.latency,
            **fields,
        )
        return response

    def failed(self, call: Call, error: RelayError) -> None:
        self.emit(
            call,
            "failed",
            error=ErrorInfo.from_exception(error),
            latency=time.perf_counter() - call.started,
        )

    def emit(self, call: Call, outcome: str, **fields: Any) -> None:
        target: ModelTarget = call.target
        if isinstance(call.request, EmbeddingRequest):
            kind = "embed"
            request = as_prompt(call.request)
            fields["metadata"] = {"inputs": len(call.request.inputs)}
        else:
            kind = "stream" if call.streaming else "call"
            request = call.request
        caller = request.metadata.get("caller")
        # A tool loop's model calls say which loop and round they belong to.
        loop = request.metadata.get("tool_loop")
        if isinstance(loop, dict):
            fields["metadata"] = {"loop": loop.get("id"), "step": loop.get("step")}
        event = AuditEvent(
            kind=f"{kind}.{outcome}",
            at=time.time(),
            alias=target.alias,
            provider=target.provider_name,
            model=target.model,
            custom_id=request.custom_id,
            job_id=call.options.job_id,
            group=call.options.group,
            caller=caller if isinstance(caller, str) else None,
            tags=request.tags,
            request=request,
            **fields,
        )
        emit(self.sinks, event)


def emit(sinks: Sequence[Any], event: AuditEvent) -> None:
    """Give ``event`` to each audit sink; a sink that raises is logged and skipped."""
    for impl in sinks:
        try:
            impl.function(event=event)
        except Exception as error:  # a failing sink must not fail the call
            _log().error("audit.sink_failed", plugin=impl.plugin_name, error=str(error))


class Preparing:
    """Makes the concrete request (the provider's model name, catalog params under the
    call's), checks the provider can serve it, and names the call in its errors."""

    @classmethod
    def build(cls, chain: ChainSpec) -> Preparing:
        return cls()

    async def handle(self, inner: Handler, call: Call) -> Reply:
        target: ModelTarget = call.target
        try:
            if isinstance(call.request, EmbeddingRequest):
                call.concrete = target.prepare_embedding(call.request)
            else:
                call.concrete = target.prepare(call.request)
            if call.streaming and not target.adapter.supports(Capability.STREAM):
                raise UnsupportedCapability(target.provider_name, "stream", model=target.model)
            reply = await inner(call)
        except ProviderError as error:
            _add_context(error, call)
            raise
        return await reply.then(failed=partial(_context_of, call))


def _add_context(error: ProviderError, call: Call) -> None:
    target: ModelTarget = call.target
    error.provider = error.provider or target.provider_name
    error.model = error.model or target.model
    error.custom_id = error.custom_id or call.request.custom_id


def _context_of(call: Call, error: RelayError) -> None:
    if isinstance(error, ProviderError):
        _add_context(error, call)


class Guardrails:
    """Runs the guardrail plugins: ``relay_guardrail_pre`` on the concrete request,
    ``relay_guardrail_post`` on the answer (a cached one too)."""

    def __init__(self, host: Host) -> None:
        self.hook = host.plugins.hook

    @classmethod
    def build(cls, chain: ChainSpec) -> Guardrails | None:
        if chain.embedding:  # guardrails judge prompts and answers; vectors are neither
            return None
        hook = chain.host.plugins.hook
        wanted = hook.relay_guardrail_pre.get_hookimpls() or (
            hook.relay_guardrail_post.get_hookimpls()
        )
        return cls(chain.host) if wanted else None

    async def handle(self, inner: Handler, call: Call) -> Reply:
        info = call.info()
        assert isinstance(call.concrete, Request)
        self.hook.relay_guardrail_pre(request=call.concrete, call=info)
        reply = await inner(call)

        async def post(response: Response) -> Response:
            self.hook.relay_guardrail_post(request=call.concrete, response=response, call=info)
            return response

        return await reply.then(post)


class CacheStore:
    """The hub's response cache store, opened by the first call that asks for it."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.store: ResponseCache | None = None
        self._lock = threading.Lock()

    def open(self) -> ResponseCache:
        if self.store is not None:
            return self.store
        offered = self.host.plugins.response_cache()
        if offered is None:
            raise PluginNotInstalled(
                "cache", "relay-cache", what="the response cache (asked for by this call)"
            )
        name, factory = offered
        catalog = self.host.catalog
        with self._lock:
            if self.store is None:
                try:
                    self.store = factory(catalog.plugins.get(name, {}))
                except ConfigError as error:
                    if error.line is None:  # the factory sees a mapping, not the file
                        raise catalog.error(error.reason, ("plugins", name)) from None
                    raise
            return self.store


class ResponseCaching:
    """Answers a request seen before from the response cache, and stores new answers,
    when the call, its alias or the catalog asks for the cache. A broken cache costs a
    call, never the answer."""

    def __init__(self, host: Host, store: CacheStore) -> None:
        self.default = host.catalog.defaults.cache
        self.store = store

    @classmethod
    def build(cls, chain: ChainSpec) -> ResponseCaching | None:
        catalog = chain.host.catalog
        wanted = chain.cache_asked or catalog.defaults.cache
        if not wanted and not any(m.cache for m in catalog.models.values()):
            return None
        return cls(chain.host, chain.store)

    async def handle(self, inner: Handler, call: Call) -> Reply:
        target: ModelTarget = call.target
        wanted = call.options.cache
        if wanted is None:
            wanted = target.config.cache
        if wanted is None:
            wanted = self.default
        if not wanted:
            return await inner(call)
        cache = self.store.open()
        key = cache_key(target.config.target, call.concrete)
        try:
            hit = await cache.get(key)
        except Exception as error:
            _log().error("cache.failed", operation="get", error=repr(error))
            hit = None
        if isinstance(hit, EmbeddingResponse) and call.embedding:
            return Reply.complete(_from_cache(call, hit))
        if isinstance(hit, Response) and isinstance(call.concrete, Request):
            response = _from_cache(call, parse_structured(call.concrete, hit))
            return Reply.replaying(response, streaming=call.streaming)
        reply = await inner(call)

        async def keep(response: Answer) -> Answer:
            # What retries a call took is this call's story, not the stored answer's.
            kept = {k: v for k, v in response.metadata.items() if k != "retries"}
            reply.when_accepted(partial(_put, cache, key, attrs.evolve(response, metadata=kept)))
            return response

        return await reply.then(keep)


def _from_cache(call: Call, hit: Any) -> Any:
    return served_from_cache(hit, call.request.custom_id, time.perf_counter() - call.started)


async def _put(cache: ResponseCache, key: str, response: Answer) -> None:
    try:
        await cache.put(key, response)
    except Exception as error:
        _log().error("cache.failed", operation="put", error=repr(error))


class Accounting:
    """Stamps what the core owns on the answer: provider, ids, latency, cost at the
    alias's price, and the retries the call took."""

    @classmethod
    def build(cls, chain: ChainSpec) -> Accounting:
        return cls()

    async def handle(self, inner: Handler, call: Call) -> Reply:
        reply = await inner(call)
        return await reply.then(partial(_finished, call))


async def _finished(call: Call, response: Answer) -> Answer:
    target: ModelTarget = call.target
    if isinstance(response, EmbeddingResponse):
        response = target.finish_embedding(call.request.custom_id, response, call.started)
    else:
        response = target.finish(call.request.custom_id, response, call.started)
    if call.retries:
        response = attrs.evolve(
            response, metadata={**response.metadata, "retries": list(call.retries)}
        )
    return response


class Breakers:
    """The circuit breakers of one hub, one per provider and model, made on first use:
    in this process, or in a store shared with other hubs and processes (:meth:`share`)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.store: BreakerStore | None = None
        self._by_target: dict[tuple[str, str], CircuitBreaker | SharedBreaker] = {}
        self._by_alias: dict[str, CircuitBreaker | SharedBreaker | None] = {}
        self._lock = threading.Lock()

    def share(self, store: BreakerStore | None) -> None:
        """Keep the breakers' state in ``store`` from now on (``None``: in this process
        again); see :mod:`relay_core.shared_breakers`. Breakers already made are
        replaced, starting from what the store says."""
        with self._lock:
            self.store = store
            self._by_target.clear()
            self._by_alias = {}

    def configured(self) -> bool:
        catalog = self.host.catalog
        return catalog.defaults.circuit_breaker is not None or any(
            p.circuit_breaker is not None for p in catalog.providers.values()
        )

    def of(self, target: ModelTarget) -> CircuitBreaker | SharedBreaker | None:
        try:
            return self._by_alias[target.alias]
        except KeyError:
            pass
        catalog = self.host.catalog
        provider = catalog.providers.get(target.provider_name)
        settings = (
            provider.circuit_breaker if provider is not None else None
        ) or catalog.defaults.circuit_breaker
        breaker = None
        if settings is not None:
            with self._lock:
                # Aliases of one provider/model share its breaker.
                key = (target.provider_name, target.model)
                breaker = self._by_target.get(key)
                if breaker is None:
                    breaker = self._by_target[key] = self._make(settings, target.config.target)
                self._by_alias[target.alias] = breaker
        else:
            self._by_alias[target.alias] = breaker
        return breaker

    def _make(self, settings: BreakerSettings, name: str) -> CircuitBreaker | SharedBreaker:
        if self.store is None:
            return CircuitBreaker(settings, name=name, on_change=_moved)
        return SharedBreaker(settings, self.store, name=name, on_change=_moved, log=_store_log)

    def states(self) -> dict[str, str]:
        with self._lock:
            breakers = list(self._by_target.values())
        return {breaker.name: breaker.state for breaker in breakers}


def _moved(name: str, old: str, new: str) -> None:
    log = _log()
    (log.warning if new == "open" else log.info)("breaker." + new, target=name, was=old)


def _store_log(event: str, **fields: Any) -> None:
    log = _log()
    (log.error if event.endswith("unavailable") else log.warning)(event, **fields)


class CircuitBreaking:
    """Fails at once while a provider's model keeps failing (see
    :mod:`relay_core.breakers`). A stream counts as answered at its first event."""

    def __init__(self, breakers: Breakers) -> None:
        self.breakers = breakers

    @classmethod
    def build(cls, chain: ChainSpec) -> CircuitBreaking | None:
        return cls(chain.breakers) if chain.breakers.configured() else None

    async def handle(self, inner: Handler, call: Call) -> Reply:
        target: ModelTarget = call.target
        breaker = self.breakers.of(target)
        if breaker is None:
            return await inner(call)
        if isinstance(breaker, SharedBreaker):
            return await _through_shared(breaker, inner, call)
        breaker.acquire(
            provider=target.provider_name, model=target.model, custom_id=call.request.custom_id
        )
        try:
            reply = await inner(call)
        except ProviderError as error:
            breaker.record(error)
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.record(None)
        return reply


async def _through_shared(breaker: SharedBreaker, inner: Handler, call: Call) -> Reply:
    target: ModelTarget = call.target
    passed = await breaker.acquire(
        provider=target.provider_name, model=target.model, custom_id=call.request.custom_id
    )
    try:
        reply = await inner(call)
    except ProviderError as error:
        await breaker.record(passed, error)
        raise
    except BaseException:
        await breaker.release(passed)
        raise
    await breaker.record(passed, None)
    return reply


class Retrying:
    """Retries what failed before any answer (a call, a stream's opening) as the
    provider's ``max_retries`` allow, within the call's deadline."""

    @classmethod
    def build(cls, chain: ChainSpec) -> Retrying:
        return cls()

    async def handle(self, inner: Handler, call: Call) -> Reply:
        from relay_core.http import RetryPolicy, retrying

        target: ModelTarget = call.target
        left = call.options.left()
        policy = RetryPolicy(max_attempts=target.adapter.settings.max_retries + 1, deadline=left)

        def on_retry(attempt: int, error: ProviderError, wait: float) -> None:
            call.retries.append(type(error).__name__)
            _log().warning(
                "call.retry",
                alias=target.alias,
                attempt=attempt,
                error=type(error).__name__,
                wait=round(wait, 3),
            )

        attempts = retrying(partial(inner, call), policy, on_retry=on_retry)
        if left is None:
            return await attempts
        return await call.options.bounded(attempts, target)


async def answer(call: Call) -> Reply:
    """The bottom of the chain: the adapter's answer, or its stream once the first event
    is in (a stream that fails before that is retried like a call; a structured answer
    that does not parse is a malformed one, retried too)."""
    target: ModelTarget = call.target
    adapter = target.adapter
    if isinstance(call.concrete, EmbeddingRequest):
        vectors = await adapter.embed(call.concrete)
        return Reply.complete(as_asked(call.concrete, vectors, target))
    if not call.streaming:
        reply = Reply.complete(await adapter.chat(call.concrete))
    else:
        stream = adapter.stream(call.concrete)
        try:
            head = await stream.__anext__()
        except StopAsyncIteration:
            raise MalformedResponse(
                "stream ended before its first event",
                provider=target.provider_name,
                model=target.model,
            ) from None
        reply = Reply.streaming(head, stream)
    return await reply.then(partial(_parsed, call.concrete))


async def _parsed(request: Request, response: Response) -> Response:
    return parse_structured(request, response)


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
        data = without_optional_nulls(response.json(), schema.schema)
        validate = getattr(schema.python_type, "model_validate", None)
        parsed = validate(data) if callable(validate) else structure(data, schema.python_type)
    except Exception as error:  # json, cattrs and pydantic each raise their own kind
        raise MalformedResponse(
            f"the answer does not fit {schema.name}: {error}",
            model=request.model,
            custom_id=request.custom_id,
        ) from error
    return attrs.evolve(response, parsed=parsed)


@attrs.frozen
class ChainSpec:
    """What a chain is built for: the hub, the state its layers share across chains, a
    group's call or a model's, and whether the call asked for the cache itself."""

    host: Host
    store: CacheStore
    breakers: Breakers
    group: bool = False
    cache_asked: bool = False
    embedding: bool = False  # a chain for embedding calls


class _Buildable(Protocol):
    @classmethod
    def build(cls, chain: ChainSpec) -> Layer | None: ...


LAYERS: tuple[type[_Buildable], ...] = (
    Redaction,
    Routing,  # a group's call only: below it, each member's call
    Auditing,
    Preparing,
    Guardrails,
    ResponseCaching,
    Accounting,
    Splitting,  # an embedding call's only: below it, each slice's call
    CircuitBreaking,
    Retrying,
)
"""The order of the layers, outermost first; :func:`answer` is below the last."""


def compose(layers: Sequence[Layer]) -> Handler:
    """The chain of ``layers`` (outermost first) over :func:`answer`."""
    handler: Handler = answer
    for layer in reversed(layers):
        handler = partial(layer.handle, handler)
    return handler
