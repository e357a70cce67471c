"""The mock's vectors: deterministic, unit length, different for different texts.

A vector is a function of the text, the model and the length asked for, and of nothing
else (no ``hash()``, no time), so the same call gives the same vector in every process.
"""

from __future__ import annotations

import hashlib
import math
import struct

__all__ = ["DEFAULT_DIMENSIONS", "MAX_DIMENSIONS", "vector"]

DEFAULT_DIMENSIONS = 256
MAX_DIMENSIONS = 8192

_FLOATS_PER_BLOCK = 8  # a SHA-256 digest read as eight unsigned 32-bit integers


def vector(text: str, model: str, dimensions: int) -> tuple[float, ...]:
    """The mock's vector of ``text``: ``dimensions`` numbers drawn from SHA-256 digests
    of the model, the length and the text, scaled to unit length."""
    seed = hashlib.sha256(f"{model}\0{dimensions}\0{text}".encode()).digest()
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(seed + block.to_bytes(4, "big")).digest()
        values.extend(n / 2**31 - 1.0 for n in struct.unpack(">8I", digest))
        block += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return tuple(v / norm for v in values)
