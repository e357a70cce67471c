"""A request of a system prompt alone, which OpenAI answers (both wire APIs)."""

from __future__ import annotations

from typing import Any

from test_openai_payloads import CHAT_OK, RESPONSES, RESPONSES_OK

from relay_core import Request


def test_chat_completions_sends_the_system_message_alone(server: Any, make_hub: Any) -> None:
    server.reply(CHAT_OK)
    server.reply(CHAT_OK)
    hub = make_hub()
    hub.chat("openai/gpt-4.1", system="Write a haiku about the sea.")
    hub.chat(Request(messages=[], system="Write a haiku.", model="openai/gpt-4.1"))
    first, second = server.payloads
    assert first["messages"] == [{"role": "system", "content": "Write a haiku about the sea."}]
    assert second["messages"] == [{"role": "system", "content": "Write a haiku."}]


def test_the_responses_api_sends_instructions_and_no_input(server: Any, make_hub: Any) -> None:
    server.reply(RESPONSES_OK)
    make_hub().chat("openai/gpt-4.1", system="Write a haiku.", provider_kwargs=RESPONSES)
    assert server.payload["instructions"] == "Write a haiku."
    assert server.payload["input"] == []
