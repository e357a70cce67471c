"""OpenAI's embeddings wire format (``POST /embeddings``), for plugins that speak it too.

relay-azure and relay-openai-compat (vLLM, Ollama, Together...) call these through
:meth:`OpenAIProvider.embed <relay_openai.chat.OpenAIProvider>`; the names below keep
their meaning across minor versions.

- :func:`payload`: an :class:`EmbeddingRequest` as the request body (``input`` always a
  list, ``dimensions`` when asked, ``encoding_format`` when given).
- :func:`parse`: an answer as an :class:`EmbeddingResponse`, vectors in the inputs'
  order. Each vector may come as a list of numbers (``"float"``) or as base64 of
  little-endian float32 (``"base64"``, what OpenAI's own SDK asks for: a third of the
  bytes on the wire), whatever was asked, since some servers ignore the field.

Pure functions: no I/O, no state.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Callable, Mapping
from typing import Any, Literal

from relay_core.plugin import (
    EmbeddingRequest,
    EmbeddingResponse,
    MalformedResponse,
    Usage,
)

__all__ = ["EncodingFormat", "decode_base64", "parse", "payload"]

EncodingFormat = Literal["float", "base64"]


def payload(
    request: EmbeddingRequest,
    *,
    model: str | None = None,
    encoding_format: EncodingFormat | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body for ``request``. ``model`` overrides ``request.model`` (Azure's v1
    API sends the deployment there); ``extra`` (provider_kwargs) is merged last, so it
    can override anything mapped here."""
    body: dict[str, Any] = {"model": request.model if model is None else model}
    body["input"] = list(request.inputs)
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if encoding_format is not None:
        body["encoding_format"] = encoding_format
    body.update(extra or {})
    return body


def decode_base64(text: str) -> tuple[float, ...]:
    """A vector sent as base64 of little-endian float32 values, as floats (exactly the
    float32 values, widened)."""
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 4:
        raise ValueError(f"{len(raw)} bytes is not a whole number of float32 values")
    return struct.unpack(f"<{len(raw) // 4}f", raw)


def parse(body: Any, request: EmbeddingRequest | None, *, provider: str) -> EmbeddingResponse:
    """The answer to ``request`` as Relay's response: one vector per input, in order.

    Raises :class:`MalformedResponse` for an answer that does not hold exactly one
    vector per input. Without the request (a batch's output line), the answer's own
    count is taken. The core checks the vectors' length against ``dimensions``."""
    model_asked = request.model if request is not None else None

    def malformed(why: str) -> MalformedResponse:
        return MalformedResponse(f"embeddings answer {why}", provider=provider, model=model_asked)

    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise malformed("has no data list")
    inputs = len(request.inputs) if request is not None else len(body["data"])
    vectors: dict[int, tuple[float, ...]] = {}
    for position, item in enumerate(body["data"]):
        index = item.get("index", position) if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool):
            raise malformed(f"item {position} has no index")
        if index in vectors or not 0 <= index < inputs:
            raise malformed(f"repeats or overruns index {index} ({inputs} inputs)")
        vectors[index] = _vector(item.get("embedding"), index, malformed)
    if len(vectors) != inputs:
        raise malformed(f"has {len(vectors)} vectors for {inputs} inputs")
    ordered = tuple(vectors[index] for index in range(inputs))
    usage = body.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    model = body.get("model")
    return EmbeddingResponse(
        vectors=ordered,
        model=model if isinstance(model, str) and model else (model_asked or ""),
        usage=Usage(input_tokens=tokens if isinstance(tokens, int) else 0),
        raw=body,
    )


def _vector(
    value: Any, index: int, malformed: Callable[[str], MalformedResponse]
) -> tuple[float, ...]:
    if isinstance(value, str):
        try:
            return decode_base64(value)
        except (ValueError, binascii.Error) as error:
            raise malformed(f"vector {index} is not base64 float32: {error}") from error
    if isinstance(value, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in value
    ):
        return tuple(float(x) for x in value)
    raise malformed(f"vector {index} is neither a list of numbers nor base64")
