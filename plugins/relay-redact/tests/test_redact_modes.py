"""The three modes, the allow list, the map store and the restorer, below the hub."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from relay_core import (
    Message,
    Request,
    Response,
    Secret,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from relay_redact import PlaceholderRestorer, Redactor, Settings
from relay_redact._plugin import METADATA_KEY
from relay_redact._restore import MapStore

TEXT = "mail jane@example.org, then jane@example.org again, and bob@example.org"


def redact(text: str, **settings: object) -> Request:
    redactor = Redactor(Settings(**settings))  # type: ignore[arg-type]
    redacted = redactor.relay_redact(Request.from_prompt(text))
    assert redacted is not None
    return redacted


def test_placeholders_are_numbered_per_entity_and_reused_for_a_repeated_value() -> None:
    assert redact(TEXT).messages[0].text == ("mail <EMAIL_1>, then <EMAIL_1> again, and <EMAIL_2>")


def test_mask_mode_writes_the_entity_or_stars() -> None:
    assert redact(TEXT, mode="mask").messages[0].text == (
        "mail [EMAIL], then [EMAIL] again, and [EMAIL]"
    )
    assert redact("card 4111111111111111", mode="mask", mask_style="stars").messages[0].text == (
        "card ****"
    )


def test_hash_mode_is_stable_salted_and_never_shows_the_value() -> None:
    salted = redact(TEXT, mode="hash").messages[0].text
    first, second, third = (part.split(">")[0] for part in salted.split("<EMAIL:")[1:])
    assert first == second != third
    assert len(first) == 8
    assert "jane" not in salted
    again = Redactor(Settings(mode="hash")).relay_redact(Request.from_prompt(TEXT))
    assert again is not None
    assert again.messages[0].text == salted  # the same process salt
    other = redact(TEXT, mode="hash", salt=Secret("another salt"))
    assert other.messages[0].text != salted


def test_allowed_values_and_patterns_stay() -> None:
    redacted = redact(
        "write support@acme.example or ops@acme.example, not jane@example.org",
        allow=frozenset({"support@acme.example"}),
        allow_patterns=(__import__("re").compile(r"ops@.*"),),
    )
    assert redacted.messages[0].text == (
        "write support@acme.example or ops@acme.example, not <EMAIL_1>"
    )


def test_every_text_of_a_request_is_redacted_but_images_are_not_scanned() -> None:
    from relay_core import ImagePart

    request = Request(
        system="Operator: ops@example.org",
        messages=(
            Message.user("I am jane@example.org", ImagePart(url="https://x.example/a.png")),
            Message.assistant(
                ThinkingPart("jane@example.org wants mail"),
                ToolCallPart("c1", "send", {"to": ["jane@example.org"], "n": 1}),
            ),
            Message.tool(ToolResultPart("c1", "sent to jane@example.org")),
        ),
    )
    redacted = Redactor().relay_redact(request)
    assert redacted is not None
    assert redacted.system == "Operator: <EMAIL_1>"
    user, assistant, tool = redacted.messages
    assert user.content[0] == TextPart("I am <EMAIL_2>")
    assert user.content[1] == request.messages[0].content[1]
    assert assistant.content[0] == ThinkingPart("<EMAIL_2> wants mail")
    assert assistant.content[1] == ToolCallPart("c1", "send", {"to": ["<EMAIL_2>"], "n": 1})
    assert tool.content[0] == ToolResultPart("c1", "sent to <EMAIL_2>")


def test_metadata_carries_an_opaque_id_never_a_value() -> None:
    redactor = Redactor()
    redacted = redactor.relay_redact(Request.from_prompt(TEXT, metadata={"caller": "a"}))
    assert redacted is not None
    assert redacted.metadata["caller"] == "a"
    assert "jane" not in repr(redacted.metadata)
    restorer = redactor.relay_restorer(redacted)
    assert restorer is not None
    answer = Response(content="ok <EMAIL_2>, <EMAIL_1>")
    assert restorer.restore(answer).text == "ok bob@example.org, jane@example.org"
    # A map serves one answer: a second restorer for the same request finds nothing.
    assert redactor.relay_restorer(redacted) is None


def test_nothing_found_means_no_copy_no_map_and_no_restorer() -> None:
    # Most requests hold nothing to redact: they go out as they came, not copied.
    redactor = Redactor()
    request = Request.from_prompt("nothing personal here", system="be brief")
    assert redactor.relay_redact(request) is None
    assert redactor.relay_restorer(request) is None
    assert len(redactor.maps) == 0


def test_only_what_holds_something_is_replaced() -> None:
    quiet = Message.user("nothing here")
    request = Request(
        system="be brief",
        messages=(quiet, Message.user(TextPart("plain"), TextPart("mail jane@example.org"))),
    )
    redacted = Redactor().relay_redact(request)
    assert redacted is not None
    assert redacted.system == "be brief"
    assert redacted.messages[0] is quiet
    plain, mail = redacted.messages[1].content
    assert plain is request.messages[1].content[0]
    assert mail == TextPart("mail <EMAIL_1>")


def test_a_request_redacted_again_loses_the_old_map_id() -> None:
    request = Request.from_prompt("nothing here", metadata={METADATA_KEY: "old", "caller": "a"})
    redacted = Redactor().relay_redact(request)
    assert redacted is not None
    assert redacted.metadata == {"caller": "a"}


def test_a_placeholder_the_user_typed_is_not_taken_for_one_of_ours() -> None:
    text = "the template says <EMAIL_1>; my address is jane@example.org"
    redactor = Redactor()
    redacted = redactor.relay_redact(Request.from_prompt(text))
    assert redacted is not None
    assert redacted.messages[0].text == "the template says <EMAIL_1>; my address is <EMAIL_2>"
    restorer = redactor.relay_restorer(redacted)
    assert restorer is not None
    assert restorer.restore(Response(content=redacted.messages[0].text)).text == text


def test_restore_covers_text_thinking_and_tool_call_arguments() -> None:
    restorer = PlaceholderRestorer({"<EMAIL_1>": "jane@example.org"})
    response = Response(
        content=(
            ThinkingPart("reply to <EMAIL_1>", signature="sig"),
            TextPart("Sent to <EMAIL_1>."),
            ToolCallPart("c1", "send", {"to": "<EMAIL_1>", "cc": ["<EMAIL_1>"]}),
        ),
        raw={"text": "Sent to <EMAIL_1>."},
    )
    restored = restorer.restore(response)
    assert restored.thinking == "reply to jane@example.org"
    assert restored.text == "Sent to jane@example.org."
    assert restored.tool_calls[0].arguments == {
        "to": "jane@example.org",
        "cc": ["jane@example.org"],
    }
    assert restored.raw == response.raw  # what the provider said, as it said it


def test_feed_holds_back_a_placeholder_split_across_deltas() -> None:
    restorer = PlaceholderRestorer({"<EMAIL_1>": "jane@example.org", "<EMAIL_12>": "b@x.io"})
    pieces = ["Write to <EM", "AIL_1", "> and <", "EMAIL_12", "> or 3 <", " 4"]
    shown = [restorer.feed(p) for p in pieces]
    assert shown == ["Write to ", "", "jane@example.org and ", "", "b@x.io or 3 ", "< 4"]
    assert restorer.feed("tail <EMAIL_") == "tail "
    assert restorer.flush() == "<EMAIL_"  # never completed: shown as it came


def test_the_store_is_bounded_and_forgets_expired_maps() -> None:
    now = [0.0]
    store = MapStore(max_entries=2, ttl=10, clock=lambda: now[0])
    store.put("a", {"<EMAIL_1>": "a"})
    store.put("b", {"<EMAIL_1>": "b"})
    store.put("c", {"<EMAIL_1>": "c"})
    assert len(store) == 2
    assert store.take("a") is None  # the oldest went first
    now[0] = 10.0
    assert store.take("b") is None  # expired
    assert len(store) == 0


# -- restore(redact(x)) == x ------------------------------------------------------------

PII = st.sampled_from(
    [
        "jane@example.org",
        "bob.smith+x@mail.example.net",
        "+44 20 7946 0958",
        "(415) 555-0132",
        "4111 1111 1111 1111",
        "DE89 3704 0044 0532 0130 00",
        "123-45-6789",
        "AB 12 34 56 C",
        "10.0.0.17",
        "2001:db8::1:2:3",
        "sk-proj-abcdefghijklmnop1234",
        "<EMAIL_1>",
        "<PHONE_2>",
        "<EMAIL_",
    ]
)
FILLER = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
TEXTS = st.lists(st.one_of(PII, FILLER), max_size=8).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_placeholder_mode_restores_exactly_what_it_redacted(text: str) -> None:
    redactor = Redactor()
    request = Request.from_prompt(text)
    redacted = redactor.relay_redact(request) or request  # None: nothing to redact
    restorer = redactor.relay_restorer(redacted) or PlaceholderRestorer({})
    assert restorer.restore(Response(content=redacted.messages[0].text)).text == text


@settings(max_examples=200, deadline=None)
@given(TEXTS, st.lists(st.integers(min_value=0, max_value=200), max_size=10))
def test_streamed_restoration_equals_whole_restoration_at_any_split(
    text: str, cuts: list[int]
) -> None:
    redactor = Redactor()
    request = Request.from_prompt(text)
    redacted = redactor.relay_redact(request) or request  # None: nothing to redact
    restorer = redactor.relay_restorer(redacted) or PlaceholderRestorer({})
    answer = redacted.messages[0].text
    points = sorted({min(c, len(answer)) for c in cuts})
    pieces = [answer[a:b] for a, b in zip([0, *points], [*points, len(answer)], strict=True)]
    streamed = "".join(restorer.feed(p) for p in pieces) + restorer.flush()
    assert streamed == text


def test_a_disabled_redactor_leaves_requests_alone() -> None:
    assert Redactor(Settings(enabled=False)).relay_redact(Request.from_prompt(TEXT)) is None
