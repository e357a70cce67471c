"""OpenAI's Chat Completions wire format to Relay's types and back: pure functions.

In: a request body becomes a :class:`ChatCall` (the unified :class:`Request` plus what
the server itself needs: the model asked for, streaming or not). Anything wrong raises
:class:`WireError` naming the offending field the way OpenAI does (``messages[2].content``).

Out: a :class:`Response` becomes a ``chat.completion`` object; stream events become
``chat.completion.chunk`` objects through :class:`ChunkEncoder`; a Relay error becomes
an HTTP status and OpenAI's error object through :func:`error_answer`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from attrs import frozen

from relay_core.plugin import (
    AuthenticationError,
    CircuitOpen,
    ContentPolicyError,
    ContextWindowExceeded,
    CredentialError,
    DocumentPart,
    EndEvent,
    FinishReason,
    GenerationConfig,
    GuardrailViolation,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
    NotFoundError,
    Part,
    PluginNotInstalled,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    Request,
    Response,
    ResponseSchema,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    Timeout,
    TokenLogprob,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    UnknownAlias,
    UnsupportedCapability,
    Usage,
)

__all__ = [
    "MAX_DEPTH",
    "ChatCall",
    "ChunkEncoder",
    "ErrorAnswer",
    "WireError",
    "completion",
    "decode_body",
    "error_answer",
    "error_body",
    "model_object",
    "models_list",
    "parse_chat",
]

# Accepted and ignored: settings the OpenAI SDKs send routinely that no Relay provider
# takes through the unified request, or that change nothing here (one choice, no logs).
IGNORED = frozenset(
    {
        "logit_bias",
        "parallel_tool_calls",
        "service_tier",
        "store",
        "prompt_cache_key",
        "safety_identifier",
        "verbosity",
    }
)
_FINISH: dict[FinishReason, str] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)
_EFFORTS = ("minimal", "low", "medium", "high")
# Deeper than any real request (a tool's JSON Schema nests a few levels per level of its
# arguments), and far from the interpreter's recursion limit, which the parser and every
# later walk over the request (copies, re-serialisation for the upstream) would hit.
MAX_DEPTH = 128
# A lone surrogate is valid in JSON's \u escapes but is no character: it cannot be
# encoded for the upstream, nor in the answer that echoes it.
_SURROGATE = re.compile("[\ud800-\udfff]")


class WireError(Exception):
    """The request is not a valid Chat Completions request. ``param`` names the field
    (``messages[0].role``), or is None when the body as a whole is wrong; ``status`` is
    400 unless the body's size (413) or content type (415) is what is wrong."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code


@frozen
class ChatCall:
    """A parsed request: the unified request and how the client wants the answer."""

    model: str
    request: Request
    stream: bool = False
    include_usage: bool = False


# ---------------------------------------------------------------------------- in


