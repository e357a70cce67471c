"""What the pipeline does for embedding calls that a chat call does not need: the
inputs seen as a prompt (for redactors, routers and audit sinks, which all speak
:class:`Request`), and the splitting of inputs beyond an adapter's
:class:`~relay_core.providers.EmbeddingLimits` into several calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from relay_core.embeddings import EmbeddingRequest, EmbeddingResponse
from relay_core.errors import InvalidRequestError, MalformedResponse, ProviderError, RelayError
from relay_core.pipeline.call import Call, Handler, ModelTarget, Reply
from relay_core.tokens import estimate_text_tokens
from relay_core.types import Message, Request, TextPart, Usage

if TYPE_CHECKING:
    from relay_core.pipeline.layers import ChainSpec
    from relay_core.providers import EmbeddingLimits

__all__ = [
    "EMBEDDING_NEEDS",
    "Splitting",
    "as_asked",
    "as_prompt",
    "from_prompt",
    "slices",
]

EMBEDDING_NEEDS = frozenset({"embeddings"})
"""What a router is told an embedding call needs of the members it may choose."""

SLICES_AT_ONCE = 4
"""How many slices of one split embedding call are in flight together: enough to hide
a provider's latency, few enough not to trip its rate limit on a single call."""


def as_asked(
    request: EmbeddingRequest, answer: EmbeddingResponse, target: ModelTarget
) -> EmbeddingResponse:
    """``answer`` if it is what ``request`` asked for: one vector per input
    (:class:`MalformedResponse` otherwise, retried like one) and, when ``dimensions`` was
    given, vectors of that length (:class:`InvalidRequestError` otherwise: a model or a
    server that ignores the field must not hand back longer vectors unnoticed)."""
    sent = len(request.inputs)
    if len(answer.vectors) != sent:
        raise MalformedResponse(
            f"{sent} inputs were sent and {len(answer.vectors)} vectors came back",
            provider=target.provider_name,
            model=target.model,
        )
    lengths = sorted({len(vector) for vector in answer.vectors})
    if request.dimensions is not None and lengths != [request.dimensions]:
        raise InvalidRequestError(
            f"asked for {request.dimensions} dimensions, got vectors of "
            f"{', '.join(map(str, lengths))}: this model or server does not shorten its "
            "vectors (leave dimensions out)",
            provider=target.provider_name,
            model=target.model,
        )
    return answer


def as_prompt(request: EmbeddingRequest) -> Request:
    """The inputs as a prompt, one user message each, with the request's ``custom_id``,
    tags and metadata: how redactors, routers and audit sinks, which read requests, see
    an embedding call."""
    return Request(
        messages=tuple(Message.user(text) for text in request.inputs),
        model=request.model,
        custom_id=request.custom_id,
        tags=request.tags,
        metadata=request.metadata,
    )


def from_prompt(request: EmbeddingRequest, prompt: Request) -> EmbeddingRequest:
    """``request`` with the inputs ``prompt`` (made by :func:`as_prompt`, then redacted)
    now holds. A redactor keeps one message per input; one that did not is a bug."""
    if len(prompt.messages) != len(request.inputs):
        raise InvalidRequestError(
            f"a redactor turned {len(request.inputs)} embedding inputs into "
            f"{len(prompt.messages)} messages",
            custom_id=request.custom_id,
        )
    texts = [
        "".join(p.text for p in message.content if isinstance(p, TextPart))
        for message in prompt.messages
    ]
    if list(request.inputs) == texts:
        return request
    return attrs.evolve(request, inputs=tuple(texts))


def slices(inputs: Sequence[str], limits: EmbeddingLimits) -> list[range]:
    """The index ranges of ``inputs``, in order, each within ``limits``. An input over
    ``max_tokens`` on its own goes alone: only the provider can say whether it fits."""
    found: list[range] = []
    start, tokens = 0, 0
    for index, text in enumerate(inputs):
        size = estimate_text_tokens(text)
        full = limits.max_inputs is not None and index - start >= limits.max_inputs
        over = limits.max_tokens is not None and tokens + size > limits.max_tokens
        if index > start and (full or over):
            found.append(range(start, index))
            start, tokens = index, 0
        tokens += size
    found.append(range(start, len(inputs)))
    return found


class Splitting:
    """Splits an embedding call beyond the adapter's limits into calls within them, run
    a few at a time, each through the layers below (the breaker, retries), and joins
    their vectors back in the inputs' order, usage summed. One slice that fails fails
    the call, naming its input range. In embedding chains only."""

    @classmethod
    def build(cls, chain: ChainSpec) -> Splitting | None:
        return cls() if chain.embedding else None

    async def handle(self, inner: Handler, call: Call) -> Reply:
        target: ModelTarget = call.target
        concrete = call.concrete
        assert isinstance(concrete, EmbeddingRequest)
        ranges = slices(concrete.inputs, target.adapter.embedding_limits_for(concrete.model))
        if len(ranges) == 1:
            return await inner(call)
        import asyncio  # on the first split call, not at import: asyncio loads ssl

        gate = asyncio.Semaphore(SLICES_AT_ONCE)

        async def one(number: int, where: range) -> EmbeddingResponse:
            part = Call(target, call.request, call.options, streaming=False)
            part.started = call.started
            part.concrete = attrs.evolve(concrete, inputs=concrete.inputs[where.start : where.stop])
            async with gate:
                try:
                    reply = await inner(part)
                except RelayError as error:
                    raise _in_slice(error, number, len(ranges), where) from None
                finally:
                    call.retries.extend(part.retries)
            return await reply.embedded()

        tasks = [asyncio.ensure_future(one(n, where)) for n, where in enumerate(ranges)]
        try:
            answers = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        joined = EmbeddingResponse(
            vectors=[vector for answer in answers for vector in answer.vectors],
            model=answers[0].model,
            usage=sum((answer.usage for answer in answers), Usage()),
            raw=answers[-1].raw,
            metadata={**answers[-1].metadata, "slices": len(ranges)},
        )
        return Reply.complete(joined)


def _in_slice(error: RelayError, number: int, count: int, where: range) -> RelayError:
    # The same error (its type says what to do about it), told which inputs it was about.
    place = f"slice {number + 1} of {count} (inputs {where.start}-{where.stop - 1})"
    if isinstance(error, ProviderError):
        error.provider_message = f"{place}: {error.provider_message}"
        error.args = (error._render(),)
    else:
        error.message = f"{place}: {error.message}"
        error.args = (error.message,)
    return error
