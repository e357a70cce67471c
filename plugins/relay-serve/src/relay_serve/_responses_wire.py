"""OpenAI's Responses API requests, the subset any provider can serve, as Relay's types.

In: a ``POST /v1/responses`` body becomes a :class:`ResponsesCall`: ``input`` (a string,
or message, ``function_call`` and ``function_call_output`` items), ``instructions``,
function ``tools``, ``tool_choice``, ``text.format`` (structured output), sampling
settings, ``metadata`` and ``stream``. What needs state on the server
(``previous_response_id``, ``store: true``, item references) or a built-in tool
(``web_search``...) is refused with a :class:`~relay_serve._wire.WireError` that says so.

Out: ``relay_serve._responses_object`` writes the ``response`` object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from attrs import frozen

from relay_core.plugin import (
    GenerationConfig,
    ImagePart,
    Message,
    Part,
    Request,
    ResponseSchema,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from relay_serve._wire import WireError, _arguments, _decoded

__all__ = ["ResponsesCall", "parse_responses"]

# Accepted and ignored: settings the SDKs send that change nothing here.
_IGNORED = frozenset(
    {"parallel_tool_calls", "service_tier", "prompt_cache_key", "safety_identifier", "truncation"}
)
_KNOWN = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "temperature",
        "top_p",
        "max_output_tokens",
        "metadata",
        "stream",
        "user",
        "reasoning",
        "store",
        "previous_response_id",
    }
)
_EFFORTS = ("minimal", "low", "medium", "high")
Role = Literal["user", "assistant", "tool"]


@frozen
class ResponsesCall:
    """A parsed request: the unified request, streaming or not, and the settings the
    response object echoes back (``instructions``, ``tools``, ``text``...)."""

    model: str
    request: Request
    stream: bool
    echo: dict[str, Any]


def parse_responses(body: object, *, request_id: str) -> ResponsesCall:
    """The :class:`ResponsesCall` for a Responses request body (parsed JSON)."""
    if not isinstance(body, Mapping):
        raise WireError("The request body must be a JSON object.")
    for name in body:
        if name not in _KNOWN and name not in _IGNORED:
            raise WireError(f"Unrecognized request argument supplied: {name}", name)
    if body.get("previous_response_id") is not None:
        raise WireError(
            "previous_response_id is not supported: this server stores no responses. "
            "Send the whole conversation in 'input'.",
            "previous_response_id",
        )
    if body.get("store") is True:
        raise WireError(
            "store=true is not supported: this server stores no responses (send store=false "
            "or leave it out).",
            "store",
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError("'model' is required and must be a non-empty string.", "model")
    stream = body.get("stream")
    if stream not in (None, True, False):
        raise WireError(f"stream must be a boolean, not {stream!r}.", "stream")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise WireError("instructions must be a string.", "instructions")
    system, messages = _input(body.get("input"))
    if instructions:
        system.insert(0, instructions)
    tools = _tools(body.get("tools"))
    metadata: dict[str, Any] = {}
    for name in ("user", "metadata"):
        if body.get(name) is not None:
            metadata[name] = body[name]
    if "metadata" in metadata and not isinstance(metadata["metadata"], Mapping):
        raise WireError("metadata must be an object of strings.", "metadata")
    text = body.get("text")
    request = Request(
        messages=messages,
        model=model,
        system="\n\n".join(system) if system else None,
        config=_config(body),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), tools),
        response_schema=_format(text),
        custom_id=request_id,
        metadata=metadata,
    )
    echo = {
        "instructions": instructions,
        "tools": body.get("tools") or [],
        "tool_choice": body.get("tool_choice") or "auto",
        "text": text if isinstance(text, Mapping) else {"format": {"type": "text"}},
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "user": body.get("user"),
    }
    return ResponsesCall(model, request, bool(stream), echo)


# ---------------------------------------------------------------------------- input


def _input(value: object) -> tuple[list[str], tuple[Message, ...]]:
    """The system texts and the conversation of ``input``."""
    if isinstance(value, str):
        return [], (Message("user", (TextPart(value),)),)
    if not isinstance(value, list) or not value:
        raise WireError("'input' must be a string or a non-empty array of items.", "input")
    system: list[str] = []
    messages: list[Message] = []

    def add(role: Role, parts: Sequence[Part]) -> None:
        # Calls after an assistant's text, and results after results, belong to one
        # turn: providers that take them in one message (Anthropic) need them together.
        if messages and messages[-1].role == role and role in ("assistant", "tool"):
            messages[-1] = Message(role, (*messages[-1].content, *parts))
        else:
            messages.append(Message(role, tuple(parts)))

    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, Mapping):
            raise WireError(f"{where} must be an object.", where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role in ("system", "developer"):
                system.append(_text(content, f"{where}.content", ("input_text",)))
            elif role == "user":
                add("user", _user_parts(content, f"{where}.content"))
            elif role == "assistant":
                text = _text(content, f"{where}.content", ("output_text", "refusal"))
                if text:
                    add("assistant", (TextPart(text),))
            else:
                raise WireError(
                    f"{where}.role must be user, assistant, system or developer; not {role!r}.",
                    f"{where}.role",
                )
        elif kind == "function_call":
            call = ToolCallPart(
                id=_string(item, "call_id", where),
                name=_string(item, "name", where),
                arguments=_arguments(item.get("arguments"), f"{where}.arguments"),
            )
            add("assistant", (call,))
        elif kind == "function_call_output":
            output = item.get("output")
            result = ToolResultPart(
                tool_call_id=_string(item, "call_id", where),
                content=_text(output, f"{where}.output", ("input_text",)),
            )
            add("tool", (result,))
        elif kind == "item_reference":
            raise WireError(
                f"{where}: item references are not supported, as this server stores no "
                "responses; send the item itself.",
                f"{where}.type",
            )
        else:
            raise WireError(
                f"{where}.type must be message, function_call or function_call_output; "
                f"not {kind!r}.",
                f"{where}.type",
            )
    if not messages:
        raise WireError("'input' needs at least one user, assistant or tool item.", "input")
    return system, tuple(messages)


def _string(item: Mapping[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise WireError(f"{where}.{name} must be a non-empty string.", f"{where}.{name}")
    return value


def _text(value: object, param: str, kinds: tuple[str, ...]) -> str:
    """Content that may only be text: a string, or a list of text parts of ``kinds``."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise WireError(f"{param} must be a string or an array of text parts.", param)
    pieces: list[str] = []
    for index, part in enumerate(value):
        where = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind not in kinds:
            raise WireError(f"{where}.type must be {' or '.join(kinds)}; not {kind!r}.", where)
        field = "refusal" if kind == "refusal" else "text"
        text = part.get(field)
        if not isinstance(text, str):
            raise WireError(f"{where}.{field} must be a string.", f"{where}.{field}")
        pieces.append(text)
    return "".join(pieces)