def decode_body(raw: bytes) -> Any:
    """The JSON value of a request body, refused with a :class:`WireError` (400) when it
    is not JSON, nests deeper than :data:`MAX_DEPTH`, or holds a lone surrogate: each
    would otherwise fail later, inside the server or after the upstream call."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _too_deep(None) from None
    except ValueError:
        raise WireError(
            "We could not parse the JSON body of your request. The body must be JSON "
            "(Content-Type: application/json)."
        ) from None
    _check_tree(value)
    return value


def _too_deep(param: str | None) -> WireError:
    return WireError(
        f"The request body nests arrays and objects more than {MAX_DEPTH} deep.", param
    )


def _check_string(text: str, param: str | None) -> None:
    if _SURROGATE.search(text):
        raise WireError(
            f"{param or 'The request body'} holds a lone UTF-16 surrogate (\\ud800-\\udfff), "
            "which is not a character.",
            param,
        )


def _check_tree(value: object) -> None:
    """Depth and strings of a parsed body, walked without recursion."""
    if isinstance(value, str):
        _check_string(value, None)
    # (container, its depth, its path in OpenAI's param spelling)
    stack: list[tuple[object, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, where = stack.pop()
        items: Any
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        if depth > MAX_DEPTH:
            raise _too_deep(where or None)
        for key, item in items:
            if isinstance(key, str):
                _check_string(key, where or None)
                path = f"{where}.{key}" if where else key
            else:
                path = f"{where}[{key}]"
            if isinstance(item, str):
                _check_string(item, path)
            elif isinstance(item, (dict, list)):
                stack.append((item, depth + 1, path))


def parse_chat(body: object, *, request_id: str) -> ChatCall:
    """The :class:`ChatCall` for a Chat Completions request body (parsed JSON)."""
    if not isinstance(body, Mapping):
        raise WireError("The request body must be a JSON object.")
    known = {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "response_format",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "top_k",
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
        "top_logprobs",
        "reasoning_effort",
        "stream",
        "stream_options",
        "n",
        "user",
        "metadata",
    }
    for name in body:
        if name not in known and name not in IGNORED:
            raise WireError(f"Unrecognized request argument supplied: {name}", name)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError("'model' is required and must be a non-empty string.", "model")
    if body.get("n") not in (None, 1):
        raise WireError("Only n=1 is supported.", "n")
    system, messages = _messages(body.get("messages"))
    stream = _bool(body, "stream")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, Mapping) or not stream):
        raise WireError(
            "stream_options is an object, allowed only with stream=true.", "stream_options"
        )
    include_usage = _bool(options or {}, "include_usage", "stream_options.include_usage")
    metadata: dict[str, Any] = {}
    for name in ("user", "metadata"):
        if body.get(name) is not None:
            metadata[name] = body[name]
    tools = _tools(body.get("tools"))
    request = Request(
        messages=messages,
        model=model,
        system=system,
        config=_config(body),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), tools),
        response_schema=_response_format(body.get("response_format")),
        custom_id=request_id,
        metadata=metadata,
    )
    return ChatCall(model, request, stream, include_usage)


def _bool(body: Mapping[str, Any], name: str, param: str | None = None) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise WireError(f"{param or name} must be a boolean, not {value!r}.", param or name)
    return value


def _text(value: object, param: str, *, refusal: bool = False) -> str:
    """Content that may only be text: a string, or a list of text parts."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise WireError(f"{param} must be a string or an array of text parts.", param)
    pieces: list[str] = []
    for index, part in enumerate(value):
        where = f"{param}[{index}]"
        kinds = ("text", "refusal") if refusal else ("text",)
        if not isinstance(part, Mapping) or part.get("type") not in kinds:
            raise WireError(f"{where} must be a text part ({{'type': 'text', ...}}).", where)
        text = part.get(part["type"])
        if not isinstance(text, str):
            raise WireError(f"{where}.{part['type']} must be a string.", f"{where}.{part['type']}")
        pieces.append(text)
    return "".join(pieces)


def _messages(value: object) -> tuple[str | None, tuple[Message, ...]]:
    if not isinstance(value, list) or not value:
        raise WireError("'messages' must be a non-empty array.", "messages")
    system: list[str] = []
    messages: list[Message] = []
    for index, item in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(item, Mapping):
            raise WireError(f"{where} must be an object.", where)
        role = item.get("role")
        content = item.get("content")
        if role in ("system", "developer"):
            # Relay carries one system prompt: every system turn joins it, in order.
            system.append(_text(content, f"{where}.content"))
        elif role == "user":
            messages.append(Message("user", _user_parts(content, f"{where}.content")))
        elif role == "assistant":
            messages.append(_assistant(item, where))
        elif role == "tool":
            result = ToolResultPart(
                tool_call_id=_string(item, "tool_call_id", where),
                content=_text(content, f"{where}.content"),
            )
            # Consecutive results answer one assistant turn: keep them together, as
            # providers that take results in one message (Anthropic) need.
            if messages and messages[-1].role == "tool":
                messages[-1] = Message("tool", (*messages[-1].content, result))
            else:
                messages.append(Message.tool(result))
        else:
            raise WireError(
                f"{where}.role must be one of system, developer, user, assistant, tool; "
                f"not {role!r}.",
                f"{where}.role",
            )
    if not messages:
        raise WireError(
            "'messages' needs at least one user, assistant or tool message.", "messages"
        )
    return ("\n\n".join(system) if system else None), tuple(messages)


