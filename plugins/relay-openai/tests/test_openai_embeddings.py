"""Embeddings: ``POST /embeddings`` replayed from cassettes (the request body, base64
float32 vectors, usage, errors), and the answer checks through a fake server."""

from __future__ import annotations

import array
import asyncio
import base64
import struct
from typing import Any

import pytest

from relay_core import (
    Capability,
    ContextWindowExceeded,
    EmbeddingLimits,
    EmbeddingRequest,
    EmbeddingResponse,
    Hub,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    Usage,
)
from relay_openai._adapter import OpenAIProvider
from relay_openai.embeddings import decode_base64

TEXTS = ("The cat sat on the mat.", "Le chat dormait sur le tapis.")
MODEL = "text-embedding-3-small"


def embed(hub: Hub, request: EmbeddingRequest) -> EmbeddingResponse:
    adapter = hub.get(f"openai/{request.model}").adapter
    return asyncio.run(adapter.embed(request))


def b64(*values: float) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def test_the_declared_capability_and_limits() -> None:
    assert Capability.EMBEDDINGS in OpenAIProvider.capabilities
    assert OpenAIProvider.embedding_limits == EmbeddingLimits(max_inputs=2048, max_tokens=200_000)


def test_vectors_come_back_in_order_with_their_usage(make_hub: Any, cassette: Any) -> None:
    # The cassette pins the body: input as a list in order, dimensions, base64.
    with cassette("embeddings"):
        answer = embed(
            make_hub(network=True), EmbeddingRequest(inputs=TEXTS, model=MODEL, dimensions=8)
        )
    assert (len(answer), answer.dimensions) == (2, 8)
    assert answer.vectors[0][:3] == pytest.approx((-0.5208077, 0.4948809, 0.3757178), rel=1e-6)
    assert answer.vectors[1][:3] == pytest.approx((0.4534667, 0.4453062, -0.4409520), rel=1e-6)
    # Decoded exactly: the recorded vectors are unit length to float32 precision.
    assert all(abs(sum(x * x for x in vector) - 1) < 1e-6 for vector in answer)
    assert answer.usage == Usage(input_tokens=15)
    assert answer.model == MODEL
    assert answer.raw["object"] == "list"


def test_an_unknown_model_is_not_found(make_hub: Any, cassette: Any) -> None:
    request = EmbeddingRequest(inputs=["Hello, world!"], model="text-embedding-4")
    with cassette("embeddings_model_not_found"), pytest.raises(NotFoundError) as caught:
        embed(make_hub(network=True), request)
    assert caught.value.status_code == 404
    assert "text-embedding-4" in caught.value.provider_message


def test_an_input_past_the_context_window(make_hub: Any, cassette: Any) -> None:
    request = EmbeddingRequest(inputs=["lorem ipsum " * 4100], model=MODEL)
    with cassette("embeddings_too_long"), pytest.raises(ContextWindowExceeded) as caught:
        embed(make_hub(network=True), request)
    assert "maximum context length is 8192 tokens" in caught.value.provider_message


def test_base64_decodes_to_the_exact_float32_values() -> None:
    text = b64(0.5, -1.25, 3.0, 1e-8)
    assert decode_base64(text) == tuple(array.array("f", base64.b64decode(text)))
    assert decode_base64(text)[:3] == (0.5, -1.25, 3.0)
    with pytest.raises(ValueError, match="float32"):
        decode_base64(base64.b64encode(b"abc").decode())


def _answer(*items: dict[str, Any], tokens: int = 3) -> dict[str, Any]:
    return {
        "object": "list",
        "data": list(items),
        "model": MODEL,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _item(index: int, embedding: Any) -> dict[str, Any]:
    return {"object": "embedding", "index": index, "embedding": embedding}


def test_items_are_placed_by_index_and_floats_are_read_too(server: Any, make_hub: Any) -> None:
    server.reply(_answer(_item(1, [0.25, 0.5]), _item(0, b64(1.0, 2.0))))
    answer = embed(make_hub(), EmbeddingRequest(inputs=["a", "b"], model=MODEL))
    assert answer.vectors == ((1.0, 2.0), (0.25, 0.5))


def test_provider_kwargs_reach_the_body_and_relays_own_key_does_not(
    server: Any, make_hub: Any
) -> None:
    server.reply(_answer(_item(0, b64(1.0))))
    request = EmbeddingRequest(
        inputs=["a"], model=MODEL, provider_kwargs={"user": "u-1", "openai": {"api": "chat"}}
    )
    embed(make_hub(), request)
    assert server.payload == {
        "model": MODEL,
        "input": ["a"],
        "encoding_format": "base64",
        "user": "u-1",
    }
    assert str(server.requests[-1].url) == "https://api.openai.com/v1/embeddings"


@pytest.mark.parametrize(
    ("items", "why"),
    [
        ((_item(0, b64(1.0)),), "1 vectors for 2 inputs"),
        ((_item(0, b64(1.0)), _item(0, b64(2.0))), "repeats or overruns index 0"),
        ((_item(0, b64(1.0)), _item(1, "not base64!")), "vector 1 is not base64"),
        ((_item(0, b64(1.0)), _item(1, None)), "vector 1 is neither"),
    ],
)
def test_an_answer_without_one_vector_per_input_is_malformed(
    server: Any, make_hub: Any, items: tuple[dict[str, Any], ...], why: str
) -> None:
    server.reply(_answer(*items))
    hub = make_hub("providers:\n  openai: {max_retries: 0}\n")
    with pytest.raises(MalformedResponse, match=why):
        embed(hub, EmbeddingRequest(inputs=["a", "b"], model=MODEL))


def test_vectors_longer_than_asked_are_refused(server: Any, make_hub: Any) -> None:
    # A model (or a server) that ignores dimensions must not hand back longer vectors.
    server.reply(_answer(_item(0, b64(1.0, 0.0, 0.0))))
    with pytest.raises(InvalidRequestError, match="asked for 2 dimensions, got vectors of 3"):
        make_hub().embed(f"openai/{MODEL}", ["a"], dimensions=2)
