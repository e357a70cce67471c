"""The mock's "server": what a model would answer, written as a provider-style JSON body.

All of it is a pure function of the request, and everything that varies between answers
(tool-call ids, generated arguments and JSON, signatures) is derived from the request's
fingerprint, so the same request gets the same body in every process. The adapter in
:mod:`relay_mock._provider` reads these bodies as it would read a real provider's.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from relay_core.plugin import (
    DocumentPart,
    ImagePart,
    InvalidRequestError,
    Message,
    Part,
    Request,
    ServerToolCallPart,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from relay_mock._schema import SchemaError, generate
from relay_mock._script import Script, ScriptedCall

__all__ = ["DOCUMENT_TOKENS", "IMAGE_TOKENS", "MESSAGE_TOKENS", "compose", "count_tokens"]

# Fixed token prices of attachments and per-message framing, as real tokenizers charge.
IMAGE_TOKENS = 85
DOCUMENT_TOKENS = 250
MESSAGE_TOKENS = 3
THINKING_MODEL = "think"

# One token per word or punctuation mark: close enough to BPE counts to look real, and
# exact to truncate at.
_TOKEN = re.compile(r"\w+|[^\w\s]")
_AUTO_CHOICES = (None, "auto", "required", "any")
_REFLECTIONS = (
    "Let me check that nothing in the request is missed.",
    "The answer should be exact and short.",
    "Everything is in place, so I can answer now.",
)
_EFFORT_REFLECTIONS = {"minimal": 0, "low": 1, "medium": 2, "high": 3}


def count_tokens(text: str) -> int:
    """The mock's token count of ``text``: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def _truncate(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut after its ``limit``-th token, and whether anything was cut."""
    for index, match in enumerate(_TOKEN.finditer(text)):
        if index == limit:
            return text[: match.start()].rstrip(), True
    return text, False


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def compose(request: Request, script: Script) -> dict[str, Any]:
    """The provider-style body of the answer to ``request``."""
    fingerprint = request.fingerprint()
    results = _pending_results(request.messages)
    calls: list[ScriptedCall] = []
    text = script.reply or ""
    if not results:
        if script.tool_calls:
            calls = list(script.tool_calls)
        elif script.reply is None and request.tools and request.tool_choice != "none":
            tool = _pick_tool(request)
            arguments = _generate(
                tool.parameters, f"{fingerprint}:{tool.name}", f"tool {tool.name!r} parameters"
            )
            last = _last_user(request.messages)
            names = _proper_nouns(last.text if last else "")
            calls = [ScriptedCall(tool.name, _with_names(tool.parameters, arguments, names))]
    if script.reply is None and not calls:
        if request.response_schema is not None:
            value = _generate(request.response_schema.schema, fingerprint, "response_schema")
            text = json.dumps(value, ensure_ascii=False)
        elif results:
            text = _about_results(request.messages, results)
        else:
            text = _echo(request.messages)
    thinking = _thinking(request, calls, results) if _thinks(request) else ""

    stop_sequence = None
    hits = sorted((text.find(s), s) for s in request.config.stop or () if s and s in text)
    if hits:
        position, stop_sequence = hits[0]
        text = text[:position]
    # max_tokens bounds the whole output in the order it is produced; a tool call that
    # does not fit is dropped whole, as a cut call would be useless.
    cut = False
    budget = request.config.max_tokens
    if budget is not None:
        thinking, cut_thinking = _truncate(thinking, budget)
        budget -= count_tokens(thinking)
        text, cut_text = _truncate(text, budget)
        budget -= count_tokens(text)
        kept = []
        for call in calls:
            if _call_tokens(call) > budget:
                cut = True
                break
            budget -= _call_tokens(call)
            kept.append(call)
        calls = kept
        cut = cut or cut_thinking or cut_text

    blocks: list[dict[str, Any]] = []
    if thinking:
        signature = "mocksig_" + _digest("signature", fingerprint, thinking)[:32]
        blocks.append({"type": "thinking", "thinking": thinking, "signature": signature})
    if text:
        blocks.append({"type": "text", "text": text})
    for index, call in enumerate(calls):
        call_id = call.id or "call_" + _digest(fingerprint, str(index))[:24]
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        blocks.append(
            {"type": "tool_call", "id": call_id, "name": call.name, "arguments": arguments}
        )
    if cut:
        stop_reason = "max_tokens"
    elif calls:
        stop_reason = "tool_use"
    else:
        stop_reason = "stop_sequence" if stop_sequence is not None else "end_turn"
    reasoning = count_tokens(thinking)
    return {
        "id": "mockmsg_" + fingerprint[:24],
        "object": "mock.message",
        "model": request.model,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {
            "input_tokens": _input_tokens(request),
            "output_tokens": reasoning + count_tokens(text) + sum(map(_call_tokens, calls)),
            "reasoning_tokens": reasoning,
        },
    }


# A capitalised word that does not start a sentence: "weather in Paris" gives "Paris".
_PROPER_NOUN = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s[A-Z][a-z]+)*")


def _proper_nouns(text: str) -> list[str]:
    return _PROPER_NOUN.findall(text.strip())