def _string(item: Mapping[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise WireError(f"{where}.{name} must be a non-empty string.", f"{where}.{name}")
    return value


def _user_parts(content: object, param: str) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list) or not content:
        raise WireError(f"{param} must be a string or a non-empty array of parts.", param)
    parts: list[Part] = []
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise WireError(f"{where}.text must be a string.", f"{where}.text")
            parts.append(TextPart(part["text"]))
        elif kind == "image_url":
            parts.append(_image(part.get("image_url"), f"{where}.image_url"))
        elif kind == "file":
            parts.append(_document(part.get("file"), f"{where}.file"))
        else:
            raise WireError(
                f"{where}.type must be text, image_url or file; not {kind!r}.", f"{where}.type"
            )
    return tuple(parts)


def _decoded(url: str, param: str) -> tuple[bytes, str] | None:
    """Bytes and media type of a ``data:`` URL; None for any other URL."""
    found = _DATA_URL.match(url)
    if found is None:
        if url.startswith("data:"):
            raise WireError(f"{param} must be a base64 data URL (data:TYPE;base64,...).", param)
        return None
    try:
        return base64.b64decode(found["data"], validate=True), found["type"]
    except (binascii.Error, ValueError):
        raise WireError(f"{param} holds data that is not valid base64.", param) from None


def _image(value: object, param: str) -> ImagePart:
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, Mapping) or not isinstance(value.get("url"), str):
        raise WireError(f"{param}.url must be a string.", f"{param}.url")
    detail = value.get("detail")
    if detail not in (None, "auto", "low", "high"):
        raise WireError(f"{param}.detail must be auto, low or high.", f"{param}.detail")
    decoded = _decoded(value["url"], f"{param}.url")
    if decoded is None:
        return ImagePart(url=value["url"], detail=detail)
    data, media_type = decoded
    return ImagePart(data=data, media_type=media_type, detail=detail)


def _document(value: object, param: str) -> DocumentPart:
    if not isinstance(value, Mapping) or not isinstance(value.get("file_data"), str):
        # file_id refers to OpenAI's file storage, which this server does not have.
        raise WireError(f"{param}.file_data must be a base64 data URL.", f"{param}.file_data")
    decoded = _decoded(value["file_data"], f"{param}.file_data")
    if decoded is None:
        raise WireError(f"{param}.file_data must be a base64 data URL.", f"{param}.file_data")
    name = value.get("filename")
    if name is not None and not isinstance(name, str):
        raise WireError(f"{param}.filename must be a string.", f"{param}.filename")
    return DocumentPart(data=decoded[0], media_type=decoded[1], name=name)


def _assistant(item: Mapping[str, Any], where: str) -> Message:
    content = item.get("content")
    parts: list[Part] = []
    if content is not None:
        text = _text(content, f"{where}.content", refusal=True)
        if text:
            parts.append(TextPart(text))
    calls = item.get("tool_calls") or []
    if not isinstance(calls, list):
        raise WireError(f"{where}.tool_calls must be an array.", f"{where}.tool_calls")
    for index, call in enumerate(calls):
        at = f"{where}.tool_calls[{index}]"
        if not isinstance(call, Mapping) or not isinstance(call.get("function"), Mapping):
            raise WireError(f"{at} must be a function call object.", at)
        function = call["function"]
        name = _string(function, "name", f"{at}.function")
        arguments = _arguments(function.get("arguments"), f"{at}.function.arguments")
        parts.append(ToolCallPart(id=_string(call, "id", at), name=name, arguments=arguments))
    if not parts:
        # An empty assistant turn says nothing; providers refuse empty content.
        raise WireError(f"{where} needs content or tool_calls.", f"{where}.content")
    return Message("assistant", parts)


def _arguments(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, str):
        raise WireError(f"{param} must be a JSON string.", param)
    try:
        parsed = json.loads(value or "{}")
    except ValueError:
        raise WireError(f"{param} is not valid JSON.", param) from None
    if not isinstance(parsed, dict):
        raise WireError(f"{param} must encode a JSON object.", param)
    return parsed


