"""Conversations written for other SDKs, as Relay's messages, and Relay's as OpenAI's.

Code written for the OpenAI SDK hands Relay a list of role/content dicts; code written
for Anthropic's SDK hands it content blocks. :func:`parse_messages` reads both, and
Relay's own :class:`~relay_core.types.Message` values and their plain-data form, into
one :class:`Conversation`:

- ``system`` and ``developer`` messages become the request's system prompt (several are
  joined by a blank line); a ``cache_control`` on one sets ``cache_system``.
- ``user``, ``assistant``, ``tool`` (and the legacy ``function``) messages become
  :class:`Message` values; consecutive ``tool`` messages, one per result in OpenAI's
  form, become one tool turn, and each result takes its tool's name from the call.
- Content is a string or a list of parts: OpenAI's ``text``, ``image_url`` (an http(s)
  or base64 ``data:`` URL), ``file`` (``file_data``) and ``refusal``; Anthropic's
  ``text``, ``image``, ``document``, ``tool_use``, ``tool_result``, ``thinking`` and
  ``redacted_thinking``; Relay's own parts. ``cache_control: {"type": "ephemeral"}`` on
  a part is a cache breakpoint there (``cache=True``).

A mistake is an :class:`~relay_core.errors.InvalidRequestError` naming where it is, as
``messages[3].content[1].image_url.url``, and the request's ``custom_id``.

:func:`openai_messages` and :meth:`Message.to_openai` go the other way, to the Chat
Completions ``messages`` list; reading that list back gives the same messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cattrs
from attrs import evolve, field, frozen

from relay_core.errors import InvalidRequestError
from relay_core.serialize import make_converter, validation_leaves
from relay_core.types import (
    PART_TYPES,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Request,
    ServerToolCallPart,
    ServerToolResultPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

__all__ = ["Conversation", "message_to_openai", "openai_messages", "parse_messages", "parse_system"]

Path = tuple[str | int, ...]

_NO_AUDIO = "Relay does not carry audio yet: send the audio's transcript as text"
_MESSAGE_KEYS = frozenset(
    {
        "role",
        "content",
        "name",
        "tool_calls",
        "tool_call_id",
        "function_call",
        "refusal",
        "annotations",
        "audio",
        "cache_control",
        "cache",
    }
)
_ROLES = "system, developer, user, assistant or tool"
_DATA_URL = re.compile(r"data:(?P<media>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.DOTALL)
_EPHEMERAL = {"type": "ephemeral"}


@frozen(kw_only=True)
class Conversation:
    """A conversation read by :func:`parse_messages`: the messages, and the system
    prompt its ``system``/``developer`` messages held (``None`` when none did), with
    ``cache_system`` set when one of them asked for a cache breakpoint."""

    messages: tuple[Message, ...] = field(default=())
    system: str | None = None
    cache_system: bool = False


class _Invalid(Exception):
    """A mistake inside one message: the path to it from the message, and what it is."""

    def __init__(self, at: Path, reason: str) -> None:
        super().__init__(reason)
        self.at = at
        self.reason = reason


def _render(at: Path) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in at)


# ---------------------------------------------------------------------------- reading


def parse_messages(
    value: Any, *, custom_id: str | None = None, name: str = "messages"
) -> Conversation:
    """``value``, a list of messages in OpenAI's, Anthropic's or Relay's form (see the
    module's docstring), as a :class:`Conversation`.

    ``name`` is what errors call the list (``messages[2].content``); ``custom_id`` is
    the request's, for errors. Raises :class:`InvalidRequestError`.
    """
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidRequestError(
            f"{name} must be a list of messages, not {type(value).__name__}", custom_id=custom_id
        )
    converter = _converter()
    system: list[str] = []
    cache_system = False
    messages: list[Message] = []
    tool_turn = False  # the last message came from OpenAI tool messages: results join it
    for index, item in enumerate(value):
        try:
            if isinstance(item, Mapping) and item.get("role") in ("system", "developer"):
                text, cached = _system_message(item)
                system.append(text)
                cache_system = cache_system or cached
                tool_turn = False
                continue
            message = converter.structure(item, Message)
        except _Invalid as error:
            raise InvalidRequestError(
                f"{name}[{index}]{_render(error.at)}: {error.reason}", custom_id=custom_id
            ) from None
        # OpenAI sends each tool result as a message; one turn of results is one message.
        is_result = isinstance(item, Mapping) and (
            (item.get("role") == "tool" and "tool_call_id" in item)
            or item.get("role") == "function"
        )
        if is_result and tool_turn:
            last = messages[-1]
            messages[-1] = Message(
                "tool", (*last.content, *message.content), cache=last.cache or message.cache
            )
        else:
            messages.append(message)
        tool_turn = is_result
    return Conversation(
        messages=_named_results(messages),
        system="\n\n".join(system) if system else None,
        cache_system=cache_system,
    )


def parse_system(value: Any, *, custom_id: str | None = None) -> tuple[str, bool]:
    """A system prompt given as text or as content blocks (Anthropic's ``system``
    list), as its text and whether a block asked for a cache breakpoint."""
    try:
        return _system_content(value, ())
    except _Invalid as error:
        raise InvalidRequestError(
            f"system{_render(error.at)}: {error.reason}", custom_id=custom_id
        ) from None


def _named_results(messages: list[Message]) -> tuple[Message, ...]:
    # OpenAI's tool messages carry no name; providers that want one (Gemini) get the
    # name of the call they answer.
    names: dict[str, str] = {}
    named: list[Message] = []
    for message in messages:
        parts: list[Part] = []
        for part in message.content:
            if isinstance(part, ToolCallPart):
                names[part.id] = part.name
            elif (
                isinstance(part, ToolResultPart)
                and part.name is None
                and part.tool_call_id in names
            ):
                part = evolve(part, name=names[part.tool_call_id])
            parts.append(part)
        named.append(Message(message.role, tuple(parts), cache=message.cache))
    return tuple(named)


_built: cattrs.Converter | None = None


def _converter() -> cattrs.Converter:
    # A private converter: Relay's own (for Relay's part dicts), plus a Message hook
    # that reads every form. Built on first use, as configuring unions costs a cold start.
    global _built
    if _built is None:
        converter = make_converter()
        relay_part = converter.get_structure_hook(Part)

        def message_hook(value: Any, _: type) -> Message:
            return _message(value, lambda block, at: _relay_part(relay_part, block, at))

        converter.register_structure_hook(Message, message_hook)
        _built = converter
    return _built


def _relay_part(hook: Any, block: Mapping[str, Any], at: Path) -> Part:
    try:
        part: Part = hook(dict(block), Part)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as error:
        reasons = []
        for inner, leaf in validation_leaves(error):
            text = "missing" if isinstance(leaf, KeyError) else str(leaf) or type(leaf).__name__
            reasons.append(f"{_render(inner).lstrip('.')}: {text}" if inner else text)
        raise _Invalid(at, "; ".join(reasons)) from None
    return part


def _system_message(item: Mapping[str, Any]) -> tuple[str, bool]:
    text, cached = _system_content(item.get("content"), ("content",))
    return text, cached or _cache(item, ())


def _system_content(content: Any, at: Path) -> tuple[str, bool]:
    if isinstance(content, str):
        return content, False
    if not isinstance(content, list):
        raise _Invalid(at, f"expected text or a list of text parts, not {_kind(content)}")
    texts: list[str] = []
    cached = False
    for index, block in enumerate(content):
        here = (*at, index)
        if isinstance(block, str):
            texts.append(block)
            continue
        if not isinstance(block, Mapping) or block.get("type", "text") != "text":
            raise _Invalid(here, "a system prompt holds text only")
        texts.append(_string(block, "text", here))
        cached = cached or _cache(block, here)
    return "\n\n".join(texts), cached


def _message(value: Any, relay_part: Any) -> Message:
    if isinstance(value, Message):
        return value
    if not isinstance(value, Mapping):
        raise _Invalid(
            (), f"expected a message (a mapping with role and content), not {_kind(value)}"
        )
    unknown = sorted(str(key) for key in value if key not in _MESSAGE_KEYS)
    if unknown:
        raise _Invalid(
            (unknown[0],), "unknown field; a message has role, content, tool_calls, tool_call_id"
        )
    if value.get("audio") is not None:
        raise _Invalid(("audio",), _NO_AUDIO)
    role: Any = value.get("role")
    cache = _cache(value, ()) or _flag(value, "cache", ())
    if role == "user":
        parts, cache_last = _content(value.get("content"), ("content",), relay_part)
        if parts and all(isinstance(p, ToolResultPart) for p in parts):
            role = "tool"  # Anthropic sends tool results in a user turn
    elif role == "assistant":
        parts, cache_last = _assistant(value, relay_part)
    elif role == "tool":
        if "tool_call_id" in value:
            parts, cache_last = [_openai_tool_result(value)], False
        else:
            parts, cache_last = _content(value.get("content"), ("content",), relay_part)
    elif role == "function":
        function = _string(value, "name", ())
        content = _text_content(value.get("content"), ("content",))[0]
        parts, cache_last = [ToolResultPart(function, content, function)], False
        role = "tool"
    elif role is None:
        raise _Invalid(("role",), f"missing; expected {_ROLES}")
    else:
        raise _Invalid(("role",), f"unknown role {role!r}; expected {_ROLES}")
    return Message(role, tuple(parts), cache=cache or cache_last)


def _content(content: Any, at: Path, relay_part: Any) -> tuple[list[Part], bool]:
    """The parts of ``content``, and whether a part that cannot carry a breakpoint
    asked for one at the end of the message (the message's ``cache`` then)."""
    if isinstance(content, str):
        return [TextPart(content)], False
    if isinstance(content, PART_TYPES):
        return [content], False  # type: ignore[list-item]
    if isinstance(content, Mapping):
        content = [content]
    if not isinstance(content, (list, tuple)):
        what = "missing" if content is None else f"not {_kind(content)}"
        raise _Invalid(at, f"expected text or a list of parts, {what}")
    parts: list[Part] = []
    cache_last = False
    for index, block in enumerate(content):
        part, cache = _part(block, (*at, index), relay_part)
        if cache and not hasattr(part, "cache"):
            if index != len(content) - 1:
                raise _Invalid(
                    (*at, index, "cache_control"),
                    f"a {part.TAG} part cannot carry a cache breakpoint but at the "
                    "end of its message",
                )
            cache_last = True
        parts.append(part)
    return parts, cache_last


def _part(block: Any, at: Path, relay_part: Any) -> tuple[Part, bool]:
    if isinstance(block, PART_TYPES):
        return block, False  # type: ignore[return-value]
    if isinstance(block, str):
        return TextPart(block), False
    if not isinstance(block, Mapping):
        raise _Invalid(at, f"expected a part (a mapping with a type), not {_kind(block)}")
    kind = block.get("type")
    cache = _cache(block, at)
    reader = _READERS.get(kind) if isinstance(kind, str) else None
    part: Part | None = None
    if reader is not None:
        part = reader(block, at)
    elif kind == "input_audio":
        raise _Invalid(at, _NO_AUDIO)
    elif kind is not None and kind not in _RELAY_TAGS:
        raise _Invalid(
            (*at, "type"), f"unknown part type {kind!r}; expected one of {', '.join(_KNOWN)}"
        )
    if part is None:  # Relay's own form of the part
        part = relay_part(block, at)
    if cache and hasattr(part, "cache"):
        part = evolve(part, cache=True)
    return part, cache


def _text(block: Mapping[str, Any], at: Path) -> Part | None:
    if set(block) - {"type", "text", "cache_control", "cache"}:
        return None  # Relay's own, with a signature or citations
    return TextPart(_string(block, "text", at), cache=_flag(block, "cache", at))


def _refusal(block: Mapping[str, Any], at: Path) -> Part:
    return TextPart(_string(block, "refusal", at))


def _image_url(block: Mapping[str, Any], at: Path) -> Part:
    image = block.get("image_url")
    here = (*at, "image_url")
    if isinstance(image, str):
        image = {"url": image}
    if not isinstance(image, Mapping):
        raise _Invalid(here, f"expected an object with a url, not {_kind(image)}")
    url = _string(image, "url", here)
    detail = image.get("detail")
    if detail not in (None, "auto", "low", "high"):
        raise _Invalid((*here, "detail"), f"expected auto, low or high, not {detail!r}")
    if url.startswith("data:"):
        media_type, data = _data_url(url, (*here, "url"))
        return ImagePart(data=data, media_type=media_type or "image/png", detail=detail)
    if not url.startswith(("http://", "https://")):
        raise _Invalid((*here, "url"), "expected an http(s) URL or a base64 data: URL")
    return ImagePart(url=url, detail=detail)


def _file(block: Mapping[str, Any], at: Path) -> Part:
    file = block.get("file")
    here = (*at, "file")
    if not isinstance(file, Mapping):
        raise _Invalid(here, f"expected an object with file_data, not {_kind(file)}")
    if file.get("file_id") is not None:
        raise _Invalid(
            (*here, "file_id"),
            "a file_id names a file uploaded to OpenAI, which Relay cannot send to "
            "another provider: send the file's content as file_data",
        )
    data = _string(file, "file_data", here)
    name = file.get("filename")
    if name is not None and not isinstance(name, str):
        raise _Invalid((*here, "filename"), f"expected text, not {_kind(name)}")
    if data.startswith("data:"):
        media_type, content = _data_url(data, (*here, "file_data"))
    else:
        media_type, content = "", _base64(data, (*here, "file_data"))
    return DocumentPart(data=content, media_type=media_type or "application/pdf", name=name)


def _image(block: Mapping[str, Any], at: Path) -> Part | None:
    source = _source(block, at)
    if source is None:
        return None  # Relay's own ImagePart
    kind, value, media_type = source
    if kind == "url":
        return ImagePart(url=value)
    return ImagePart(data=_base64(value, (*at, "source", "data")), media_type=media_type)


def _document(block: Mapping[str, Any], at: Path) -> Part | None:
    source = _source(block, at)
    if source is None:
        return None  # Relay's own DocumentPart
    kind, value, media_type = source
    title = block.get("title")
    name = title if isinstance(title, str) else None
    if kind == "url":
        return DocumentPart(url=value, name=name)
    if kind == "text":
        return DocumentPart(
            data=value.encode("utf-8"), media_type=media_type or "text/plain", name=name
        )
    data = _base64(value, (*at, "source", "data"))
    return DocumentPart(data=data, media_type=media_type or "application/pdf", name=name)


def _source(block: Mapping[str, Any], at: Path) -> tuple[str, str, str] | None:
    """An Anthropic ``source``: its type, its URL, base64 data or text, and media type."""
    if "source" not in block:
        return None
    source = block["source"]
    here = (*at, "source")
    if not isinstance(source, Mapping):
        raise _Invalid(here, f"expected an object, not {_kind(source)}")
    kind = source.get("type")
    media_type = source.get("media_type") or ""
    if not isinstance(media_type, str):
        raise _Invalid((*here, "media_type"), f"expected text, not {_kind(media_type)}")
    if kind == "url":
        return kind, _string(source, "url", here), media_type
    if kind == "base64":
        return kind, _string(source, "data", here), media_type
    if kind == "text" and block.get("type") == "document":
        return kind, _string(source, "data", here), media_type
    raise _Invalid(
        (*here, "type"),
        f"Relay reads a base64, url or (for documents) text source, not {kind!r}",
    )


def _tool_use(block: Mapping[str, Any], at: Path) -> Part:
    arguments = block.get("input", {})
    if not isinstance(arguments, Mapping):
        raise _Invalid((*at, "input"), f"expected an object, not {_kind(arguments)}")
    return ToolCallPart(_string(block, "id", at), _string(block, "name", at), dict(arguments))


def _tool_result(block: Mapping[str, Any], at: Path) -> Part | None:
    if "tool_use_id" not in block:
        return None  # Relay's own ToolResultPart
    content = _text_content(block.get("content"), (*at, "content"))[0]
    return ToolResultPart(
        _string(block, "tool_use_id", at), content, is_error=_flag(block, "is_error", at)
    )


def _thinking(block: Mapping[str, Any], at: Path) -> Part | None:
    if "thinking" not in block:
        return None  # Relay's own ThinkingPart
    signature = block.get("signature")
    return ThinkingPart(
        _string(block, "thinking", at), signature if isinstance(signature, str) else None
    )


def _redacted_thinking(block: Mapping[str, Any], at: Path) -> Part:
    return ThinkingPart("", _string(block, "data", at), redacted=True)


_READERS: dict[str, Any] = {
    "text": _text,
    "refusal": _refusal,
    "image_url": _image_url,
    "file": _file,
    "image": _image,
    "document": _document,
    "tool_use": _tool_use,
    "tool_result": _tool_result,
    "thinking": _thinking,
    "redacted_thinking": _redacted_thinking,
}
_RELAY_TAGS = frozenset(cls.TAG for cls in PART_TYPES)  # type: ignore[attr-defined]
_KNOWN = sorted({*_READERS, *_RELAY_TAGS})


def _assistant(value: Mapping[str, Any], relay_part: Any) -> tuple[list[Part], bool]:
    content = value.get("content")
    parts, cache_last = (
        ([], False) if content is None else _content(content, ("content",), relay_part)
    )
    refusal = value.get("refusal")
    if not parts and isinstance(refusal, str) and refusal:
        parts.append(TextPart(refusal))
    calls = value.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise _Invalid(("tool_calls",), f"expected a list, not {_kind(calls)}")
        parts.extend(_tool_call(call, ("tool_calls", index)) for index, call in enumerate(calls))
    legacy = value.get("function_call")
    if legacy is not None:
        if not isinstance(legacy, Mapping):
            raise _Invalid(("function_call",), f"expected an object, not {_kind(legacy)}")
        # The legacy form has no call id: the function's name stands in for it, and the
        # "function" message answering it uses the same.
        function = _string(legacy, "name", ("function_call",))
        arguments = _arguments(legacy.get("arguments"), ("function_call", "arguments"))
        parts.append(ToolCallPart(function, function, arguments))
    return parts, cache_last


def _tool_call(call: Any, at: Path) -> Part:
    if not isinstance(call, Mapping):
        raise _Invalid(at, f"expected a tool call object, not {_kind(call)}")
    if call.get("type", "function") != "function":
        raise _Invalid((*at, "type"), f"Relay sends function tool calls, not {call['type']!r}")
    function = call.get("function")
    if not isinstance(function, Mapping):
        raise _Invalid((*at, "function"), f"expected an object, not {_kind(function)}")
    arguments = _arguments(function.get("arguments"), (*at, "function", "arguments"))
    return ToolCallPart(
        _string(call, "id", at), _string(function, "name", (*at, "function")), arguments
    )


def _arguments(value: Any, at: Path) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, str):
        raise _Invalid(at, f"expected a JSON object as text, not {_kind(value)}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise _Invalid(at, f"not JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(parsed, dict):
        raise _Invalid(at, f"expected a JSON object, not {_kind(parsed)}")
    return parsed


def _openai_tool_result(value: Mapping[str, Any]) -> Part:
    content, cache = _text_content(value.get("content"), ("content",))
    return ToolResultPart(_string(value, "tool_call_id", ()), content, cache=cache)


def _text_content(content: Any, at: Path) -> tuple[str, bool]:
    """A tool result's content: text, or text blocks (joined), and whether a block
    asked for a cache breakpoint."""
    if content is None:
        return "", False
    if isinstance(content, str):
        return content, False
    if not isinstance(content, list):
        raise _Invalid(at, f"expected text or a list of text parts, not {_kind(content)}")
    texts: list[str] = []
    cached = False
    for index, block in enumerate(content):
        here = (*at, index)
        if not isinstance(block, Mapping) or block.get("type", "text") != "text":
            raise _Invalid(here, "Relay's tool results carry text only")
        texts.append(_string(block, "text", here))
        cached = cached or _cache(block, here)
    return "".join(texts), cached


def _data_url(url: str, at: Path) -> tuple[str, bytes]:
    match = _DATA_URL.fullmatch(url)
    if match is None or "base64" not in match["params"].split(";"):
        raise _Invalid(at, "expected a base64 data: URL (data:<media type>;base64,<data>)")
    return match["media"], _base64(match["data"], at)


def _base64(text: str, at: Path) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid(at, "not valid base64") from None


def _string(mapping: Mapping[str, Any], key: str, at: Path) -> str:
    value = mapping.get(key)
    if not isinstance(value, str):
        what = "missing" if value is None else f"expected text, not {_kind(value)}"
        raise _Invalid((*at, key), what)
    return value


def _flag(mapping: Mapping[str, Any], key: str, at: Path) -> bool:
    value = mapping.get(key, False)
    if not isinstance(value, bool):
        raise _Invalid((*at, key), f"expected true or false, not {value!r}")
    return value


def _cache(mapping: Mapping[str, Any], at: Path) -> bool:
    control = mapping.get("cache_control")
    if control is None:
        return False
    if not isinstance(control, Mapping) or control.get("type") != "ephemeral":
        raise _Invalid((*at, "cache_control"), 'expected {"type": "ephemeral"}')
    return True


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# ---------------------------------------------------------------------------- writing


def openai_messages(
    conversation: Request | Iterable[Message], *, system: str | None = None
) -> list[dict[str, Any]]:
    """A request's system prompt and messages (or ``system`` and the messages given) as
    the Chat Completions ``messages`` list; :func:`parse_messages` reads it back.

    Cache breakpoints travel as ``cache_control`` (the form LiteLLM and Anthropic's
    OpenAI-compatible endpoint read); thinking and the records of tools a provider ran
    itself are left out, as Chat Completions has no place for them.
    """
    cache_system = False
    if isinstance(conversation, Request):
        system, cache_system = conversation.system, conversation.cache_system
        conversation = conversation.messages
    out: list[dict[str, Any]] = []
    if system is not None:
        if cache_system:
            text: dict[str, Any] = {"type": "text", "text": system, "cache_control": _EPHEMERAL}
            out.append({"role": "system", "content": [text]})
        else:
            out.append({"role": "system", "content": system})
    for message in conversation:
        out.extend(message_to_openai(message))
    return out


def message_to_openai(message: Message) -> list[dict[str, Any]]:
    """``message`` as Chat Completions messages: one, or one per tool result (OpenAI
    sends each result as a message of its own) before the message's other content."""
    results: list[dict[str, Any]] = []
    rest: list[Part] = []
    for part in message.content:
        if isinstance(part, ToolResultPart):
            results.append(_openai_result(part))
        elif not isinstance(part, (ThinkingPart, ServerToolCallPart, ServerToolResultPart)):
            rest.append(part)
    out = results
    if message.role == "assistant":
        if rest or not results:
            out.append(_openai_assistant(rest))
    elif rest or not results:
        out.append({"role": "user", "content": _openai_content(rest)})
    if message.cache and out:
        out[-1]["cache_control"] = _EPHEMERAL
    return out


def _openai_result(part: ToolResultPart) -> dict[str, Any]:
    content: Any = part.content
    if part.cache:
        content = [{"type": "text", "text": part.content, "cache_control": _EPHEMERAL}]
    return {"role": "tool", "tool_call_id": part.tool_call_id, "content": content}


def _openai_assistant(parts: list[Part]) -> dict[str, Any]:
    calls = [p for p in parts if isinstance(p, ToolCallPart)]
    others = [p for p in parts if not isinstance(p, ToolCallPart)]
    if any(not isinstance(p, TextPart) for p in others):
        raise InvalidRequestError(
            "an assistant message in OpenAI's form carries only text and tool calls"
        )
    message: dict[str, Any] = {"role": "assistant"}
    message["content"] = _openai_content(others) if others else None
    if calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in calls
        ]
    return message


def _openai_content(parts: Sequence[Part]) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and isinstance(parts[0], TextPart) and not parts[0].cache:
        return parts[0].text
    return [_openai_part(part) for part in parts]


def _openai_part(part: Part) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(part, TextPart):
        out = {"type": "text", "text": part.text}
    elif isinstance(part, ImagePart):
        url = part.url if part.url is not None else _data(part.media_type, part.base64())
        image: dict[str, Any] = {"url": url}
        if part.detail is not None:
            image["detail"] = part.detail
        out = {"type": "image_url", "image_url": image}
    elif isinstance(part, DocumentPart):
        if part.data is None:
            raise InvalidRequestError(
                "OpenAI's chat messages take a document's content only, not its URL"
            )
        file: dict[str, Any] = {"file_data": _data(part.media_type, part.base64())}
        if part.name is not None:
            file["filename"] = part.name
        out = {"type": "file", "file": file}
    else:
        raise InvalidRequestError(f"a user message in OpenAI's form cannot carry a {part.TAG} part")
    if part.cache:
        out["cache_control"] = _EPHEMERAL
    return out


def _data(media_type: str | None, text: str) -> str:
    return f"data:{media_type or 'image/png'};base64,{text}"
