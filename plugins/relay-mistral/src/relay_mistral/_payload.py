"""A Relay :class:`Request` as Mistral's chat completions body, the one ``chat``,
``stream`` and each batch line send.

Every key of ``provider_kwargs`` is merged into the body untouched, last, so it can set
what Relay does not map (``safe_prompt``, ``parallel_tool_calls``, ``prompt_mode``,
``presence_penalty``...) or override anything mapped here. Pure functions of the request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from relay_core.plugin import (
    DocumentPart,
    ImagePart,
    InvalidRequestError,
    Message,
    Part,
    Request,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

__all__ = ["payload", "wire_tool_call_id"]

_TOOL_CHOICES = frozenset({"auto", "none", "any", "required"})
_TOOL_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def wire_tool_call_id(relay_id: str) -> str:
    """The tool call id Mistral accepts for ``relay_id``.

    Mistral refuses any id that is not exactly 9 ASCII letters or digits, so ids made
    by other providers (``call_...``, ``toolu_...``) are replaced by a stable 9-character
    digest: the same id always maps to the same digest, so a call and its result still
    match. Mistral's own ids pass through unchanged.
    """
    if _TOOL_CALL_ID.fullmatch(relay_id):
        return relay_id
    number = int.from_bytes(hashlib.sha256(relay_id.encode("utf-8")).digest()[:8], "big")
    digits = []
    for _ in range(9):
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(digits)


def payload(request: Request, *, provider: str, stream: bool = False) -> dict[str, Any]:
    """The chat completions body for ``request``; ``provider`` names the provider in errors."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    names = {
        call.id: call.name
        for message in request.messages
        for call in message.content
        if isinstance(call, ToolCallPart)
    }
    for message in request.messages:
        messages.extend(_messages(message, request, names, provider))
    payload: dict[str, Any] = {"model": request.model, "messages": messages}
    config = request.config
    # Mistral's reference takes every Relay effort as it is. It has no token budget:
    # any budget asks for "high", the setting its reasoning guide documents as the one
    # that returns the thinking; 0 sends nothing (models without adjustable reasoning
    # may refuse the field, and Mistral's own "none" can go in provider_kwargs).
    effort: str | None = config.reasoning if isinstance(config.reasoning, str) else None
    if effort is None and config.thinks:
        effort = "high"
    for key, value in (
        ("temperature", config.temperature),
        ("top_p", config.top_p),
        ("max_tokens", config.max_tokens),
        ("stop", list(config.stop) if config.stop else None),
        ("random_seed", config.seed),
        ("frequency_penalty", config.frequency_penalty),
        ("presence_penalty", config.presence_penalty),
        ("reasoning_effort", effort),
    ):
        if value is not None:
            payload[key] = value
    if request.tools:
        # No "strict" (Mistral's default is false): Relay's Tool has no such flag, and
        # Mistral documents neither what it changes nor a schema subset it needs.
        payload["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description else {}),
                    "parameters": tool.parameters,
                },
            }
            for tool in request.tools
        ]
    if request.tool_choice is not None:
        payload["tool_choice"] = (
            request.tool_choice
            if request.tool_choice in _TOOL_CHOICES
            else {"type": "function", "function": {"name": request.tool_choice}}
        )
    if request.response_schema is not None:
        # Sent as given: Mistral documents no subset of JSON Schema to compile to.
        schema = request.response_schema
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": schema.name,
                "schema": schema.schema,
                "strict": schema.strict,
            },
        }
    if stream:
        # No stream_options: Mistral always sends usage in the last chunk.
        payload["stream"] = True
    payload.update(request.provider_kwargs)
    return payload


def _messages(
    message: Message, request: Request, names: dict[str, str], provider: str
) -> list[dict[str, Any]]:
    # Tool results travel as one "tool" message each, wherever Relay carries them.
    results: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, ToolResultPart):
            result: dict[str, Any] = {
                "role": "tool",
                "tool_call_id": wire_tool_call_id(part.tool_call_id),
                "content": part.content,
            }
            name = part.name or names.get(part.tool_call_id)
            if name:
                result["name"] = name
            results.append(result)
    rest = [p for p in message.content if not isinstance(p, ToolResultPart)]
    if message.role == "assistant":
        return [*results, *_assistant(rest, request, provider)]
    if not rest:
        return results
    chunks: list[dict[str, Any]] = []
    for part in rest:
        if isinstance(part, TextPart):
            chunks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            chunks.append({"type": "image_url", "image_url": _image(part)})
        elif isinstance(part, DocumentPart):
            chunks.append(_document(part, request, provider))
        elif isinstance(part, ThinkingPart):
            continue  # only assistants think; nothing to send
        else:
            raise _invalid(provider, request, f"a user message cannot carry a {part.TAG} part")
    if len(chunks) == 1 and chunks[0]["type"] == "text":
        return [*results, {"role": "user", "content": chunks[0]["text"]}]
    return [*results, {"role": "user", "content": chunks}]


def _image(part: ImagePart) -> str | dict[str, str]:
    url = part.url or f"data:{part.media_type or 'image/png'};base64,{part.base64()}"
    # The documented form is a bare string; the object form exists to carry detail.
    return {"url": url, "detail": part.detail} if part.detail else url


def _document(part: DocumentPart, request: Request, provider: str) -> dict[str, Any]:
    if part.url is not None:
        url = part.url
    elif part.media_type == "application/pdf":
        url = f"data:application/pdf;base64,{part.base64()}"
    else:
        raise _invalid(
            provider,
            request,
            f"Mistral reads documents from a URL or as PDF bytes, not {part.media_type} "
            "bytes; send the text as a TextPart instead",
        )
    chunk: dict[str, Any] = {"type": "document_url", "document_url": url}
    if part.name:
        chunk["document_name"] = part.name
    return chunk


def _assistant(parts: Sequence[Part], request: Request, provider: str) -> list[dict[str, Any]]:
    if any(isinstance(p, (ImagePart, DocumentPart)) for p in parts):
        raise _invalid(
            provider, request, "an assistant message can carry only text, thinking and tool calls"
        )
    calls = [p for p in parts if isinstance(p, ToolCallPart)]
    # Reasoning models answer better when their thinking is sent back (Mistral asks
    # for it); redacted thinking is another provider's ciphertext and is left out.
    thinking = [p for p in parts if isinstance(p, ThinkingPart) and not p.redacted]
    message: dict[str, Any] = {"role": "assistant"}
    if thinking:
        chunks: list[dict[str, Any]] = []
        for part in parts:
            if isinstance(part, ThinkingPart) and not part.redacted:
                chunk: dict[str, Any] = {
                    "type": "thinking",
                    "thinking": [{"type": "text", "text": part.text}],
                }
                if part.signature:
                    chunk["signature"] = part.signature
                chunks.append(chunk)
            elif isinstance(part, TextPart) and part.text:
                chunks.append({"type": "text", "text": part.text})
        message["content"] = chunks
    else:
        text = "".join(p.text for p in parts if isinstance(p, TextPart))
        if text:
            message["content"] = text
    if calls:
        message["tool_calls"] = [
            {
                "id": wire_tool_call_id(call.id),
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in calls
        ]
    return [message] if len(message) > 1 else []


def _invalid(provider: str, request: Request, message: str) -> InvalidRequestError:
    return InvalidRequestError(message, provider=provider, model=request.model)