def _tools(value: object) -> tuple[Tool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WireError("'tools' must be an array.", "tools")
    tools: list[Tool] = []
    for index, tool in enumerate(value):
        where = f"tools[{index}]"
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
            raise WireError(f"{where} must be a function tool.", f"{where}.type")
        function = tool.get("function")
        if not isinstance(function, Mapping):
            raise WireError(f"{where}.function must be an object.", f"{where}.function")
        name = _string(function, "name", f"{where}.function")
        description = function.get("description") or ""
        if not isinstance(description, str):
            raise WireError(
                f"{where}.function.description must be a string.", f"{where}.function.description"
            )
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, Mapping):
            raise WireError(
                f"{where}.function.parameters must be a JSON Schema object.",
                f"{where}.function.parameters",
            )
        tools.append(Tool(name, description, dict(parameters)))
    return tuple(tools)


def _tool_choice(value: object, tools: Sequence[Tool]) -> str | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return str(value)
    spec = value if isinstance(value, Mapping) else {}
    function = spec.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or spec.get("type") != "function":
        raise WireError(
            "tool_choice must be auto, none, required or "
            "{'type': 'function', 'function': {'name': ...}}.",
            "tool_choice",
        )
    if name not in {tool.name for tool in tools}:
        raise WireError(f"tool_choice names {name!r}, which is not in 'tools'.", "tool_choice")
    return name


def _response_format(value: object) -> ResponseSchema | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise WireError("response_format must be an object.", "response_format")
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseSchema({"type": "object"}, name="json_object", strict=False)
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema", {}), Mapping):
            raise WireError(
                "response_format.json_schema must be an object with a 'schema' object.",
                "response_format.json_schema",
            )
        name = spec.get("name", "response")
        if not isinstance(name, str) or not name:
            raise WireError(
                "response_format.json_schema.name must be a string.",
                "response_format.json_schema.name",
            )
        strict = spec.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise WireError(
                "response_format.json_schema.strict must be a boolean.",
                "response_format.json_schema.strict",
            )
        return ResponseSchema(dict(spec.get("schema", {})), name=name, strict=bool(strict))
    raise WireError(
        "response_format.type must be text, json_object or json_schema.", "response_format.type"
    )


def _config(body: Mapping[str, Any]) -> GenerationConfig:
    wanted: dict[str, tuple[str, Any]] = {}
    for wire, field in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("max_tokens", "max_tokens"),
        # The newer name wins when a client sends both.
        ("max_completion_tokens", "max_tokens"),
        ("stop", "stop"),
        ("seed", "seed"),
        # Not OpenAI's: the extension vLLM and other compatible servers take.
        ("top_k", "top_k"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
        ("logprobs", "logprobs"),
        ("top_logprobs", "top_logprobs"),
    ):
        if body.get(wire) is not None:
            wanted[field] = (wire, body[wire])
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort == "none":
            wanted["reasoning"] = ("reasoning_effort", 0)
        elif effort in _EFFORTS:
            wanted["reasoning"] = ("reasoning_effort", effort)
        else:
            raise WireError(
                f"reasoning_effort must be none, {', '.join(_EFFORTS)}; not {effort!r}.",
                "reasoning_effort",
            )
    if "stop" in wanted and isinstance(wanted["stop"][1], list) and len(wanted["stop"][1]) > 4:
        raise WireError("stop takes at most 4 sequences.", "stop")
    config = GenerationConfig()
    for field, (wire, value) in wanted.items():
        if field == "stop" and not isinstance(value, (str, list)):
            raise WireError("stop must be a string or an array of strings.", "stop")
        try:  # one at a time, so the error names the field the client sent
            config = config.merged(GenerationConfig(**{field: value}))
        except (TypeError, ValueError) as error:
            raise WireError(f"Invalid '{wire}': {error}.", wire) from None
    return config


# ---------------------------------------------------------------------------- out


def _finish(reason: FinishReason) -> str:
    # "error" and "unknown" have no OpenAI word; the answer did end, which is "stop".
    return _FINISH.get(reason, "stop")


def _logprobs(tokens: Sequence[TokenLogprob]) -> dict[str, Any] | None:
    if not tokens:
        return None
    return {
        "content": [
            {
                "token": token.token,
                "logprob": token.logprob,
                "bytes": list(token.token.encode()),
                "top_logprobs": [
                    {"token": text, "logprob": logprob, "bytes": list(text.encode())}
                    for text, logprob in token.top
                ],
            }
            for token in tokens
        ],
        "refusal": None,
    }


