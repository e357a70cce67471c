"""A streamed body written as its frames come, every frame ready by then in one write.

Each ASGI ``send`` of a body piece costs the server a system call and the client a read
and a parse of its own. An upstream that sends many events at once (a fast model, or a
network that bundles them into one packet) hands relay-serve many frames with no wait
between them: they go out together rather than one write each. A frame that comes alone
is written at once, as before, so nothing waits for company.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
from starlette.types import Send

__all__ = ["send_body"]

# Bytes read ahead of a client that does not keep up before the upstream's reading
# waits for it: a slow reader holds at most this much of its stream in the server.
BURST = 64 * 1024


async def send_body(frames: AsyncIterator[bytes], send: Send) -> None:
    """Send ``frames`` as the body of a response whose head was sent, and its end: the
    frames are read in a task of their own while what was read so far is written."""
    ready: list[bytes] = []
    size = 0
    ended = False
    wake = asyncio.Event()  # set when a frame is ready or the frames ended
    room = asyncio.Event()  # set while less than BURST bytes wait
    room.set()

    async def read() -> None:
        nonlocal size, ended
        async for frame in frames:
            ready.append(frame)
            size += len(frame)
            wake.set()
            if size >= BURST:
                room.clear()
                await room.wait()
        ended = True
        wake.set()

    async with anyio.create_task_group() as group:
        group.start_soon(read)
        while True:
            if not ready:
                if ended:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                wake.clear()
                await wake.wait()
                continue
            body = ready[0] if len(ready) == 1 else b"".join(ready)
            ready.clear()
            size = 0
            room.set()
            # The last frames and the body's end in one write when the frames are done.
            last = ended
            await send({"type": "http.response.body", "body": body, "more_body": not last})
            if last:
                return
