"""Embeddings on the compatible servers that serve ``POST /embeddings`` (Ollama, vLLM,
Together), replayed from cassettes: decimal floats (no encoding_format is sent),
dimensions passed through, and what each server reports of usage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relay_core import (
    EmbeddingRequest,
    EmbeddingResponse,
    Hub,
    InvalidRequestError,
    NotFoundError,
    UnsupportedCapability,
    Usage,
)

TEXTS = ("The cat sat on the mat.", "Le chat dormait sur le tapis.")


def embed(hub: Hub, target: str, **fields: Any) -> EmbeddingResponse:
    _, _, model = target.partition("/")
    adapter = hub.get(target).adapter
    return asyncio.run(adapter.embed(EmbeddingRequest(model=model, **fields)))


def test_ollama_passes_dimensions_and_reports_usage(make_hub: Any, cassette: Any) -> None:
    with cassette("ollama_embeddings"):
        answer = embed(
            make_hub(network=True), "ollama/nomic-embed-text", inputs=TEXTS, dimensions=8
        )
    assert (len(answer), answer.dimensions) == (2, 8)
    assert answer.vectors[0][:3] == pytest.approx((0.13610494, 0.267762, 0.326906))
    assert answer.usage == Usage(input_tokens=17)


def test_an_ollama_model_not_pulled_is_not_found(make_hub: Any, cassette: Any) -> None:
    with cassette("ollama_embeddings_model_not_found"), pytest.raises(NotFoundError) as caught:
        embed(make_hub(network=True), "ollama/mxbai-embed-large", inputs=["Hi"])
    assert "try pulling it first" in caught.value.provider_message


def test_an_older_ollama_that_ignores_dimensions_is_an_error(server: Any, make_hub: Any) -> None:
    server.reply(
        {
            "object": "list",
            "data": [{"object": "embedding", "embedding": [0.1] * 4, "index": 0}],
            "model": "all-minilm",
        }
    )
    with pytest.raises(InvalidRequestError, match="asked for 2 dimensions, got vectors of 4"):
        make_hub().embed("ollama/all-minilm", ["a"], dimensions=2)
    assert "encoding_format" not in server.payload


def test_vllm(make_hub: Any, cassette: Any) -> None:
    with cassette("vllm_embeddings"):
        answer = embed(
            make_hub(network=True), "vllm/Qwen/Qwen3-Embedding-0.6B", inputs=TEXTS, dimensions=8
        )
    assert answer.vectors[0][:3] == pytest.approx((-0.23267065, -0.46113655, 0.1993448))
    assert answer.usage == Usage(input_tokens=16)
    assert answer.model == "Qwen/Qwen3-Embedding-0.6B"


def test_together_reports_no_usage(make_hub: Any, cassette: Any) -> None:
    with cassette("together_embeddings"):
        answer = embed(make_hub(network=True), "together/BAAI/bge-base-en-v1.5", inputs=TEXTS)
    assert (len(answer), answer.dimensions) == (2, 768)
    assert answer.vectors[0][:3] == pytest.approx((-0.004526069, -0.015500351, -0.04422489))
    assert answer.usage == Usage()


def test_servers_without_embeddings_refuse_before_any_call(make_hub: Any) -> None:
    adapter = make_hub().get("groq/llama-3.3-70b-versatile").adapter
    with pytest.raises(UnsupportedCapability):
        asyncio.run(adapter.embed(EmbeddingRequest(inputs=["a"], model="llama-3.3-70b-versatile")))
