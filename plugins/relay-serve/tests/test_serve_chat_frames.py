"""The Chat Completions stream's frames: each piece of text framed from a template must
be exactly the frame of its whole chunk, whatever the id, model and text hold."""

from __future__ import annotations

import json

import pytest

from relay_core.plugin import EndEvent, Response, TextDelta, Usage
from relay_serve._chat_frames import ChatFrames
from relay_serve._wire import ChunkEncoder

AWKWARD = ["plain", 'quote " and \\ backslash', "ünïcödé ✓ 🙂", "\x00relay-content\x00", "\n\t"]


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("words", AWKWARD)
def test_text_frames_are_the_frames_of_their_whole_chunks(words: str, include_usage: bool) -> None:
    frames = ChatFrames(ChunkEncoder(f"id-{words}", f"model-{words}", 7, include_usage))
    reference = ChunkEncoder(f"id-{words}", f"model-{words}", 7, include_usage)
    events = [TextDelta(words), TextDelta(words * 2), TextDelta(""), TextDelta("x")]
    events.append(EndEvent(Response(content=words * 3 + "x", usage=Usage(1, 2))))
    sent = [frame for event in events for frame in frames.encode(event)]
    expected = [
        b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"
        for event in events
        for chunk in reference.encode(event)
    ] + [b"data: [DONE]\n\n"]
    assert sent == expected
    texts = [json.loads(frame[6:])["choices"][0]["delta"].get("content") for frame in sent[1:4]]
    assert texts == [words, words * 2, "x"]
