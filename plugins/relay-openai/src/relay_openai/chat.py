"""OpenAI's Chat Completions wire format, for plugins that speak it too.

relay-openai-compat (Groq, DeepSeek, vLLM, Ollama, ...) and relay-azure build on
:class:`OpenAIProvider`, changing what their servers do differently. The names below
keep their meaning across minor versions; relay-openai's private modules do not.

- :class:`OpenAIProvider`: the adapter, to subclass.
- :class:`ModelFamily`, :func:`model_family`, :data:`MODEL_FAMILIES`: what each OpenAI
  model family accepts (reasoning, sampling settings, token-limit field).
- The wire, as pure functions (no I/O, no state): :func:`payload` (a Relay request as
  the body of ``POST /chat/completions``, tools mapped by :func:`function_tool`),
  :func:`parse` (an answer as a Relay response) and :func:`events` (a stream's SSE
  events as Relay's stream events, ending with the whole response).

The Responses API's wire is :mod:`relay_openai.responses`, embeddings'
:mod:`relay_openai.embeddings`.

Importing :class:`OpenAIProvider` from here imports the adapter and httpx with it:
import it from an adapter module, never from a plugin's entry point.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
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
    ThinkingPart,
    TokenLogprob,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageEvent,
)
from relay_openai._models import MODEL_FAMILIES, ModelFamily, is_reasoning_model, model_family
from relay_openai._schema import schema_for_openai, without_strict_nulls
from relay_openai._wire import arguments, data_url, image_url, int_field, reported_error

if TYPE_CHECKING:
    from relay_core.plugin import SSEEvent
    from relay_openai._adapter import OpenAIProvider

__all__ = [
    "FINISH_REASONS",
    "MODEL_FAMILIES",
    "ModelFamily",
    "OpenAIProvider",
    "events",
    "function_tool",
    "logprobs",
    "model_family",
    "parse",
    "payload",
    "usage",
]

# Chat Completions' finish_reason values as Relay's; any other is "unknown".
FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def __getattr__(name: str) -> Any:
    # The adapter imports this module for its wire functions, so it is imported only when
    # asked for: an import at the top would be circular.
    if name == "OpenAIProvider":
        from relay_openai._adapter import OpenAIProvider

        return OpenAIProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- request ----------------------------------------------------------------------------


def payload(
    request: Request,
    *,
    provider: str,
    tool: Callable[[Tool], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The body of ``POST /chat/completions`` for ``request`` (without ``stream``).

    ``tool`` maps each of the request's tools (by default :func:`function_tool`, strict
    where strict mode can express it); ``provider`` names the provider in errors.
    """
    messages: list[dict[str, Any]] = []
    if request.system:
        role = "developer" if is_reasoning_model(request.model) else "system"
        messages.append({"role": role, "content": request.system})
    for message in request.messages:
        messages.extend(_messages(message, request, provider))
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    config = request.config
    for key, value in (
        ("temperature", config.temperature),
        ("top_p", config.top_p),
        # max_tokens is deprecated and refused by reasoning models; this works for all.
        ("max_completion_tokens", config.max_tokens),
        ("stop", list(config.stop) if config.stop else None),
        ("seed", config.seed),
        ("frequency_penalty", config.frequency_penalty),
        ("presence_penalty", config.presence_penalty),
        ("logprobs", config.logprobs),
        ("top_logprobs", config.top_logprobs),
        ("reasoning_effort", config.reasoning_effort()),
    ):
        if value is not None:
            body[key] = value
    if request.tools:
        entry = tool or (lambda each: function_tool(each, strict_tools=True))
        body["tools"] = [entry(each) for each in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = (
            request.tool_choice
            if request.tool_choice in ("auto", "none", "required")
            else {"type": "function", "function": {"name": request.tool_choice}}
        )
    if request.response_schema is not None:
        schema = request.response_schema
        wire_schema, strict = schema_for_openai(schema.schema, strict=schema.strict)
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "schema": wire_schema, "strict": strict},
        }
    return body


