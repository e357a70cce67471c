"""From what a user hands a job to unified requests, with errors that say where.

A job accepts :class:`BatchRequest` values, full :class:`Request` values,
:class:`EmbeddingRequest` values (an embedding job), mappings of those shapes (an
embedding request's has ``inputs``), or a JSONL file of mappings. Every request leaves here with a
``custom_id`` and a model (its own or the job's default); a mistake is a
:class:`BatchInputError` naming the file and line, or the request's position and id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
from attrs import frozen

from relay_core.batch._types import BatchRequest
from relay_core.embeddings import EmbeddingRequest
from relay_core.errors import BatchInputError, RelayError
from relay_core.hub import build_request
from relay_core.serialize import structure, validation_leaves
from relay_core.types import GenerationConfig, Request

__all__ = ["JobRequest", "Located", "line_numbers", "normalise", "read_jsonl"]

JobRequest = Request | EmbeddingRequest
"""One request of a job: a chat request, or the texts of an embedding request."""

_GENERATION = frozenset(a.name for a in attrs.fields(GenerationConfig))
_REQUEST_OPTIONS = frozenset({"tools", "tool_choice", "response_schema", "tags", "metadata"})
_SHORT_FORM = frozenset(a.name for a in attrs.fields(BatchRequest))


@frozen
class Located:
    """A request read from ``file`` at ``line`` (1-based), so errors can point there."""

    value: Any
    file: str
    line: int


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[Located]:
    """The JSON objects of a JSONL file (UTF-8), one by one (blank lines skipped)."""
    name = str(path)
    try:
        file = Path(path).open("rb")  # noqa: SIM115 - closed by the with below
    except OSError as error:
        raise BatchInputError(f"cannot read the requests: {error.strerror}", file=name) from error
    with file:
        for number, raw in enumerate(file, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise BatchInputError(
                    f"not UTF-8: byte {raw[error.start]:#04x} at column {error.start + 1}",
                    file=name,
                    line=number,
                ) from None
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise BatchInputError(
                    f"not a JSON object: {error.msg} (column {error.colno})", file=name, line=number
                ) from error
            except RecursionError:
                raise BatchInputError(
                    "not a JSON object Relay can read: nested too deeply", file=name, line=number
                ) from None
            if not isinstance(value, dict):
                raise BatchInputError(
                    f"expected a JSON object, got {type(value).__name__}", file=name, line=number
                )
            yield Located(value, name, number)


def line_numbers(path: str | os.PathLike[str], indexes: Iterable[int]) -> dict[int, int]:
    """The line (1-based) of each of the requests at ``indexes`` (0-based, blank lines
    not counted) in the JSONL file ``path``, read again to find them."""
    wanted = set(indexes)
    found: dict[int, int] = {}
    for index, located in enumerate(read_jsonl(path)):
        if index in wanted:
            found[index] = located.line
            if len(found) == len(wanted):
                break
    return found


def normalise(item: Any, index: int, default_model: str | None) -> JobRequest:
    """``item`` (the ``index``-th of the job) as a unified request with id and model."""
    where: dict[str, Any] = {"index": index}
    if isinstance(item, Located):
        where = {"file": item.file, "line": item.line}
        item = item.value
    try:
        request = _request(item, default_model)
    except BatchInputError:
        raise
    except (RelayError, TypeError, ValueError, KeyError, cattrs.BaseValidationError) as error:
        custom_id = _id_of(item)
        raise BatchInputError(
            _reason(error), custom_id=custom_id if "file" not in where else None, **where
        ) from error
    if request.custom_id is not None and not isinstance(request.custom_id, str):
        raise BatchInputError(
            f"the custom_id must be a string, not {type(request.custom_id).__name__}", **where
        )
    if not isinstance(request.model, str):
        raise BatchInputError(
            f"the model must be a string, not {type(request.model).__name__}",
            custom_id=request.custom_id,
            **where,
        )
    if not request.custom_id:
        raise BatchInputError(
            "the request has no custom_id (BatchRequest: id); each request of a job needs "
            "a unique one to match its result",
            **where,
        )
    if not request.model:
        raise BatchInputError(
            "the request names no model and the job has none: pass model=... "
            "(--model) or set one per request",
            custom_id=request.custom_id,
            **where,
        )
    return request


def _request(item: Any, default_model: str | None) -> JobRequest:
    if isinstance(item, Mapping):
        item = _from_mapping(item)
    if isinstance(item, BatchRequest):
        _check_short_form(item)
        options = {
            k: v for k, v in item.provider_args.items() if k in _GENERATION | _REQUEST_OPTIONS
        }
        passthrough = {k: v for k, v in item.provider_args.items() if k not in options}
        return build_request(
            item.model or default_model or "",
            item.prompt,
            system=item.system_prompt,
            custom_id=item.id,
            provider_kwargs=passthrough,
            **options,
        )
    if isinstance(item, EmbeddingRequest) and not item.inputs:
        raise ValueError("an embedding request needs at least one input text")
    if isinstance(item, (Request, EmbeddingRequest)):
        if not item.model and default_model:
            return attrs.evolve(item, model=default_model)
        return item
    raise TypeError(
        "a request must be a BatchRequest, a Request, an EmbeddingRequest or a mapping, "
        f"not {type(item).__name__}"
    )


def _from_mapping(data: Mapping[str, Any]) -> BatchRequest | JobRequest:
    if "inputs" in data:
        inputs = data["inputs"]
        if not isinstance(inputs, (str, list)):
            raise TypeError("inputs must be a text or a list of texts")
        return structure(dict(data), EmbeddingRequest)
    if "messages" in data:
        messages = data["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
            raise TypeError("messages must be a list of objects like {role, content}")
        return structure(dict(data), Request)
    unknown = sorted(set(data) - _SHORT_FORM)
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)}: a request is either the short form "
            f"({', '.join(sorted(_SHORT_FORM))}) or a full request with 'messages'"
        )
    if "id" not in data or "prompt" not in data:
        raise ValueError("the short form needs 'id' and 'prompt'")
    return BatchRequest(**data)


# What each field of the short form must hold: a typo'd value is refused here, before it
# can be stored and fail later when the job reads it back.
_SHORT_FORM_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "prompt": (str,),
    "model": (str, type(None)),
    "system_prompt": (str, type(None)),
    "provider_args": (Mapping,),
}


def _check_short_form(item: BatchRequest) -> None:
    for name, kinds in _SHORT_FORM_TYPES.items():
        value = getattr(item, name)
        if not isinstance(value, kinds):
            wanted = "a mapping" if name == "provider_args" else "a string"
            raise TypeError(f"{name} must be {wanted}, not {type(value).__name__}")


def _id_of(item: Any) -> str | None:
    if isinstance(item, Mapping):
        value = item.get("custom_id", item.get("id"))
    else:
        value = getattr(item, "custom_id", getattr(item, "id", None))
    return value if isinstance(value, str) else None


def _reason(error: BaseException) -> str:
    reasons: list[str] = []
    for at, leaf in validation_leaves(error):
        where = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in at)
        text = str(leaf) or type(leaf).__name__
        if isinstance(leaf, KeyError) and at:
            text = "missing"
        reason = f"{where.lstrip('.')}: {text}" if where else text
        if reason not in reasons:
            reasons.append(reason)
    return "; ".join(reasons)


def iter_requests(
    requests: Iterable[Any] | str | os.PathLike[str],
) -> Iterable[Any]:
    """``requests`` itself, or the lines of the JSONL file it names."""
    if isinstance(requests, (str, os.PathLike)):
        return read_jsonl(requests)
    return requests
