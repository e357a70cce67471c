"""Token counts of a prompt: exact where the provider can count, estimated otherwise.

:func:`estimate_tokens` is Relay's one estimate, used wherever a count must be free and
immediate: routing's prompt size, the guardrails' ``max_input_tokens`` and cost ceiling,
the batch limits, and ``hub.count_tokens`` for a provider that cannot count.
"""

from __future__ import annotations

import json
from typing import Literal

import attrs
from attrs import frozen

from relay_core.types import DocumentPart, ImagePart, Request, TextPart, ThinkingPart

__all__ = ["TokenCount", "estimate_text_tokens", "estimate_tokens"]

# Per image or document: the order of what providers charge for one (a 512x512 image is
# 255 tokens at OpenAI's high detail, Claude charges about (width*height)/750).
_PER_ATTACHMENT = 256
# The role and the provider's framing of one message.
_PER_MESSAGE_CHARS = 16


@frozen(kw_only=True)
class TokenCount:
    """How many input tokens a prompt is.

    ``exact`` is true when the provider counted (Anthropic's and Gemini's count
    endpoints) or its own tokenizer did (``tiktoken`` for OpenAI models); an estimate
    says so, and ``method`` says how it was made. ``reason`` says why a count is an
    estimate when the provider could have counted (``pip install relay-openai[tokens]``).
    """

    tokens: int
    exact: bool
    method: Literal["provider", "tokenizer", "estimate"]
    model: str = ""
    provider: str = ""
    reason: str = ""


def _json_chars(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str))


def estimate_text_tokens(text: str) -> int:
    """A cheap guess of one text's tokens: about four characters a token, rounded up
    (what :attr:`~relay_core.providers.EmbeddingLimits.max_tokens` is measured by)."""
    return -(-len(text) // 4)


def estimate_tokens(request: Request) -> int:
    """A cheap guess of a request's input tokens, leaning high and without I/O: about
    four characters per token of text, a flat 256 tokens per image or document, tool
    calls, tool results and tool definitions as their JSON."""
    chars = len(request.system or "")
    for message in request.messages:
        chars += _PER_MESSAGE_CHARS
        for part in message.content:
            if isinstance(part, (TextPart, ThinkingPart)):
                chars += len(part.text)
            elif isinstance(part, (ImagePart, DocumentPart)):
                chars += 4 * _PER_ATTACHMENT
            else:
                chars += _json_chars(attrs.asdict(part))
    for tool in request.tools:
        chars += _json_chars(attrs.asdict(tool))
    return chars // 4 + 1
