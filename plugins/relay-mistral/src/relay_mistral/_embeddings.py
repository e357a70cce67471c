"""Mistral's embeddings wire format (``POST /v1/embeddings``).

The answer has OpenAI's shape (``data[].embedding`` / ``index``, ``usage.prompt_tokens``)
but the request does not: a shorter vector is ``output_dimension`` (``codestral-embed``;
``mistral-embed`` is 1024 and refuses it), and vectors come as decimal floats, the
default ``encoding_format``. relay-mistral does not depend on relay-openai, so the few
lines of parsing live here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay_core.plugin import (
    EmbeddingRequest,
    EmbeddingResponse,
    MalformedResponse,
    Usage,
)

__all__ = ["parse", "payload"]


def payload(request: EmbeddingRequest) -> dict[str, Any]:
    """The JSON body for ``request``; ``provider_kwargs`` (``output_dtype``...) last."""
    body: dict[str, Any] = {"model": request.model, "input": list(request.inputs)}
    if request.dimensions is not None:
        body["output_dimension"] = request.dimensions
    body.update(request.provider_kwargs)
    return body


def parse(body: Any, request: EmbeddingRequest, *, provider: str) -> EmbeddingResponse:
    """The answer as Relay's response, one vector per input in the inputs' order."""

    def malformed(why: str) -> MalformedResponse:
        return MalformedResponse(f"embeddings answer {why}", provider=provider, model=request.model)

    items = body.get("data") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise malformed("has no data list")
    count = len(request.inputs)
    vectors: dict[int, tuple[float, ...]] = {}
    for position, item in enumerate(items):
        index = item.get("index", position) if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
            raise malformed(f"item {position} has no index among the {count} inputs")
        if index in vectors:
            raise malformed(f"repeats index {index}")
        vectors[index] = _floats(item.get("embedding"), index, malformed)
    if len(vectors) != count:
        raise malformed(f"has {len(vectors)} vectors for {count} inputs")
    ordered = tuple(vectors[index] for index in range(count))
    usage = body.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    model = body.get("model")
    return EmbeddingResponse(
        vectors=ordered,
        model=model if isinstance(model, str) and model else request.model,
        usage=Usage(input_tokens=tokens if isinstance(tokens, int) else 0),
        raw=body,
    )


def _floats(
    value: Any, index: int, malformed: Callable[[str], MalformedResponse]
) -> tuple[float, ...]:
    if isinstance(value, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in value
    ):
        return tuple(float(x) for x in value)
    raise malformed(f"vector {index} is not a list of numbers")
