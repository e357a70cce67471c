"""The OpenAI SDK quickstart's ``messages`` list works unchanged on relay-mock."""

from __future__ import annotations

from typing import Any

from relay_core.testing import OPENAI_QUICKSTART

PIRATE = OPENAI_QUICKSTART["pirate"]
CLASSIC = OPENAI_QUICKSTART["classic"]


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
