"""Embeddings on Bedrock's InvokeModel, in the two body formats of its text embedding
models:

- Amazon Titan Text Embeddings (``amazon.titan-embed-text-v2:0``, ``-v1``): one text a
  call (``inputText``), ``dimensions`` and ``normalize`` (v2 only), the answer's
  ``embedding`` and ``inputTextTokenCount``.
- Cohere Embed (``cohere.embed-english-v3``, ``cohere.embed-multilingual-v3``,
  ``cohere.embed-v4:0``): up to 96 ``texts`` a call with an ``input_type`` (required;
  ``search_document`` when the request gives none, as relay-cohere does), float
  vectors, ``output_dimension`` (v4). The body carries no token count: Bedrock's
  ``x-amzn-bedrock-input-token-count`` header does.

Model ids may carry a cross-region prefix (``us.cohere.embed-v4:0``) or be an ARN
ending in the model id; other embedding models (Nova multimodal, Marengo) are refused
with the list of supported ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from relay_core.plugin import (
    EmbeddingRequest,
    EmbeddingResponse,
    InputType,
    InvalidRequestError,
    MalformedResponse,
    Usage,
)

__all__ = [
    "MAX_INPUTS",
    "TOKEN_HEADER",
    "cohere_payload",
    "cohere_response",
    "family",
    "titan_payload",
    "titan_response",
]

Family = Literal["titan", "cohere"]
# Cohere Embed's limit per call; Titan's inputs are sent one per call by the adapter.
MAX_INPUTS = 96
TOKEN_HEADER = "x-amzn-bedrock-input-token-count"
_COHERE_INPUT_TYPES: dict[InputType, str] = {
    "query": "search_query",
    "document": "search_document",
    "similarity": "clustering",
    "classification": "classification",
    "clustering": "clustering",
}


def family(model: str, provider: str) -> Family:
    """Which body format ``model`` takes."""
    name = model.rsplit("/", 1)[-1]
    if "amazon.titan-embed-text" in name:
        return "titan"
    if "cohere.embed" in name:
        return "cohere"
    raise InvalidRequestError(
        f"{provider}/{model}: Relay embeds on Bedrock with Amazon Titan Text Embeddings "
        "(amazon.titan-embed-text-v2:0) and Cohere Embed (cohere.embed-english-v3, "
        "cohere.embed-multilingual-v3, cohere.embed-v4:0), not this model",
        provider=provider,
        model=model,
    )


def titan_payload(request: EmbeddingRequest, text: str) -> dict[str, Any]:
    body: dict[str, Any] = {"inputText": text}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if "titan-embed-text-v1" not in request.model:
        # v2's default too, written out so the vectors' kind is in the request.
        body["normalize"] = True
    return {**body, **request.provider_kwargs}


def cohere_payload(request: EmbeddingRequest) -> dict[str, Any]:
    input_type = request.input_type
    body: dict[str, Any] = {
        "texts": list(request.inputs),
        "input_type": _COHERE_INPUT_TYPES[input_type] if input_type else "search_document",
        "embedding_types": ["float"],
    }
    if request.dimensions is not None:
        body["output_dimension"] = request.dimensions
    return {**body, **request.provider_kwargs}


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _malformed(message: str, request: EmbeddingRequest, provider: str) -> MalformedResponse:
    return MalformedResponse(message, provider=provider, model=request.model)


def titan_response(body: Any, request: EmbeddingRequest, provider: str) -> EmbeddingResponse:
    """One Titan answer (for one text)."""
    if not isinstance(body, dict) or not isinstance(body.get("embedding"), list):
        raise _malformed("the Titan answer has no embedding", request, provider)
    return EmbeddingResponse(
        vectors=[body["embedding"]],
        model=request.model,
        usage=Usage(input_tokens=_count(body.get("inputTextTokenCount"))),
        raw=body,
    )


def cohere_response(
    body: Any, headers: Mapping[str, str], request: EmbeddingRequest, provider: str
) -> EmbeddingResponse:
    """A Cohere Embed answer: ``embeddings`` by type, or a bare list of float vectors
    (what the v3 models answer when no ``embedding_types`` is sent)."""
    embeddings = body.get("embeddings") if isinstance(body, dict) else None
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list) or len(embeddings) != len(request.inputs):
        got = len(embeddings) if isinstance(embeddings, list) else "no"
        raise _malformed(
            f"Cohere Embed answered {got} float embeddings for {len(request.inputs)} texts",
            request,
            provider,
        )
    return EmbeddingResponse(
        vectors=embeddings,
        model=request.model,
        usage=Usage(input_tokens=_count(headers.get(TOKEN_HEADER))),
        raw=body,
    )
