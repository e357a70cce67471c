"""Together: the compat adapter plus Together's Batch API.

Together's Batch API is OpenAI's with other details, so relay-openai's batch code does the
work and this class overrides only what differs:

- input lines are ``{"custom_id", "body"}``: the endpoint is the batch's, not the line's;
- the input goes up to ``POST /files/upload`` (multipart: ``file``, ``file_name``,
  ``purpose=batch-api``, ``file_type=jsonl``);
- ``POST /batches`` takes ``input_file_id`` and ``endpoint`` and answers
  ``{"job": {...}, "warning": ...}``; ``GET /batches`` answers a bare array;
- statuses are upper-case words of their own (``IN_PROGRESS``, ``CANCELING``), times
  ISO 8601, and a batch reports its ``progress`` in percent instead of request counts;
- a batch keeps no metadata, so the tag rides in the input file's name,
  ``relay-batch-<requests>.<base64url JSON of the metadata>.jsonl``, and is read back from
  the file (``GET /files/{id}``, or ``GET /files`` once for a whole list).

Output and error files are read as OpenAI's (see relay-openai), which Together follows.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import attrs

from relay_core.plugin import (
    BatchCounts,
    BatchLimits,
    BatchState,
    Capability,
    MalformedResponse,
    NotFoundError,
    ProviderBatch,
    ProviderSettings,
    Request,
)
from relay_openai_compat._adapter import _BASE_CAPABILITIES, TOP_K_SETTINGS, OpenAICompatProvider

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient

__all__ = ["TogetherProvider"]

_FILE_NAME = re.compile(r"relay-batch-(\d+)\.([A-Za-z0-9_-]*)\.jsonl")


def input_file_name(count: int, metadata: Mapping[str, str]) -> str:
    """The input file's name, carrying the request count and the batch's metadata.

    base64url keeps the name to letters, digits, ``-`` and ``_`` whatever the metadata
    holds, so no file-name rule on Together's side can mangle the tag."""
    text = json.dumps(dict(metadata), separators=(",", ":"), sort_keys=True)
    encoded = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    return f"relay-batch-{count}.{encoded}.jsonl"


def read_file_name(name: Any) -> tuple[int, dict[str, Any]]:
    """The request count and metadata an input file's name carries; ``(0, {})`` for a
    file Relay did not name."""
    match = _FILE_NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        return 0, {}
    encoded = match[2] + "=" * (-len(match[2]) % 4)
    try:
        metadata = json.loads(base64.urlsafe_b64decode(encoded))
    except (binascii.Error, ValueError):
        return int(match[1]), {}
    return int(match[1]), metadata if isinstance(metadata, dict) else {}


class TogetherProvider(OpenAICompatProvider):
    """Together: chat as any compatible server, and batches through its Batch API."""

    capabilities = _BASE_CAPABILITIES | {Capability.BATCH, Capability.EMBEDDINGS}
    generation_settings = TOP_K_SETTINGS
    # Together's documented limits: 50,000 requests and 100 MB per input file.
    batch_limits = BatchLimits(max_requests=50_000, max_bytes=100_000_000)
    batch_metadata: ClassVar[bool] = True
    # The documented statuses, and CANCELING, which Together's own SDK also knows.
    batch_statuses: ClassVar[Mapping[str, BatchState]] = {
        "VALIDATING": "validating",
        "IN_PROGRESS": "in_progress",
        "COMPLETED": "completed",
        "FAILED": "failed",
        "EXPIRED": "expired",
        "CANCELING": "cancelling",
        "CANCELLED": "cancelled",
    }

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        super().__init__(settings, http)
        # Input files by id: a file's name never changes, so one lookup per batch is enough.
        self._input_files: dict[str, dict[str, Any]] = {}

    def batch_line(self, request: Request) -> Mapping[str, Any]:
        line = super().batch_line(request)
        return {"custom_id": line["custom_id"], "body": line["body"]}

    async def _upload_batch_input(
        self, data: bytes, count: int, metadata: Mapping[str, str]
    ) -> dict[str, Any]:
        name = input_file_name(count, metadata)
        fields = {"purpose": "batch-api", "file_name": name, "file_type": "jsonl"}
        uploaded = await self._upload("/files/upload", data, name, fields)
        self._input_files[str(uploaded["id"])] = uploaded
        return uploaded

    async def _create_batch(
        self, file_id: str, endpoint: str, metadata: Mapping[str, str]
    ) -> dict[str, Any]:
        body = {"input_file_id": file_id, "endpoint": endpoint}
        answer = self._object(await self._batch_json("POST", "/batches", json=body), "the batch")
        return self._object(answer.get("job", answer), "the batch")

    async def _list_batches_raw(self) -> list[dict[str, Any]]:
        batches = await self._batch_json("GET", "/batches")
        if not isinstance(batches, list):
            raise MalformedResponse(
                f"the batch list is not a JSON array: {str(batches)[:200]!r}",
                provider=self.settings.name,
            )
        # One listing of the files names every batch's input at once.
        files = self._object(await self._batch_json("GET", "/files"), "the file list")
        for file in files.get("data") or ():
            if isinstance(file, dict) and "id" in file:
                self._input_files[str(file["id"])] = file
        return [batch for batch in batches if isinstance(batch, dict)]

    async def _batch_view(self, raw: dict[str, Any]) -> ProviderBatch:
        view = await super()._batch_view(raw)
        file = await self._input_file(raw.get("input_file_id"))
        total, metadata = read_file_name(file.get("filename"))
        # Together reports progress in percent, not counts: "completed" counts every
        # request processed, failed or not, until the results tell them apart.
        progress = raw.get("progress")
        share = float(progress) / 100 if isinstance(progress, (int, float)) else 0.0
        if view.state == "completed":
            share = 1.0
        completed = min(total, round(total * share))
        return attrs.evolve(view, counts=BatchCounts(total, completed, 0), metadata=metadata)

    async def _input_file(self, file_id: Any) -> dict[str, Any]:
        if not isinstance(file_id, str) or not file_id:
            return {}
        if file_id not in self._input_files:
            try:
                answer = await self._batch_json("GET", f"/files/{quote(file_id, safe='')}")
            except NotFoundError:
                return {}  # deleted since: the batch is still there, its tag is not
            self._input_files[file_id] = self._object(answer, f"file {file_id}")
        return self._input_files[file_id]
