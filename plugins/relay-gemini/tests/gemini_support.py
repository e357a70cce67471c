"""Shared helpers of relay-gemini's tests: Gemini answer bodies, their SSE form, and the
core's FakeServer with a default answer. A module of its own name, so that tests of other
plugins run in the same session never import these under the name ``conftest``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx

from relay_core.testing import FakeServer, json_answer

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-gemini"
# Shaped like a real Google key (AIza + 35) so the core's masking has to recognise it.
KEY = "AIzaSyTESTONLY-relaygemini0123456789ab"
MODEL = "gemini-2.5-flash"
BASE = "https://generativelanguage.googleapis.com/v1beta"


class Recorder(FakeServer):
    """The core's FakeServer, answering "ok" unless given other answers."""

    def __init__(self, *answers: httpx.Response) -> None:
        super().__init__(*(answers or (json_answer(answer([{"text": "ok"}])),)))


def answer(
    parts: list[dict[str, Any]],
    finish: str | None = "STOP",
    usage: dict[str, Any] | None = None,
    response_id: str = "Xq9oaPbWFo2mz7IP2tLx-QU",
) -> dict[str, Any]:
    """A GenerateContentResponse body with one candidate."""
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage
        or {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 12},
        "modelVersion": MODEL,
        "responseId": response_id,
    }


def sse_answer(chunks: list[Any]) -> httpx.Response:
    # Google frames each event with CRLF line ends (relay_core.testing's uses LF).
    text = "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in chunks)
    return httpx.Response(200, content=text.encode(), headers={"content-type": "text/event-stream"})


def _pieces(text: str, size: int = 5) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stream_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunks Gemini streams for ``body``: text cut in pieces (a signature rides on
    the last piece), calls whole, one part per chunk; usage on every chunk, the finish
    reason on the last."""
    body = copy.deepcopy(body)
    [candidate] = body["candidates"]
    pieces: list[dict[str, Any]] = []
    for part in candidate["content"]["parts"]:
        if "text" in part and "functionCall" not in part:
            texts = _pieces(part["text"])
            for i, text in enumerate(texts):
                piece = {k: v for k, v in part.items() if k != "thoughtSignature"}
                piece["text"] = text
                if i == len(texts) - 1 and "thoughtSignature" in part:
                    piece["thoughtSignature"] = part["thoughtSignature"]
                pieces.append(piece)
        else:
            pieces.append(part)
    top = {k: v for k, v in body.items() if k != "candidates"}
    extra = {k: v for k, v in candidate.items() if k not in ("content", "finishReason")}
    chunks = []
    slots: list[dict[str, Any] | None] = [*pieces] or [None]
    for slot in slots:
        parts = [slot] if slot is not None else []
        chunks.append(
            {"candidates": [{"content": {"parts": parts, "role": "model"}, **extra}], **top}
        )
    if "finishReason" in candidate:
        chunks[-1]["candidates"][0]["finishReason"] = candidate["finishReason"]
    return chunks
