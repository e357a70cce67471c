"""What a stream has sent so far, for what its end must count (spend, tokens per
minute) when the client cuts it short."""

from __future__ import annotations

import attrs

from relay_core.plugin import (
    EndEvent,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)

__all__ = ["StreamTally"]


@attrs.define
class StreamTally:
    """What a stream has sent so far: characters of output, and the last usage the
    upstream reported."""

    chars: int = 0
    usage: Usage | None = None
    #: The whole answer was recorded: a cut now is no second record.
    recorded: bool = False

    def feed(self, event: StreamEvent) -> None:
        if isinstance(event, (TextDelta, ThinkingDelta)):
            self.chars += len(event.text)
        elif isinstance(event, ToolCallDelta):
            self.chars += len(event.arguments or "") + len(event.name or "")
        elif isinstance(event, UsageEvent):
            self.usage = event.usage
        elif isinstance(event, EndEvent):
            self.usage = event.response.usage
