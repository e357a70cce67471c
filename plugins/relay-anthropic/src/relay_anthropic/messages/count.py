"""``POST /messages/count_tokens``: the count endpoint's body, made from a Messages body
(so tools, the system prompt, images and documents count exactly as a call sends them),
and its answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay_core.plugin import MalformedResponse

__all__ = ["COUNTED_FIELDS", "count_payload", "parse_count"]

# What the count endpoint takes of a Messages body (Anthropic's API reference); it
# refuses the rest (max_tokens, sampling, stop_sequences, stream, metadata...) as
# unknown fields, and none of them changes the input's size.
COUNTED_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"}
)


def count_payload(message_body: Mapping[str, Any]) -> dict[str, Any]:
    """The count endpoint's body for a Messages body (``message_payload``'s)."""
    return {key: value for key, value in message_body.items() if key in COUNTED_FIELDS}


def parse_count(body: Any, *, provider: str = "anthropic", model: str | None = None) -> int:
    """The ``input_tokens`` of the endpoint's answer."""
    tokens = body.get("input_tokens") if isinstance(body, Mapping) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        raise MalformedResponse(
            "the count_tokens answer has no integer input_tokens", provider=provider, model=model
        )
    return tokens
