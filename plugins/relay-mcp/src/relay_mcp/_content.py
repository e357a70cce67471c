"""An MCP ``tools/call`` result as the one text a tool result carries back to the model.

Relay's tool results are text today (:class:`relay_core.tools.ToolOutput`), so content
that is not text is described rather than sent: an image or audio clip by its type and
size, a resource by its URI. Text blocks are joined with blank lines; the result's
``structuredContent`` is sent as JSON when no block is text (when there is text, MCP
servers mirror the structured value in it, and sending both would say it twice).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from relay_core.plugin import ToolOutput

__all__ = ["describe_size", "output_of"]

NO_CONTENT = "(the tool returned no content)"


def output_of(result: Any) -> ToolOutput:
    """The :class:`ToolOutput` for an MCP ``CallToolResult`` (``isError`` kept)."""
    parts = [_block_text(block) for block in result.content]
    has_text = any(getattr(block, "type", None) == "text" for block in result.content)
    if not has_text and result.structured_content is not None:
        parts.insert(0, json.dumps(result.structured_content, ensure_ascii=False, default=str))
    text = "\n\n".join(part for part in parts if part) or NO_CONTENT
    return ToolOutput(text, is_error=bool(result.is_error))


def _block_text(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        size = describe_size(_decoded_length(block.data))
        return f"[{kind} {block.mime_type}, {size}: not shown, tool results carry text only]"
    if kind == "resource_link":
        about = f" ({block.mime_type})" if block.mime_type else ""
        described = f": {block.description}" if block.description else ""
        return f"[resource link {block.name} <{block.uri}>{about}{described}]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if text is not None:
            return f"[resource <{resource.uri}>]\n{text}"
        mime = f" {resource.mime_type}" if resource.mime_type else ""
        size = describe_size(_decoded_length(resource.blob))
        return f"[resource <{resource.uri}>{mime}, {size}: binary, not shown]"
    return f"[{kind or 'unknown'} content: not shown]"


def _decoded_length(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return len(data)


def describe_size(size: int) -> str:
    """``size`` bytes for a person: ``512 bytes``, ``12.3 kB``, ``4.0 MB``."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"
