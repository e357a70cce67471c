"""Each rule passing and refusing through a real hub in front of relay-mock: chat (sync
and async), streams, groups with a failing member. A violation names its rule and never
quotes the text it caught."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from relay_core import (
    EndEvent,
    GuardrailViolation,
    Hub,
    Message,
    Request,
    TextDelta,
    ToolResultPart,
)

MODELS = """\
providers:
  mock:
    max_retries: 0
    options:
      faults:
        down: {kind: server_error}
models:
  fast: mock/echo
  smart: mock/think
  primary-down: mock/down
groups:
  resilient: {strategy: fallback, members: [primary-down, fast]}
plugins:
  guardrails:
"""

MakeHub = Callable[..., Hub]


def guarded(make_hub: MakeHub, rules: str) -> Hub:
    return make_hub(MODELS + "".join(f"    {line}\n" for line in rules.splitlines()))


def reply(text: str) -> dict[str, Any]:
    """A scripted answer from relay-mock."""
    return {"provider_kwargs": {"mock": {"reply": text}}}


# -- input size -----------------------------------------------------------------------


async def test_input_tokens_are_limited_per_alias(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, "max_input_tokens: {fast: 50, '*': 500}")
    assert (await hub.achat("fast", "short")).text == "short"
    with pytest.raises(GuardrailViolation, match="more than the 50 allowed for 'fast'") as caught:
        await hub.achat("fast", "x" * 400)
    assert caught.value.rule == "max_input_tokens"
    # The catch-all applies to the other alias: 400 characters are about 105 tokens.
    assert (await hub.achat("smart", "x" * 400)).text == "x" * 400
    with pytest.raises(GuardrailViolation, match="more than the 500 allowed for 'smart'"):
        await hub.achat("smart", "x" * 4000)


def test_one_limit_for_every_model(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, "max_input_tokens: 20")
    assert hub.chat("mock/echo", "a bare target counts too").text == "a bare target counts too"
    with pytest.raises(GuardrailViolation) as caught:
        hub.chat("mock/echo", "y" * 200, system="and the system prompt")
    assert caught.value.rule == "max_input_tokens"


# -- patterns -------------------------------------------------------------------------

SECRETS = r"""blocked_patterns:
  - {name: no-secrets, pattern: "(?i)password\\s*[:=]", applies_to: input}
  - {name: no-leaks, pattern: "sk-[A-Za-z0-9]{8,}", applies_to: output}
  - {name: no-swearing, pattern: "(?i)\\bdarn\\b"}"""


def test_a_blocked_input_is_refused_without_quoting_it(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, SECRETS)
    assert hub.chat("fast", "what is a good password policy?").text.startswith("what is")
    with pytest.raises(GuardrailViolation) as caught:
        hub.chat("fast", "log in with Password: hunter2")
    assert caught.value.rule == "no-secrets"
    assert "message 1 (user) part 1 matches the blocked pattern 'no-secrets'" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_tool_results_and_the_system_prompt_are_input(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, SECRETS)
    with pytest.raises(GuardrailViolation, match="the system prompt matches") as caught:
        hub.chat("fast", "hi", system="the admin password = swordfish")
    assert caught.value.rule == "no-secrets"
    turn = Message("user", (ToolResultPart("call_1", "password: swordfish"),))
    with pytest.raises(GuardrailViolation, match="no-secrets"):
        hub.chat("fast", Request(messages=(Message.user("look this up"), turn)))


def test_a_blocked_output_is_withheld(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, SECRETS)
    # An output-only pattern does not look at the input...
    assert hub.chat("fast", "is sk-abcdefgh12 a key?", **reply("no")).text == "no"
    # ...and refuses an answer carrying it.
    with pytest.raises(GuardrailViolation) as caught:
        hub.chat("fast", "give me a key", **reply("here: sk-abcdefgh12345"))
    assert caught.value.rule == "no-leaks"
    assert "the answer's text matches the blocked pattern 'no-leaks'" in str(caught.value)
    assert "sk-abcdefgh12345" not in str(caught.value)


async def test_both_sides_by_default(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, SECRETS)
    with pytest.raises(GuardrailViolation, match="no-swearing"):
        await hub.achat("fast", "darn it")
    with pytest.raises(GuardrailViolation, match="no-swearing"):
        await hub.achat("fast", "be polite", **reply("Darn, no."))
    assert (await hub.achat("fast", "darning socks")).text == "darning socks"


def test_required_patterns(make_hub: MakeHub) -> None:
    hub = guarded(
        make_hub,
        r"""required_patterns:
  - {name: ticket, pattern: "TICKET-\\d+", applies_to: input}
  - {name: cites, pattern: "\\[\\d+\\]", applies_to: output}""",
    )
    assert hub.chat("fast", "TICKET-12: summarise", **reply("Done [1].")).text == "Done [1]."
    with pytest.raises(GuardrailViolation, match="the input does not match") as caught:
        hub.chat("fast", "summarise", **reply("Done [1]."))
    assert caught.value.rule == "ticket"
    with pytest.raises(GuardrailViolation, match="the output does not match") as caught:
        hub.chat("fast", "TICKET-12: summarise", **reply("Done."))
    assert caught.value.rule == "cites"


def test_text_too_long_to_scan_is_refused(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, SECRETS + "\nmax_scan_chars: 1000")
    assert hub.chat("fast", "z" * 1000).text == "z" * 1000
    with pytest.raises(GuardrailViolation, match="1,001 characters, more than") as caught:
        hub.chat("fast", "z" * 1001)
    assert caught.value.rule == "max_scan_chars"


# -- allowed models -------------------------------------------------------------------

ALLOWED = """allowed_models:
  team-a: [resilient]
  team-b: [primary-down]
  analysts: ['mock/th*']
  default: [fast]"""


def test_allowed_models_by_caller(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, ALLOWED)
    # The caller is metadata["caller"] or a tag; without either, the default entry.
    assert hub.chat("fast", "x").text == "x"
    assert hub.chat("smart", "x", metadata={"caller": "analysts"}).text == "x"
    assert hub.chat("smart", "x", tags=["eval", "analysts"]).text == "x"
    with pytest.raises(GuardrailViolation) as caught:
        hub.chat("smart", "x")
    assert caught.value.rule == "allowed_models"
    assert "caller default may not use 'smart' (mock/think); allowed: fast" in str(caught.value)
    with pytest.raises(GuardrailViolation, match="caller analysts may not use 'fast'"):
        hub.chat("fast", "x", metadata={"caller": "analysts"})


def test_without_a_default_an_unknown_caller_is_refused(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, "allowed_models: {team-a: [fast]}")
    assert hub.chat("fast", "x", tags=["team-a"]).text == "x"
    with pytest.raises(GuardrailViolation, match="names no caller") as caught:
        hub.chat("fast", "x", metadata={"caller": "team-z"})
    assert caught.value.rule == "allowed_models"


def test_a_group_allowed_lets_its_members_answer(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, ALLOWED)
    # primary-down answers 500, so the group falls back to fast: both are members.
    response = hub.chat("resilient", "x", tags=["team-a"])
    assert response.text == "x"
    assert response.metadata["route"]["member"] == "fast"


def test_a_member_not_allowed_is_skipped_for_the_next(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, "allowed_models: {team-c: [fast]}")
    # resilient tries primary-down first: not allowed for team-c, so straight to fast.
    route = hub.chat("resilient", "x", tags=["team-c"]).metadata["route"]
    assert route["member"] == "fast"
    assert route["failed"] == [{"member": "primary-down", "error": "GuardrailViolation"}]


def test_a_fallback_to_a_member_not_allowed_is_refused(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, ALLOWED)
    with pytest.raises(GuardrailViolation, match="caller team-b may not use 'fast'") as caught:
        hub.chat("resilient", "x", tags=["team-b"])
    assert caught.value.rule == "allowed_models"


# -- streams --------------------------------------------------------------------------


def test_a_stream_is_refused_before_it_starts(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, SECRETS)
    stream = hub.stream("fast", "password: hunter2")
    with pytest.raises(GuardrailViolation, match="no-secrets"):
        next(iter(stream))


async def test_a_stream_whose_answer_fails_loses_only_its_end(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, SECRETS)
    seen: list[Any] = []

    async def consume() -> None:
        async for event in hub.astream("fast", "key?", **reply("your key is sk-abcdefgh12345")):
            seen.append(event)

    with pytest.raises(GuardrailViolation) as caught:
        await consume()
    assert caught.value.rule == "no-leaks"
    # The deltas had reached the caller; the end event (the assembled answer) did not.
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == (
        "your key is sk-abcdefgh12345"
    )
    assert not any(isinstance(e, EndEvent) for e in seen)


async def test_a_clean_stream_passes_whole(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, SECRETS)
    events = [event async for event in hub.astream("fast", "all good here")]
    assert isinstance(events[-1], EndEvent)
    assert events[-1].response.text == "all good here"


# -- output schema --------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "pets": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age"],
}


async def test_a_structured_answer_that_fits_passes(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, "validate_output_schema: true")
    response = await hub.achat("fast", "describe someone", response_schema=PERSON)
    assert set(response.json()) >= {"name", "age"}


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ('{"name": "Ada", "age": "forty"}', "at $.age: it fails 'type' (\"integer\")"),
        ('{"name": "Ada", "age": -3}', "at $.age: it fails 'minimum' (0)"),
        ('{"name": "Ada", "age": 3, "pets": ["cat", 7]}', "at $.pets[1]: it fails 'type'"),
        ('{"name": "Ada"}', "at $: it fails 'required' ([\"age\"])"),
        ('{"name": "Ada", "age": ', "the output is not JSON: Expecting value at line 1"),
    ],
)
def test_an_answer_that_does_not_fit_names_the_path(
    make_hub: MakeHub, answer: str, problem: str
) -> None:
    hub = guarded(make_hub, "validate_output_schema: true")
    with pytest.raises(GuardrailViolation) as caught:
        hub.chat("fast", "describe someone", response_schema=PERSON, **reply(answer))
    assert caught.value.rule == "validate_output_schema"
    assert problem in str(caught.value)
    assert "forty" not in str(caught.value)  # the answer is never quoted


def test_schema_checks_are_off_unless_asked(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, "max_input_tokens: 1000")
    answer = '{"name": "Ada", "age": "forty"}'
    response = hub.chat("fast", "describe someone", response_schema=PERSON, **reply(answer))
    assert response.text == answer


def test_a_streamed_structured_answer_is_checked_whole(make_hub: MakeHub) -> None:
    hub = guarded(make_hub, "validate_output_schema: true")
    stream = hub.stream(
        "fast", "describe", response_schema=PERSON, **reply('{"name": "Ada", "age": 1.5}')
    )
    with pytest.raises(GuardrailViolation, match=r"at \$\.age: it fails 'type'"):
        list(stream)
