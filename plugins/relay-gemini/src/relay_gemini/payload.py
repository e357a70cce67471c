"""A Relay :class:`Request` as Gemini's GenerateContentRequest, the body ``chat``,
``stream`` and each batch line send: turns as ``contents`` (assistant turns are ``model``,
tool results travel in ``user`` turns), thought signatures back on the parts Gemini signed,
sampling and thinking budgets as ``generationConfig``, tools as function declarations.

Pure functions of the request; the model goes in the URL (:func:`method_path`).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from relay_core.plugin import (
    DocumentPart,
    GenerationConfig,
    ImagePart,
    InvalidRequestError,
    Message,
    Part,
    ReasoningEffort,
    Request,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    merge_kwargs,
)
from relay_gemini.parse import GENERATED_ID_PREFIX

__all__ = ["FREE_FORM_FIELDS", "REASONING_BUDGETS", "camel_case", "method_path", "payload"]

# Gemini takes a thinking budget in tokens. low/medium/high are the budgets Google's own
# OpenAI-compatible endpoint uses for reasoning_effort; 512 is the smallest budget every
# Gemini 2.5 model accepts (Flash-Lite's floor; Pro's is 128).
REASONING_BUDGETS: dict[ReasoningEffort, int] = {
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
}


def payload(request: Request) -> dict[str, Any]:
    """The GenerateContentRequest body for ``request`` (the model is in the URL)."""
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    generation = _generation_config(request.config)
    if request.response_schema is not None:
        generation["responseMimeType"] = "application/json"
        # responseJsonSchema takes standard JSON Schema; responseSchema takes only
        # Google's OpenAPI subset and would refuse $ref, additionalProperties...
        generation["responseJsonSchema"] = request.response_schema.schema
    if generation:
        body["generationConfig"] = generation
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    if request.tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _tool_choice(request.tool_choice)}
    # Key by key at every depth, as the core merges catalog and call kwargs:
    # {"generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}} keeps the rest.
    return merge_kwargs(body, request.provider_kwargs)


def method_path(model: str, method: str) -> str:
    """The URL path of ``method`` on ``model``: ``/models/x:generateContent``."""
    # A bare name is a base model; "tunedModels/x" (or "models/x") is already a resource.
    resource = model if "/" in model else f"models/{model}"
    return "/" + quote(resource, safe="/-._~") + ":" + method


def _generation_config(config: GenerationConfig) -> dict[str, Any]:
    generation: dict[str, Any] = {}
    if config.temperature is not None:
        generation["temperature"] = config.temperature
    if config.top_p is not None:
        generation["topP"] = config.top_p
    if config.max_tokens is not None:
        generation["maxOutputTokens"] = config.max_tokens
    if config.stop:
        generation["stopSequences"] = list(config.stop)
    if config.seed is not None:
        generation["seed"] = config.seed
    for name, value in (
        ("topK", config.top_k),
        ("frequencyPenalty", config.frequency_penalty),
        ("presencePenalty", config.presence_penalty),
        ("responseLogprobs", config.logprobs),
        ("logprobs", config.top_logprobs),
    ):
        if value is not None:
            generation[name] = value
    budget = config.reasoning_budget(REASONING_BUDGETS)
    if budget is not None:
        # A budget of 0 switches thinking off: there are no thoughts to include then.
        thinking: dict[str, Any] = {"thinkingBudget": budget}
        if budget != 0:
            thinking["includeThoughts"] = True
        generation["thinkingConfig"] = thinking
    return generation


def _declaration(tool: Tool) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    # parametersJsonSchema takes standard JSON Schema, as Relay's Tool.parameters is.
    declaration["parametersJsonSchema"] = tool.parameters
    return declaration


def _tool_choice(choice: str) -> dict[str, Any]:
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    return {"mode": "ANY", "allowedFunctionNames": [choice]}


def _contents(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Relay's turns as Gemini's contents: assistant turns are ``model``, tool results
    travel in ``user`` turns, and consecutive turns of one role are merged."""
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message.content, names)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _parts(content: Sequence[Part], names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, ThinkingPart):
            _thinking_to_wire(part, parts)
        elif isinstance(part, TextPart):
            # Kept even when empty for now: an older signature-only part may follow.
            parts.append(_signed({"text": part.text}, part.signature))
        elif isinstance(part, ToolCallPart):
            names[part.id] = part.name
            call: dict[str, Any] = {"name": part.name, "args": part.arguments}
            if not part.id.startswith(GENERATED_ID_PREFIX):
                call["id"] = part.id
            parts.append(_signed({"functionCall": call}, part.signature))
        elif isinstance(part, ToolResultPart):
            parts.append({"functionResponse": _function_response(part, names)})
        elif isinstance(part, ImagePart):
            parts.append(_media(part.url, part.data, part.media_type, part.base64, "image"))
        elif isinstance(part, DocumentPart):
            parts.append(_media(part.url, part.data, part.media_type, part.base64, "document"))
        else:  # pragma: no cover - every Part type is handled above
            raise InvalidRequestError(f"content of type {type(part).__name__} has no Gemini form")
    # Gemini refuses empty text parts; one is sent only as the carrier of a signature.
    return [p for p in parts if p.get("text") != "" or "thoughtSignature" in p or "thought" in p]