def _user_parts(content: object, param: str) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list) or not content:
        raise WireError(f"{param} must be a string or a non-empty array of parts.", param)
    parts: list[Part] = []
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "input_text":
            if not isinstance(part.get("text"), str):
                raise WireError(f"{where}.text must be a string.", f"{where}.text")
            parts.append(TextPart(part["text"]))
        elif kind == "input_image":
            if not isinstance(part.get("image_url"), str):
                # file_id refers to OpenAI's file storage, which this server does not have.
                raise WireError(
                    f"{where}.image_url must be a URL or a base64 data URL.", f"{where}.image_url"
                )
            parts.append(_image(part, where))
        else:
            raise WireError(
                f"{where}.type must be input_text or input_image; not {kind!r}.", f"{where}.type"
            )
    return tuple(parts)


def _image(part: Mapping[str, Any], where: str) -> ImagePart:
    detail = part.get("detail")
    if detail not in (None, "auto", "low", "high"):
        raise WireError(f"{where}.detail must be auto, low or high.", f"{where}.detail")
    decoded = _decoded(part["image_url"], f"{where}.image_url")
    if decoded is None:
        return ImagePart(url=part["image_url"], detail=detail)
    return ImagePart(data=decoded[0], media_type=decoded[1], detail=detail)


def _tools(value: object) -> tuple[Tool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WireError("'tools' must be an array.", "tools")
    tools: list[Tool] = []
    for index, tool in enumerate(value):
        where = f"tools[{index}]"
        if not isinstance(tool, Mapping):
            raise WireError(f"{where} must be an object.", where)
        kind = tool.get("type")
        if kind != "function":
            raise WireError(
                f"{where} is the built-in tool {kind!r}, which this server does not offer: "
                "only function tools (type: function) are supported.",
                f"{where}.type",
            )
        name = _string(tool, "name", where)
        description = tool.get("description") or ""
        if not isinstance(description, str):
            raise WireError(f"{where}.description must be a string.", f"{where}.description")
        parameters = tool.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping):
            raise WireError(
                f"{where}.parameters must be a JSON Schema object.", f"{where}.parameters"
            )
        tools.append(Tool(name, description, dict(parameters)))
    return tuple(tools)


