"""Scenarios that public recordings of Anthropic's API show and the first cassettes
lacked: a stream whose usage reports prompt-cache reads, where ``message_delta`` repeats
the input and cache counts next to the output count. Each cassette follows the recording
that cassettes/relay-anthropic/README.md names for it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from anthropic_support import MODEL

from relay_core import EndEvent, Hub, TextDelta, Usage, UsageEvent

Cassette = Callable[[str], AbstractContextManager[Any]]


def test_a_streamed_cache_read_counts_once(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("stream_cache_read"):
        events = list(
            make_hub().stream(
                f"anthropic/{MODEL}",
                "What is the capital of France? One word.",
                system="You are terse.",
            )
        )
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris."
    # Anthropic's input_tokens leave the cache read out; Relay's include it, once, even
    # though message_start and message_delta both report it.
    total = Usage(input_tokens=2062, output_tokens=5, cached_input_tokens=2048)
    assert [e.usage for e in events if isinstance(e, UsageEvent)][-1] == total
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert (end.response.usage, end.response.finish_reason) == (total, "stop")
