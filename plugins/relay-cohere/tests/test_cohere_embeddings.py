"""Embeddings on Cohere's ``/v2/embed``, replayed from cassettes that pin the request
body: input types (and the default v3+ models require), dimensions, order, billed
usage, errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml
from cohere_support import CASSETTES

from relay_cohere import _embeddings
from relay_cohere._adapter import CohereProvider
from relay_core import Capability, EmbeddingRequest, Hub, MalformedResponse, NotFoundError

Cassette = Callable[[str], AbstractContextManager[Any]]
TEXTS = ("What is the capital of France?", "Where is the Eiffel Tower?", "Best croissant in Paris?")


def embed(hub: Hub, request: EmbeddingRequest) -> Any:
    return asyncio.run(hub.get(f"cohere/{request.model}").adapter.embed(request))


def test_vectors_usage_and_order(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    request = EmbeddingRequest(inputs=TEXTS, model="embed-v4.0", dimensions=256, input_type="query")
    with cassette("embed") as tape:
        got = embed(make_hub(), request)
    assert tape.play_count == 1
    body = json.loads(
        yaml.safe_load((CASSETTES / "embed.yaml").read_text())["interactions"][0]["response"][
            "body"
        ]["string"]
    )
    assert [list(v) for v in got.vectors] == body["embeddings"]["float"]
    assert (len(got), got.dimensions) == (3, 256)
    assert got.usage.input_tokens == 17  # meta.billed_units.input_tokens


def test_an_unknown_model_is_not_found(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    # No input_type given: search_document is sent (the cassette pins it).
    request = EmbeddingRequest(inputs="Hello, world!", model="embed-english-v2.5")
    hub = make_hub("providers:\n  cohere: {max_retries: 0}\n")
    with cassette("embed_not_found"), pytest.raises(NotFoundError, match=r"embed-english-v2\.5"):
        embed(hub, request)


@pytest.mark.parametrize(
    ("input_type", "wire"),
    [
        (None, "search_document"),
        ("query", "search_query"),
        ("document", "search_document"),
        ("similarity", "clustering"),
        ("classification", "classification"),
        ("clustering", "clustering"),
    ],
)
def test_input_types(input_type: Any, wire: str) -> None:
    body = _embeddings.payload(EmbeddingRequest(inputs="a", model="m", input_type=input_type))
    assert body["input_type"] == wire
    assert "output_dimension" not in body


def test_provider_kwargs_are_merged_last() -> None:
    request = EmbeddingRequest(
        inputs="a", model="m", provider_kwargs={"truncate": "END", "embedding_types": ["float"]}
    )
    assert _embeddings.payload(request)["truncate"] == "END"


def test_an_answer_without_float_vectors_is_malformed() -> None:
    request = EmbeddingRequest(inputs=("a", "b"), model="m")
    with pytest.raises(MalformedResponse, match="no float embeddings for 2 texts"):
        _embeddings.response({"embeddings": {"int8": [[1], [2]]}}, request, "cohere")


def test_the_adapter_declares_embeddings_and_its_limit() -> None:
    assert Capability.EMBEDDINGS in CohereProvider.capabilities
    assert CohereProvider.embedding_limits.max_inputs == 96
