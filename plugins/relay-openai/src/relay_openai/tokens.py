"""Counting an OpenAI model's input tokens in process, with ``tiktoken``
(``pip install 'relay-openai[tokens]'``).

The encoding follows the model's family (``o200k_base`` for gpt-4o, gpt-4.1, gpt-4.5,
gpt-5 and the o-series; ``cl100k_base`` for gpt-4 and gpt-3.5), and a chat adds the
framing OpenAI's cookbook documents: 3 tokens around each message, 3 priming the answer.
What the documented formula does not cover (images, whose tokens differ per model,
documents, audio, tool definitions, tool calls, a response schema) is not counted here:
the hub then estimates, and says so.

tiktoken downloads an encoding's file on first use and caches it (``TIKTOKEN_CACHE_DIR``).
A machine that cannot download it can load the file itself and hand it over with
:func:`register_encoding`.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Literal, Protocol

from relay_core.plugin import Request, TextPart, ToolResultPart, UnsupportedCapability

__all__ = [
    "ENCODINGS",
    "Encoder",
    "chat_tokens",
    "encoding_for",
    "load_encoding",
    "loaded_encoding",
    "register_encoding",
]

# Encoding by model-name prefix, the longest matching prefix deciding (a fine-tune's
# ``ft:`` removed); a model matching none has no known encoding.
ENCODINGS: dict[str, str] = {
    "gpt-3.5": "cl100k_base",
    "gpt-4": "cl100k_base",
    "gpt-4o": "o200k_base",
    "chatgpt-4o": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-5": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
}
# The chat format's framing (OpenAI cookbook, "How to count tokens with tiktoken").
_PER_MESSAGE = 3
_REPLY_PRIMING = 3


class Encoder(Protocol):
    """What is used of a ``tiktoken.Encoding``."""

    @property
    def name(self) -> str:
        """The encoding's name (``o200k_base``): :func:`register_encoding` keeps it under
        this name, and a model is counted with it when :func:`encoding_for` names it."""
        ...

    def encode(
        self, text: str, *, disallowed_special: Literal["all"] | Collection[str] = ...
    ) -> list[int]:
        """The tokens of ``text``; only their number is used. Counting passes
        ``disallowed_special=()``: the text of a special token (``<|endoftext|>``) must
        be encoded as plain text, not refused. Called on the event loop, from any thread
        (one encoding serves the whole process): it must not block."""
        ...


_encodings: dict[str, Encoder] = {}
_lock = threading.Lock()


def encoding_for(model: str) -> str | None:
    """The name of ``model``'s encoding, or ``None`` for a model of no known family."""
    name = model.removeprefix("ft:")
    prefixes = [prefix for prefix in ENCODINGS if name.startswith(prefix)]
    return ENCODINGS[max(prefixes, key=len)] if prefixes else None


def register_encoding(encoding: Encoder) -> None:
    """Count with ``encoding`` for its name in this process (a ``tiktoken.Encoding``, e.g.
    built from a file with ``tiktoken.load.load_tiktoken_bpe``), instead of having
    tiktoken download it."""
    with _lock:
        _encodings[encoding.name] = encoding


def loaded_encoding(name: str) -> Encoder | None:
    """The encoding ``name`` if this process holds it already (no I/O), else ``None``."""
    return _encodings.get(name)


def load_encoding(name: str, *, provider: str = "openai", model: str | None = None) -> Encoder:
    """The encoding ``name``, loaded by tiktoken (which may download it once: call it off
    the event loop). Raises :class:`UnsupportedCapability`, saying what to do, when
    tiktoken is not installed or cannot load it."""
    held = loaded_encoding(name)
    if held is not None:
        return held
    try:
        import tiktoken
    except ImportError:
        raise UnsupportedCapability(
            provider,
            "exact token counts without tiktoken (pip install 'relay-openai[tokens]')",
            model=model,
        ) from None
    try:
        encoding: Encoder = tiktoken.get_encoding(name)
    except Exception as error:  # tiktoken raises whatever its download raised
        raise UnsupportedCapability(
            provider,
            f"exact token counts while tiktoken cannot load {name} ({type(error).__name__}; "
            "it downloads it once into TIKTOKEN_CACHE_DIR, or see register_encoding)",
            model=model,
        ) from error
    register_encoding(encoding)
    return encoding


def chat_tokens(request: Request, encoding: Encoder) -> int | None:
    """The input tokens of ``request`` as a chat, or ``None`` when it holds something the
    documented formula does not count (see the module's docstring)."""
    if request.tools or request.response_schema is not None:
        return None
    turns: list[tuple[str, list[str]]] = []
    if request.system:
        turns.append(("system", [request.system]))
    for message in request.messages:
        texts = []
        for part in message.content:
            if isinstance(part, TextPart):
                texts.append(part.text)
            elif isinstance(part, ToolResultPart):
                texts.append(part.content)
            else:
                return None
        turns.append((message.role, texts))
    total = _REPLY_PRIMING
    for role, texts in turns:
        total += _PER_MESSAGE + _length(encoding, role)
        total += sum(_length(encoding, text) for text in texts)
    return total


def _length(encoding: Encoder, text: str) -> int:
    # A special token's text in a prompt is plain text to the API, not a control token.
    return len(encoding.encode(text, disallowed_special=()))
