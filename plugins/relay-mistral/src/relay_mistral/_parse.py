"""Mistral's chat completion answers as Relay's types: a whole answer as a
:class:`Response`, and the pieces a stream and batch results read too (content chunks,
tool calls, usage, finish reasons). Pure functions of the JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from relay_core.plugin import (
    FinishReason,
    MalformedResponse,
    Part,
    Response,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)

__all__ = [
    "arguments_text",
    "content_parts",
    "finish_reason",
    "integer",
    "response",
    "tool_call",
    "usage",
]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    # The prompt plus the answer reached the model's context window.
    "model_length": "length",
    "tool_calls": "tool_calls",
    "error": "error",
}


def integer(mapping: Any, key: str) -> int:
    """``mapping[key]`` when it is an int, else 0 (Mistral leaves counts out)."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, int) else 0


def usage(raw: Any) -> Usage:
    """``usage`` as Relay's; anything else as no usage."""
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=integer(raw, "prompt_tokens"),
        output_tokens=integer(raw, "completion_tokens"),
        cached_input_tokens=integer(raw.get("prompt_tokens_details"), "cached_tokens"),
    )


def finish_reason(value: Any) -> FinishReason:
    return _FINISH.get(str(value), "unknown")


def arguments_text(arguments: Any) -> str:
    # Mistral documents arguments as a JSON string, but its schema also allows an object.
    if isinstance(arguments, dict):
        return json.dumps(arguments)
    return arguments if isinstance(arguments, str) else ""


def _thinking_text(chunk: dict[str, Any]) -> str:
    inner = chunk.get("thinking")
    if isinstance(inner, str):
        return inner
    return "".join(
        c.get("text", "") for c in inner or () if isinstance(c, dict) and c.get("type") == "text"
    )


def content_parts(content: Any) -> Iterable[TextPart | ThinkingPart]:
    if isinstance(content, str):
        if content:
            yield TextPart(content)
        return
    for chunk in content or ():
        if not isinstance(chunk, dict):
            continue
        if chunk.get("type") == "text" and chunk.get("text"):
            yield TextPart(chunk["text"])
        elif chunk.get("type") == "thinking":
            yield ThinkingPart(_thinking_text(chunk), signature=chunk.get("signature"))
        # Other chunks (references, images) are not Relay content; they stay in raw.


def tool_call(call: Any, provider: str) -> ToolCallPart:
    function = call.get("function") or {}
    name = function.get("name", "")
    text = arguments_text(function.get("arguments")).strip() or "{}"
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedResponse(
            f"tool call {name!r} has arguments that are not JSON: {error}",
            provider=provider,
        ) from error
    if not isinstance(arguments, dict):
        raise MalformedResponse(
            f"tool call {name!r} arguments are not a JSON object",
            provider=provider,
        )
    return ToolCallPart(call.get("id") or "", name, arguments)


def response(body: dict[str, Any], model: str, provider: str) -> Response:
    """A non-streamed answer body as a :class:`Response`."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("answer has no choices", provider=provider, model=model)
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[Part] = []
    for part in content_parts(message.get("content")):
        # Adjacent text chunks are one part, as a stream's assembler joins them.
        if content and isinstance(part, TextPart) and isinstance(content[-1], TextPart):
            content[-1] = TextPart(content[-1].text + part.text)
        else:
            content.append(part)
    content.extend(tool_call(call, provider) for call in message.get("tool_calls") or ())
    return Response(
        content=tuple(content),
        model=body.get("model") or model,
        id=body.get("id"),
        finish_reason=finish_reason(choice.get("finish_reason")),
        usage=usage(body.get("usage")),
        raw=body,
    )
