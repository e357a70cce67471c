"""A response answered at once leaves the server in one write: its head and body
joined, not one system call (and one packet for the client to read) each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from relay_serve._connections import guarded_protocol
from relay_serve._cork import CorkedTransport
from relay_serve._settings import ServeSettings


class Wire(asyncio.Transport):
    """A connection's far end: records each write the server makes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    )
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.mark.parametrize("http", ["h11", "httptools"])
async def test_a_response_goes_out_in_one_write(http: str) -> None:
    config = uvicorn.Config(app, ws="none", log_level="warning")
    config.load()
    protocol = guarded_protocol(ServeSettings(), 4, http=http)(  # type: ignore[call-arg]
        config=config, server_state=ServerState(), app_state={}
    )
    wire = Wire()
    protocol.connection_made(wire)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(wire.writes) == 1
    head, _, body = wire.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == b"hello"
    protocol.connection_lost(None)


async def test_closing_writes_what_is_pending_and_aborting_drops_it() -> None:
    loop = asyncio.get_running_loop()
    wire = Wire()
    corked = CorkedTransport(wire, loop)
    corked.write(b"a")
    corked.writelines([b"b", bytearray(b"c")])
    assert wire.writes == []
    assert corked.get_write_buffer_size() == 3
    corked.close()
    assert wire.writes == [b"abc"]
    assert wire.closed
    await asyncio.sleep(0)  # the turn's flush finds nothing left to write
    assert wire.writes == [b"abc"]

    wire = Wire()
    corked = CorkedTransport(wire, loop)
    corked.write(b"lost")
    corked.abort()
    await asyncio.sleep(0)
    assert wire.writes == []
    assert wire.aborted
