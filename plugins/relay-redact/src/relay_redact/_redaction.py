"""Replacing what the detectors found, in one text or in every text of a request.

A :class:`Redaction` belongs to one request: in placeholder mode it numbers values per
entity (``<EMAIL_1>``, ``<EMAIL_2>``), gives a value met again the placeholder it got
the first time, and keeps the map that restores them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

import attrs

from relay_core.plugin import (
    Message,
    Part,
    Request,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from relay_redact._detectors import Finding, find_pii

Mode = Literal["mask", "hash", "placeholder"]
MaskStyle = Literal["label", "stars"]

# Every placeholder this plugin writes has this shape; text that already holds one
# (a user quoting "<EMAIL_1>") keeps it and the numbering skips past it.
PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*)_(\d+)>")


class Redaction:
    """The replacements made in one request (and, in placeholder mode, how to undo them)."""

    def __init__(
        self,
        mode: Mode,
        *,
        find: Callable[[str], list[Finding]] = find_pii,
        salt: bytes = b"",
        mask_style: MaskStyle = "label",
        allowed: Callable[[str], bool] = lambda _: False,
        taken: Iterable[str] = (),
    ) -> None:
        self.mode = mode
        self._find = find
        self._salt = salt
        self._mask_style = mask_style
        self._allowed = allowed
        self._taken = set(taken)
        self._by_value: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self.originals: dict[str, str] = {}
        """placeholder -> original value (placeholder mode only)."""

    def text(self, text: str) -> str:
        """``text`` with every finding replaced."""
        findings = [f for f in self._find(text) if not self._allowed(f.value)]
        if not findings:
            return text
        pieces: list[str] = []
        position = 0
        for finding in findings:
            pieces.append(text[position : finding.start])
            pieces.append(self._replacement(finding))
            position = finding.end
        pieces.append(text[position:])
        return "".join(pieces)

    def value(self, value: Any) -> Any:
        """A JSON-like value (tool-call arguments) with every string in it redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                self.text(k) if isinstance(k, str) else k: self.value(v) for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(v) for v in value)
        return value

    def _replacement(self, finding: Finding) -> str:
        if self.mode == "mask":
            return f"[{finding.entity}]" if self._mask_style == "label" else "****"
        if self.mode == "hash":
            digest = hmac.new(self._salt, finding.value.encode(), hashlib.sha256).hexdigest()
            return f"<{finding.entity}:{digest[:8]}>"
        known = self._by_value.get(finding.value)
        if known is not None:
            return known
        number = self._counts.get(finding.entity, 0)
        while True:
            number += 1
            placeholder = f"<{finding.entity}_{number}>"
            if placeholder not in self._taken:
                break
        self._counts[finding.entity] = number
        self._by_value[finding.value] = placeholder
        self.originals[placeholder] = finding.value
        return placeholder

    # -- a whole request ----------------------------------------------------------------

    def request(self, request: Request) -> Request:
        """``request`` with the system prompt and every text, thinking, tool-call and
        tool-result part redacted; images, documents, tools and schemas untouched."""
        # What holds nothing to redact is kept as it is (``request`` itself when
        # nothing is found): most requests hold nothing, and copying every message and
        # part of each cost more than finding nothing did.
        system = self.text(request.system) if request.system is not None else None
        messages = tuple(self._message(m) for m in request.messages)
        if system is request.system and _same(messages, request.messages):
            return request
        return attrs.evolve(request, system=system, messages=messages)

    def _message(self, message: Message) -> Message:
        content = tuple(self._part(p) for p in message.content)
        return (
            message if _same(content, message.content) else attrs.evolve(message, content=content)
        )

    def _part(self, part: Part) -> Part:
        if isinstance(part, (TextPart, ThinkingPart)):
            if isinstance(part, ThinkingPart) and part.redacted:
                return part
            text = self.text(part.text)
            return part if text is part.text else attrs.evolve(part, text=text)
        if isinstance(part, ToolCallPart):
            arguments = self.value(part.arguments)
            return part if arguments == part.arguments else attrs.evolve(part, arguments=arguments)
        if isinstance(part, ToolResultPart):
            content = self.text(part.content)
            return part if content is part.content else attrs.evolve(part, content=content)
        return part  # images and documents: bytes and URLs are not scanned


def _same(new: tuple[Any, ...], old: tuple[Any, ...]) -> bool:
    return all(a is b for a, b in zip(new, old, strict=True))


def placeholders_in(request: Request) -> set[str]:
    """Every placeholder-shaped string already in ``request``'s texts."""
    found: set[str] = set()
    for text in texts_of(request):
        found.update(m.group(0) for m in PLACEHOLDER.finditer(text))
    return found


def texts_of(request: Request) -> Iterable[str]:
    """Every string of ``request`` that redaction looks at."""
    if request.system is not None:
        yield request.system
    for part in request.parts:
        if isinstance(part, (TextPart, ThinkingPart)):
            yield part.text
        elif isinstance(part, ToolResultPart):
            yield part.content
        elif isinstance(part, ToolCallPart):
            yield from _strings(part.arguments)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
