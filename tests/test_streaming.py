"""Server-sent events parsed by the WHATWG rules whatever the chunking, and stream deltas
assembled into the same response a non-streaming call returns."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core.errors import MalformedResponse
from relay_core.streaming import SSEEvent, StreamAssembler, parse_sse
from relay_core.types import (
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
)

# ---------------------------------------------------------------------------- parse_sse


async def _collect(chunks: Sequence[bytes]) -> list[SSEEvent]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return [event async for event in parse_sse(source())]


def parse(*chunks: bytes) -> list[SSEEvent]:
    return asyncio.run(_collect(chunks))


def split(stream: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert parse(b"data: first\ndata:\ndata: third\n\n") == [SSEEvent("first\n\nthird")]


def test_event_id_and_retry_fields() -> None:
    events = parse(b"event: delta\nid: 41\nretry: 3000\ndata: x\n\ndata: y\n\n")
    assert events == [
        SSEEvent("x", event="delta", id="41", retry=3000),
        # The event type resets after each event; the last event id carries on.
        SSEEvent("y", event="message", id="41", retry=3000),
    ]


def test_invalid_retry_and_id_with_nul_are_ignored() -> None:
    events = parse(b"id: 1\n\ndata: a\n\nretry: soon\nid: 2\x003\ndata: b\n\n")
    assert events == [SSEEvent("a", id="1"), SSEEvent("b", id="1")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    stream = b": ping\n:\ndata: x\n: between data lines\nfoo: bar\ndata: y\n\n"
    assert parse(stream) == [SSEEvent("x\ny")]


def test_only_one_space_after_the_colon_is_removed() -> None:
    stream = b"data:no-space\n\ndata:  two-spaces\n\ndata\n\nevent:ping\ndata: z\n\n"
    assert parse(stream) == [
        SSEEvent("no-space"),
        SSEEvent(" two-spaces"),
        SSEEvent(""),  # "data" with no colon is the field with an empty value
        SSEEvent("z", event="ping"),
    ]


def test_values_may_contain_colons() -> None:
    assert parse(b'data: {"a": "b:c"}\n\n')[0].json() == {"a": "b:c"}


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_line_ends(newline: bytes) -> None:
    stream = newline.join([b"event: a", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    assert parse(stream) == [SSEEvent("1\n2", event="a"), SSEEvent("3")]


def test_mixed_line_ends() -> None:
    assert parse(b"data: 1\rdata: 2\r\ndata: 3\n\r\n") == [SSEEvent("1\n2\n3")]


def test_only_cr_and_lf_end_lines() -> None:
    # JSON written by JavaScript leaves U+2028/U+2029 raw; they are text, not line ends.
    text = "a\u2028b\u2029c\x0bd\x0ce\x1cf\x1dg\x1eh\x85i"
    stream = b"data: " + json.dumps({"t": text}, ensure_ascii=False).encode() + b"\n\n"
    (event,) = parse(stream)
    assert event.json() == {"t": text}


def test_a_bom_at_the_start_is_dropped() -> None:
    assert parse(b"\xef\xbb\xbfdata: x\n\n") == [SSEEvent("x")]
    # The BOM split across chunks, and with no event field name damaged by it.
    assert parse(b"\xef", b"\xbb", b"\xbfevent: e\ndata: x\n\n") == [SSEEvent("x", event="e")]


def test_only_the_first_bom_is_dropped() -> None:
    assert parse(b"\xef\xbb\xbfdata: \xef\xbb\xbfx\n\n") == [SSEEvent("\ufeffx")]


def test_multibyte_characters_split_across_chunks() -> None:
    stream = "data: héllo wörld — 日本語 🎉\n\n".encode()
    chunks = [stream[i : i + 1] for i in range(len(stream))]  # one byte at a time
    assert parse(*chunks) == [SSEEvent("héllo wörld — 日本語 🎉")]


def test_a_trailing_event_without_a_blank_line_is_dropped() -> None:
    assert parse(b"data: complete\n\ndata: cut off\n") == [SSEEvent("complete")]
    assert parse(b"data: complete\n\ndata: cut off") == [SSEEvent("complete")]
    assert parse(b"data: complete\r\n\r\ndata: cut off\r") == [SSEEvent("complete")]


def test_a_final_blank_line_split_from_its_event_still_dispatches() -> None:
    assert parse(b"data: x\r", b"\r") == [SSEEvent("x")]
    assert parse(b"data: x\r\n", b"\r\n") == [SSEEvent("x")]


def test_events_with_no_data_are_not_dispatched() -> None:
    stream = b"event: ping\n\nid: 5\n\n: only a comment\n\n\n\ndata: real\n\n"
    # The unused event type is reset by the blank line; the id is kept.
    assert parse(stream) == [SSEEvent("real", event="message", id="5")]


def test_an_empty_stream() -> None:
    assert parse() == []
    assert parse(b"") == []


def test_sse_event_json_rejects_non_json() -> None:
    with pytest.raises(MalformedResponse, match="not JSON"):
        SSEEvent("[DONE").json()


RICH_STREAM = (
    "\ufeff: a comment first\r\n"
    "retry: 1500\r\n"
    "event: message_start\r\n"
    'data: {"text": "héllo 日本 🎉"}\r\n'
    "\r\n"
    "id: 7\n"
    "data:line one\n"
    "data:  indented\n"
    "\n"
    "event: ping\r"
    "\r"
    "data: after ping\r"
    ": comment\r"
    "data: second line\r"
    "\r"
    "data: a\u2028b\n"
    "\n"
    "data: never finished\n"
).encode()
RICH_EVENTS = [
    SSEEvent('{"text": "héllo 日本 🎉"}', event="message_start", retry=1500),
    SSEEvent("line one\n indented", id="7", retry=1500),
    SSEEvent("after ping\nsecond line", id="7", retry=1500),
    SSEEvent("a\u2028b", id="7", retry=1500),
]


def test_the_rich_stream_in_one_chunk() -> None:
    assert parse(RICH_STREAM) == RICH_EVENTS


@given(st.lists(st.integers(min_value=1, max_value=len(RICH_STREAM) - 1), max_size=30))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    assert parse(*split(RICH_STREAM, cuts)) == RICH_EVENTS


# Values hold any text except the two line-end characters.
_values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"))
_events = st.lists(
    st.tuples(
        st.lists(_values, min_size=1, max_size=3),  # data lines
        st.none() | _values.filter(lambda name: name != ""),  # event type
    ),
    max_size=4,
)


@given(
    events=_events,
    newline=st.sampled_from(["\n", "\r", "\r\n"]),
    bom=st.booleans(),
    data=st.data(),
)
def test_encoded_events_come_back_whatever_the_chunking(
    events: list[tuple[list[str], str | None]],
    newline: str,
    bom: bool,
    data: st.DataObject,
) -> None:
    lines = []
    for data_lines, name in events:
        if name is not None:
            lines.append(f"event: {name}")
        lines.extend(f"data: {value}" for value in data_lines)
        lines.append("")
    stream = (("\ufeff" if bom else "") + "".join(line + newline for line in lines)).encode()
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=max(1, len(stream) - 1))))
    expected = [SSEEvent("\n".join(values), event=name or "message") for values, name in events]
    assert parse(*split(stream, cuts)) == expected


@pytest.mark.parametrize("stream", [RICH_STREAM, RICH_STREAM.replace(b"\r", b"")])
def test_a_cut_anywhere_gives_the_same_events(stream: bytes) -> None:
    # Every single cut, deterministically: inside a field name or value, between a CR
    # and its LF, inside a multi-byte character, inside the BOM.
    expected = parse(stream)
    for cut in range(1, len(stream)):
        assert parse(stream[:cut], stream[cut:]) == expected, cut
    assert parse(*(stream[i : i + 1] for i in range(len(stream)))) == expected


async def _first_and_all(buffer: bytes) -> tuple[float, float, int]:
    async def source() -> AsyncIterator[bytes]:
        yield buffer

    started = time.perf_counter()
    events = parse_sse(source())
    await anext(events)
    first = time.perf_counter() - started
    count = 1 + len([event async for event in events])
    return first, time.perf_counter() - started, count


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_the_first_event_comes_before_the_rest_of_a_large_chunk_is_parsed(
    newline: str,
) -> None:
    # A server may send a whole answer in one read (a cached answer, a fast local model):
    # the reader's first token must not wait for the parser to go through all of it.
    n = 40_000
    event = f'data: {{"choices": [{{"delta": {{"content": "tok"}}}}]}}{newline}{newline}'
    buffer = (event * n).encode()
    runs = [asyncio.run(_first_and_all(buffer)) for _ in range(3)]
    assert all(count == n for _, _, count in runs)
    first = min(first for first, _, _ in runs)
    whole = min(whole for _, whole, _ in runs)
    assert first < whole / 10, (first, whole)


# ---------------------------------------------------------------------------- StreamAssembler


def test_text_deltas_join_into_one_part() -> None:
    assembler = StreamAssembler(provider="acme")
    for piece in ("Hel", "lo", ", ", "world"):
        assert assembler.feed(TextDelta(piece)) == TextDelta(piece)
    response = assembler.response(model="m-1", id="r-1", raw={"chunks": 4})
    assert response.content == (TextPart("Hello, world"),)
    assert response.finish_reason == "stop"
    assert response.model == "m-1"
    assert response.id == "r-1"
    assert response.raw == {"chunks": 4}


def test_thinking_then_text_keeps_order_and_signature() -> None:
    assembler = StreamAssembler()
    assembler.feed(ThinkingDelta("Let me "))
    assembler.feed(ThinkingDelta("think."))
    assembler.feed(ThinkingDelta("", signature="sig-abc"))
    assembler.feed(TextDelta("The answer"))
    assembler.feed(TextDelta(" is 4."))
    assert assembler.response(model="m").content == (
        ThinkingPart("Let me think.", signature="sig-abc"),
        TextPart("The answer is 4."),
    )


def test_alternating_kinds_make_separate_parts() -> None:
    assembler = StreamAssembler()
    assembler.feed(ThinkingDelta("a", signature="s1"))
    assembler.feed(TextDelta("b"))
    assembler.feed(ThinkingDelta("c"))
    assembler.feed(TextDelta("d"))
    assert assembler.content() == (
        ThinkingPart("a", signature="s1"),
        TextPart("b"),
        ThinkingPart("c", signature=None),  # a signature belongs to its own block only
        TextPart("d"),
    )


def test_a_signature_ends_its_part_so_consecutive_blocks_stay_apart() -> None:
    # Anthropic streams two thinking blocks back to back, each closed by its signature;
    # Gemini signs text parts. Each signature must stay on the part it signed.
    assembler = StreamAssembler()
    for event in (
        ThinkingDelta("first "),
        ThinkingDelta("block", signature="sig-1"),
        ThinkingDelta("second block"),
        ThinkingDelta("", signature="sig-2"),
        ThinkingDelta("", signature="opaque-data", redacted=True),
        TextDelta("Signed "),
        TextDelta("text", signature="sig-3"),
        TextDelta("Unsigned text"),
    ):
        assembler.feed(event)
    assert assembler.content() == (
        ThinkingPart("first block", signature="sig-1"),
        ThinkingPart("second block", signature="sig-2"),
        ThinkingPart("", signature="opaque-data", redacted=True),
        TextPart("Signed text", signature="sig-3"),
        TextPart("Unsigned text"),
    )


def test_a_redacted_block_does_not_join_the_thinking_around_it() -> None:
    assembler = StreamAssembler()
    assembler.feed(ThinkingDelta("before"))
    assembler.feed(ThinkingDelta("", signature="data", redacted=True))
    assembler.feed(ThinkingDelta("after"))
    assert assembler.content() == (
        ThinkingPart("before"),
        ThinkingPart("", signature="data", redacted=True),
        ThinkingPart("after"),
    )


def test_a_tool_call_keeps_the_signature_of_any_of_its_pieces() -> None:
    assembler = StreamAssembler()
    assembler.feed(ToolCallDelta(0, id="c1", name="f", arguments='{"a": 1}', signature="sig"))
    assembler.feed(ToolCallDelta(1, id="c2", name="g", arguments="{}"))
    assert assembler.content() == (
        ToolCallPart("c1", "f", {"a": 1}, signature="sig"),
        ToolCallPart("c2", "g", {}),
    )


def test_interleaved_tool_call_deltas_join_by_index() -> None:
    assembler = StreamAssembler(provider="acme")
    for event in (
        TextDelta("Checking both."),
        ToolCallDelta(0, id="call_a", name="get_weather"),
        ToolCallDelta(1, id="call_b", name="get_time", arguments='{"tz"'),
        ToolCallDelta(0, arguments='{"city": "Par'),
        ToolCallDelta(1, arguments=': "Europe/Paris"}'),
        ToolCallDelta(0, arguments='is", "units": ["C", 1]}'),
        UsageEvent(Usage(12, 30)),
    ):
        assembler.feed(event)
    response = assembler.response(model="m-1")
    assert response.content == (
        TextPart("Checking both."),
        ToolCallPart("call_a", "get_weather", {"city": "Paris", "units": ["C", 1]}),
        ToolCallPart("call_b", "get_time", {"tz": "Europe/Paris"}),
    )
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(12, 30)


def test_tool_calls_keep_first_appearance_order_not_index_order() -> None:
    assembler = StreamAssembler()
    assembler.feed(ToolCallDelta(1, id="second-index", name="b", arguments="{}"))
    assembler.feed(ToolCallDelta(0, id="first-index", name="a", arguments="{}"))
    assert [part.id for part in assembler.content()] == ["second-index", "first-index"]


def test_a_tool_call_with_no_arguments_gets_an_empty_dict() -> None:
    assembler = StreamAssembler()
    assembler.feed(ToolCallDelta(0, id="c", name="now"))
    assert assembler.content() == (ToolCallPart("c", "now", {}),)


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ('{"city": "Par', "'get_weather' streamed arguments that are not JSON"),
        ('["not", "an", "object"]', "'get_weather' arguments are not a JSON object"),
    ],
)
def test_bad_tool_call_arguments_are_malformed(arguments: str, match: str) -> None:
    assembler = StreamAssembler(provider="acme")
    assembler.feed(ToolCallDelta(0, id="c", name="get_weather", arguments=arguments))
    with pytest.raises(MalformedResponse, match=match) as caught:
        assembler.response(model="m-1")
    assert caught.value.provider == "acme"
    assert caught.value.retryable


def test_finish_reason_given_wins() -> None:
    assembler = StreamAssembler()
    assembler.feed(ToolCallDelta(0, id="c", name="f", arguments="{}"))
    assert assembler.response(model="m", finish_reason="length").finish_reason == "length"


def test_the_last_usage_report_wins() -> None:
    assembler = StreamAssembler()
    assembler.feed(UsageEvent(Usage(10, 1)))
    assembler.feed(TextDelta("x"))
    assembler.feed(UsageEvent(Usage(10, 7, reasoning_tokens=3)))
    assert assembler.usage == Usage(10, 7, reasoning_tokens=3)
    assert assembler.response(model="m").usage == Usage(10, 7, reasoning_tokens=3)


def test_no_events_make_an_empty_stop_response() -> None:
    response = StreamAssembler().response(model="m")
    assert response.content == ()
    assert response.finish_reason == "stop"
    assert response.usage == Usage()
