"""Mistral batch jobs' wire format: the job a submit creates, a job as Relay's
:class:`ProviderBatch`, and each line of its output and error files as a
:class:`BatchItem`. Pure functions of the JSON; the adapter uploads and downloads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from relay_core.plugin import (
    BatchCounts,
    BatchItem,
    BatchState,
    ErrorRule,
    InvalidRequestError,
    MalformedResponse,
    ProviderBatch,
    Request,
    error_info,
)
from relay_mistral._parse import integer, response

__all__ = ["batch", "batch_item", "job_body", "single_model"]

_STATES: dict[str, BatchState] = {
    # Accepted but not started: Relay's first state, whatever the provider calls it.
    "QUEUED": "validating",
    "RUNNING": "in_progress",
    "SUCCESS": "completed",
    "FAILED": "failed",
    "TIMEOUT_EXCEEDED": "expired",
    "CANCELLATION_REQUESTED": "cancelling",
    "CANCELLED": "cancelled",
}


def single_model(requests: Sequence[Request], provider: str) -> str:
    """The one model a batch job runs."""
    models = sorted({request.model for request in requests})
    if len(models) != 1:
        raise InvalidRequestError(
            f"a Mistral batch job runs one model, got {models or 'no requests'}",
            provider=provider,
        )
    return models[0]


def job_body(
    file_id: str, model: str, metadata: Mapping[str, str], timeout_hours: int | None
) -> dict[str, Any]:
    """The body that creates a batch job over the uploaded file ``file_id``."""
    body: dict[str, Any] = {
        "input_files": [file_id],
        "model": model,
        "endpoint": "/v1/chat/completions",
        "metadata": {str(key): str(value) for key, value in metadata.items()},
    }
    if timeout_hours is not None:
        body["timeout_hours"] = timeout_hours
    return body


def batch(job: Any, provider: str) -> ProviderBatch:
    """A batch job as Relay's view of it."""
    if not isinstance(job, dict) or not isinstance(job.get("id"), str):
        raise MalformedResponse("batch job is not a JSON object", provider=provider)
    completed_at = job.get("completed_at")
    return ProviderBatch(
        id=job["id"],
        provider=provider,
        # An unknown status is one Mistral added later; keep polling rather than stop.
        state=_STATES.get(str(job.get("status")), "in_progress"),
        counts=BatchCounts(
            total=integer(job, "total_requests"),
            completed=integer(job, "succeeded_requests"),
            failed=integer(job, "failed_requests"),
        ),
        created_at=job.get("created_at"),
        ended_at=completed_at if isinstance(completed_at, (int, float)) else None,
        metadata=dict(job.get("metadata") or {}),
        raw=job,
    )


def batch_item(line: Any, *, model: str, provider: str, rules: Sequence[ErrorRule]) -> BatchItem:
    """One line of an output or error file: ``{"custom_id", "response": {"status_code",
    "body"}, "error"}``."""
    custom_id = line["custom_id"]
    if not isinstance(custom_id, str):
        raise TypeError("custom_id is not a string")
    answer = line.get("response") or {}
    status = answer.get("status_code")
    body = answer.get("body")
    failure = line.get("error")
    if isinstance(status, int) and status < 400 and not failure:
        if not isinstance(body, dict):
            raise MalformedResponse("answer body is not a JSON object")
        return BatchItem(custom_id, response=response(body, model, provider), raw=line)
    # An error with no HTTP status failed on Mistral's side: a 500, worth a retry.
    code = status if isinstance(status, int) and status >= 400 else 500
    detail = body if body else failure
    return BatchItem(
        custom_id,
        error=error_info(
            code,
            detail if isinstance(detail, (str, dict)) else json.dumps(detail),
            provider=provider,
            rules=rules,
            custom_id=custom_id,
        ),
        raw=line,
    )
