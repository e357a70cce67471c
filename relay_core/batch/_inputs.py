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
from relay_core.errors import BatchInputError, ProviderError, RelayError
from relay_core.hub import Hub, build_request
from relay_core.messages import parse_messages
from relay_core.plugins import distribution_for
from relay_core.serialize import structure, validation_leaves
from relay_core.types import SETTING_ALIASES, GenerationConfig, Request

__all__ = ["JobRequest", "Located", "line_numbers", "normalise", "qualify", "read_jsonl"]

JobRequest = Request | EmbeddingRequest
"""One request of a job: a chat request, or the texts of an embedding request."""

_GENERATION = frozenset(a.name for a in attrs.fields(GenerationConfig)) | frozenset(SETTING_ALIASES)
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


def normalise(
    item: Any,
    index: int,
    default_model: str | None,
    *,
    hub: Hub | None = None,
    provider: str | None = None,
) -> JobRequest:
    """``item`` (the ``index``-th of the job) as a unified request with id and model.

    ``provider`` (the job's) makes a bare model name that provider's, as a
    :class:`BatchRequest`'s own ``provider`` does; ``hub`` tells aliases and provider
    names apart (it is needed when either provider is given).
    """
    where: dict[str, Any] = {"index": index}
    if isinstance(item, Located):
        where = {"file": item.file, "line": item.line}
        item = item.value
    try:
        request = _request(item, default_model, hub, provider)
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


def _request(
    item: Any, default_model: str | None, hub: Hub | None, job_provider: str | None
) -> JobRequest:
    if isinstance(item, Mapping):
        item = _from_mapping(item)
    if isinstance(item, BatchRequest):
        _check_short_form(item)
        options = {
            k: v for k, v in item.provider_args.items() if k in _GENERATION | _REQUEST_OPTIONS
        }
        passthrough = {k: v for k, v in item.provider_args.items() if k not in options}
        model = item.model or default_model or ""
        provider = item.provider or job_provider
        if provider and model:
            if job_provider and item.provider and item.provider != job_provider:
                raise ValueError(
                    f"provider {item.provider!r} differs from the job's provider "
                    f"{job_provider!r}, which every request must use"
                )
            model = qualify(model, provider, hub)
        return build_request(
            model,
            item.prompt,
            messages=item.messages,
            system=item.system_prompt,
            custom_id=item.id,
            provider_kwargs=passthrough,
            **options,
        )
    if isinstance(item, EmbeddingRequest) and not item.inputs:
        raise ValueError("an embedding request needs at least one input text")
    if isinstance(item, (Request, EmbeddingRequest)):
        target = item.model or default_model
        if job_provider and target:
            target = qualify(target, job_provider, hub)
        if target and target != item.model:
            return attrs.evolve(item, model=target)
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
    if "messages" in data and ("custom_id" in data or "id" not in data):
        return _full_request(data)
    unknown = sorted(set(data) - _SHORT_FORM)
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)}: a request is either the short form "
            f"({', '.join(sorted(_SHORT_FORM))}) or a full request with 'messages'"
        )
    if "id" not in data or ("prompt" in data) == ("messages" in data):
        raise ValueError("the short form needs 'id' and either 'prompt' or 'messages'")
    return BatchRequest(**data)


def _full_request(data: Mapping[str, Any]) -> Request:
    # The messages may be in OpenAI's or Anthropic's form, whose system messages are
    # the request's system prompt; the other fields are Relay's own.
    fields = dict(data)
    conversation = parse_messages(fields.pop("messages"), custom_id=_id_of(data))
    request = structure({**fields, "messages": []}, Request)
    system = request.system
    if conversation.system is not None:
        system = f"{system}\n\n{conversation.system}" if system else conversation.system
    return attrs.evolve(
        request,
        messages=conversation.messages,
        system=system,
        cache_system=request.cache_system or conversation.cache_system,
    )


def qualify(model: str, provider: str, hub: Hub | None) -> str:
    """``model`` as served by ``provider``: a bare model name becomes
    ``provider/model``; an alias or ``provider/model`` must already be that provider's.

    Users of other batch clients name the provider beside a bare model name; this keeps
    their requests as written while the rest of Relay sees one ``provider/model`` form.
    """
    if hub is None:
        raise TypeError("resolving a model by its provider needs the hub")  # a bug, not input
    catalog = hub.catalog
    if model in catalog.groups:
        raise ValueError(
            f"model {model!r} is a group, whose members pick their own providers: "
            f"drop provider {provider!r}"
        )
    config = catalog.models.get(model)
    if config is not None:
        if config.provider != provider:
            raise ValueError(
                f"model {model!r} is served by {config.provider!r} "
                f"({config.target}), not by provider {provider!r}"
            )
        return model
    head, slash, _ = model.partition("/")
    if head == provider:
        return model
    if slash and _is_provider(head, hub):
        raise ValueError(
            f"model {model!r} names provider {head!r}, not provider {provider!r}: give "
            f"one of them (a model id that itself has a slash: {provider}/{model})"
        )
    return f"{provider}/{model}"


def _is_provider(name: str, hub: Hub) -> bool:
    return (
        name in hub.catalog.providers
        or distribution_for(name) is not None
        or name in hub.plugins.providers()
    )


# What each field of the short form must hold: a typo'd value is refused here, before it
# can be stored and fail later when the job reads it back.
_SHORT_FORM_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "prompt": (str, type(None)),
    "model": (str, type(None)),
    "system_prompt": (str, type(None)),
    "provider": (str, type(None)),
    "provider_args": (Mapping,),
    "messages": (list, tuple, type(None)),
}
_WANTED = {"provider_args": "a mapping", "messages": "a list of messages"}


def _check_short_form(item: BatchRequest) -> None:
    for name, kinds in _SHORT_FORM_TYPES.items():
        value = getattr(item, name)
        if not isinstance(value, kinds):
            wanted = _WANTED.get(name, "a string")
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
        if isinstance(leaf, ProviderError):
            text = leaf.provider_message  # the error names file:line and id itself
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