def function_tool(tool: Tool, *, strict_tools: bool) -> dict[str, Any]:
    """``tool`` as a Chat Completions function tool: strict when ``strict_tools`` and
    strict mode can express its parameters (compiled for it then), else loose."""
    parameters, strict = schema_for_openai(tool.parameters, strict=strict_tools)
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = parameters
    function["strict"] = strict
    return {"type": "function", "function": function}


def _invalid(request: Request, message: str, provider: str) -> InvalidRequestError:
    return InvalidRequestError(message, provider=provider, model=request.model)


def _messages(message: Message, request: Request, provider: str) -> list[dict[str, Any]]:
    # Tool results travel as one "tool" message each, wherever Relay carries them.
    results = [
        {"role": "tool", "tool_call_id": p.tool_call_id, "content": p.content}
        for p in message.content
        if isinstance(p, ToolResultPart)
    ]
    rest = [p for p in message.content if not isinstance(p, ToolResultPart)]
    if message.role == "assistant":
        return [*results, *_assistant(rest, request, provider)]
    if not rest:
        return results
    content: list[dict[str, Any]] = []
    for part in rest:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            image: dict[str, Any] = {"url": image_url(part)}
            if part.detail is not None:
                image["detail"] = part.detail
            content.append({"type": "image_url", "image_url": image})
        elif isinstance(part, DocumentPart):
            if part.data is None:
                raise _invalid(
                    request,
                    "Chat Completions takes documents as bytes only; send the document's "
                    "data, or use the Responses API "
                    "(provider_kwargs={'openai': {'api': 'responses'}}) for a URL",
                    provider,
                )
            content.append(
                {
                    "type": "file",
                    "file": {
                        "filename": part.name or "document.pdf",
                        "file_data": data_url(part.media_type, part.base64()),
                    },
                }
            )
        elif isinstance(part, ThinkingPart):
            continue  # only assistants think; nothing to send
        else:
            raise _invalid(request, f"a user message cannot carry a {part.TAG} part", provider)
    if len(content) == 1 and content[0]["type"] == "text":
        return [*results, {"role": "user", "content": content[0]["text"]}]
    return [*results, {"role": "user", "content": content}]


def _assistant(parts: Sequence[Part], request: Request, provider: str) -> list[dict[str, Any]]:
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    calls = [p for p in parts if isinstance(p, ToolCallPart)]
    if any(isinstance(p, (ImagePart, DocumentPart)) for p in parts):
        raise _invalid(request, "an assistant message can carry only text and tool calls", provider)
    # ThinkingParts are dropped: Chat Completions has no field for reasoning sent back
    # (OpenAI keeps reasoning server-side and does not return its text here).
    if not text and not calls:
        return []
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in calls
        ]
    return [message]


# -- response ---------------------------------------------------------------------------


def usage(raw: Any) -> Usage:
    """A Chat Completions ``usage`` object as Relay's :class:`Usage` (missing counts 0)."""
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=int_field(raw, "prompt_tokens"),
        output_tokens=int_field(raw, "completion_tokens"),
        cached_input_tokens=int_field(raw.get("prompt_tokens_details"), "cached_tokens"),
        reasoning_tokens=int_field(raw.get("completion_tokens_details"), "reasoning_tokens"),
    )


def logprobs(raw: Any) -> list[TokenLogprob]:
    """A choice's ``logprobs.content`` entries as Relay's :class:`TokenLogprob` (empty
    when the answer carries none)."""
    entries = raw.get("content") if isinstance(raw, dict) else None
    found: list[TokenLogprob] = []
    for entry in entries or ():
        if not isinstance(entry, dict) or not isinstance(entry.get("logprob"), (int, float)):
            continue
        top = [
            (str(alt.get("token", "")), float(alt["logprob"]))
            for alt in entry.get("top_logprobs") or ()
            if isinstance(alt, dict) and isinstance(alt.get("logprob"), (int, float))
        ]
        found.append(TokenLogprob(str(entry.get("token", "")), float(entry["logprob"]), top))
    return found


