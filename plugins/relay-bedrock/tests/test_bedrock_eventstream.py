"""The event stream decoder: the same messages as botocore's decoder on the same bytes,
whatever the chunking, and corrupt or cut frames refused."""

from __future__ import annotations

import json

import pytest
from bedrock_support import event, exception, text_stream
from hypothesis import given
from hypothesis import strategies as st

from relay_bedrock._eventstream import EventStreamDecoder
from relay_core import MalformedResponse


def _botocore_messages(data: bytes) -> list[tuple[dict[str, object], bytes]]:
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(message.headers, message.payload) for message in buffer]


def test_messages_equal_botocores() -> None:
    data = b"".join([*text_stream("Hel", "lo"), exception("throttlingException", "slow down")])
    ours = [(m.headers, m.payload) for m in EventStreamDecoder().feed(data)]
    assert ours == _botocore_messages(data)
    assert len(ours) == 7


@given(st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=40))
def test_any_chunking_gives_the_same_messages(sizes: list[int]) -> None:
    data = b"".join(text_stream("a" * 50, "b"))
    decoder = EventStreamDecoder()
    messages = []
    at = 0
    for size in sizes * 100:
        if at >= len(data):
            break
        messages += decoder.feed(data[at : at + size])
        at += size
    messages += decoder.feed(data[at:])
    assert [m.name for m in messages] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert json.loads(messages[1].payload)["delta"]["text"] == "a" * 50
    assert not decoder.pending


def test_kind_and_name_of_an_exception() -> None:
    (message,) = EventStreamDecoder().feed(exception("validationException", "bad"))
    assert (message.kind, message.name) == ("exception", "validationException")


@pytest.mark.parametrize("at", [2, 9, 30, -2])
def test_a_flipped_byte_fails_a_crc(at: int) -> None:
    frame = bytearray(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}))
    frame[at] ^= 0x01
    with pytest.raises(MalformedResponse, match=r"CRC|length"):
        EventStreamDecoder().feed(bytes(frame))


def test_a_cut_message_is_pending() -> None:
    frame = event("messageStop", {"stopReason": "end_turn"})
    decoder = EventStreamDecoder()
    assert decoder.feed(frame[:-5]) == []
    assert decoder.pending
