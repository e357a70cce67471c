"""Embeddings on the Gemini API (``batchEmbedContents``), replayed from cassettes that
pin the request body: task types, vector length, order, estimated usage, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml
from gemini_support import CASSETTES

from relay_core import Capability, EmbeddingRequest, Hub, NotFoundError
from relay_core.plugin import estimate_text_tokens
from relay_gemini import embeddings
from relay_gemini._adapter import GeminiProvider

Cassette = Callable[[str], AbstractContextManager[Any]]
TEXTS = ("The cat sat on the mat.", "Paris is the capital of France.", "Stocks fell sharply today.")


def embed(hub: Hub, request: EmbeddingRequest) -> Any:
    adapter = hub.get(f"gemini/{request.model}").adapter
    return asyncio.run(adapter.embed(request))


def recorded_vectors(name: str) -> list[list[float]]:
    import json

    interaction = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"][0]
    body = json.loads(interaction["response"]["body"]["string"])
    return [e["values"] for e in body["embeddings"]]


def test_vectors_come_back_in_input_order(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    request = EmbeddingRequest(
        inputs=TEXTS, model="gemini-embedding-001", dimensions=128, input_type="document"
    )
    with cassette("embed") as tape:
        got = embed(make_hub(), request)
    assert tape.play_count == 1
    assert [list(v) for v in got.vectors] == recorded_vectors("embed")
    assert got.dimensions == 128
    # Gemini reports no token counts: an estimate, and the answer says so.
    assert got.usage.input_tokens == sum(estimate_text_tokens(text) for text in TEXTS)
    assert got.metadata == {"usage_estimated": True}


def test_an_unknown_model_is_not_found(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    request = EmbeddingRequest(
        inputs="Hello, world!", model="text-embedding-999", input_type="query"
    )
    hub = make_hub("providers:\n  gemini: {max_retries: 0}\n")
    with cassette("embed_not_found"), pytest.raises(NotFoundError, match="text-embedding-999"):
        embed(hub, request)


@pytest.mark.parametrize(
    ("input_type", "task_type"),
    [
        ("query", "RETRIEVAL_QUERY"),
        ("document", "RETRIEVAL_DOCUMENT"),
        ("similarity", "SEMANTIC_SIMILARITY"),
        ("classification", "CLASSIFICATION"),
        ("clustering", "CLUSTERING"),
    ],
)
def test_each_purpose_is_a_task_type(input_type: Any, task_type: str) -> None:
    body = embeddings.payload(EmbeddingRequest(inputs=("a", "b"), model="m", input_type=input_type))
    assert [r["taskType"] for r in body["requests"]] == [task_type, task_type]


def test_no_purpose_and_no_dimensions_send_neither() -> None:
    body = embeddings.payload(
        EmbeddingRequest(inputs="a", model="gemini-embedding-001", provider_kwargs={"title": "T"})
    )
    assert body == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "a"}]},
                "title": "T",
            }
        ]
    }


def test_a_short_answer_is_malformed() -> None:
    from relay_core import MalformedResponse

    request = EmbeddingRequest(inputs=("a", "b"), model="m")
    with pytest.raises(MalformedResponse, match="1 embeddings for 2 inputs"):
        embeddings.response({"embeddings": [{"values": [0.1]}]}, request, "gemini")


def test_the_adapter_declares_embeddings_and_its_limit() -> None:
    assert Capability.EMBEDDINGS in GeminiProvider.capabilities
    assert GeminiProvider.embedding_limits.max_inputs == 100
