"""OpenAI's Batch API wire format, as pure functions: batch objects as Relay's
:class:`ProviderBatch`, and output- and error-file lines as :class:`BatchItem`.

The adapter does the HTTP (upload the JSONL input, start, poll, read the files);
relay-openai-compat's batch providers reuse it through the adapter's hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs

from relay_core.plugin import (
    BatchCounts,
    BatchItem,
    BatchState,
    ErrorInfo,
    ErrorRule,
    MalformedResponse,
    ProviderBatch,
    Request,
    Response,
    error_info,
)
from relay_openai._wire import error_status, int_field

__all__ = [
    "BATCH_DONE",
    "batch_seconds",
    "batch_state",
    "batch_view",
    "json_object",
    "output_item",
]

BATCH_DONE = frozenset({"completed", "failed", "cancelled", "expired"})
_BATCH_ENDED_AT = ("completed_at", "failed_at", "expired_at", "cancelled_at")
# Error-file codes of requests a batch never ran: the ErrorInfo kind is the batch's end.
_BATCH_UNRUN = {"batch_expired": "expired", "batch_cancelled": "cancelled"}


def batch_seconds(value: Any) -> float | None:
    """A batch timestamp as Unix seconds: OpenAI sends integers, Together ISO 8601."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def json_object(value: Any, what: str, *, provider: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, else :class:`MalformedResponse` about ``what``."""
    if not isinstance(value, dict):
        raise MalformedResponse(
            f"{what} is not a JSON object: {str(value)[:200]!r}", provider=provider
        )
    return value


def batch_state(
    raw: Mapping[str, Any], statuses: Mapping[str, BatchState], *, provider: str
) -> BatchState:
    """A batch object's status as Relay's state, through the provider's ``statuses``."""
    state = statuses.get(str(raw.get("status")))
    if state is None:
        raise MalformedResponse(
            f"batch {raw.get('id')!r} has a status Relay does not know: {raw.get('status')!r}",
            provider=provider,
        )
    return state


def batch_view(raw: dict[str, Any], *, state: BatchState, provider: str) -> ProviderBatch:
    """The provider's batch object (in ``state``) as Relay's :class:`ProviderBatch`."""
    counts = raw.get("request_counts")
    ended = (batch_seconds(raw.get(key)) for key in _BATCH_ENDED_AT)
    metadata = raw.get("metadata")
    return ProviderBatch(
        id=str(raw.get("id", "")),
        provider=provider,
        state=state,
        counts=BatchCounts(
            int_field(counts, "total"), int_field(counts, "completed"), int_field(counts, "failed")
        ),
        created_at=batch_seconds(raw.get("created_at")),
        ended_at=next((moment for moment in ended if moment is not None), None),
        metadata=dict(metadata) if isinstance(metadata, dict) else {},
        raw=raw,
    )


def output_item(
    line: Any,
    parse: Callable[[dict[str, Any], Request], Response],
    *,
    provider: str,
    rules: Sequence[ErrorRule],
) -> BatchItem:
    """One output- or error-file line: ``{"id", "custom_id", "response":
    {"status_code", "request_id", "body"}, "error"}``; a 200 body read by ``parse``,
    any other answer classified with ``rules``."""
    custom_id = line["custom_id"]
    if not isinstance(custom_id, str):
        raise TypeError(f"custom_id is not a string: {custom_id!r}")
    answer = line.get("response")
    if not isinstance(answer, dict) or not isinstance(answer.get("status_code"), int):
        error = _unanswered(line.get("error"), custom_id, provider=provider, rules=rules)
    elif answer["status_code"] == 200:
        body = answer["body"]
        # The parsers read only the model from the request, as a fallback.
        request = Request(messages=(), model=str(body.get("model") or ""))
        return BatchItem(custom_id, response=parse(body, request), raw=line)
    else:
        error = error_info(
            answer["status_code"],
            answer.get("body") or "",
            provider=provider,
            rules=rules,
            custom_id=custom_id,
        )
    return BatchItem(custom_id, error=error, raw=line)


def _unanswered(
    error: Any, custom_id: str, *, provider: str, rules: Sequence[ErrorRule]
) -> ErrorInfo:
    """A line's ``error`` when there was no HTTP answer to classify."""
    error = error if isinstance(error, dict) else {"message": str(error or "no answer")}
    code = str(error.get("code") or "")
    message = str(error.get("message") or code or "the request failed")
    if code in _BATCH_UNRUN:
        return ErrorInfo(_BATCH_UNRUN[code], message, retryable=True)
    # With no HTTP answer, classify as the answer the error's code or type stands
    # for: a rejected request, or else the batch service's own trouble (as a 5xx is).
    found = error_info(
        error_status(error), {"error": error}, provider=provider, rules=rules, custom_id=custom_id
    )
    return attrs.evolve(found, status_code=None)
