"""OpenAI's Responses API wire format (``POST /responses``), as pure functions.

:func:`payload` builds the body for a Relay request (tools mapped by
:func:`function_tool`), :func:`parse` reads an answer, :func:`events` reads a stream's
SSE events. No I/O and no state: :class:`relay_openai.chat.OpenAIProvider` sends them.
Chat Completions' wire is :mod:`relay_openai.chat`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from relay_core.plugin import (
    DocumentPart,
    EndEvent,
    ErrorRule,
    FinishReason,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
    Part,
    Request,
    Response,
    StreamAssembler,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageEvent,
)
from relay_openai._schema import schema_for_openai, without_strict_nulls
from relay_openai._wire import (
    arguments,
    data_url,
    image_url,
    int_field,
    merge_text,
    reported_error,
)

if TYPE_CHECKING:
    from relay_core.plugin import SSEEvent

__all__ = ["events", "finish_reason", "function_tool", "parse", "payload", "usage"]

# An incomplete response's reason as Relay's finish reason; any other is "unknown".
_INCOMPLETE_FINISH: dict[str, FinishReason] = {
    "max_output_tokens": "length",
    "content_filter": "content_filter",
}


# -- request ----------------------------------------------------------------------------

# Settings of the Chat Completions API that the Responses API has no field for.
CHAT_ONLY_SETTINGS = frozenset(
    {"stop", "seed", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs"}
)


def payload(request: Request, *, provider: str, strict_tools: bool = True) -> dict[str, Any]:
    """The body of ``POST /responses`` for ``request`` (without ``stream``); tools are
    sent strict when ``strict_tools`` and strict mode can express them. ``provider``
    names the provider in errors: a request with a setting only Chat Completions takes
    (``stop``, ``seed``, the penalties, ``logprobs``) is refused."""
    config = request.config
    chat_only = sorted(config.settings() & CHAT_ONLY_SETTINGS)
    if chat_only:
        raise InvalidRequestError(
            f"the Responses API has no {', '.join(map(repr, chat_only))}; "
            "use the Chat Completions API",
            provider=provider,
            model=request.model,
        )
    items: list[dict[str, Any]] = []
    for message in request.messages:
        items.extend(_items(message, request, provider))
    body: dict[str, Any] = {"model": request.model, "input": items}
    if request.system:
        body["instructions"] = request.system
    for key, value in (
        ("temperature", config.temperature),
        ("top_p", config.top_p),
        ("max_output_tokens", config.max_tokens),
    ):
        if value is not None:
            body[key] = value
    effort = config.reasoning_effort()
    if effort is not None:
        body["reasoning"] = {"effort": effort}
    if request.tools:
        body["tools"] = [function_tool(tool, strict_tools=strict_tools) for tool in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = (
            request.tool_choice
            if request.tool_choice in ("auto", "none", "required")
            else {"type": "function", "name": request.tool_choice}
        )
    if request.response_schema is not None:
        schema = request.response_schema
        wire_schema, strict = schema_for_openai(schema.schema, strict=schema.strict)
        body["text"] = {
            "format": {
                "type": "json_schema",
                "name": schema.name,
                "schema": wire_schema,
                "strict": strict,
            }
        }
    return body


def function_tool(tool: Tool, *, strict_tools: bool) -> dict[str, Any]:
    """``tool`` as a Responses API function tool, always saying whether it is strict:
    the API makes a function tool strict unless told otherwise, and would refuse a
    schema strict mode cannot express."""
    parameters, strict = schema_for_openai(tool.parameters, strict=strict_tools)
    sent: dict[str, Any] = {"type": "function", "name": tool.name}
    if tool.description:
        sent["description"] = tool.description
    return {**sent, "parameters": parameters, "strict": strict}


def _items(message: Message, request: Request, provider: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    assistant = message.role == "assistant"

    def flush() -> None:
        if content:
            items.append({"role": "assistant" if assistant else "user", "content": [*content]})
            content.clear()

    for part in message.content:
        if isinstance(part, TextPart):
            kind = "output_text" if assistant else "input_text"
            content.append({"type": kind, "text": part.text})
        elif isinstance(part, ImagePart) and not assistant:
            content.append(
                {
                    "type": "input_image",
                    "image_url": image_url(part),
                    "detail": part.detail or "auto",
                }
            )
        elif isinstance(part, DocumentPart) and not assistant:
            if part.url is not None:
                content.append({"type": "input_file", "file_url": part.url})
            else:
                content.append(
                    {
                        "type": "input_file",
                        "filename": part.name or "document.pdf",
                        "file_data": data_url(part.media_type, part.base64()),
                    }
                )
        elif isinstance(part, ToolCallPart):
            flush()
            items.append(
                {
                    "type": "function_call",
                    "call_id": part.id,
                    "name": part.name,
                    "arguments": json.dumps(part.arguments),
                }
            )
        elif isinstance(part, ToolResultPart):
            flush()
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": part.tool_call_id,
                    "output": part.content,
                }
            )
        elif isinstance(part, ThinkingPart):
            # A reasoning item can only be sent back whole (its id and encrypted
            # content), which a ThinkingPart does not keep; the summary text alone is
            # not accepted as input, and the model answers well without it.
            continue
        else:
            raise InvalidRequestError(
                f"an assistant message cannot carry a {part.TAG} part",
                provider=provider,
                model=request.model,
            )
    flush()
    return items


# -- response ---------------------------------------------------------------------------


def usage(raw: Any) -> Usage:
    """A Responses API ``usage`` object as Relay's :class:`Usage` (missing counts 0)."""
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=int_field(raw, "input_tokens"),
        output_tokens=int_field(raw, "output_tokens"),
        cached_input_tokens=int_field(raw.get("input_tokens_details"), "cached_tokens"),
        reasoning_tokens=int_field(raw.get("output_tokens_details"), "reasoning_tokens"),
    )


