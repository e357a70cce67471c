"""Embeddings at a deployment's URL with the api-version, replayed from cassettes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relay_azure._adapter import AzureOpenAIProvider
from relay_core import Capability, EmbeddingRequest, EmbeddingResponse, Hub, NotFoundError, Usage

TEXTS = ("The cat sat on the mat.", "Le chat dormait sur le tapis.")


def embed(hub: Hub, request: EmbeddingRequest) -> EmbeddingResponse:
    adapter = hub.get(f"azure/{request.model}").adapter
    return asyncio.run(adapter.embed(request))


def test_the_declared_capability() -> None:
    assert Capability.EMBEDDINGS in AzureOpenAIProvider.capabilities


def test_embeddings_go_to_the_deployment(make_hub: Any, cassette: Any) -> None:
    # The cassette pins the URL (deployment, api-version) and the base64 body.
    request = EmbeddingRequest(inputs=TEXTS, model="text-embedding-3-small", dimensions=8)
    with cassette("embeddings"):
        answer = embed(make_hub(), request)
    assert (len(answer), answer.dimensions) == (2, 8)
    assert answer.vectors[0][:3] == pytest.approx((-0.3240711, 0.0547003, -0.1608324), rel=1e-6)
    assert answer.usage == Usage(input_tokens=15)


def test_a_missing_deployment_is_named(make_hub: Any, cassette: Any) -> None:
    request = EmbeddingRequest(inputs=["Hi"], model="no-such-embedder")
    with cassette("embeddings_deployment_not_found"), pytest.raises(NotFoundError) as caught:
        embed(make_hub(), request)
    assert "no deployment 'no-such-embedder'" in str(caught.value)
    assert caught.value.status_code == 404


def test_the_v1_api_names_the_deployment_in_the_body(make_hub: Any) -> None:
    hub = make_hub(
        catalog="providers:\n  azure:\n    base_url: https://r.openai.azure.com\n"
        "    options: {api_version: v1}\n"
    )
    adapter = hub.get("azure/emb").adapter
    path, body = adapter.embedding_payload(EmbeddingRequest(inputs=["a"], model="emb"))
    assert path == "https://r.openai.azure.com/openai/v1/embeddings"
    assert body == {"model": "emb", "input": ["a"], "encoding_format": "base64"}
