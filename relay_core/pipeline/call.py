"""One call on its way down the pipeline, and its reply on the way back up.

A layer receives a :class:`Call` and the next layer down (a :data:`Handler`), and returns
the :class:`Reply` it got from below, after saying what it does to the answer with
:meth:`Reply.then`. A reply is either complete (a plain call: the adapter's whole
response) or a stream whose first event has arrived. ``then`` applies a step to a
complete answer at once and, for a stream, keeps it for the end event: every layer
writes its logic once for both, and a stream's events pass through one generator
(:func:`deliver`) however many layers the chain has.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from relay_core.embeddings import EmbeddingRequest, EmbeddingResponse
from relay_core.errors import InvalidRequestError, MalformedResponse, RelayError, Timeout
from relay_core.streaming import closing_stream, replay
from relay_core.types import EndEvent, Request, Response, StreamEvent

if TYPE_CHECKING:
    from relay_core.calls import CallInfo
    from relay_core.config import Catalog, GroupConfig, ModelConfig
    from relay_core.plugins import PluginRegistry
    from relay_core.pricing import PriceQuote
    from relay_core.providers import Provider
    from relay_core.routing import Router, RoutingContext

__all__ = [
    "Answer",
    "Asked",
    "Call",
    "CallOptions",
    "GroupTarget",
    "Handler",
    "Host",
    "Layer",
    "ModelTarget",
    "Reply",
    "deliver",
]

T = TypeVar("T")

Asked = Request | EmbeddingRequest
"""What a call asks: a chat request, or the texts of an embedding call."""
Answer = Response | EmbeddingResponse
"""What a call is answered with: a :class:`Response`, or an embedding call's vectors."""


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

    @classmethod
    def starting_now(
        cls, cache: bool | None, deadline: float | None, job_id: str | None
    ) -> CallOptions:
        if deadline is None and cache is None and job_id is None:
            return NO_OPTIONS
        if deadline is not None and not deadline > 0:
            raise InvalidRequestError(
                f"deadline must be a number of seconds above 0, not {deadline}"
            )
        return cls(
            cache=cache,
            deadline=deadline,
            deadline_at=None if deadline is None else time.monotonic() + deadline,
            job_id=job_id,
        )

    def left(self) -> float | None:
        return None if self.deadline_at is None else self.deadline_at - time.monotonic()

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    async def bounded(self, work: Awaitable[T], target: ModelTarget) -> T:
        import asyncio

        try:
            return await asyncio.wait_for(work, max(self.left() or 0.0, 0.0))
        except TimeoutError:
            raise Timeout(
                f"the call's deadline of {self.deadline:g}s passed",
                provider=target.provider_name,
                model=target.model,
            ) from None


NO_OPTIONS = CallOptions()


class ModelTarget(Protocol):
    """What the pipeline calls: one model of the catalog, bound to its adapter
    (:class:`relay_core.handles.ModelHandle`)."""

    alias: str
    provider_name: str
    model: str
    config: ModelConfig
    router: None

    @property
    def adapter(self) -> Provider: ...

    def prepare(self, request: Request) -> Request: ...

    def prepare_embedding(self, request: EmbeddingRequest) -> EmbeddingRequest: ...

    def quote(self) -> PriceQuote: ...

    def call_info(self, options: CallOptions, *, streaming: bool = False) -> CallInfo: ...

    def finish(
        self, custom_id: str | None, response: Response, started: float | None
    ) -> Response: ...

    def finish_embedding(
        self, custom_id: str | None, response: EmbeddingResponse, started: float | None
    ) -> EmbeddingResponse: ...


class GroupTarget(Protocol):
    """A name the pipeline routes over its members (:class:`relay_core.handles.GroupHandle`)."""

    alias: str
    config: GroupConfig | None

    @property
    def router(self) -> Router: ...

    @property
    def members(self) -> Sequence[str]: ...


class Host(Protocol):
    """What the pipeline asks of the hub that owns it: its catalog and plugins, and the
    handles of names (a group's members)."""

    catalog: Catalog
    plugins: PluginRegistry

    def resolve(self, alias: str | None = None) -> ModelTarget | GroupTarget: ...

    def routing_context(
        self, request: Request, aliases: Sequence[str], *, needs: frozenset[str] | None = None
    ) -> RoutingContext: ...


class Call:
    """One call on its way down: the target, the request as this side of redaction sees
    it, the options; what layers learn on the way (the concrete request, retries) is
    kept here for the layers above. An embedding call carries an
    :class:`EmbeddingRequest` in ``request`` and ``concrete`` (``embedding`` says so)
    and is answered with an :class:`EmbeddingResponse`."""

    __slots__ = ("concrete", "options", "request", "retries", "started", "streaming", "target")

    def __init__(
        self,
        target: Any,
        request: Asked,
        options: CallOptions,
        *,
        streaming: bool,
    ) -> None:
        self.target = target
        self.request = request
        self.options = options
        self.streaming = streaming
        self.started = time.perf_counter()
        self.concrete: Asked = request  # the request as the adapter gets it, once prepared
        self.retries: list[str] = []

    @property
    def embedding(self) -> bool:
        return isinstance(self.request, EmbeddingRequest)

    def to(self, target: Any, options: CallOptions) -> Call:
        """The same call sent to a group's member ``target``."""
        return Call(target, self.request, options, streaming=self.streaming)

    def info(self) -> CallInfo:
        """What the per-call hooks are told about this call."""
        target: ModelTarget = self.target
        return target.call_info(self.options, streaming=self.streaming)


