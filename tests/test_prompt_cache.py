"""Prompt-cache breakpoints in the call forms: each way of marking reaches the adapter's
request, and a provider that does not cache answers a marked request as any other."""

from __future__ import annotations

from typing import Any

from relay_core import Message, Provider, Request, TextPart, Tool, ToolResultPart

LOOKUP = Tool("lookup", "Look a word up.", {"type": "object", "properties": {}})


def test_message_constructors_take_a_breakpoint() -> None:
    assert Message.user("hi", cache=True) == Message("user", "hi", cache=True)
    assert Message.assistant("ok", cache=True).cache
    assert Message.tool(ToolResultPart("c1", "42"), cache=True).cache
    assert not Message.user("hi").cache


def test_every_mark_reaches_a_provider_that_does_not_cache(make_hub: Any, scripted: Any) -> None:
    answer = make_hub().chat(
        "scripted/one",
        [Message.user(TextPart("context", cache=True), "question", cache=True)],
        system="Be brief.",
        cache_system=True,
        tools=[LOOKUP],
        cache_tools=True,
    )
    # The scripted provider declares no prompt caching: the marks are not refused.
    assert answer.finish_reason == "tool_calls"
    request: Request = scripted.received[-1]
    assert (request.cache_system, request.cache_tools) == (True, True)
    assert request.messages[0].cache
    assert request.messages[0].content[0] == TextPart("context", cache=True)


def test_a_request_object_keeps_its_marks(make_hub: Any, scripted: Any) -> None:
    request = Request(messages=[Message.user("hi", cache=True)], system="s", cache_system=True)
    make_hub().chat("scripted/one", request)
    received = scripted.received[-1]
    assert received.cache_system
    assert received.messages[0].cache


def test_marks_change_what_the_response_cache_keys_on() -> None:
    # A marked request is billed differently (a cache write), so it is not the same call.
    plain = Request(messages=[Message.user("hi")])
    assert plain.fingerprint() != Request(messages=[Message.user("hi", cache=True)]).fingerprint()


def test_providers_declare_no_prompt_caching_by_default() -> None:
    assert Provider.prompt_caching == "none"
