"""Chat Completions' stream as server-sent event frames: ``data:`` chunks, then
``[DONE]``.

Nearly every event of a stream is a piece of text, and its chunk differs from the one
before only in that text. Its frame is therefore the JSON of the stream's text chunk cut
once, around its content, with each piece's JSON put between: byte for byte what
``json.dumps`` of the whole chunk gives, at the cost of encoding the piece alone (a
chunk's dict built and walked per piece was most of what relay-serve spent per chunk).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from relay_core.plugin import EndEvent, StreamEvent, TextDelta
from relay_serve._wire import ChunkEncoder, ErrorAnswer

__all__ = ["ChatFrames", "sse_data"]

DONE = b"data: [DONE]\n\n"
# Stands for the content while the text chunk is cut; found from the end, since only
# the id and model (which come before the content) are the client's words.
_MARK = "\x00relay-content\x00"


class ChatFrames:
    """The frames of one Chat Completions stream, from its :class:`ChunkEncoder`."""

    def __init__(self, encoder: ChunkEncoder) -> None:
        self.encoder = encoder
        text = json.dumps(encoder.text_chunk(_MARK), ensure_ascii=False)
        head, mark, tail = text.rpartition(json.dumps(_MARK, ensure_ascii=False))
        assert mark, "the text chunk holds its content"
        self._head = b"data: " + head.encode()
        self._tail = tail.encode() + b"\n\n"

    def encode(self, event: StreamEvent) -> list[bytes]:
        """The frames for ``event``: its chunks, and ``[DONE]`` after the end."""
        if isinstance(event, TextDelta) and event.text and self.encoder.started:
            piece = json.dumps(event.text, ensure_ascii=False).encode()
            return [self._head + piece + self._tail]
        frames = [sse_data(chunk) for chunk in self.encoder.encode(event)]
        if isinstance(event, EndEvent):
            frames.append(DONE)
        return frames

    def failed(self, answer: ErrorAnswer) -> bytes:
        return sse_data(answer.body)


def sse_data(chunk: Mapping[str, Any]) -> bytes:
    """One ``data:`` frame holding ``chunk``."""
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"