def _with_names(schema: Mapping[str, Any], arguments: Any, names: list[str]) -> Any:
    """Put the prompt's proper nouns into free-text string arguments, in order, as a model
    would ("weather in Paris" → ``{"city": "Paris"}``). Constrained strings keep their
    generated values, so the arguments stay valid against the schema."""
    if not names or not isinstance(arguments, dict):
        return arguments
    properties = schema.get("properties") or {}
    filled = dict(arguments)
    pending = iter(names)
    for key in arguments:
        spec = properties.get(key) or {}
        if spec.get("type") != "string" or any(
            k in spec for k in ("enum", "const", "format", "pattern")
        ):
            continue
        name = next(pending, None)
        if name is None:
            break
        if spec.get("minLength", 0) <= len(name) <= spec.get("maxLength", len(name)):
            filled[key] = name
    return filled


def _generate(schema: Mapping[str, Any], seed: str, what: str) -> Any:
    try:
        return generate(schema, seed)
    except SchemaError as error:
        raise InvalidRequestError(f"{what}: {error}") from error


def _pending_results(messages: Sequence[Message]) -> list[ToolResultPart]:
    """Tool results the model has not answered yet: those since the user last spoke.

    Results may come in ``tool`` messages (Relay's form) or inside a user message (the
    Anthropic form), so the turn starts at the last user message without results.
    """
    results: list[ToolResultPart] = []
    for message in reversed(messages):
        found = [p for p in message.content if isinstance(p, ToolResultPart)]
        results[:0] = found
        if message.role == "user" and not found:
            break
    return results


def _last_user(messages: Sequence[Message]) -> Message | None:
    return next((m for m in reversed(messages) if m.role == "user"), None)


def _echo(messages: Sequence[Message]) -> str:
    message = _last_user(messages) or messages[-1]
    images = sum(isinstance(p, ImagePart) for p in message.content)
    documents = sum(isinstance(p, DocumentPart) for p in message.content)
    notes = [
        f"{n} {word}{'s' if n > 1 else ''}"
        for n, word in ((images, "image"), (documents, "document"))
        if n
    ]
    if not notes:
        return message.text
    note = f"[received {' and '.join(notes)}]"
    return f"{message.text} {note}" if message.text else note


def _about_results(messages: Sequence[Message], results: Sequence[ToolResultPart]) -> str:
    names = {call.id: call.name for message in messages for call in message.tool_calls}
    said = []
    for result in results:
        name = result.name or names.get(result.tool_call_id, result.tool_call_id)
        said.append(f"{name} {'failed with' if result.is_error else 'returned'} {result.content}")
    return f"Based on the tool results: {'; '.join(said)}."


def _pick_tool(request: Request) -> Tool:
    choice = request.tool_choice
    if choice not in _AUTO_CHOICES:
        for tool in request.tools:
            if tool.name == choice:
                return tool
        names = ", ".join(tool.name for tool in request.tools)
        raise InvalidRequestError(f"tool_choice {choice!r} names none of the tools ({names})")
    # The tool the user's message names first, else the first tool: what a model asked
    # "use get_weather" would pick.
    user = _last_user(request.messages)
    said = user.text if user else ""
    named = [
        (match.start(), tool)
        for tool in request.tools
        if (match := re.search(rf"(?<!\w){re.escape(tool.name)}(?!\w)", said))
    ]
    return min(named, key=lambda pair: pair[0])[1] if named else request.tools[0]


def _thinks(request: Request) -> bool:
    config = request.config
    return request.model == THINKING_MODEL or config.thinks


def _thinking(request: Request, calls: Sequence[ScriptedCall], results: Sequence[Any]) -> str:
    user = _last_user(request.messages)
    asked = user.text if user else ""
    if len(asked) > 80:
        asked = asked[:77] + "..."
    lines = [f"The user wrote: {asked!r}."]
    if calls:
        lines.append(f"I should call {', '.join(call.name for call in calls)} first.")
    elif results:
        lines.append("The tool results are in; I will report them.")
    elif request.response_schema is not None:
        lines.append(f"I must answer with JSON valid against {request.response_schema.name!r}.")
    else:
        lines.append("I will repeat the message back, as an echo does.")
    effort = request.config.reasoning_effort()
    lines += _REFLECTIONS[: _EFFORT_REFLECTIONS.get(effort or "", 1)]
    thinking = " ".join(lines)
    budget = request.config.reasoning
    if isinstance(budget, int):
        thinking = _truncate(thinking, budget)[0]
    return thinking


def _call_tokens(call: ScriptedCall) -> int:
    return count_tokens(call.name) + count_tokens(json.dumps(call.arguments, ensure_ascii=False))


def _part_tokens(part: Part) -> int:
    if isinstance(part, (TextPart, ThinkingPart)):
        return count_tokens(part.text)
    if isinstance(part, ImagePart):
        return IMAGE_TOKENS
    if isinstance(part, DocumentPart):
        return DOCUMENT_TOKENS
    if isinstance(part, (ToolCallPart, ServerToolCallPart)):
        return count_tokens(part.name) + count_tokens(json.dumps(part.arguments))
    if isinstance(part, ToolResultPart):
        return count_tokens(part.content)
    return count_tokens(json.dumps(part.content, ensure_ascii=False))


def _input_tokens(request: Request) -> int:
    total = count_tokens(request.system or "")
    for message in request.messages:
        total += MESSAGE_TOKENS + sum(_part_tokens(part) for part in message.content)
    for tool in request.tools:
        total += count_tokens(f"{tool.name} {tool.description} {json.dumps(tool.parameters)}")
    if request.response_schema is not None:
        total += count_tokens(json.dumps(request.response_schema.schema))
    return total
