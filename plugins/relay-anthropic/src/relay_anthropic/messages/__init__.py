"""Anthropic's Messages wire format, for plugins that speak it too.

relay-bedrock sends Claude's native Messages body through Bedrock (and Converse to the
other models), so it builds on these; a plugin for another Messages-compatible host
should too. The names below keep their meaning across minor versions. Each idea is a
public module of its own, and every function in them is pure (no I/O):

- :mod:`.payload`: a :class:`Request` as the body of ``POST /messages``
  (:func:`message_payload`), content blocks (:func:`block`), tools, and what extended
  thinking allows (:func:`thinking_request`, :func:`thinks_by_kwargs`,
  :data:`THINKING_LIMITS`, :data:`FREE_CHOICES`); :func:`alternating_turns` puts Relay's
  turns in the user/assistant alternation the API requires, with prompt-cache
  breakpoints where a ``mark`` puts them; :func:`check_breakpoints` refuses more than
  :data:`MAX_BREAKPOINTS` of them.
- :mod:`.parse`: a Message as a :class:`Response` (:func:`parse_message`), citations,
  server tools, usage; :func:`timestamp_seconds` reads the API's RFC 3339 times.
- :mod:`.events`: the stream's server-sent events as Relay's (:func:`message_events`).
- :mod:`.count`: the body of ``POST /messages/count_tokens`` made from a Messages body
  (:func:`count_payload`) and its answer (:func:`parse_count`).
- :mod:`.structured`: :class:`StructuredOutput`, structured output as a forced tool call,
  and the checking and settling of its answer.

:class:`AnthropicProvider`, the adapter to subclass, is offered here too; it loads (with
httpx) on first use, as these modules need neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relay_anthropic.messages.count import COUNTED_FIELDS, count_payload, parse_count
from relay_anthropic.messages.events import message_events, stream_error
from relay_anthropic.messages.parse import parse_message, timestamp_seconds
from relay_anthropic.messages.payload import (
    DEFAULT_MAX_TOKENS,
    FREE_CHOICES,
    MAX_BREAKPOINTS,
    THINKING_LIMITS,
    alternating_turns,
    block,
    breakpoints,
    check_breakpoints,
    message_payload,
    thinking_request,
    thinks_by_kwargs,
)
from relay_anthropic.messages.structured import StructuredOutput

if TYPE_CHECKING:
    from relay_anthropic._adapter import AnthropicProvider

__all__ = [
    "COUNTED_FIELDS",
    "DEFAULT_MAX_TOKENS",
    "FREE_CHOICES",
    "MAX_BREAKPOINTS",
    "THINKING_LIMITS",
    "AnthropicProvider",
    "StructuredOutput",
    "alternating_turns",
    "block",
    "breakpoints",
    "check_breakpoints",
    "count_payload",
    "message_events",
    "message_payload",
    "parse_count",
    "parse_message",
    "stream_error",
    "thinking_request",
    "thinks_by_kwargs",
    "timestamp_seconds",
]


def __getattr__(name: str) -> Any:
    # The adapter imports this package, so it is loaded when asked for, not above.
    if name == "AnthropicProvider":
        from relay_anthropic._adapter import AnthropicProvider

        return AnthropicProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
