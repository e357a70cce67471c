"""Embedding calls through the hub: the same pipeline as chat (routing, cache, retries,
cost, audit, redaction; no guardrails), and the splitting of inputs beyond an
adapter's limits into calls joined back in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import pytest

from relay_core import (
    Capability,
    EmbeddingLimits,
    EmbeddingRequest,
    EmbeddingResponse,
    Hub,
    InvalidRequestError,
    MalformedResponse,
    Message,
    Provider,
    ProviderUnavailable,
    Request,
    UnsupportedCapability,
    Usage,
    hookimpl,
)
from relay_core.pipeline.embedding import slices
from relay_core.testing import AuditRecorder, hub_for, recorded_waits

CATALOG = """\
models:
  vec:
    target: vectors/small
    pricing: {input: 2.0, output: 5.0}
  chat-only: chatless/model
groups:
  any-vec: {strategy: fallback, members: [chat-only, vec]}
"""


NO_LIMITS = EmbeddingLimits()


class _Returns(Exception):
    """Scripted in ``failures``: answer with this response instead of computing one."""

    def __init__(self, response: EmbeddingResponse) -> None:
        super().__init__("scripted answer")
        self.response = response


class VectorProvider(Provider):
    """Vectors that encode each text (its length, its first letter), answered after a
    delay that makes later slices of a split call finish first."""

    name = "vectors"
    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS})
    calls: list[EmbeddingRequest]
    failures: list[BaseException]
    in_flight: list[int]

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        self.calls.append(request)
        self.in_flight[0] += 1
        self.in_flight[1] = max(self.in_flight[1], self.in_flight[0])
        try:
            # The first slice answers last.
            await asyncio.sleep(0.002 * (10 - min(len(self.calls), 10)))
            for text in request.inputs:
                if text == "poison":
                    raise ProviderUnavailable("down", status_code=503)
            if self.failures:
                scripted = self.failures.pop(0)
                if isinstance(scripted, _Returns):
                    return scripted.response
                raise scripted
            vectors = [(float(len(t)), float(ord(t[0]) if t else 0)) for t in request.inputs]
            return EmbeddingResponse(
                vectors=[vector[: request.dimensions] for vector in vectors],
                model=request.model + "-v1",
                usage=Usage(input_tokens=10 * len(request.inputs)),
                raw={"n": len(request.inputs)},
            )
        finally:
            self.in_flight[0] -= 1


class ChatlessProvider(Provider):
    name = "chatless"
    capabilities = frozenset({Capability.CHAT})
    embedded = 0

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        ChatlessProvider.embedded += 1  # never reached: the hub refuses first
        raise AssertionError("called an adapter without embeddings")


class Vectors:
    def __init__(self, limits: EmbeddingLimits = NO_LIMITS) -> None:
        self.calls: list[EmbeddingRequest] = []
        self.failures: list[BaseException] = []
        self.in_flight = [0, 0]
        self.limits = limits

    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        plugin = self

        class Bound(VectorProvider):
            calls = plugin.calls
            failures = plugin.failures
            in_flight = plugin.in_flight
            embedding_limits = plugin.limits

        register("vectors", Bound)
        register("chatless", ChatlessProvider)


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[Hub, Vectors]]]:
    hubs: list[Hub] = []

    def build(
        catalog: str = CATALOG, limits: EmbeddingLimits = NO_LIMITS, *plugins: object
    ) -> tuple[Hub, Vectors]:
        vectors = Vectors(limits)
        hub = hub_for(catalog, vectors, *plugins)
        hubs.append(hub)
        return hub, vectors

    yield build
    for hub in hubs:
        hub.close()


def test_an_alias_embeds_texts_in_order_with_usage_and_cost(make: Any) -> None:
    hub, vectors = make()
    answer = hub.embed("vec", ["a", "bb", "ccc"], dimensions=2, input_type="document")
    assert answer.vectors == ((1.0, 97.0), (2.0, 98.0), (3.0, 99.0))
    assert (answer.provider, answer.model) == ("vectors", "small-v1")
    assert answer.usage == Usage(input_tokens=30)
    # Priced per input token: 30 tokens at 2.0 per million; the output price never counts.
    assert answer.cost.amount == pytest.approx(30 * 2.0 / 1e6)
    assert answer.latency is not None
    assert answer.latency > 0
    sent = vectors.calls[0]
    assert (sent.model, sent.dimensions, sent.input_type) == ("small", 2, "document")


def test_a_single_string_is_one_vector_and_every_way_of_naming_a_model_works(
    make: Any,
) -> None:
    hub, _ = make()
    assert len(hub.embed("vec", "hello")) == 1
    assert hub.embed("vectors/small", ["x"]).vectors == ((1.0, 120.0),)
    assert hub.get("vec").embed(["x", "y"]).dimensions == 2
    request = EmbeddingRequest(inputs=["x"], model="vec", custom_id="doc-1")
    assert hub.embed(request).custom_id == "doc-1"

    async def async_call() -> EmbeddingResponse:
        return await hub.get("vec").aembed("z")

    assert hub.run_sync(async_call()).vectors == ((1.0, 122.0),)


def test_a_provider_without_embeddings_is_refused_before_any_call(make: Any) -> None:
    hub, _ = make()
    with pytest.raises(UnsupportedCapability) as caught:
        hub.embed("chat-only", ["x"])
    assert (caught.value.provider, caught.value.model) == ("chatless", "model")
    assert "embeddings" in str(caught.value)
    assert ChatlessProvider.embedded == 0


def test_a_group_routes_to_the_members_that_embed(make: Any) -> None:
    hub, _ = make()
    answer = hub.embed("any-vec", ["x"])
    assert answer.provider == "vectors"
    route = answer.metadata["route"]
    assert route["member"] == "vec"
    assert route["failed"] == [{"member": "chat-only", "error": "UnsupportedCapability"}]


def test_rule_routing_skips_members_that_cannot_embed(make: Any) -> None:
    hub, _ = make(CATALOG + "  ranked: {strategy: rules, members: [chat-only, vec]}\n")
    answer = hub.embed("ranked", ["x"])
    assert answer.metadata["route"]["skipped"] == [
        {"member": "chat-only", "reason": "lacks embeddings"}
    ]


def test_no_texts_is_a_typed_error(make: Any) -> None:
    hub, vectors = make()
    with pytest.raises(InvalidRequestError, match="at least one input"):
        hub.embed("vec", [], custom_id="empty")
    with pytest.raises(InvalidRequestError, match=r"inputs\[1\] must be a string"):
        hub.embed("vec", ["a", 3])
    assert vectors.calls == []


def test_inputs_beyond_the_limits_are_split_and_joined_back_in_order(make: Any) -> None:
    hub, vectors = make(limits=EmbeddingLimits(max_inputs=2))
    texts = [chr(ord("a") + i) * (i + 1) for i in range(9)]
    answer = hub.embed("vec", texts)
    assert [len(call.inputs) for call in vectors.calls] == [2, 2, 2, 2, 1]
    # The provider answered the last slices first; the vectors are in the inputs' order.
    assert answer.vectors == tuple((float(i + 1), float(ord("a") + i)) for i in range(9))
    assert answer.usage == Usage(input_tokens=90)
    assert answer.cost.amount == pytest.approx(90 * 2.0 / 1e6)
    assert answer.metadata["slices"] == 5
    assert 1 < vectors.in_flight[1] <= 4  # concurrent, and bounded


def test_token_limits_split_by_the_estimate() -> None:
    limits = EmbeddingLimits(max_tokens=4)
    # "abcdefgh" is 2 tokens by the estimate, "x" 1; a 20-token text goes alone.
    texts = ["abcdefgh", "x", "y", "z", "t" * 80, "w"]
    assert slices(texts, limits) == [range(0, 3), range(3, 4), range(4, 5), range(5, 6)]
    assert slices(["a"], EmbeddingLimits()) == [range(0, 1)]


def test_a_failed_slice_fails_the_call_naming_its_inputs(make: Any) -> None:
    hub, _ = make(limits=EmbeddingLimits(max_inputs=2))
    with recorded_waits(), pytest.raises(ProviderUnavailable) as caught:
        hub.embed("vec", ["a", "b", "c", "poison", "e"], custom_id="batch-7")
    error = caught.value
    assert "slice 2 of 3 (inputs 2-3)" in str(error)
    assert (error.provider, error.model, error.custom_id) == ("vectors", "small", "batch-7")


def test_an_answer_missing_vectors_is_malformed(make: Any) -> None:
    hub, vectors = make()
    short = EmbeddingResponse(vectors=[(1.0, 1.0)], model="small")
    vectors.failures.extend([_Returns(short)] * 4)
    with recorded_waits(), pytest.raises(MalformedResponse, match="2 inputs were sent and 1"):
        hub.embed("vec", ["a", "b"])


def test_retries_apply_per_slice(make: Any) -> None:
    hub, vectors = make(limits=EmbeddingLimits(max_inputs=2))
    vectors.failures.append(ProviderUnavailable("blip", status_code=503))
    with recorded_waits() as waits:
        answer = hub.embed("vec", ["a", "b", "c", "d"])
    assert len(waits) == 1
    assert len(vectors.calls) == 3  # two slices, one of them sent twice
    assert answer.metadata["retries"] == ["ProviderUnavailable"]
    assert [v[0] for v in answer.vectors] == [1.0, 1.0, 1.0, 1.0]


class DictCache:
    def __init__(self) -> None:
        self.entries: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        return self.entries.get(key)

    async def put(self, key: str, response: Any) -> None:
        self.entries[key] = response

    async def aclose(self) -> None:
        pass


class CachePlugin:
    def __init__(self) -> None:
        self.store = DictCache()

    @hookimpl
    def relay_register_response_caches(self, register: Any) -> None:
        register("dict", lambda settings: self.store)


def test_a_cached_answer_costs_nothing_and_says_so(make: Any) -> None:
    cache = CachePlugin()
    hub, vectors = make(CATALOG, EmbeddingLimits(), cache)
    first = hub.embed("vec", ["a", "b"], cache=True, custom_id="one")
    again = hub.embed("vec", ["a", "b"], cache=True, custom_id="two")
    assert len(vectors.calls) == 1
    assert again.vectors == first.vectors
    assert again.metadata["cached"] is True
    assert again.cost.amount == 0.0
    assert again.metadata["cost_saved"] == pytest.approx(first.cost.amount)
    assert again.custom_id == "two"
    # Another length of vector is another question.
    hub.embed("vec", ["a", "b"], cache=True, dimensions=1)
    assert len(vectors.calls) == 2


class Masking:
    """Redacts digits; keeps one message per input, as a redactor does."""

    @hookimpl
    def relay_redact(self, request: Request) -> Request:
        def masked(text: str) -> str:
            return "".join("#" if c.isdigit() else c for c in text)

        return attrs.evolve(
            request, messages=tuple(Message.user(masked(m.text)) for m in request.messages)
        )


def test_inputs_are_redacted_and_audit_sees_embed_events(make: Any) -> None:
    sink = AuditRecorder()
    hub, vectors = make(CATALOG, EmbeddingLimits(), sink, Masking())
    hub.embed("vec", ["card 4242", "plain"], custom_id="c1", tags=["kb"])
    assert vectors.calls[0].inputs == ("card ####", "plain")
    [event] = sink.events
    assert event.kind == "embed.succeeded"
    assert (event.alias, event.custom_id, event.tags) == ("vec", "c1", ("kb",))
    assert event.metadata == {"inputs": 2}
    assert event.usage == Usage(input_tokens=20)
    assert event.request is not None
    assert [m.text for m in event.request.messages] == ["card ####", "plain"]
    with pytest.raises(UnsupportedCapability):
        hub.embed("chat-only", ["x"])
    assert sink.events[-1].kind == "embed.failed"


def test_the_embedding_chain_has_no_guardrails_and_splits(make: Any) -> None:
    class Guard:
        @hookimpl
        def relay_guardrail_pre(self, request: Request, call: Any) -> None:
            raise AssertionError("guardrails judge prompts, not embedding inputs")

    hub, _ = make(CATALOG, EmbeddingLimits(), Guard())
    names = [type(layer).__name__ for layer in hub.pipeline.layers(embedding=True)]
    assert "Guardrails" not in names
    assert names.index("Accounting") < names.index("Splitting") < names.index("Retrying")
    assert "Splitting" not in [type(layer).__name__ for layer in hub.pipeline.layers()]
    assert len(hub.embed("vec", ["x"])) == 1


def test_provider_kwargs_merge_under_the_catalogs(make: Any) -> None:
    catalog = CATALOG.replace(
        "    pricing: {input: 2.0, output: 5.0}\n",
        "    pricing: {input: 2.0, output: 5.0}\n    provider_kwargs: {a: {x: 1, y: 2}}\n",
    )
    hub, vectors = make(catalog)
    hub.embed("vec", ["x"], provider_kwargs={"a": {"y": 3}})
    sent: Mapping[str, Any] = vectors.calls[0].provider_kwargs
    assert sent == {"a": {"x": 1, "y": 3}}


def test_vectors_of_another_length_than_asked_are_refused(make: Any) -> None:
    # A model (or a server) that ignores dimensions must not hand back longer vectors.
    hub, vectors = make(CATALOG, EmbeddingLimits())
    vectors.failures.append(
        _Returns(EmbeddingResponse(vectors=[(1.0, 2.0, 3.0)], model="small", usage=Usage(1)))
    )
    with pytest.raises(InvalidRequestError, match="asked for 2 dimensions, got vectors of 3"):
        hub.embed("vec", ["a"], dimensions=2)