def parse(
    body: dict[str, Any], request: Request, *, provider: str, strict_tools: bool = True
) -> Response:
    """A Chat Completions answer (its first choice) as a Relay response.

    ``request`` gives the model when the answer names none, and the tools whose
    strict-mode nulls are dropped (``strict_tools`` as for :func:`function_tool`).
    """
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("answer has no choices", provider=provider, model=request.model)
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[Part] = []
    finish = FINISH_REASONS.get(str(choice.get("finish_reason")), "unknown")
    if message.get("refusal"):
        content.append(TextPart(message["refusal"]))
        finish = "content_filter"
    elif message.get("content"):
        content.append(TextPart(message["content"]))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = function.get("name", "")
        content.append(
            ToolCallPart(
                call.get("id", ""), name, arguments(name, function.get("arguments"), provider)
            )
        )
    return Response(
        content=without_strict_nulls(content, request.tools, strict_tools=strict_tools),
        model=body.get("model") or request.model,
        id=body.get("id"),
        finish_reason=finish,
        usage=usage(body.get("usage")),
        logprobs=logprobs(choice.get("logprobs")),
        raw=body,
    )


async def events(
    sse: AsyncIterator[SSEEvent],
    request: Request,
    *,
    provider: str,
    rules: Sequence[ErrorRule] = (),
    strict_tools: bool = True,
    done_ends_stream: bool = False,
) -> AsyncIterator[StreamEvent]:
    """A Chat Completions stream's SSE events as Relay's stream events, the last an
    :class:`EndEvent` with the whole response; stops at ``data: [DONE]``.

    An error chunk raises the error it stands for (classified with ``rules``); a stream
    that ends before a finish_reason raises :class:`MalformedResponse`, unless
    ``done_ends_stream`` and it reached ``[DONE]`` (some compatible servers end whole
    answers so; the reason is then inferred from the content).
    """
    assembler = StreamAssembler(provider=provider)
    chunks: list[Any] = []
    finish: FinishReason | None = None
    refused = False
    response_id: str | None = None
    model = request.model
    done = False
    token_logprobs: list[TokenLogprob] = []
    async for event in sse:
        if event.data.strip() == "[DONE]":
            done = True
            break
        chunk = event.json()
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk:
            raise reported_error(
                chunk["error"], provider=provider, model=request.model, rules=rules
            )
        chunks.append(chunk)
        response_id = chunk.get("id") or response_id
        model = chunk.get("model") or model
        if chunk.get("usage"):
            yield assembler.feed(UsageEvent(usage(chunk["usage"])))
        for choice in chunk.get("choices") or ():
            token_logprobs.extend(logprobs(choice.get("logprobs")))
            delta = choice.get("delta") or {}
            if delta.get("refusal"):
                refused = True
                yield assembler.feed(TextDelta(delta["refusal"]))
            if delta.get("content"):
                yield assembler.feed(TextDelta(delta["content"]))
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                yield assembler.feed(
                    ToolCallDelta(
                        call.get("index", 0),
                        id=call.get("id"),
                        name=function.get("name"),
                        arguments=function.get("arguments") or "",
                    )
                )
            if choice.get("finish_reason"):
                finish = FINISH_REASONS.get(choice["finish_reason"], "unknown")
    if finish is None and not (done and done_ends_stream):
        # A body that just stops is a cut connection, not a short answer.
        raise MalformedResponse(
            "stream ended before a finish_reason" + ("" if done else " (and before data: [DONE])"),
            provider=provider,
            model=request.model,
        )
    if refused:
        finish = "content_filter"
    # With no finish_reason (done_ends_stream), the assembler infers it from the content.
    response = assembler.response(model=model, finish_reason=finish, id=response_id, raw=chunks)
    content = without_strict_nulls(response.content, request.tools, strict_tools=strict_tools)
    yield EndEvent(attrs.evolve(response, content=content, logprobs=token_logprobs))