EndStep = Callable[[Any], Awaitable[Any]]
"""What a layer does to the whole answer (a stream's at its end event): it takes and
returns the call's :data:`Answer`, a :class:`Response` or, for an embedding call, an
:class:`EmbeddingResponse` (a step of a layer that serves both narrows it)."""
FailedStep = Callable[[RelayError], None]
"""What a layer does when a stream fails after its first event."""
DeltaStep = Callable[[StreamEvent], StreamEvent | None]
"""What a layer does to each of a stream's events before the end (None drops it)."""
TailStep = Callable[[], Sequence[StreamEvent]]
"""Events a layer adds just before a stream's end event."""


@attrs.define(slots=True)
class _Step:
    end: EndStep | None
    failed: FailedStep | None
    delta: DeltaStep | None
    tail: TailStep | None


class Reply:
    """What a layer gets back from the layer below: a whole answer (``response``) or a
    stream whose first event is in hand (so that retries, the circuit breaker and a
    group's fallback act on a stream's opening as on a plain call)."""

    __slots__ = ("_accepted", "_head", "_rest", "_steps", "response")

    def __init__(self) -> None:
        self.response: Answer | None = None
        self._head: StreamEvent | None = None
        self._rest: AsyncIterator[StreamEvent] | None = None
        self._steps: list[_Step] = []
        self._accepted: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    def complete(cls, response: Answer) -> Reply:
        reply = cls()
        reply.response = response
        return reply

    @classmethod
    def streaming(cls, head: StreamEvent, rest: AsyncIterator[StreamEvent]) -> Reply:
        reply = cls()
        reply._head = head
        reply._rest = rest
        return reply

    @classmethod
    def replaying(cls, response: Response, *, streaming: bool) -> Reply:
        """A finished answer as a reply of the kind the call asked for (a stream replays
        it as the events it would have produced)."""
        if not streaming:
            return cls.complete(response)
        events = list(replay(response))
        return cls.streaming(events[0], _aiter(events[1:]))

    async def then(
        self,
        end: EndStep | None = None,
        *,
        failed: FailedStep | None = None,
        delta: DeltaStep | None = None,
        tail: TailStep | None = None,
    ) -> Reply:
        """This reply with a layer's steps added: ``end`` on the whole answer (at once
        for a complete one); for a stream, ``delta`` on each event, ``tail``'s events
        before the end, and ``failed`` when the stream fails later on (a failure before
        the first event, or of a complete call, reaches the layer as an exception).
        Layers below add theirs first, so the answer reaches each step the way the
        layers below left it."""
        if self._rest is None:
            if end is not None:
                assert self.response is not None
                self.response = await end(self.response)
            return self
        self._steps.append(_Step(end, failed, delta, tail))
        return self

    def when_accepted(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` once every layer has accepted the answer (no guardrail refused
        it), just before the caller gets it: what is kept for later (the response
        cache) is then only ever an answer the caller was given."""
        self._accepted.append(step)

    async def accepted(self) -> Response:
        """The whole answer, after the steps waiting for it to be accepted."""
        answer = await self._accepted_answer()
        assert isinstance(answer, Response)
        return answer

    async def embedded(self) -> EmbeddingResponse:
        """An embedding call's whole answer, as :meth:`accepted`."""
        answer = await self._accepted_answer()
        assert isinstance(answer, EmbeddingResponse)
        return answer

    async def _accepted_answer(self) -> Answer:
        for step in self._accepted:
            await step()
        assert self.response is not None
        return self.response


async def _aiter(events: Sequence[StreamEvent]) -> AsyncIterator[StreamEvent]:
    for event in events:
        yield event


def _passed(event: StreamEvent | None, steps: Sequence[_Step]) -> StreamEvent | None:
    for step in steps:
        if event is None:
            return None
        if step.delta is not None:
            event = step.delta(event)
    return event


async def deliver(opening: Callable[[], Awaitable[Reply]]) -> AsyncIterator[StreamEvent]:
    """The events of the stream ``opening()`` replies with, every layer's steps applied
    in one pass: a failure after the first event goes to the ``failed`` step of each
    layer above the point where it happened. Closing this closes the adapter's stream."""
    reply = await opening()
    if reply._rest is None:  # a layer answered a stream with a whole answer
        yield EndEvent(await reply.accepted())
        return
    steps = reply._steps
    source = reply._rest
    ended = -1  # the index of the last step whose end ran
    async with closing_stream(source):
        try:
            event: StreamEvent | None = reply._head
            while not isinstance(event, EndEvent):
                event = _passed(event, steps)
                if event is not None:
                    yield event
                try:
                    event = await source.__anext__()
                except StopAsyncIteration:
                    raise MalformedResponse("stream ended before its end event") from None
            response = event.response
            for ended, step in enumerate(steps):
                if step.tail is not None:
                    for extra in step.tail():
                        passed = _passed(extra, steps[ended + 1 :])
                        if passed is not None:
                            yield passed
                if step.end is not None:
                    response = await step.end(response)
        except RelayError as error:
            for step in steps[ended + 1 :]:
                if step.failed is not None:
                    step.failed(error)
            raise
    reply.response = response
    yield EndEvent(await reply.accepted())


Handler = Callable[[Call], Awaitable[Reply]]
"""The chain below a layer: takes the call, returns its reply."""


class Layer(Protocol):
    """One concern of the pipeline: does its part on the way down, calls ``inner`` (the
    layers below, down to the adapter), and adds its steps to the reply on the way up."""

    async def handle(self, inner: Handler, call: Call) -> Reply: ...
