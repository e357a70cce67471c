"""A finished or in-progress answer as the Responses API's ``response`` object.

The route sends it whole; the stream encoder (``relay_serve._responses_stream``) sends
the in-progress object first, the items piece by piece, and the finished object last,
with the same item ids (:func:`item_id`) throughout.
"""

from __future__ import annotations

import json
from typing import Any

from relay_core.plugin import Response, Usage
from relay_serve._responses_wire import ResponsesCall

__all__ = [
    "call_item",
    "item_id",
    "message_item",
    "output_items",
    "response_object",
    "text_part",
    "usage",
]


def item_id(response_id: str, kind: str, index: int = 0) -> str:
    """The id of an output item: the same in the stream and in the final object."""
    base = response_id.removeprefix("resp_")
    return f"{kind}_{base}" if kind == "msg" else f"{kind}_{base}_{index}"


def output_items(response: Response, response_id: str) -> list[dict[str, Any]]:
    """The ``output`` of a finished answer: its text as one message item, then its
    tool calls as ``function_call`` items (the order providers produce them in)."""
    items: list[dict[str, Any]] = []
    if response.text:
        items.append(message_item(response_id, response.text, "completed"))
    for index, call in enumerate(response.tool_calls):
        items.append(
            call_item(
                response_id, index, call.id, call.name, json.dumps(call.arguments), "completed"
            )
        )
    return items


def message_item(response_id: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [text_part(text)]
    return {
        "type": "message",
        "id": item_id(response_id, "msg"),
        "status": status,
        "role": "assistant",
        "content": content,
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(
    response_id: str, index: int, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id(response_id, "fc", index),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def usage(value: Usage) -> dict[str, Any]:
    """The Responses API's ``usage`` object."""
    return {
        "input_tokens": value.input_tokens,
        "input_tokens_details": {
            "cached_tokens": value.cached_input_tokens,
            "cache_write_tokens": value.cache_write_tokens,
        },
        "output_tokens": value.output_tokens,
        "output_tokens_details": {"reasoning_tokens": value.reasoning_tokens},
        "total_tokens": value.total_tokens,
    }


def status(response: Response) -> tuple[str, dict[str, str] | None]:
    """The response's ``status`` and ``incomplete_details``."""
    if response.finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if response.finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_object(
    call: ResponsesCall,
    *,
    id: str,
    created_at: int,
    answer: Response | None = None,
) -> dict[str, Any]:
    """A ``response`` object: finished with ``answer``, else in progress (the first and
    interim objects of a stream). ``model`` is the name the client asked for."""
    done, details = status(answer) if answer is not None else ("in_progress", None)
    return {
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": done,
        "error": None,
        "incomplete_details": details,
        "model": call.model,
        "output": [] if answer is None else output_items(answer, id),
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": False,
        "truncation": "disabled",
        "usage": None if answer is None else usage(answer.usage),
        **call.echo,
    }