def _tool_choice(value: object, tools: Sequence[Tool]) -> str | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return str(value)
    spec = value if isinstance(value, Mapping) else {}
    name = spec.get("name")
    if spec.get("type") != "function" or not isinstance(name, str):
        raise WireError(
            "tool_choice must be auto, none, required or {'type': 'function', 'name': ...}.",
            "tool_choice",
        )
    if name not in {tool.name for tool in tools}:
        raise WireError(f"tool_choice names {name!r}, which is not in 'tools'.", "tool_choice")
    return name


def _format(text: object) -> ResponseSchema | None:
    if text is None:
        return None
    if not isinstance(text, Mapping):
        raise WireError("text must be an object.", "text")
    spec = text.get("format")
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise WireError("text.format must be an object.", "text.format")
    kind = spec.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseSchema({"type": "object"}, name="json_object", strict=False)
    if kind != "json_schema":
        raise WireError(
            "text.format.type must be text, json_object or json_schema.", "text.format.type"
        )
    schema = spec.get("schema")
    if not isinstance(schema, Mapping):
        raise WireError("text.format.schema must be a JSON Schema object.", "text.format.schema")
    name = spec.get("name", "response")
    if not isinstance(name, str) or not name:
        raise WireError("text.format.name must be a non-empty string.", "text.format.name")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise WireError("text.format.strict must be a boolean.", "text.format.strict")
    return ResponseSchema(dict(schema), name=name, strict=bool(strict))


def _config(body: Mapping[str, Any]) -> GenerationConfig:
    config = GenerationConfig()
    wanted: list[tuple[str, str, Any]] = [
        (wire, field, body[wire])
        for wire, field in (
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("max_output_tokens", "max_tokens"),
        )
        if body.get(wire) is not None
    ]
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, Mapping):
            raise WireError("reasoning must be an object ({'effort': ...}).", "reasoning")
        effort = reasoning.get("effort")
        if effort == "none":
            wanted.append(("reasoning.effort", "reasoning", 0))
        elif effort in _EFFORTS:
            wanted.append(("reasoning.effort", "reasoning", effort))
        elif effort is not None:
            raise WireError(
                f"reasoning.effort must be none, {', '.join(_EFFORTS)}; not {effort!r}.",
                "reasoning.effort",
            )
    for wire, field, value in wanted:
        try:  # one at a time, so the error names the field the client sent
            config = config.merged(GenerationConfig(**{field: value}))
        except (TypeError, ValueError) as error:
            raise WireError(f"Invalid '{wire}': {error}.", wire) from None
    return config
