"""Anthropic's Messages wire format, for plugins that speak it too.

relay-bedrock sends Claude's native Messages body through Bedrock (and Converse to the
other models), so it builds on these; a plugin for another Messages-compatible host
should too. This is the public face of ``relay_anthropic._adapter``: the names below keep
their meaning across minor versions, the private module's other names do not.

- :class:`AnthropicProvider`: the adapter, to subclass (request building, parsing,
  streaming, batches).
- :class:`StructuredOutput`: structured output as a forced tool call, and the checking
  and settling of its answer.
- :func:`alternating_turns`: Relay's turns in the user/assistant alternation the API
  requires.
- :func:`thinks_by_kwargs`, :data:`THINKING_LIMITS`, :data:`FREE_CHOICES`: what extended
  thinking allows of the sampling settings and of ``tool_choice``.
- :func:`timestamp_seconds`: the API's RFC 3339 times as Unix seconds.

Importing this module imports the adapter and httpx with it: import it from an adapter
module, never from a plugin's entry point.
"""

from __future__ import annotations

from relay_anthropic._adapter import (
    FREE_CHOICES,
    THINKING_LIMITS,
    AnthropicProvider,
    StructuredOutput,
    alternating_turns,
    thinks_by_kwargs,
    timestamp_seconds,
)

__all__ = [
    "FREE_CHOICES",
    "THINKING_LIMITS",
    "AnthropicProvider",
    "StructuredOutput",
    "alternating_turns",
    "thinks_by_kwargs",
    "timestamp_seconds",
]
