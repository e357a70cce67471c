"""Embeddings on Vertex AI (``publishers/google/models/*:predict``), replayed from
cassettes that pin the request body: task types, dimensions, order, token usage, the
Gemini embedding models' one instance a call, errors. The token is fetched before a
cassette plays, as in test_vertex_cassettes.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml
from vertex_support import CASSETTES, PROJECT

from relay_core import Capability, EmbeddingRequest, Hub, InvalidRequestError
from relay_vertex import _embeddings
from relay_vertex._adapter import VertexProvider

Cassette = Callable[[str], AbstractContextManager[Any]]


def adapter(make_hub: Callable[..., Hub], catalog: Callable[..., str], **options: Any) -> Any:
    hub = make_hub(catalog(project=PROJECT, **options))
    provider = hub.get("vertex/text-embedding-005").adapter
    asyncio.run(provider.auth.token())  # type: ignore[attr-defined]
    return provider


def recorded_vectors(name: str) -> list[list[float]]:
    vectors = []
    for interaction in yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"]:
        body = json.loads(interaction["response"]["body"]["string"])
        vectors.extend(p["embeddings"]["values"] for p in body["predictions"])
    return vectors


def test_text_embedding_in_one_call(
    make_hub: Callable[..., Hub], catalog: Callable[..., str], cassette: Cassette
) -> None:
    provider = adapter(make_hub, catalog, location="us-central1")
    request = EmbeddingRequest(
        inputs=("What is the capital of France?", "How tall is the Eiffel Tower?"),
        model="google/text-embedding-005",
        dimensions=128,
        input_type="query",
    )
    with cassette("embed") as tape:
        got = asyncio.run(provider.embed(request))
    assert tape.play_count == 1
    assert [list(v) for v in got.vectors] == recorded_vectors("embed")
    assert got.dimensions == 128
    assert got.usage.input_tokens == 8 + 9  # statistics.token_count of each prediction
    assert got.model == "text-embedding-005"


def test_gemini_embedding_sends_one_instance_a_call(
    make_hub: Callable[..., Hub], catalog: Callable[..., str], cassette: Cassette
) -> None:
    hub = make_hub(catalog(project=PROJECT))
    provider = hub.get("vertex/gemini-embedding-001").adapter
    assert provider.embedding_limits_for("gemini-embedding-001").max_inputs == 1
    asyncio.run(provider.auth.token())  # type: ignore[attr-defined]
    texts = ["Paris is the capital of France.", "Berlin is the capital of Germany."]
    with cassette("embed_gemini") as tape:
        got = hub.embed("vertex/gemini-embedding-001", texts, input_type="similarity")
    assert tape.play_count == 2
    assert [list(v) for v in got.vectors] == recorded_vectors("embed_gemini")
    assert got.usage.input_tokens == 16


def test_a_refused_dimension_is_an_invalid_request(
    make_hub: Callable[..., Hub], catalog: Callable[..., str], cassette: Cassette
) -> None:
    provider = adapter(make_hub, catalog, location="us-central1")
    request = EmbeddingRequest(inputs="Hello, world!", model="text-embedding-005", dimensions=4096)
    with cassette("embed_invalid_dimensions"), pytest.raises(InvalidRequestError, match="4096"):
        asyncio.run(provider.embed(request))


def test_provider_kwargs_are_parameters() -> None:
    request = EmbeddingRequest(inputs="a", model="m", provider_kwargs={"autoTruncate": False})
    assert _embeddings.payload(request) == {
        "instances": [{"content": "a"}],
        "parameters": {"autoTruncate": False},
    }


def test_the_adapter_declares_embeddings_and_its_limits() -> None:
    assert Capability.EMBEDDINGS in VertexProvider.capabilities
    limits = VertexProvider.embedding_limits
    assert (limits.max_inputs, limits.max_tokens) == (250, 20_000)
