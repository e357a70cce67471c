"""Embeddings on Bedrock's InvokeModel, replayed from the cassettes ``make_cassettes.py``
writes: Titan Text Embeddings v2 (one text a call), Cohere Embed v4 (one call), usage
from the answer or Bedrock's token-count header, and errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml
from bedrock_support import CASSETTES

from relay_bedrock import _embeddings
from relay_bedrock._adapter import BedrockProvider
from relay_core import Capability, EmbeddingRequest, Hub, InvalidRequestError

Cassette = Callable[[str], AbstractContextManager[Any]]
TEXTS = ("The cat sat on the mat.", "Paris is the capital of France.", "Stocks fell today.")
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-v4:0"


def embed(make_hub: Callable[..., Hub], request: EmbeddingRequest) -> Any:
    hub = make_hub("providers:\n  bedrock: {max_retries: 0}\n")
    return asyncio.run(hub.get(f"bedrock/{request.model}").adapter.embed(request))


def recorded(name: str) -> list[dict[str, Any]]:
    interactions = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"]
    return [json.loads(i["response"]["body"]["string"]) for i in interactions]


def test_titan_embeds_one_text_a_call_in_order(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    hub = make_hub("providers:\n  bedrock: {max_retries: 0}\n")
    assert hub.get(f"bedrock/{TITAN}").adapter.embedding_limits_for(TITAN).max_inputs == 1
    with cassette("embed_titan") as tape:
        got = hub.embed(f"bedrock/{TITAN}", list(TEXTS), dimensions=256)
    assert tape.play_count == 3
    assert [list(v) for v in got.vectors] == [body["embedding"] for body in recorded("embed_titan")]
    assert got.dimensions == 256
    assert got.usage.input_tokens == 7 + 8 + 5  # inputTextTokenCount of each answer


def test_cohere_embeds_every_text_in_one_call(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    # No input_type: search_document, which Cohere Embed requires (the cassette pins it).
    request = EmbeddingRequest(inputs=TEXTS, model=COHERE, dimensions=256)
    with cassette("embed_cohere") as tape:
        got = embed(make_hub, request)
    assert tape.play_count == 1
    [body] = recorded("embed_cohere")
    assert [list(v) for v in got.vectors] == body["embeddings"]["float"]
    assert got.usage.input_tokens == 20  # x-amzn-bedrock-input-token-count


def test_a_refused_dimension_is_an_invalid_request(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    request = EmbeddingRequest(inputs="Hello, world!", model=TITAN, dimensions=100)
    with (
        cassette("embed_invalid_dimensions"),
        pytest.raises(InvalidRequestError, match="not a valid enum value"),
    ):
        embed(make_hub, request)


def test_an_unsupported_embedding_model_is_refused_before_a_call(
    make_hub: Callable[..., Hub],
) -> None:
    request = EmbeddingRequest(inputs="a", model="amazon.nova-2-multimodal-embeddings-v1:0")
    with pytest.raises(InvalidRequestError, match=r"Titan Text Embeddings .* Cohere Embed"):
        embed(make_hub, request)


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
def test_cohere_input_types(input_type: Any, wire: str) -> None:
    request = EmbeddingRequest(inputs="a", model="us.cohere.embed-v4:0", input_type=input_type)
    assert _embeddings.cohere_payload(request)["input_type"] == wire


def test_titan_v1_takes_neither_dimensions_nor_normalize_unasked() -> None:
    request = EmbeddingRequest(inputs="a", model="amazon.titan-embed-text-v1")
    assert _embeddings.titan_payload(request, "a") == {"inputText": "a"}


def test_the_adapter_declares_embeddings_and_cohere_embed_limit() -> None:
    assert Capability.EMBEDDINGS in BedrockProvider.capabilities
    assert BedrockProvider.embedding_limits.max_inputs == 96
