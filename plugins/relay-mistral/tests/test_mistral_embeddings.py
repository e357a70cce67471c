"""Embeddings (``POST /v1/embeddings``) replayed from cassettes: mistral-embed,
codestral-embed's ``output_dimension``, an unknown model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relay_core import (
    Capability,
    EmbeddingRequest,
    EmbeddingResponse,
    Hub,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    Usage,
)
from relay_core.testing import FakeServer, json_answer
from relay_mistral._adapter import MistralProvider

TEXTS = ("The cat sat on the mat.", "Le chat dormait sur le tapis.")


def embed(hub: Hub, request: EmbeddingRequest) -> EmbeddingResponse:
    adapter = hub.get(f"mistral/{request.model}").adapter
    return asyncio.run(adapter.embed(request))


def test_the_declared_capability_and_limits() -> None:
    assert Capability.EMBEDDINGS in MistralProvider.capabilities
    assert MistralProvider.embedding_limits.max_tokens == 12_000


def test_mistral_embed(make_hub: Any, cassette: Any) -> None:
    with cassette("embeddings"):
        answer = embed(make_hub(), EmbeddingRequest(inputs=TEXTS, model="mistral-embed"))
    assert (len(answer), answer.dimensions) == (2, 1024)
    assert answer.vectors[0][:3] == pytest.approx((-0.005173989, 0.0064943046, 0.046090726))
    assert answer.usage == Usage(input_tokens=19)
    assert answer.model == "mistral-embed"


def test_dimensions_go_as_output_dimension(make_hub: Any, cassette: Any) -> None:
    code = ("def add(a, b): return a + b", "SELECT 1;")
    request = EmbeddingRequest(inputs=code, model="codestral-embed", dimensions=8)
    with cassette("embeddings_codestral_dimension"):
        answer = embed(make_hub(), request)
    assert answer.dimensions == 8
    assert answer.vectors[0][:3] == pytest.approx((-0.30612895, 0.23533125, 0.23383729))


def test_an_unknown_model_is_not_found(make_hub: Any, cassette: Any) -> None:
    with cassette("embeddings_invalid_model"), pytest.raises(NotFoundError) as caught:
        embed(make_hub(), EmbeddingRequest(inputs=["Hi"], model="mistral-embed-9"))
    assert "Invalid model" in caught.value.provider_message


def _answer(*items: Any) -> Any:
    return json_answer({"object": "list", "model": "mistral-embed", "data": list(items)})


def test_items_are_placed_by_index(make_hub: Any) -> None:
    server = FakeServer(
        _answer(
            {"object": "embedding", "embedding": [2.0], "index": 1},
            {"object": "embedding", "embedding": [1.0], "index": 0},
        )
    )
    answer = embed(make_hub(server), EmbeddingRequest(inputs=["a", "b"], model="mistral-embed"))
    assert answer.vectors == ((1.0,), (2.0,))
    assert answer.usage == Usage()


def test_a_missing_vector_is_malformed(make_hub: Any) -> None:
    server = FakeServer(_answer({"object": "embedding", "embedding": [1.0], "index": 0}))
    hub = make_hub(server, catalog="providers:\n  mistral: {max_retries: 0}\n")
    with pytest.raises(MalformedResponse, match="1 vectors for 2 inputs"):
        embed(hub, EmbeddingRequest(inputs=["a", "b"], model="mistral-embed"))


def test_longer_vectors_than_asked_are_refused(make_hub: Any) -> None:
    server = FakeServer(_answer({"object": "embedding", "embedding": [1.0, 0.0], "index": 0}))
    # The core's check, after the adapter: mistral-embed cannot shorten its vectors.
    with pytest.raises(InvalidRequestError, match="asked for 1 dimensions, got vectors of 2"):
        make_hub(server).embed("mistral/mistral-embed", ["a"], dimensions=1)
