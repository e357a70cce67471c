"""Gemini batch mode's wire format (``models/*:batchGenerateContent`` over a JSONL file
uploaded through the Files API): the batch's long-running Operation as Relay's
:class:`ProviderBatch`, output lines as :class:`BatchItem`, and the names and paths a
batch goes by.

Pure functions of the JSON; the adapter does the uploads and requests. Each input line is
``{"key": custom_id, "request": GenerateContentRequest}`` (:mod:`relay_gemini.payload`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import attrs

from relay_core.plugin import (
    BatchCounts,
    BatchItem,
    BatchState,
    ErrorInfo,
    ErrorRule,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    ProviderBatch,
    ProviderError,
    Request,
    error_info,
)
from relay_gemini.parse import malformed, response
from relay_gemini.rpc import http_status, timestamp_seconds

__all__ = [
    "batch",
    "batch_item",
    "batch_path",
    "display_metadata",
    "display_name",
    "inlined_lines",
    "media_url",
    "model_of",
    "output",
    "single_model",
]

# Batch states: the REST reference names them BATCH_STATE_*, the batch guide's examples
# JOB_STATE_* (the SDKs' names); both are read. Gemini has no "validating" or
# "cancelling" step: a batch waiting its turn is reported as validating, the one state
# Relay has for "accepted, not running yet".
_STATE_NAMES: dict[str, BatchState] = {
    "PENDING": "validating",
    "QUEUED": "validating",
    "RUNNING": "in_progress",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "EXPIRED": "expired",
}
_STATES: dict[str, BatchState] = {
    prefix + name: state
    for prefix in ("BATCH_STATE_", "JOB_STATE_")
    for name, state in _STATE_NAMES.items()
}
# The display name carries the metadata given at submit, so list_batches can give it back.
_TAG_PREFIX = "relay:"
_BATCH_ID = re.compile(r"batches/[^/?#]+")


def single_model(requests: Sequence[Request], provider: str) -> str:
    """The one model a batch runs (it is in the URL); every request needs a custom_id,
    Gemini's ``key``."""
    models = sorted({request.model for request in requests})
    if len(models) != 1:
        raise InvalidRequestError(
            "a Gemini batch runs one model (it is in the URL); this one has "
            + (", ".join(models) or "no requests"),
            provider=provider,
        )
    missing = [i for i, request in enumerate(requests) if not request.custom_id]
    if missing:
        raise InvalidRequestError(
            f"request {missing[0]} of the batch has no custom_id; each needs a unique one",
            provider=provider,
        )
    return models[0]


def display_name(metadata: Mapping[str, str]) -> str:
    """The batch's display name, which carries the metadata given at submit."""
    return _TAG_PREFIX + urlencode(sorted(metadata.items()))


def display_metadata(display: str) -> dict[str, str]:
    """The metadata :func:`display_name` put in a display name; none in any other."""
    if not display.startswith(_TAG_PREFIX):
        return {}
    return dict(parse_qsl(display.removeprefix(_TAG_PREFIX), keep_blank_values=True))


def batch_path(batch_id: str, provider: str) -> str:
    """The URL path of a batch: ids are Gemini's resource names (``batches/abc``), and a
    bare ``abc`` is read as one. Anything else cannot be a batch, so it is not found."""
    name = batch_id if batch_id.startswith("batches/") else f"batches/{batch_id}"
    if not _BATCH_ID.fullmatch(name):
        raise NotFoundError(
            f"no batch {batch_id!r}: Gemini batch ids look like batches/<id>",
            provider=provider,
        )
    return "/" + quote(name, safe="/-._~")


def media_url(base_url: str, kind: str, resource: str) -> str:
    """The Files API's media endpoints sit beside the API's path, not under it:
    ``{origin}/upload/v1beta/files`` and ``{origin}/download/v1beta/files/x``."""
    base = urlsplit(base_url)
    return f"{base.scheme}://{base.netloc}/{kind}{base.path}/{resource}"


def batch(operation: Any, provider: str) -> ProviderBatch:
    """A batch's long-running Operation (create, get, list) as Relay's view of it."""
    if not isinstance(operation, dict):
        raise malformed(f"a batch is not a JSON object: {str(operation)[:200]!r}", provider)
    fields = _fields(operation)
    name = operation.get("name") or fields.get("name")
    if not isinstance(name, str):
        raise malformed("a batch has no name", provider)
    stats = fields.get("batchStats") or {}
    state = _STATES.get(str(fields.get("state")))
    if state is None:  # BATCH_STATE_UNSPECIFIED, or a state newer than this adapter
        state = "failed" if operation.get("done") else "in_progress"
    display = str(fields.get("displayName") or "")
    return ProviderBatch(
        id=name,
        provider=provider,
        state=state,
        counts=BatchCounts(
            # int64 fields: proto JSON writes them as strings, and leaves zeros out.
            int(stats.get("requestCount") or 0),
            int(stats.get("successfulRequestCount") or 0),
            int(stats.get("failedRequestCount") or 0),
        ),
        created_at=timestamp_seconds(fields.get("createTime")),
        ended_at=timestamp_seconds(fields.get("endTime")),
        metadata=display_metadata(display),
        raw=operation,
    )


def output(operation: Any) -> Mapping[str, Any]:
    """Where a finished batch's answers are: the Operation's ``response`` (what the batch
    guide reads), else the batch's own ``output``."""
    answer = operation.get("response") if isinstance(operation, dict) else None
    if isinstance(answer, dict) and ("responsesFile" in answer or "inlinedResponses" in answer):
        return answer
    found = _fields(operation).get("output")
    return found if isinstance(found, dict) else {}


def model_of(operation: Any) -> str:
    """The model a batch ran, as Relay names it (no ``models/``)."""
    return str(_fields(operation).get("model") or "").removeprefix("models/")


def inlined_lines(found: Mapping[str, Any]) -> Iterator[str] | None:
    """A batch submitted inline (elsewhere) keeps its answers in the status itself: its
    output as lines, or None when the output is not inline."""
    inlined = found.get("inlinedResponses")
    if not isinstance(inlined, dict):
        return None
    return (json.dumps(item, ensure_ascii=False) for item in inlined.get("inlinedResponses") or [])


def batch_item(line: Any, *, model: str, provider: str, rules: Sequence[ErrorRule]) -> BatchItem:
    """One output line: ``{key, response}`` or ``{key, error: google.rpc.Status}``
    (inline answers keep the key in ``metadata.key``)."""
    key = line["key"] if "key" in line else line["metadata"]["key"]
    if not isinstance(key, str):
        raise MalformedResponse(f"the line's key is not a string: {key!r}")
    if "response" not in line:
        error = line["error"]
        return BatchItem(
            key,
            error=error_info(
                http_status(error), {"error": error}, provider=provider, rules=rules, custom_id=key
            ),
            raw=line,
        )
    try:
        answer = response(line["response"], model, provider)
    except ProviderError as failed:  # a blocked prompt, an answer with no candidates
        failed.custom_id = key
        return BatchItem(key, error=ErrorInfo.from_exception(failed), raw=line)
    return BatchItem(key, response=attrs.evolve(answer, custom_id=key), raw=line)


def _fields(operation: Any) -> Mapping[str, Any]:
    """The GenerateContentBatch of an Operation (its ``metadata``), or the batch itself."""
    if not isinstance(operation, dict):
        return {}
    metadata = operation.get("metadata")
    return metadata if isinstance(metadata, dict) else operation
