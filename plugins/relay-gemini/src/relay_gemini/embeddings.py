"""Embeddings on the Gemini API: ``models/{model}:batchEmbedContents``.

One call embeds up to 100 texts, each as its own EmbedContentRequest carrying the
purpose (``taskType``) and the vector length (``outputDimensionality``). The answer holds
one ``values`` list per request, in order, and no token count: usage is the core's estimate
(:func:`~relay_core.tokens.estimate_text_tokens`) and the response says so in ``metadata``.
"""

from __future__ import annotations

from typing import Any

from relay_core.plugin import (
    EmbeddingRequest,
    EmbeddingResponse,
    InputType,
    MalformedResponse,
    Usage,
    estimate_text_tokens,
)

__all__ = ["MAX_INPUTS", "TASK_TYPES", "payload", "response"]

MAX_INPUTS = 100
# Relay's purposes as Google's task types (Gemini's taskType, Vertex's task_type).
TASK_TYPES: dict[InputType, str] = {
    "query": "RETRIEVAL_QUERY",
    "document": "RETRIEVAL_DOCUMENT",
    "similarity": "SEMANTIC_SIMILARITY",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
}


def payload(request: EmbeddingRequest) -> dict[str, Any]:
    """The BatchEmbedContentsRequest body: one EmbedContentRequest per input, with
    ``provider_kwargs`` (``title``, ...) merged into each."""
    model = request.model if "/" in request.model else f"models/{request.model}"
    requests = []
    for text in request.inputs:
        one: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if request.input_type is not None:
            one["taskType"] = TASK_TYPES[request.input_type]
        if request.dimensions is not None:
            one["outputDimensionality"] = request.dimensions
        requests.append({**one, **request.provider_kwargs})
    return {"requests": requests}


def response(body: Any, request: EmbeddingRequest, provider: str) -> EmbeddingResponse:
    """The answer as an EmbeddingResponse, its vectors in the inputs' order."""
    embeddings = body.get("embeddings") if isinstance(body, dict) else None
    if not isinstance(embeddings, list) or len(embeddings) != len(request.inputs):
        got = len(embeddings) if isinstance(embeddings, list) else "no"
        raise MalformedResponse(
            f"batchEmbedContents answered {got} embeddings for {len(request.inputs)} inputs",
            provider=provider,
            model=request.model,
        )
    vectors = []
    for index, embedding in enumerate(embeddings):
        values = embedding.get("values") if isinstance(embedding, dict) else None
        if not isinstance(values, list):
            raise MalformedResponse(
                f"embeddings[{index}] has no values", provider=provider, model=request.model
            )
        vectors.append(values)
    return EmbeddingResponse(
        vectors=vectors,
        model=request.model,
        usage=Usage(input_tokens=sum(estimate_text_tokens(t) for t in request.inputs)),
        raw=body,
        # Gemini counts no tokens for embeddings: the number above is Relay's estimate.
        metadata={"usage_estimated": True},
    )