def finish_reason(body: dict[str, Any], *, refused: bool, has_calls: bool) -> FinishReason:
    """Why a response ended: it has no finish reason of its own, so it is read from
    its status, a refusal and whether it calls tools."""
    if refused:
        return "content_filter"
    if body.get("status") == "incomplete":
        reason = (body.get("incomplete_details") or {}).get("reason")
        return _INCOMPLETE_FINISH.get(str(reason), "unknown")
    return "tool_calls" if has_calls else "stop"


def parse(
    body: dict[str, Any],
    request: Request,
    *,
    provider: str,
    rules: Sequence[ErrorRule] = (),
    strict_tools: bool = True,
) -> Response:
    """A Responses API answer as a Relay response; a failed one raises the error it
    reports (classified with ``rules``). ``request`` gives the model when the answer
    names none, and the tools whose strict-mode nulls are dropped."""
    if body.get("status") == "failed":
        raise reported_error(body.get("error"), provider=provider, model=request.model, rules=rules)
    content: list[Part] = []
    refused = False
    for item in body.get("output") or ():
        kind = item.get("type")
        if kind == "message":
            for block in item.get("content") or ():
                if block.get("type") == "output_text" and block.get("text"):
                    content.append(TextPart(block["text"]))
                elif block.get("type") == "refusal":
                    refused = True
                    content.append(TextPart(block.get("refusal", "")))
        elif kind == "function_call":
            name = item.get("name", "")
            content.append(
                ToolCallPart(
                    item.get("call_id", ""), name, arguments(name, item.get("arguments"), provider)
                )
            )
        elif kind == "reasoning":
            text = "\n\n".join(s.get("text", "") for s in item.get("summary") or ())
            if text:
                content.append(ThinkingPart(text))
    has_calls = any(isinstance(p, ToolCallPart) for p in content)
    return Response(
        content=without_strict_nulls(merge_text(content), request.tools, strict_tools=strict_tools),
        model=body.get("model") or request.model,
        id=body.get("id"),
        finish_reason=finish_reason(body, refused=refused, has_calls=has_calls),
        usage=usage(body.get("usage")),
        raw=body,
    )


async def events(
    sse: AsyncIterator[SSEEvent],
    request: Request,
    *,
    provider: str,
    rules: Sequence[ErrorRule] = (),
    strict_tools: bool = True,
) -> AsyncIterator[StreamEvent]:
    """A Responses API stream's SSE events as Relay's stream events, the last an
    :class:`EndEvent` with the whole response; stops at ``response.completed`` (or
    ``response.incomplete``). A failure or error event raises the error it reports; a
    stream that ends before completing raises :class:`MalformedResponse`."""
    assembler = StreamAssembler(provider=provider)
    refused = False
    final: dict[str, Any] | None = None
    async for event in sse:
        data = event.json()
        if not isinstance(data, dict):
            continue
        kind = data.get("type") or event.event
        if kind == "response.output_text.delta":
            yield assembler.feed(TextDelta(data.get("delta", "")))
        elif kind == "response.refusal.delta":
            refused = True
            yield assembler.feed(TextDelta(data.get("delta", "")))
        elif kind == "response.reasoning_summary_text.delta":
            yield assembler.feed(ThinkingDelta(data.get("delta", "")))
        elif kind == "response.reasoning_summary_part.added" and data.get("summary_index"):
            # Summary parts are joined by a blank line, as in the non-streamed answer.
            yield assembler.feed(ThinkingDelta("\n\n"))
        elif kind == "response.output_item.added":
            item = data.get("item") or {}
            if item.get("type") == "function_call":
                yield assembler.feed(
                    ToolCallDelta(
                        data.get("output_index", 0),
                        id=item.get("call_id"),
                        name=item.get("name"),
                        arguments=item.get("arguments") or "",
                    )
                )
        elif kind == "response.function_call_arguments.delta":
            yield assembler.feed(
                ToolCallDelta(data.get("output_index", 0), arguments=data.get("delta", ""))
            )
        elif kind in ("response.completed", "response.incomplete"):
            final = data.get("response") or {}
            break
        elif kind in ("response.failed", "error"):
            error = (data.get("response") or {}).get("error") if kind != "error" else data
            raise reported_error(error, provider=provider, model=request.model, rules=rules)
    if final is None:
        raise MalformedResponse(
            "stream ended before response.completed", provider=provider, model=request.model
        )
    yield assembler.feed(UsageEvent(usage(final.get("usage"))))
    has_calls = any(isinstance(p, ToolCallPart) for p in assembler.content())
    response = assembler.response(
        model=final.get("model") or request.model,
        finish_reason=finish_reason(final, refused=refused, has_calls=has_calls),
        id=final.get("id"),
        raw=final,
    )
    content = without_strict_nulls(response.content, request.tools, strict_tools=strict_tools)
    yield EndEvent(attrs.evolve(response, content=content))
