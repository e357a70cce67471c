"""Relay's types to Bedrock's Converse API and back: the request body, the answer, and
the ConverseStream events rebuilt into that same answer.

Structured output travels as a forced tool call, with relay-anthropic's plan
(:class:`relay_anthropic.messages.StructuredOutput`): Converse has no JSON-schema mode
that every model takes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from relay_anthropic.messages import (
    StructuredOutput,
    alternating_turns,
    check_breakpoints,
    thinking_request,
    thinks_by_kwargs,
)
from relay_core.plugin import (
    REASONING_BUDGETS,
    DocumentPart,
    FinishReason,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
    Part,
    Request,
    Response,
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
)

__all__ = ["ConverseStream", "converse_payload", "converse_response", "converse_usage"]

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
# A document's name may hold letters, digits, single spaces, hyphens, parentheses and
# square brackets (Converse's DocumentBlock); it is also shown to the model.
_NAME_DROPPED = re.compile(r"[^A-Za-z0-9\s\-()\[\]]")


# ---------------------------------------------------------------------------- to the wire


def converse_payload(
    request: Request, *, default_max_tokens: int, provider: str = "bedrock"
) -> tuple[dict[str, Any], StructuredOutput | None]:
    """The Converse body for ``request`` (without ``modelId``, which is in the URL), and
    the structured-output plan if any.

    With Claude's extended thinking on (``reasoning``, or ``thinking`` in the
    ``additionalModelRequestFields`` of ``provider_kwargs``), the sampling settings Claude
    refuses while thinking are dropped with a warning, and a forced ``tool_choice`` or a
    schema with a budget is an ``InvalidRequestError``: the rules of Claude on the
    Messages API (relay-anthropic's ``thinking_request``).
    """
    check_breakpoints(request, provider=provider)
    budget = request.config.reasoning_budget(REASONING_BUDGETS) or None
    given_fields = request.provider_kwargs.get("additionalModelRequestFields")
    by_kwargs = isinstance(given_fields, Mapping) and thinks_by_kwargs(given_fields)
    request = thinking_request(request, budget=budget, by_kwargs=by_kwargs, provider=provider)
    config = request.config
    payload: dict[str, Any] = {"messages": _messages(request.messages)}
    if request.system:
        payload["system"] = [{"text": request.system}]
        if request.cache_system:
            payload["system"].append(_cache_point())
    inference: dict[str, Any] = {}
    max_tokens = config.max_tokens
    if max_tokens is None and budget is not None:
        # Claude counts thinking inside maxTokens, which must exceed the budget.
        max_tokens = default_max_tokens + budget
    if max_tokens is not None:
        inference["maxTokens"] = max_tokens
    if config.temperature is not None:
        inference["temperature"] = config.temperature
    if config.top_p is not None:
        inference["topP"] = config.top_p
    if config.stop:
        inference["stopSequences"] = list(config.stop)
    if inference:
        payload["inferenceConfig"] = inference
    extra: dict[str, Any] = {}
    if budget is not None:
        # Claude's extended thinking, the one reasoning switch Converse passes through
        # (see the README for other models).
        extra["thinking"] = {"type": "enabled", "budget_tokens": budget}
    tools = [_tool(tool.name, tool.description, tool.parameters) for tool in request.tools]
    choice: dict[str, Any] | None = None
    structured = None
    if request.response_schema is not None:
        structured = StructuredOutput.of(request.response_schema)
        if any(tool.name == structured.name for tool in request.tools):
            raise InvalidRequestError(
                f"the response schema's name {structured.name!r} is also a tool's name"
            )
        spec = structured.tool()
        tools.append(_tool(spec["name"], spec["description"], spec["input_schema"]))
        choice = {"tool": {"name": structured.name}}
    elif request.tool_choice == "none":
        # Converse has no "none": the tools are left out of the request.
        tools = []
    elif request.tool_choice is not None:
        choice = _tool_choice(request.tool_choice, request.tools)
    if tools:
        if request.cache_tools:
            tools.append(_cache_point())
        payload["toolConfig"] = {"tools": tools}
        if choice is not None:
            payload["toolConfig"]["toolChoice"] = choice
    kwargs = dict(request.provider_kwargs)
    given = kwargs.pop("additionalModelRequestFields", None)
    if isinstance(given, Mapping):
        extra.update(given)
    if extra:
        payload["additionalModelRequestFields"] = extra
    payload.update(kwargs)
    return payload, structured


def _tool(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "inputSchema": {"json": schema}}
    if description:
        spec["description"] = description
    return {"toolSpec": spec}


def _tool_choice(choice: str, tools: tuple[Tool, ...]) -> dict[str, Any]:
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if not any(tool.name == choice for tool in tools):
        raise InvalidRequestError(f"tool_choice names {choice!r}, which is not among the tools")
    return {"tool": {"name": choice}}


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Relay's turns as Converse's (roles alternate, as at Anthropic)."""
    return alternating_turns(messages, _block, mark=_mark)


def _cache_point() -> dict[str, Any]:
    """A prompt-cache breakpoint: Converse caches the prompt up to this block."""
    return {"cachePoint": {"type": "default"}}


def _mark(blocks: list[dict[str, Any]]) -> None:
    if "cachePoint" not in blocks[-1]:
        blocks.append(_cache_point())


def _block(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        # Converse rejects blank text blocks; an empty part says nothing anyway.
        return {"text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        return {"image": _image(part)}
    if isinstance(part, DocumentPart):
        return {"document": _document(part)}
    if isinstance(part, ToolCallPart):
        return {"toolUse": {"toolUseId": part.id, "name": part.name, "input": part.arguments}}
    if isinstance(part, ToolResultPart):
        result: dict[str, Any] = {
            "toolUseId": part.tool_call_id,
            "content": [{"text": part.content}],
        }
        if part.is_error:
            result["status"] = "error"
        return {"toolResult": result}
    if isinstance(part, ThinkingPart):
        if part.redacted:
            return {"reasoningContent": {"redactedContent": part.signature or ""}}
        if part.signature:
            text = {"text": part.text, "signature": part.signature}
            return {"reasoningContent": {"reasoningText": text}}
        # Unsigned thinking (from another provider) would be refused: it is left out.
        return None
    raise InvalidRequestError(f"content of type {type(part).__name__} has no Converse form")


def _source(part: ImagePart | DocumentPart, what: str) -> dict[str, Any]:
    if part.url is not None:
        if part.url.startswith("s3://"):
            return {"s3Location": {"uri": part.url}}
        raise InvalidRequestError(
            f"Bedrock reads {what}s as bytes or from S3 (s3://...), not from {part.url!r}"
        )
    return {"bytes": part.base64()}


def _image(part: ImagePart) -> dict[str, Any]:
    source = _source(part, "image")
    media_type = part.media_type
    if media_type is None and part.url is not None:
        media_type = f"image/{part.url.rsplit('.', 1)[-1].lower()}"
    image_format = _IMAGE_FORMATS.get(media_type or "")
    if image_format is None:
        raise InvalidRequestError(
            f"Bedrock reads PNG, JPEG, GIF and WebP images, not {media_type!r}"
        )
    return {"format": image_format, "source": source}


def _document(part: DocumentPart) -> dict[str, Any]:
    source = _source(part, "document")
    document_format = _DOCUMENT_FORMATS.get(part.media_type)
    if document_format is None:
        raise InvalidRequestError(
            f"Bedrock reads {', '.join(_DOCUMENT_FORMATS.values())} documents, "
            f"not {part.media_type!r}"
        )
    name = " ".join(_NAME_DROPPED.sub(" ", part.name or "").split()) or "document"
    return {"format": document_format, "name": name, "source": source}


# ---------------------------------------------------------------------------- from the wire


def converse_usage(usage: Mapping[str, Any]) -> Usage:
    # Converse's inputTokens leave out cache reads and writes; Relay's include them.
    read = int(usage.get("cacheReadInputTokens") or 0)
    written = int(usage.get("cacheWriteInputTokens") or 0)
    return Usage(
        input_tokens=int(usage.get("inputTokens") or 0) + read + written,
        output_tokens=int(usage.get("outputTokens") or 0),
        cached_input_tokens=read,
        cache_write_tokens=written,
    )


def converse_response(body: Any, structured: StructuredOutput | None, *, model: str) -> Response:
    """The Converse answer as a :class:`Response`; raises KeyError and friends on a
    shape it does not know (the adapter turns them into MalformedResponse)."""
    stop_reason = body["stopReason"]
    finish: FinishReason = _FINISH.get(stop_reason, "unknown")
    content: list[Part] = []
    answer: str | None = None
    for block in body["output"]["message"]["content"]:
        if "text" in block:
            content.append(TextPart(block["text"]))
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"]
            if "redactedContent" in reasoning:
                # The encrypted thinking goes where Relay keeps what is sent back as is.
                content.append(
                    ThinkingPart("", signature=reasoning["redactedContent"], redacted=True)
                )
            else:
                text = reasoning["reasoningText"]
                content.append(ThinkingPart(text.get("text", ""), signature=text.get("signature")))
        elif "toolUse" in block:
            call = block["toolUse"]
            if structured is not None and call["name"] == structured.name:
                answer = structured.text(call["input"], check=finish != "length")
                continue
            if not isinstance(call["input"], dict):
                raise MalformedResponse(f"tool call {call['name']!r} input is not an object")
            content.append(ToolCallPart(call["toolUseId"], call["name"], call["input"]))
        # Citations, images and later block types stay in ``raw``.
    if structured is not None:
        content, finish = structured.settle(content, answer, finish, f"stopReason {stop_reason!r}")
    return Response(
        content=tuple(content),
        model=model,
        finish_reason=finish,
        usage=converse_usage(body.get("usage") or {}),
        raw=body,
    )


class ConverseStream:
    """ConverseStream's events, turned into Relay's stream events while the Converse
    answer they describe is rebuilt, so that the end event is read by the same parser as
    a Converse answer and equals it, raw included."""

    def __init__(self, structured: StructuredOutput | None) -> None:
        self.structured = structured
        self.blocks: dict[int, dict[str, Any]] = {}
        self.inputs: dict[int, list[str]] = {}
        self.body: dict[str, Any] = {}
        self.stopped = False

    def event(self, name: str, data: Mapping[str, Any]) -> list[StreamEvent]:
        if name == "contentBlockStart":
            return self._start(int(data["contentBlockIndex"]), data.get("start") or {})
        if name == "contentBlockDelta":
            return self._delta(int(data["contentBlockIndex"]), data["delta"])
        if name == "contentBlockStop":
            self._stop(int(data["contentBlockIndex"]))
        elif name == "messageStop":
            self.body["stopReason"] = data["stopReason"]
            if "additionalModelResponseFields" in data:
                self.body["additionalModelResponseFields"] = data["additionalModelResponseFields"]
            self.stopped = True
        elif name == "metadata":
            for key in ("usage", "metrics", "trace"):
                if key in data:
                    self.body[key] = data[key]
        # messageStart (the role) and later event types carry nothing to map.
        return []

    def _is_answer(self, index: int) -> bool:
        tool = self.blocks.get(index, {}).get("toolUse")
        return (
            self.structured is not None
            and tool is not None
            and tool["name"] == self.structured.name
        )

    def _start(self, index: int, start: Mapping[str, Any]) -> list[StreamEvent]:
        if "toolUse" in start:
            tool = start["toolUse"]
            self.blocks[index] = {"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}
            self.inputs[index] = []
            if self._is_answer(index):
                return []
            return [ToolCallDelta(index, id=tool["toolUseId"], name=tool["name"])]
        return []

    def _delta(self, index: int, delta: Mapping[str, Any]) -> list[StreamEvent]:
        if "text" in delta:
            block = self.blocks.setdefault(index, {"text": ""})
            block["text"] += delta["text"]
            return [TextDelta(delta["text"])]
        if "toolUse" in delta:
            piece = delta["toolUse"].get("input", "")
            self.inputs.setdefault(index, []).append(piece)
            if self._is_answer(index):
                return []
            return [ToolCallDelta(index, arguments=piece)]
        if "reasoningContent" in delta:
            reasoning = delta["reasoningContent"]
            block = self.blocks.setdefault(index, {"reasoningContent": {}})["reasoningContent"]
            if "redactedContent" in reasoning:
                block["redactedContent"] = reasoning["redactedContent"]
                return [ThinkingDelta("", signature=reasoning["redactedContent"], redacted=True)]
            text = block.setdefault("reasoningText", {"text": ""})
            if "signature" in reasoning:
                text["signature"] = reasoning["signature"]
                return [ThinkingDelta("", signature=reasoning["signature"])]
            text["text"] += reasoning.get("text", "")
            return [ThinkingDelta(reasoning.get("text", ""))]
        return []  # citations and later delta types stay out of the unified events

    def _stop(self, index: int) -> None:
        if index in self.inputs:
            text = "".join(self.inputs.pop(index)).strip()
            tool = self.blocks[index]["toolUse"]
            try:
                tool["input"] = json.loads(text) if text else {}
            except json.JSONDecodeError as error:
                raise MalformedResponse(
                    f"tool call {tool['name']!r} streamed input that is not JSON: {error}"
                ) from error

    def answer(self) -> dict[str, Any]:
        """The Converse answer the events described."""
        content = [self.blocks[i] for i in sorted(self.blocks)]
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            **self.body,
        }
