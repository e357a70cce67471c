"""The Messages API request: Relay's :class:`Request` as the body of ``POST /messages``
(turns, content blocks with server tools and citations, tools, tool choice, extended
thinking and structured output). Pure functions: the adapter sends what they build."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from relay_anthropic.messages.parse import CITATIONS, MCP_RESULT
from relay_anthropic.messages.structured import StructuredOutput
from relay_core.plugin import (
    REASONING_BUDGETS,
    DocumentPart,
    ImagePart,
    InvalidRequestError,
    Message,
    Part,
    Request,
    SamplingLimits,
    ServerToolCallPart,
    ServerToolResultPart,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    within_limits,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "FREE_CHOICES",
    "MAX_BREAKPOINTS",
    "THINKING_LIMITS",
    "alternating_turns",
    "block",
    "breakpoints",
    "cache_marks",
    "check_breakpoints",
    "message_payload",
    "thinking_request",
    "thinks_by_kwargs",
    "tool_choice",
    "tool_spec",
]

# The Messages API requires max_tokens; this is sent when neither the call nor the
# catalog sets one (option ``default_max_tokens``).
DEFAULT_MAX_TOKENS = 4096
# What Claude takes of the sampling settings with extended thinking on (Anthropic's
# extended-thinking guide): temperature 1 only, top_p from 0.95 to 1, no top_k. Anything
# else is a 400, so it is dropped with a warning (relay_core.sampling). Bedrock's Claude
# routes share it.
THINKING_LIMITS = SamplingLimits(
    reason="extended thinking is on",
    ranges={"temperature": (1.0, 1.0), "top_p": (0.95, 1.0), "top_k": None},
    kwargs=frozenset({"top_k"}),
)
# The tool_choice values that leave the model free, the only ones thinking allows.
FREE_CHOICES = (None, "auto", "none")
# The most cache_control marks one request may carry (Anthropic's prompt-caching
# guide); Bedrock's Converse allows as many cachePoint blocks.
MAX_BREAKPOINTS = 4


def message_payload(
    request: Request, *, default_max_tokens: int, provider: str, stream: bool = False
) -> tuple[dict[str, Any], StructuredOutput | None]:
    """The Messages API body for ``request``, and the structured-output plan if any
    (``default_max_tokens`` when neither the call nor the catalog sets one; ``provider``
    names the provider in errors)."""
    check_breakpoints(request, provider=provider)
    config = request.config
    # A budget in tokens; an effort is looked up in the core's table (1024, the API's
    # smallest budget, for "minimal"). A budget of 0 means thinking off.
    budget = config.reasoning_budget(REASONING_BUDGETS) or None
    request = thinking_request(
        request,
        budget=budget,
        by_kwargs=thinks_by_kwargs(request.provider_kwargs),
        provider=provider,
    )
    config = request.config
    max_tokens = config.max_tokens
    if max_tokens is None:
        max_tokens = default_max_tokens + (budget or 0)
    elif budget is not None and max_tokens <= budget:
        raise InvalidRequestError(
            f"max_tokens ({max_tokens}) must be larger than the thinking budget "
            f"({budget}): Anthropic counts thinking inside max_tokens",
            provider=provider,
        )
    payload: dict[str, Any] = {
        "model": request.model,
        "max_tokens": max_tokens,
        "messages": _messages(request.messages),
    }
    if request.system:
        payload["system"] = request.system
    if config.temperature is not None:
        payload["temperature"] = config.temperature
    if config.top_p is not None:
        payload["top_p"] = config.top_p
    if config.top_k is not None:
        payload["top_k"] = config.top_k
    if config.stop:
        payload["stop_sequences"] = list(config.stop)
    if budget is not None:
        payload["thinking"] = {"type": "enabled", "budget_tokens": budget}
    tools = [tool_spec(tool) for tool in request.tools]
    structured = None
    if request.response_schema is not None:
        structured = StructuredOutput.of(request.response_schema)
        if any(tool.name == structured.name for tool in request.tools):
            raise InvalidRequestError(
                f"the response schema's name {structured.name!r} is also a tool's name",
                provider=provider,
            )
        tools.append(structured.tool())
        payload["tool_choice"] = {"type": "tool", "name": structured.name}
    elif request.tool_choice is not None:
        payload["tool_choice"] = tool_choice(request.tool_choice)
    if tools:
        payload["tools"] = tools
    cache_marks(payload, request)
    if stream:
        payload["stream"] = True
    payload.update(request.provider_kwargs)
    return payload, structured


def breakpoints(request: Request) -> list[str]:
    """Where ``request`` asks for prompt-cache breakpoints, in the order the provider
    reads the prompt (tools, system prompt, messages), named as a caller finds them:
    ``tools``, ``system``, ``messages[2]``, ``messages[3].content[0]``. A message's mark
    and its last part's are one breakpoint."""
    found = []
    if request.cache_tools and (request.tools or request.response_schema is not None):
        found.append("tools")
    if request.cache_system and request.system:
        found.append("system")
    for i, message in enumerate(request.messages):
        last = len(message.content) - 1
        for j, part in enumerate(message.content):
            if getattr(part, "cache", False) and not (message.cache and j == last):
                found.append(f"messages[{i}].content[{j}]")
        if message.cache:
            found.append(f"messages[{i}]")
    return found


