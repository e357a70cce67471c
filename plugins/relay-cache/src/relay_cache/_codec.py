"""Answers as the JSON text both stores keep (and measure ``max_bytes`` by)."""

from __future__ import annotations

import json

from relay_core.plugin import EmbeddingResponse, Response, dumps, structure, unstructure

__all__ = ["Answer", "decode", "encode"]

Answer = Response | EmbeddingResponse

# An embedding call's answer is kept under this one key, so that a row says which kind
# of answer it holds (a chat response never has a field of that name).
_EMBEDDING = "embedding"


def encode(response: Answer) -> str:
    """The stored form: Relay's own JSON for a response (``parsed`` is left out; the hub
    parses a hit again against the request's schema), or for an embedding answer
    wrapped as ``{"embedding": ...}``."""
    if isinstance(response, EmbeddingResponse):
        return json.dumps(
            {_EMBEDDING: unstructure(response)}, ensure_ascii=False, separators=(",", ":")
        )
    return dumps(response)


def decode(text: str) -> Answer:
    """The answer back, of the kind it was stored as; raises whatever JSON or cattrs
    raise for a row that does not fit (the stores turn that into a miss)."""
    data = json.loads(text)
    if isinstance(data, dict) and list(data) == [_EMBEDDING]:
        return structure(data[_EMBEDDING], EmbeddingResponse)
    return structure(data, Response)