def _signed(part: dict[str, Any], signature: str | None) -> dict[str, Any]:
    if signature:
        part["thoughtSignature"] = signature
    return part


def _thinking_to_wire(part: ThinkingPart, parts: list[dict[str, Any]]) -> None:
    if part.redacted:
        return  # another provider's encrypted thinking: Gemini cannot read it
    previous = parts[-1] if parts else None
    if (
        not part.text
        and part.signature
        and previous is not None
        and ("functionCall" in previous or ("thought" not in previous and "text" in previous))
        and "thoughtSignature" not in previous
    ):
        # How relay-gemini kept a call's or a text's signature before parts had one (a
        # signature-only ThinkingPart right after it): stored answers still go back right.
        previous["thoughtSignature"] = part.signature
        return
    if part.text or part.signature:
        parts.append(_signed({"text": part.text, "thought": True}, part.signature))


def _function_response(part: ToolResultPart, names: Mapping[str, str]) -> dict[str, Any]:
    name = part.name or names.get(part.tool_call_id)
    if not name:
        raise InvalidRequestError(
            f"the tool result for call {part.tool_call_id!r} needs the function's name: "
            "Gemini pairs results with calls by name. Set ToolResultPart.name, or keep the "
            "assistant turn holding the call in the conversation"
        )
    try:
        value: Any = json.loads(part.content)
    except ValueError:
        value = part.content
    # Gemini wants an object; the SDK's own convention wraps anything else, and errors.
    if part.is_error:
        response = {"error": value}
    elif isinstance(value, dict):
        response = value
    else:
        response = {"result": value}
    result: dict[str, Any] = {"name": name, "response": response}
    if not part.tool_call_id.startswith(GENERATED_ID_PREFIX):
        result["id"] = part.tool_call_id
    return result


def _media(
    url: str | None, data: bytes | None, media_type: str | None, b64: Any, kind: str
) -> dict[str, Any]:
    if url is not None:
        mime = media_type or mimetypes.guess_type(url)[0]
        file_data: dict[str, Any] = {"fileUri": url}
        if mime:
            file_data["mimeType"] = mime
        return {"fileData": file_data}
    if not media_type:
        raise InvalidRequestError(f"an {kind} given as bytes needs a media_type (image/png...)")
    return {"inlineData": {"mimeType": media_type, "data": b64()}}


# Where the API takes the caller's JSON (schemas, a call's arguments, a tool's result):
# the keys below these are not field names.
FREE_FORM_FIELDS = frozenset({"parametersJsonSchema", "responseJsonSchema", "args", "response"})


def camel_case(body: Any) -> Any:
    """``body`` with the API's field names in the lowerCamelCase :func:`payload` writes.

    Google's SDKs write some names in snake_case (``file_uri``, ``thinking_budget``),
    which the API reads as well (protobuf's JSON mapping takes a field's original name
    and its camelCase one); this is the form to compare such a body with Relay's in.
    Free-form JSON under :data:`FREE_FORM_FIELDS` is left as it is.
    """
    if isinstance(body, list):
        return [camel_case(item) for item in body]
    if not isinstance(body, dict):
        return body
    renamed = {}
    for key, value in body.items():
        head, *rest = key.split("_")
        name = head + "".join(word[:1].upper() + word[1:] for word in rest)
        renamed[name] = value if name in FREE_FORM_FIELDS else camel_case(value)
    return renamed
