"""Embeddings: a request for the vectors of some texts, and the answer.

An embedding call goes through the same pipeline as a chat call (routing, response
cache, retries, breakers, audit, cost); an adapter that declares
``Capability.EMBEDDINGS`` maps these two types to its provider's wire format in
:meth:`Provider.embed <relay_core.providers.Provider.embed>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

import attrs
from attrs import field, frozen

from relay_core.types import Cost, Usage

__all__ = ["EmbeddingRequest", "EmbeddingResponse", "InputType"]

InputType = Literal["query", "document", "similarity", "classification", "clustering"]
"""What the vectors are for. Providers that tune vectors by purpose (Cohere's
``input_type``, Gemini's and Vertex's ``task_type``) take it; the others embed the same
way whatever it says, so it is a hint, never a reason to refuse a call."""

_INPUT_TYPES: tuple[str, ...] = ("query", "document", "similarity", "classification", "clustering")


def _to_inputs(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _check_inputs(_: object, __: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
    for index, text in enumerate(value):
        if not isinstance(text, str):
            raise TypeError(f"inputs[{index}] must be a string, not {type(text).__name__}")


def _check_dimensions(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"dimensions must be an integer >= 1, not {value!r}")


def _check_input_type(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value is not None and value not in _INPUT_TYPES:
        raise ValueError(f"input_type must be one of {', '.join(_INPUT_TYPES)}, not {value!r}")


def _to_vectors(vectors: Iterable[Iterable[float]]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(vector) for vector in vectors)


def _to_tuple(value: Iterable[Any] | None) -> tuple[Any, ...]:
    return () if value is None else tuple(value)


@frozen(kw_only=True)
class EmbeddingRequest:
    """The texts to embed, in order, and how.

    ``model`` is an alias or ``provider/model`` until the hub resolves it, then the
    provider's own model name (as on :class:`~relay_core.types.Request`).
    ``dimensions`` asks for shorter vectors from models that can give them.
    ``custom_id``, ``tags`` and ``metadata`` are the caller's and never change the
    :meth:`fingerprint`.
    """

    inputs: tuple[str, ...] = field(converter=_to_inputs, validator=_check_inputs)
    model: str = ""
    dimensions: int | None = field(default=None, validator=_check_dimensions)
    input_type: InputType | None = field(default=None, validator=_check_input_type)
    provider_kwargs: dict[str, Any] = field(factory=dict)
    custom_id: str | None = None
    tags: tuple[str, ...] = field(default=(), converter=_to_tuple)
    metadata: dict[str, Any] = field(factory=dict)

    def fingerprint(self) -> str:
        """A stable SHA-256 of what the provider would see (as
        :meth:`Request.fingerprint <relay_core.types.Request.fingerprint>`)."""
        from relay_core.serialize import fingerprint

        return fingerprint(attrs.evolve(self, custom_id=None, tags=(), metadata={}))


@frozen(kw_only=True)
class EmbeddingResponse:
    """One vector per input, in the inputs' order, with what producing them cost.

    ``raw`` is the provider's payload as received (the last one, when the hub split the
    inputs over several calls); ``latency`` is seconds for the whole request.
    """

    vectors: tuple[tuple[float, ...], ...] = field(converter=_to_vectors)
    model: str = ""
    provider: str = ""
    custom_id: str | None = None
    usage: Usage = field(factory=Usage)
    cost: Cost = field(factory=Cost)
    latency: float | None = None
    raw: Any = None
    metadata: dict[str, Any] = field(factory=dict)

    @property
    def dimensions(self) -> int:
        """The length of the vectors (0 for an answer without any)."""
        return len(self.vectors[0]) if self.vectors else 0

    def __len__(self) -> int:
        return len(self.vectors)

    def __iter__(self) -> Iterator[tuple[float, ...]]:
        return iter(self.vectors)
