"""The Message Batches API (``/messages/batches``): batch lines and bodies, batch
objects, and result lines, over the Messages mapping. Pure functions: the adapter sends
and fetches."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs

from relay_anthropic.messages.parse import ERROR_STATUS, parse_message, timestamp_seconds
from relay_core.plugin import (
    BatchCounts,
    BatchItem,
    BatchLimits,
    BatchState,
    ErrorInfo,
    ErrorRule,
    InvalidRequestError,
    MalformedResponse,
    ProviderBatch,
    Request,
    error_info,
    jsonl,
)

__all__ = [
    "BATCH_LIMITS",
    "batch_body",
    "batch_item",
    "batch_line",
    "batch_path",
    "provider_batch",
    "results_url",
]

# The batch body is the JSONL lines joined by commas inside this wrapper, so it is at most
# the wrapper's length longer than the JSONL the core measures against ``max_bytes``.
_BATCH_WRAPPER = (b'{"requests":[', b"]}")
# Anthropic's documented limits: 100,000 requests or 256 MB (read as 10**6 bytes, the
# smaller reading) per batch.
BATCH_LIMITS = BatchLimits(
    max_requests=100_000, max_bytes=256_000_000 - sum(map(len, _BATCH_WRAPPER))
)
# What the API accepts as a custom_id; anything else fails the whole batch.
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UNRUN: dict[str, BatchState] = {"canceled": "cancelled", "expired": "expired"}
_BATCH_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


def batch_line(request: Request, params: Mapping[str, Any], *, provider: str) -> Mapping[str, Any]:
    """The batch's entry for ``request``, whose Messages body is ``params``."""
    custom_id = request.custom_id or ""
    if not _CUSTOM_ID.fullmatch(custom_id):
        raise InvalidRequestError(
            f"custom_id {custom_id!r} cannot go into an Anthropic batch, which takes 1 "
            "to 64 letters, digits, '_' or '-'",
            provider=provider,
            custom_id=request.custom_id,
        )
    return {"custom_id": custom_id, "params": params}


def batch_body(lines: Iterable[Mapping[str, Any]]) -> bytes:
    """The body creating a batch of ``lines``."""
    # JSON escapes newlines inside strings, so the only ones in JSONL end lines.
    joined = jsonl(lines).rstrip(b"\n").replace(b"\n", b",")
    return joined.join(_BATCH_WRAPPER)


def batch_path(batch_id: str) -> str:
    return f"/messages/batches/{quote(batch_id, safe='')}"


def results_url(batch: Any, batch_id: str, *, provider: str) -> str:
    """Where the results of the batch object ``batch`` are, once it has ended."""
    url = batch.get("results_url")
    if not url:
        raise InvalidRequestError(
            f"batch {batch_id!r} has no results yet (processing_status "
            f"{batch.get('processing_status')!r}); they come once it has ended",
            provider=provider,
        )
    return str(url)


def provider_batch(body: Any, *, provider: str) -> ProviderBatch:
    """A Message Batch object as Relay's batch."""
    try:
        counts = {k: int(body["request_counts"].get(k) or 0) for k in _BATCH_COUNTS}
        total = sum(counts.values())
        return ProviderBatch(
            id=body["id"],
            provider=provider,
            state=_batch_state(body["processing_status"], counts, total),
            counts=BatchCounts(
                total,
                counts["succeeded"],
                counts["errored"] + counts["canceled"] + counts["expired"],
            ),
            created_at=timestamp_seconds(body.get("created_at")),
            ended_at=timestamp_seconds(body.get("ended_at")),
            raw=body,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise MalformedResponse(
            f"message batch has an unexpected shape: {type(error).__name__}: {error}",
            provider=provider,
            status_code=200,
        ) from error


def batch_item(line: Any, *, provider: str, rules: Sequence[ErrorRule]) -> BatchItem:
    """A result line; an errored one is classified by ``rules``."""
    custom_id, result = line["custom_id"], line["result"]
    kind = result["type"]
    if kind == "succeeded":
        response = parse_message(result["message"], None, provider=provider)
        return BatchItem(custom_id, attrs.evolve(response, custom_id=custom_id), raw=line)
    if kind == "errored":
        return BatchItem(
            custom_id,
            error=_result_error(result, custom_id, provider=provider, rules=rules),
            raw=line,
        )
    if kind in _UNRUN:
        state = _UNRUN[kind]
        message = f"the batch was {state} before this request ran"
        return BatchItem(custom_id, error=ErrorInfo(state, message, retryable=True), raw=line)
    raise ValueError(f"unknown result type {kind!r}")


def _result_error(
    result: Mapping[str, Any], custom_id: str, *, provider: str, rules: Sequence[ErrorRule]
) -> ErrorInfo:
    """An errored result, classified as the same error would be as an HTTP answer:
    its type stands for the status that answer would have had."""
    body = result["error"]  # an error response: {"type": "error", "error": {...}}
    details = body.get("error") if isinstance(body.get("error"), dict) else body
    status = ERROR_STATUS.get(str(details.get("type")), 500)
    return error_info(status, body, provider=provider, rules=rules, custom_id=custom_id)


def _batch_state(status: str, counts: Mapping[str, int], total: int) -> BatchState:
    """Anthropic's three processing states, with an ended batch told apart by its counts:
    a batch that ran none of its requests ended as it was cancelled or expired."""
    if status == "in_progress":
        return "in_progress"
    if status == "canceling":
        return "cancelling"
    if status == "ended":
        for kind, state in _UNRUN.items():
            if total and counts[kind] == total:
                return state
        return "completed"
    raise ValueError(f"unknown processing_status {status!r}")