def check_breakpoints(request: Request, *, provider: str) -> None:
    """Refuse, before the call, a request with more breakpoints than the API takes
    (which it would answer with a 400). Dropping some instead would silently change
    what is cached and billed, so the caller chooses which to keep."""
    found = breakpoints(request)
    if len(found) > MAX_BREAKPOINTS:
        raise InvalidRequestError(
            f"{provider} takes at most {MAX_BREAKPOINTS} prompt-cache breakpoints, and "
            f"this request has {len(found)}: {', '.join(found)}. Keep the last ones: a "
            "breakpoint caches everything before it",
            provider=provider,
            model=request.model,
            custom_id=request.custom_id,
        )


def cache_marks(payload: dict[str, Any], request: Request) -> None:
    """``cache_control`` on the system prompt (sent as a block list for it) and on the
    last tool, where ``request`` asks; messages are marked by :func:`alternating_turns`."""
    if request.cache_system and isinstance(payload.get("system"), str):
        payload["system"] = [
            {"type": "text", "text": payload["system"], "cache_control": {"type": "ephemeral"}}
        ]
    if request.cache_tools and payload.get("tools"):
        payload["tools"][-1] = {**payload["tools"][-1], "cache_control": {"type": "ephemeral"}}


def thinking_request(
    request: Request, *, budget: int | None, by_kwargs: bool, provider: str
) -> Request:
    """``request`` as Claude takes it with extended thinking on (a ``budget`` from
    ``reasoning``, or turned on ``by_kwargs``; see :func:`thinks_by_kwargs`), on the
    Messages API and Bedrock's Claude routes alike: the sampling settings it refuses
    dropped with a warning (:data:`THINKING_LIMITS`); a ``tool_choice`` forcing a call,
    or a response schema with a budget (structured output forces a call), an
    ``InvalidRequestError``, which Claude would answer with a 400."""
    if budget is None and not by_kwargs:
        return request
    request = within_limits(request, THINKING_LIMITS, provider=provider)
    if request.response_schema is not None:
        # The schema replaces tool_choice; Relay asks for it with a forced tool call.
        if budget is not None:
            raise InvalidRequestError(
                "structured output forces a tool call, which Claude does not allow "
                "with extended thinking; drop the thinking budget or the schema",
                provider=provider,
                model=request.model,
            )
    elif request.tool_choice not in FREE_CHOICES:
        raise InvalidRequestError(
            f"tool_choice {request.tool_choice!r} forces a tool call, which Claude does "
            "not allow with extended thinking; use 'auto' or drop the thinking budget",
            provider=provider,
            model=request.model,
        )
    return request


def tool_spec(tool: Tool) -> dict[str, Any]:
    """A function tool as the API declares it."""
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["input_schema"] = tool.parameters
    return spec


def thinks_by_kwargs(kwargs: Mapping[str, Any]) -> bool:
    """Whether ``provider_kwargs`` turn thinking on themselves (``{"thinking": {"type":
    "adaptive"}}``, a mode Relay's ``reasoning`` does not express)."""
    thinking = kwargs.get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")


