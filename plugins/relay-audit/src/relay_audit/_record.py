"""An :class:`~relay_core.AuditEvent` as a plain JSON record: the one shape every sink
writes, and the canonical bytes the JSONL hash chain is computed over."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from relay_core.plugin import mask

if TYPE_CHECKING:
    from relay_core.plugin import AuditEvent, Request, Response

__all__ = [
    "ALWAYS",
    "KEYED",
    "OPTIONAL",
    "SCHEMA_VERSION",
    "build_record",
    "canonical",
    "digest",
    "outcome_of",
    "seal",
    "sealed",
]

SCHEMA_VERSION = 1

# The prefix of a keyed chain's `hash`: the algorithm is part of the value every later
# `prev` repeats, so a keyed record cannot pass for an unkeyed one or the reverse.
KEYED = "hmac-sha256:"

# Present in every record whatever `fields` says: without them a line means nothing.
ALWAYS = ("schema", "kind", "outcome", "at", "at_epoch")
# What `fields` may choose from, in the order they are built.
OPTIONAL = (
    "caller",
    "tags",
    "group",
    "alias",
    "provider",
    "model",
    "custom_id",
    "response_id",
    "job_id",
    "usage",
    "cost",
    "latency",
    "error",
    "metadata",
)

_OUTCOMES = {"succeeded": "ok", "failed": "error", "cached": "cached"}


def outcome_of(kind: str) -> str:
    """``ok``, ``error`` or ``cached`` from an event kind (``call.failed`` → ``error``).

    Batch events (``batch.submitted``...) record an operation that happened: ``ok``.
    """
    return _OUTCOMES.get(kind.rpartition(".")[2], "ok")


def _iso(at: float) -> str:
    moment = datetime.fromtimestamp(at, tz=timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def build_record(
    event: AuditEvent, *, include_content: bool = False, fields: Collection[str] | None = None
) -> dict[str, Any]:
    """The record for ``event``: plain JSON values, every string masked.

    ``fields`` keeps only those of :data:`OPTIONAL` (all when ``None``); content
    (``request``, ``response``, and ``tool`` for a tool run) is added only with
    ``include_content``.
    """
    response = event.response
    request = event.request
    metadata: dict[str, Any] = {}
    if request is not None:
        metadata.update(request.metadata)
    metadata.update(event.metadata)
    usage = event.usage
    cost = event.cost
    error = event.error
    optional: dict[str, Any] = {
        "caller": event.caller,
        "tags": list(event.tags),
        "group": event.group,
        "alias": event.alias,
        "provider": event.provider,
        "model": event.model,
        "custom_id": event.custom_id,
        "response_id": response.id if response is not None else None,
        "job_id": event.job_id,
        "usage": None
        if usage is None
        else {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "cached_input_tokens": usage.cached_input_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
        },
        "cost": None
        if cost is None
        else {"amount": cost.amount, "currency": cost.currency, "source": cost.source},
        "latency": event.latency,
        "error": None
        if error is None
        else {
            "kind": error.kind,
            "message": error.message,
            "status_code": error.status_code,
            "retryable": error.retryable,
        },
        "metadata": metadata,
    }
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "kind": event.kind,
        "outcome": outcome_of(event.kind),
        "at": _iso(event.at),
        "at_epoch": event.at,
    }
    for name in OPTIONAL:
        if fields is None or name in fields:
            record[name] = optional[name]
    if include_content:
        record["request"] = None if request is None else _request_content(request)
        record["response"] = None if response is None else _response_content(response)
        if event.tool_run is not None:  # a tool the tool loop ran
            record["tool"] = {
                "arguments": event.tool_run.call.arguments,
                "result": event.tool_run.result.content,
            }
    return _plain(record)  # type: ignore[no-any-return]


def _request_content(request: Request) -> dict[str, Any]:
    return {
        "system": request.system,
        "messages": [{"role": m.role, "text": m.text} for m in request.messages],
    }


def _response_content(response: Response) -> dict[str, Any]:
    return {
        "text": response.text,
        "finish_reason": response.finish_reason,
        "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in response.tool_calls],
    }


def _plain(value: Any) -> Any:
    """``value`` as JSON data with every string masked: metadata may hold anything a
    caller put there, and an error message may echo a key."""
    if isinstance(value, str):
        return mask(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        # NaN and infinities are not JSON; their text keeps the information.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {mask(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return mask(str(value))


def canonical(record: Mapping[str, Any]) -> str:
    """The one JSON text of ``record``: sorted keys, no spaces, ASCII only (any text,
    even a stray surrogate from a provider, has exactly one encoding)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``record`` without its ``hash`` key."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def seal(record: Mapping[str, Any], key: bytes | None) -> str:
    """The ``hash`` of ``record`` in a chain: :func:`digest` without a key, and with one
    ``hmac-sha256:`` and the HMAC-SHA256 (hex) of the same canonical JSON, which only a
    holder of the key can compute."""
    if key is None:
        return digest(record)
    body = {k: v for k, v in record.items() if k != "hash"}
    return KEYED + hmac.new(key, canonical(body).encode(), hashlib.sha256).hexdigest()


def sealed(record: Mapping[str, Any], key: bytes | None) -> bool:
    """Whether ``record``'s ``hash`` is its :func:`seal` under ``key``, compared in
    constant time (a forger learns nothing from how long a wrong HMAC took to refuse)."""
    claimed = record.get("hash")
    if not isinstance(claimed, str):
        return False
    # A hostile line's hash may be any text, lone surrogates included.
    return hmac.compare_digest(seal(record, key).encode(), claimed.encode("utf-8", "surrogatepass"))
