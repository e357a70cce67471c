"""The Messages wire format is a public, pure module of its own: another plugin (Bedrock's
InvokeModel, any Messages-compatible host) builds and reads Anthropic bodies with it,
without the adapter, an HTTP client or a provider object."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from anthropic_support import MODEL, message

import relay_anthropic
from relay_anthropic import messages
from relay_core import (
    EndEvent,
    GenerationConfig,
    InvalidRequestError,
    Message,
    ResponseSchema,
    TextDelta,
    Tool,
    UsageEvent,
)
from relay_core.plugin import Request, SSEEvent

SOURCES = Path(relay_anthropic.__file__).parent


def test_the_wire_format_loads_without_the_adapter_or_httpx() -> None:
    probe = (
        "import sys, relay_anthropic.messages\n"
        "print([m for m in ('relay_anthropic._adapter', 'httpx') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_published_name_resolves_and_the_adapter_is_offered_too() -> None:
    for name in messages.__all__:
        assert getattr(messages, name) is not None, name
    from relay_anthropic._adapter import AnthropicProvider

    assert messages.AnthropicProvider is AnthropicProvider


def test_a_request_becomes_a_body_without_a_provider() -> None:
    request = Request(
        messages=[Message.user("Capital of France?")],
        model=MODEL,
        response_schema=ResponseSchema({"type": "string"}, name="city"),
    )
    body, structured = messages.message_payload(
        request, default_max_tokens=100, provider="anthropic", stream=True
    )
    assert structured is not None
    assert structured.wrapped
    assert body["max_tokens"] == 100
    assert body["stream"] is True
    assert body["tool_choice"] == {"type": "tool", "name": "city"}
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}
    ]


def test_a_stream_of_events_is_read_without_a_provider() -> None:
    answer = message([{"type": "text", "text": "Paris"}])
    sent: list[dict[str, Any]] = [
        {"type": "message_start", "message": {**answer, "content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Paris"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
        {"type": "message_stop"},
    ]

    async def events() -> AsyncIterator[SSEEvent]:
        for data in sent:
            yield SSEEvent(json.dumps(data), event=data["type"])

    async def read() -> list[object]:
        stream = messages.message_events(
            events(), None, provider="anthropic", model=MODEL, rules=()
        )
        return [event async for event in stream]

    got = asyncio.run(read())
    assert [type(e) for e in got] == [UsageEvent, TextDelta, UsageEvent, EndEvent]
    end = got[-1]
    assert isinstance(end, EndEvent)
    assert end.response == messages.parse_message(answer, None, provider="anthropic")


def test_thinking_request_holds_claudes_rules_for_every_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One rule set for the Messages API and Bedrock's Converse: what Claude refuses with
    extended thinking is dropped (sampling) or refused before sending (a forced call)."""
    plain = Request.from_prompt("Hi", model=MODEL, config=GenerationConfig(temperature=0.3))
    off = messages.thinking_request(plain, budget=None, by_kwargs=False, provider="acme")
    assert off is plain
    on = messages.thinking_request(plain, budget=1024, by_kwargs=False, provider="acme")
    assert on.config.temperature is None
    assert "extended thinking" in caplog.text
    kwargs_on = messages.thinking_request(plain, budget=None, by_kwargs=True, provider="acme")
    assert kwargs_on.config.temperature is None
    forced = attrs.evolve(plain, tools=(Tool("f"),), tool_choice="required")
    for budget, by_kwargs in ((1024, False), (None, True)):
        with pytest.raises(InvalidRequestError, match="tool_choice 'required' forces") as caught:
            messages.thinking_request(forced, budget=budget, by_kwargs=by_kwargs, provider="acme")
        assert caught.value.provider == "acme"
    schema = attrs.evolve(plain, response_schema=ResponseSchema({"type": "object"}))
    with pytest.raises(InvalidRequestError, match="structured output forces") as caught:
        messages.thinking_request(schema, budget=1024, by_kwargs=False, provider="acme")
    assert caught.value.provider == "acme"