def usage(value: Usage) -> dict[str, Any]:
    """OpenAI's ``usage`` object."""
    return {
        "prompt_tokens": value.input_tokens,
        "completion_tokens": value.output_tokens,
        "total_tokens": value.total_tokens,
        "prompt_tokens_details": {"cached_tokens": value.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": value.reasoning_tokens},
    }


def _tool_call(call: ToolCallPart) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }


def completion(response: Response, *, id: str, model: str, created: int) -> dict[str, Any]:
    """A ``chat.completion`` object for ``response``. ``model`` is the name the client
    asked for: which upstream answered is the server's business (see the README)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": response.text or None,
        "refusal": None,
    }
    if response.thinking:
        # Not OpenAI's: the field DeepSeek, vLLM and llama.cpp use for reasoning text.
        message["reasoning_content"] = response.thinking
    if response.tool_calls:
        message["tool_calls"] = [_tool_call(call) for call in response.tool_calls]
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": _logprobs(response.logprobs),
                "finish_reason": _finish(response.finish_reason),
            }
        ],
        "usage": usage(response.usage),
        "system_fingerprint": None,
    }


@attrs.define
class ChunkEncoder:
    """Turns one answer's stream events into ``chat.completion.chunk`` objects.

    The first chunk carries the assistant role; text, reasoning and tool-call pieces
    follow as they come; the :class:`EndEvent` brings a chunk with the finish reason
    and, when the client asked (``include_usage``), a last chunk with no choices and
    the usage. With ``include_usage`` every other chunk has ``usage: null``, as OpenAI
    sends them.
    """

    id: str
    model: str
    created: int
    include_usage: bool = False
    _started: bool = attrs.field(default=False, init=False)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    @property
    def started(self) -> bool:
        """Whether the role chunk went out (every chunk after it is one event's)."""
        return self._started

    def text_chunk(self, text: str) -> dict[str, Any]:
        """The chunk of a piece of answer text."""
        return self._chunk({"content": text})

    def start(self) -> list[dict[str, Any]]:
        """The role chunk, once."""
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def encode(self, event: StreamEvent) -> list[dict[str, Any]]:
        """The chunks for one event (none for events the wire has no place for)."""
        chunks = self.start()
        if isinstance(event, TextDelta) and event.text:
            chunks.append(self.text_chunk(event.text))
        elif isinstance(event, ThinkingDelta) and event.text and not event.redacted:
            chunks.append(self._chunk({"reasoning_content": event.text}))
        elif isinstance(event, ToolCallDelta):
            call: dict[str, Any] = {"index": event.index}
            function: dict[str, Any] = {"arguments": event.arguments}
            if event.id is not None:
                call["id"] = event.id
                call["type"] = "function"
            if event.name is not None:
                function["name"] = event.name
            call["function"] = function
            chunks.append(self._chunk({"tool_calls": [call]}))
        elif isinstance(event, EndEvent):
            response = event.response
            chunks.append(self._chunk({}, _finish(response.finish_reason)))
            if self.include_usage:
                chunks.append(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "system_fingerprint": None,
                        "choices": [],
                        "usage": usage(response.usage),
                    }
                )
        # A UsageEvent adds nothing: the EndEvent's response carries the final usage.
        return chunks


def models_list(aliases: Sequence[str], created: int) -> dict[str, Any]:
    """``GET /v1/models``: OpenAI's list shape over the catalog's aliases."""
    return {"object": "list", "data": [model_object(alias, created) for alias in aliases]}


def model_object(alias: str, created: int) -> dict[str, Any]:
    """One ``model`` object, as ``GET /v1/models`` lists it and ``/v1/models/{id}`` answers."""
    return {"id": alias, "object": "model", "created": created, "owned_by": "relay"}


# ---------------------------------------------------------------------------- errors