def tool_choice(choice: str) -> dict[str, Any]:
    """Relay's ``tool_choice`` (``auto``, ``none``, ``required`` or a tool's name)."""
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Relay's turns as Anthropic's."""
    return alternating_turns(messages, block, mark=_cache_control)


def _cache_control(blocks: list[dict[str, Any]]) -> None:
    blocks[-1]["cache_control"] = {"type": "ephemeral"}


def alternating_turns(
    messages: tuple[Message, ...],
    block: Callable[[Part], dict[str, Any] | None],
    *,
    mark: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Relay's turns with each part mapped by ``block`` (``None`` drops it), for APIs
    that want roles to alternate (Anthropic's Messages, Bedrock's Converse): tool
    results travel in user turns, consecutive turns of one role are merged, and a turn
    left empty is dropped. ``mark`` puts a prompt-cache breakpoint after the last of a
    message's blocks so far, for a part or a message marked ``cache``; it must be
    idempotent, as a message's mark and its last part's fall on the same block."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks: list[dict[str, Any]] = []
        for part in message.content:
            mapped = block(part)
            if mapped is not None:
                blocks.append(mapped)
            # A part the API must not see (empty text) passes its mark to the one before.
            if mark is not None and blocks and getattr(part, "cache", False):
                mark(blocks)
        if mark is not None and blocks and message.cache:
            mark(blocks)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def block(part: Part) -> dict[str, Any] | None:
    """A part as a content block; ``None`` for a part the API must not see."""
    if isinstance(part, TextPart):
        # The API rejects empty text blocks; an empty part says nothing anyway.
        if not part.text:
            return None
        text: dict[str, Any] = {"type": "text", "text": part.text}
        # Anthropic's own citations go back as received; another provider's are in a
        # form the API does not take, and the text stands without them.
        citations = [c.data for c in part.citations if c.data.get("type") in CITATIONS]
        if citations:
            text["citations"] = citations
        return text
    if isinstance(part, ServerToolCallPart):
        if part.server is not None:
            return {
                "type": "mcp_tool_use",
                "id": part.id,
                "name": part.name,
                "server_name": part.server,
                "input": part.arguments,
            }
        return {
            "type": "server_tool_use",
            "id": part.id,
            "name": part.name,
            "input": part.arguments,
        }
    if isinstance(part, ServerToolResultPart):
        block = {"type": part.kind, "tool_use_id": part.tool_call_id, "content": part.content}
        if part.kind == MCP_RESULT:
            # The MCP result says whether it failed; the built-in tools' results say it
            # inside their content (a ``..._error`` type).
            block["is_error"] = part.is_error
        return block
    if isinstance(part, ImagePart):
        return {"type": "image", "source": _image_source(part)}
    if isinstance(part, DocumentPart):
        document: dict[str, Any] = {"type": "document", "source": _document_source(part)}
        if part.name:
            document["title"] = part.name
        return document
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.arguments}
    if isinstance(part, ToolResultPart):
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": part.tool_call_id,
            "content": part.content,
        }
        if part.is_error:
            result["is_error"] = True
        return result
    if isinstance(part, ThinkingPart):
        if part.redacted:
            return {"type": "redacted_thinking", "data": part.signature or ""}
        if part.signature:
            return {"type": "thinking", "thinking": part.text, "signature": part.signature}
        # Unsigned thinking (from another provider) cannot be verified by Anthropic,
        # which would reject the request: it is left out.
        return None
    raise InvalidRequestError(f"content of type {type(part).__name__} has no Anthropic form")


def _image_source(part: ImagePart) -> dict[str, Any]:
    if part.url is not None:
        return {"type": "url", "url": part.url}
    if not part.media_type:
        raise InvalidRequestError("an image given as bytes needs a media_type (image/png...)")
    return {"type": "base64", "media_type": part.media_type, "data": part.base64()}


def _document_source(part: DocumentPart) -> dict[str, Any]:
    if part.url is not None:
        return {"type": "url", "url": part.url}
    if part.media_type == "application/pdf":
        return {"type": "base64", "media_type": "application/pdf", "data": part.base64()}
    if part.media_type.startswith("text/"):
        text = (part.data or b"").decode("utf-8", errors="replace")
        return {"type": "text", "media_type": "text/plain", "data": text}
    raise InvalidRequestError(
        f"Anthropic reads PDF and plain-text documents, not {part.media_type!r}"
    )
