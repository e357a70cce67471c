"""Helpers for the batch half of a provider adapter (for plugin authors).

Provider batch APIs share a shape: requests go up as a JSONL file, results come back
as a JSONL file with one line per request, and any line may be an error or garbage.
These helpers do the shared part once, so an adapter only says how one line maps to
its provider's wire format:

- :func:`jsonl` encodes input lines for an upload;
- :func:`parse_lines` turns output lines into :class:`BatchItem` values, keeping a line
  it cannot parse as a failed item with the raw text, never raising;
- :func:`error_info` classifies a per-request error inside a batch output the way the
  core classifies a failed HTTP answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from relay_core.http import classify_status
from relay_core.types import BatchItem, ErrorInfo

if TYPE_CHECKING:
    from relay_core.providers import ErrorRule

__all__ = ["error_info", "jsonl", "jsonl_line", "parse_lines"]


def jsonl_line(data: Any) -> bytes:
    """One JSONL line: compact UTF-8 JSON ending in a newline."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def jsonl(lines: Iterable[Mapping[str, Any]]) -> bytes:
    """``lines`` as JSONL, one :func:`jsonl_line` each."""
    return b"".join(jsonl_line(line) for line in lines)


def error_info(
    status: int,
    body: str | Mapping[str, Any],
    *,
    provider: str,
    rules: Sequence[ErrorRule] = (),
    custom_id: str | None = None,
) -> ErrorInfo:
    """A per-request error from a batch output, classified like a failed HTTP answer
    (status code, then the adapter's ``rules`` and common wording) and masked."""
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    error = classify_status(status, text, {}, rules=rules, provider=provider, custom_id=custom_id)
    return ErrorInfo.from_exception(error)


async def parse_lines(
    lines: AsyncIterable[str] | Iterable[str],
    parse: Callable[[Any], BatchItem],
    *,
    source: str = "batch output",
    id_field: str = "custom_id",
) -> AsyncIterator[BatchItem]:
    """Yield one :class:`BatchItem` per non-blank line.

    ``parse`` receives a line's decoded JSON and returns its item. A line that is not
    JSON, or that ``parse`` rejects with any exception, becomes a failed item whose
    ``error.kind`` is ``MalformedResponse`` (retryable, as a garbled answer usually is
    not the request's fault), whose message names ``source`` and the line
    number, and whose ``raw`` keeps the line; its ``custom_id`` is recovered from the
    text when it can be (else empty, and the core reports that request as unanswered).
    ``id_field`` names the field that holds it in the provider's lines (Gemini: ``key``).
    """
    id_pattern = re.compile(rf'"{re.escape(id_field)}"\s*:\s*"((?:[^"\\]|\\.)*)"')
    number = 0
    async for line in _each(lines):
        number += 1
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as error:
            match = id_pattern.search(line)
            yield BatchItem(
                custom_id=json.loads(f'"{match.group(1)}"') if match else "",
                error=ErrorInfo(
                    "MalformedResponse",
                    f"line {number} of the {source} is not JSON: {error}",
                    retryable=True,
                ),
                raw=line.rstrip("\r\n"),
            )
            continue
        try:
            yield parse(data)
        except Exception as error:  # an adapter's parser may fail in any way on odd input
            custom_id = data.get(id_field) if isinstance(data, dict) else None
            yield BatchItem(
                custom_id=custom_id if isinstance(custom_id, str) else "",
                error=ErrorInfo(
                    "MalformedResponse",
                    f"line {number} of the {source} could not be read: "
                    f"{type(error).__name__}: {error}",
                    retryable=True,
                ),
                raw=data,
            )


async def _each(lines: AsyncIterable[str] | Iterable[str]) -> AsyncIterator[str]:
    if isinstance(lines, AsyncIterable):
        async for line in lines:
            yield line
    else:
        for line in lines:
            yield line
