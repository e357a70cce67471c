"""Embeddings on Cohere's v2 API: ``POST /v2/embed``.

Cohere's v3 and later models refuse a call without ``input_type``; a request that gives
no purpose is embedded as ``search_document`` (what gets stored and searched, the usual
case). Relay asks for float vectors only (``embedding_types: ["float"]``) and reads the
billed input tokens as usage.
"""

from __future__ import annotations

from typing import Any

from relay_core.plugin import (
    EmbeddingRequest,
    EmbeddingResponse,
    InputType,
    MalformedResponse,
    Usage,
)

__all__ = ["DEFAULT_INPUT_TYPE", "INPUT_TYPES", "MAX_INPUTS", "PATH", "payload", "response"]

PATH = "/v2/embed"
MAX_INPUTS = 96
DEFAULT_INPUT_TYPE = "search_document"
# Cohere has no purpose for symmetric similarity; "clustering" embeds both sides the
# same way, which is what comparing texts of one kind needs.
INPUT_TYPES: dict[InputType, str] = {
    "query": "search_query",
    "document": "search_document",
    "similarity": "clustering",
    "classification": "classification",
    "clustering": "clustering",
}


def payload(request: EmbeddingRequest) -> dict[str, Any]:
    """The embed request body; ``provider_kwargs`` (``truncate``, ``max_tokens``...) are
    merged last."""
    body: dict[str, Any] = {
        "model": request.model,
        "texts": list(request.inputs),
        "input_type": INPUT_TYPES[request.input_type] if request.input_type else DEFAULT_INPUT_TYPE,
        "embedding_types": ["float"],
    }
    if request.dimensions is not None:
        body["output_dimension"] = request.dimensions
    return {**body, **request.provider_kwargs}


def _input_tokens(body: dict[str, Any]) -> int:
    meta = body.get("meta")
    units = meta.get("billed_units") if isinstance(meta, dict) else None
    value = units.get("input_tokens") if isinstance(units, dict) else None
    # Typed as a number in Cohere's schema; whole in practice.
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def response(body: Any, request: EmbeddingRequest, provider: str) -> EmbeddingResponse:
    """The answer as an EmbeddingResponse, its vectors in the inputs' order."""
    embeddings = body.get("embeddings") if isinstance(body, dict) else None
    floats = embeddings.get("float") if isinstance(embeddings, dict) else None
    if not isinstance(floats, list) or len(floats) != len(request.inputs):
        got = len(floats) if isinstance(floats, list) else "no"
        raise MalformedResponse(
            f"embed answered {got} float embeddings for {len(request.inputs)} texts",
            provider=provider,
            model=request.model,
        )
    return EmbeddingResponse(
        vectors=floats,
        model=request.model,
        usage=Usage(input_tokens=_input_tokens(body)),
        raw=body,
    )
