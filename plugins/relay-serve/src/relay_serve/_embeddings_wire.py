"""OpenAI's Embeddings wire format to Relay's types and back: pure functions.

In: a ``POST /v1/embeddings`` body becomes an :class:`EmbeddingCall` (the unified
:class:`EmbeddingRequest` and how the client wants the vectors written). Anything wrong
raises :class:`~relay_serve._wire.WireError` naming the field (``input[3]``).

Out: an :class:`EmbeddingResponse` becomes OpenAI's ``list`` of ``embedding`` objects,
each vector as JSON numbers or, for ``encoding_format: base64``, as the base64 of its
little-endian float32 bytes (what the openai SDKs decode, and ask for by default).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from relay_core.plugin import EmbeddingRequest, EmbeddingResponse
from relay_serve._wire import WireError

__all__ = ["MAX_INPUTS", "EmbeddingCall", "embedding_list", "parse_embeddings"]

# OpenAI's own limit per request; it also bounds the work one request can ask for.
MAX_INPUTS = 2048
_KNOWN = frozenset({"model", "input", "dimensions", "encoding_format", "user"})


@frozen
class EmbeddingCall:
    """A parsed request: the unified request and whether vectors go out as base64."""

    model: str
    request: EmbeddingRequest
    base64: bool = False


def parse_embeddings(body: object, *, request_id: str) -> EmbeddingCall:
    """The :class:`EmbeddingCall` for an Embeddings request body (parsed JSON)."""
    if not isinstance(body, Mapping):
        raise WireError("The request body must be a JSON object.")
    for name in body:
        if name not in _KNOWN:
            raise WireError(f"Unrecognized request argument supplied: {name}", name)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError("'model' is required and must be a non-empty string.", "model")
    inputs = _inputs(body.get("input"))
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise WireError(
            f"dimensions must be an integer of at least 1, not {dimensions!r}.", "dimensions"
        )
    encoding = body.get("encoding_format")
    if encoding not in (None, "float", "base64"):
        raise WireError(
            f"encoding_format must be float or base64, not {encoding!r}.", "encoding_format"
        )
    metadata: dict[str, Any] = {}
    user = body.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise WireError("user must be a string.", "user")
        metadata["user"] = user
    request = EmbeddingRequest(
        inputs=inputs,
        model=model,
        dimensions=dimensions,
        custom_id=request_id,
        metadata=metadata,
    )
    return EmbeddingCall(model, request, encoding == "base64")


def _inputs(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise WireError("'input' is required: a string or a non-empty array of strings.", "input")
    if len(value) > MAX_INPUTS:
        raise WireError(
            f"'input' holds {len(value)} items; at most {MAX_INPUTS} are allowed.", "input"
        )
    for index, text in enumerate(value):
        where = f"input[{index}]"
        if isinstance(text, str):
            if not text:
                raise WireError(f"{where} is an empty string, which has no embedding.", where)
            continue
        if isinstance(text, int) or (isinstance(text, list) and text):
            # Token ids belong to one tokenizer (OpenAI's); the upstream behind an
            # alias may use another, so they cannot be passed on or decoded here.
            raise WireError(
                "Token arrays are not supported as 'input': this server embeds text for "
                "any provider, so send the text itself.",
                "input" if isinstance(text, int) else where,
            )
        raise WireError(f"{where} must be a string.", where)
    return tuple(value)


def embedding_list(response: EmbeddingResponse, *, model: str, base64: bool) -> dict[str, Any]:
    """OpenAI's answer to ``POST /v1/embeddings``. ``model`` is the name the client
    asked for, as on chat completions."""
    tokens = response.usage.input_tokens
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": index,
                "embedding": _base64(vector) if base64 else list(vector),
            }
            for index, vector in enumerate(response.vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _base64(vector: tuple[float, ...]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