def error_body(
    message: str, type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


@frozen
class ErrorAnswer:
    """What the client receives for an error: status, body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = attrs.field(factory=dict)


def _retry_after(seconds: float | None) -> dict[str, str]:
    wait = 1 if seconds is None or not math.isfinite(seconds) else max(1, math.ceil(seconds))
    return {"retry-after": str(wait)}


# Upstream failures that are the server's trouble, not the client's: a fixed message,
# never the provider's words (which may name upstream hosts, accounts or models).
_UPSTREAM: dict[type[ProviderError], tuple[int, str, str]] = {
    AuthenticationError: (
        502,
        "upstream_authentication_failed",
        "The upstream provider refused this server's credentials.",
    ),
    ProviderUnavailable: (502, "upstream_unavailable", "The upstream provider is unavailable."),
    MalformedResponse: (
        502,
        "upstream_malformed_response",
        "The upstream provider sent an answer that could not be read.",
    ),
    NotFoundError: (
        502,
        "upstream_not_found",
        "The upstream provider does not know the model this alias points to.",
    ),
    Timeout: (504, "upstream_timeout", "The upstream provider did not answer in time."),
}


def error_answer(error: BaseException, request_id: str, model: str = "") -> ErrorAnswer:
    """The status, OpenAI error object and headers for any error a call raised
    (``model`` is the alias the client asked for, as the server's metrics name it).

    Client mistakes keep their message (already masked by Relay); upstream and server
    failures get a fixed sentence naming the request id, so the operator can find the
    details in the server's log while nothing internal reaches the client.
    """
    if isinstance(error, WireError):
        return ErrorAnswer(
            error.status,
            error_body(error.message, "invalid_request_error", param=error.param, code=error.code),
        )
    if isinstance(error, (UnknownAlias, PluginNotInstalled)):
        unknown = getattr(error, "alias", None) or getattr(error, "provider", "")
        return ErrorAnswer(
            404,
            error_body(
                f"The model {unknown!r} does not exist on this server (GET /v1/models lists them).",
                "invalid_request_error",
                param="model",
                code="model_not_found",
            ),
        )
    if isinstance(error, RateLimitError):
        return ErrorAnswer(
            429,
            error_body(
                "The upstream provider is rate limiting this server; retry later.",
                "requests",
                code="rate_limit_exceeded",
            ),
            _retry_after(error.retry_after),
        )
    if isinstance(error, CircuitOpen):
        # Not worth retrying at once: the server will not try the upstream before then.
        return ErrorAnswer(
            503,
            error_body(
                f"The upstream provider failed repeatedly; this server stops calling it "
                f"for a while (request {request_id}).",
                "server_error",
                code="upstream_circuit_open",
            ),
            _retry_after(error.retry_after),
        )
    if isinstance(error, QuotaExceeded):
        return ErrorAnswer(
            429,
            error_body(
                "The upstream provider's quota for this server is exhausted.",
                "insufficient_quota",
                code="insufficient_quota",
            ),
        )
    if isinstance(error, ContextWindowExceeded):
        return ErrorAnswer(
            400,
            error_body(
                error.provider_message,
                "invalid_request_error",
                param="messages",
                code="context_length_exceeded",
            ),
        )
    if isinstance(error, ContentPolicyError):
        return ErrorAnswer(
            400,
            error_body(
                error.provider_message, "invalid_request_error", code="content_policy_violation"
            ),
        )
    if isinstance(error, InvalidRequestError):
        return ErrorAnswer(400, error_body(error.provider_message, "invalid_request_error"))
    if isinstance(error, CredentialError):
        # The operator's mistake, not the client's: say so, but never which reference
        # (an environment variable's name, a file's path) the server failed to resolve.
        return ErrorAnswer(
            503,
            error_body(
                f"This server has no credentials for the upstream provider of model "
                f"{model!r}; its operator must configure them (request {request_id}).",
                "server_error",
                code="upstream_credentials_missing",
            ),
        )
    for kind, (status, code, message) in _UPSTREAM.items():
        if isinstance(error, kind):
            return ErrorAnswer(
                status, error_body(f"{message} (request {request_id})", "server_error", code=code)
            )
    if isinstance(error, UnsupportedCapability):
        return ErrorAnswer(
            400, error_body(str(error), "invalid_request_error", code="unsupported_capability")
        )
    if isinstance(error, GuardrailViolation):
        return ErrorAnswer(
            400, error_body(str(error), "invalid_request_error", code="guardrail_violation")
        )
    if isinstance(error, ProviderError):  # a ProviderError subclass from a newer core
        return ErrorAnswer(
            502,
            error_body(
                f"The upstream provider failed (request {request_id}).",
                "server_error",
                code="upstream_error",
            ),
        )
    return ErrorAnswer(
        500,
        error_body(
            f"The server had an error while processing your request (request {request_id}).",
            "server_error",
        ),
    )
