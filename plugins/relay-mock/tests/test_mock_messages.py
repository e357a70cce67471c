"""The OpenAI SDK quickstart's ``messages`` list works unchanged on relay-mock."""

from __future__ import annotations

from typing import Any

PIRATE = [
    {"role": "developer", "content": "Talk like a pirate."},
    {"role": "user", "content": "Are semicolons optional in JavaScript?"},
]
CLASSIC = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Who won the world series in 2020?"},
    {"role": "assistant", "content": "The Los Angeles Dodgers won the World Series in 2020."},
    {"role": "user", "content": "Where was it played?"},
]


def test_the_quickstart_messages_are_the_request_relays_own_form_makes(make_hub: Any) -> None:
    hub = make_hub()
    answer = hub.chat("mock/echo", messages=PIRATE)
    same = hub.chat(
        "mock/echo", "Are semicolons optional in JavaScript?", system="Talk like a pirate."
    )
    assert answer.text == "Are semicolons optional in JavaScript?"
    # The mock derives ids from the request's fingerprint and counts the system
    # prompt's tokens: the same id and usage mean the same request.
    assert (answer.id, answer.usage) == (same.id, same.usage)


def test_the_classic_conversation_streams_and_echoes_its_last_turn(make_hub: Any) -> None:
    events = list(make_hub().stream("mock/echo", CLASSIC))
    assert events[-1].response.text == "Where was it played?"
