"""Embeddings on Vertex AI: ``publishers/google/models/{model}:predict``.

Vertex's text embedding models (``text-embedding-005``, ``gemini-embedding-001``...)
take ``instances`` of ``{content, task_type}`` and ``parameters.outputDimensionality``,
and answer one prediction per instance with its ``statistics.token_count``: their sum
is the call's usage. A call holds at most 250 instances and 20,000 tokens, except for
the Gemini embedding models, which take one instance a call (the adapter sends their
inputs one by one, a few at a time).
"""

from __future__ import annotations

from typing import Any

from relay_core.plugin import EmbeddingRequest, EmbeddingResponse, MalformedResponse, Usage
from relay_gemini.embeddings import TASK_TYPES

__all__ = ["MAX_INPUTS", "MAX_TOKENS", "one_instance_a_call", "payload", "response"]

MAX_INPUTS = 250
MAX_TOKENS = 20_000


def one_instance_a_call(model: str) -> bool:
    """Whether ``model`` takes a single instance per predict call."""
    return model.startswith("gemini-embedding")


def payload(request: EmbeddingRequest) -> dict[str, Any]:
    """The predict body; ``provider_kwargs`` (``autoTruncate``...) go to ``parameters``."""
    instances = []
    for text in request.inputs:
        instance: dict[str, Any] = {"content": text}
        if request.input_type is not None:
            instance["task_type"] = TASK_TYPES[request.input_type]
        instances.append(instance)
    parameters: dict[str, Any] = {}
    if request.dimensions is not None:
        parameters["outputDimensionality"] = request.dimensions
    parameters.update(request.provider_kwargs)
    body: dict[str, Any] = {"instances": instances}
    if parameters:
        body["parameters"] = parameters
    return body


def _token_count(embeddings: dict[str, Any]) -> int:
    statistics = embeddings.get("statistics")
    value = statistics.get("token_count") if isinstance(statistics, dict) else None
    # Older answers write the count as a float (4.0).
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def response(body: Any, request: EmbeddingRequest, provider: str) -> EmbeddingResponse:
    """The answer as an EmbeddingResponse, its vectors in the inputs' order."""
    predictions = body.get("predictions") if isinstance(body, dict) else None
    if not isinstance(predictions, list) or len(predictions) != len(request.inputs):
        got = len(predictions) if isinstance(predictions, list) else "no"
        raise MalformedResponse(
            f"predict answered {got} predictions for {len(request.inputs)} instances",
            provider=provider,
            model=request.model,
        )
    vectors = []
    tokens = 0
    for index, prediction in enumerate(predictions):
        embeddings = prediction.get("embeddings") if isinstance(prediction, dict) else None
        values = embeddings.get("values") if isinstance(embeddings, dict) else None
        if not isinstance(embeddings, dict) or not isinstance(values, list):
            raise MalformedResponse(
                f"predictions[{index}] has no embeddings.values",
                provider=provider,
                model=request.model,
            )
        vectors.append(values)
        tokens += _token_count(embeddings)
    return EmbeddingResponse(
        vectors=vectors, model=request.model, usage=Usage(input_tokens=tokens), raw=body
    )
