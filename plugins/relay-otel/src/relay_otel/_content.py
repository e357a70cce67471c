"""Prompts and answers in the conventions' JSON shapes (``gen_ai.input.messages``,
``gen_ai.output.messages``, ``gen_ai.system_instructions``, ``gen_ai.tool.definitions``).

The Python API takes only flat attribute values, so each is recorded as a JSON string,
which the conventions allow where structured attributes are not supported yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from relay_core.plugin import (
    DocumentPart,
    ImagePart,
    Part,
    Request,
    Response,
    ServerToolCallPart,
    ServerToolResultPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

# The output messages schema spells one reason differently from Relay.
_FINISH_REASONS = {"tool_calls": "tool_call"}


def input_messages(request: Request) -> str:
    return _json(
        [{"role": message.role, "parts": _parts(message.content)} for message in request.messages]
    )


def output_messages(response: Response) -> str:
    reason = _FINISH_REASONS.get(response.finish_reason, response.finish_reason)
    return _json(
        [{"role": "assistant", "parts": _parts(response.content), "finish_reason": reason}]
    )


def system_instructions(system: str) -> str:
    return _json([{"type": "text", "content": system}])


def tool_definitions(request: Request) -> str:
    return _json(
        [
            {
                "type": "function",
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            }
            for tool in request.tools
        ]
    )


def _parts(parts: Iterable[Part]) -> list[dict[str, Any]]:
    return [shaped for part in parts if (shaped := _part(part)) is not None]


def _part(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "content": part.text}
    if isinstance(part, ThinkingPart):
        # Encrypted thinking has no text worth showing.
        return None if part.redacted else {"type": "reasoning", "content": part.text}
    if isinstance(part, ToolCallPart):
        return {"type": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
    if isinstance(part, ToolResultPart):
        return {"type": "tool_call_response", "id": part.tool_call_id, "response": part.content}
    # A tool the provider ran itself (web search...): shaped like a tool call, under a
    # type of its own so nobody reads it as one the caller ran.
    if isinstance(part, ServerToolCallPart):
        call = {"id": part.id, "name": part.name, "arguments": part.arguments}
        return {"type": "server_tool_call", **call}
    if isinstance(part, ServerToolResultPart):
        return {
            "type": "server_tool_call_response",
            "id": part.tool_call_id,
            "response": part.content,
        }
    return _media(part)


def _media(part: ImagePart | DocumentPart) -> dict[str, Any]:
    modality = "image" if isinstance(part, ImagePart) else "document"
    if part.url is not None:
        return {"type": "uri", "modality": modality, "mime_type": part.media_type, "uri": part.url}
    # Bytes never go into a span: they are large, and a redactor cannot see into them.
    return {"type": modality, "mime_type": part.media_type, "bytes": len(part.data or b"")}


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
