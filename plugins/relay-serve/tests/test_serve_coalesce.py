"""A streamed body's writes: frames ready together share one write, a frame that comes
alone is not held back for the next, and a client that does not read bounds how far
ahead the upstream is read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from relay_serve._coalesce import BURST, send_body


async def test_frames_ready_together_go_out_in_one_write_with_the_end() -> None:
    async def frames() -> AsyncIterator[bytes]:
        for piece in (b"a", b"b", b"c"):
            yield piece

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await send_body(frames(), send)
    assert sent == [{"type": "http.response.body", "body": b"abc", "more_body": False}]


async def test_a_frame_that_comes_alone_is_written_before_the_next_comes() -> None:
    written = asyncio.Event()
    sent: list[tuple[bytes, bool]] = []

    async def frames() -> AsyncIterator[bytes]:
        yield b"first"
        await written.wait()  # the next piece comes only once the first was written
        yield b"second"

    async def send(message: Any) -> None:
        sent.append((message["body"], message["more_body"]))
        written.set()

    await asyncio.wait_for(send_body(frames(), send), 5)
    assert sent == [(b"first", True), (b"second", False)]


async def test_a_client_that_does_not_read_stops_the_reading_ahead() -> None:
    read = 0
    blocked = asyncio.Event()

    async def frames() -> AsyncIterator[bytes]:
        nonlocal read
        while True:
            read += 1
            yield b"x" * 1024
            await asyncio.sleep(0)

    async def send(message: Any) -> None:
        blocked.set()
        await asyncio.Event().wait()  # a client that never reads: the write never ends

    writer = asyncio.ensure_future(send_body(frames(), send))
    await blocked.wait()
    for _ in range(500):
        await asyncio.sleep(0)
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer
    assert read <= 2 * BURST // 1024 + 2
