"""Token counts of a prompt: exact where the provider can count, estimated otherwise."""

from __future__ import annotations

from typing import Literal

from attrs import frozen

__all__ = ["TokenCount"]


@frozen(kw_only=True)
class TokenCount:
    """How many input tokens a prompt is.

    ``exact`` is true when the provider counted (Anthropic's and Gemini's count
    endpoints) or its own tokenizer did (``tiktoken`` for OpenAI models); an estimate
    says so, and ``method`` says how it was made.
    """

    tokens: int
    exact: bool
    method: Literal["provider", "tokenizer", "estimate"]
    model: str = ""
    provider: str = ""
