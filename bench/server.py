"""An OpenAI-compatible server that answers at once, for measuring clients' own overhead.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) to serve
``POST /v1/chat/completions``: a fixed chat.completion, or with ``"stream": true`` a fixed
stream of ``--chunks`` deltas ending in ``data: [DONE]``. ``--latency`` seconds of delay
per answer model a real provider for the engine's throughput bound. It runs in its own
process so it never competes with the client being measured for the GIL.

    python bench/server.py --port 0 [--latency 0.02] [--chunks 100]   # prints the port
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the bench server."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 8, "completion_tokens": 7, "total_tokens": 15},
    }
).encode()


def _chunk(delta: dict[str, object], finish: str | None = None, usage: bool = False) -> bytes:
    body: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["choices"] = []
        body["usage"] = {"prompt_tokens": 8, "completion_tokens": 100, "total_tokens": 108}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def stream_body(chunks: int) -> bytes:
    parts = [_chunk({"role": "assistant", "content": ""})]
    parts += [_chunk({"content": f"tok{i} "}) for i in range(chunks)]
    parts += [_chunk({}, "stop"), _chunk({}, usage=True), b"data: [DONE]\n\n"]
    return b"".join(parts)


def _response(status: str, content_type: str, body: bytes, chunked: bool = False) -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
    if chunked:
        # One chunk holding the whole stream, then the terminator: clients still parse it
        # event by event, and time to first token measures their own parsing.
        return (
            head.encode()
            + b"transfer-encoding: chunked\r\n\r\n"
            + f"{len(body):x}\r\n".encode()
            + body
            + b"\r\n0\r\n\r\n"
        )
    return head.encode() + f"content-length: {len(body)}\r\n\r\n".encode() + body


class Bench(asyncio.Protocol):
    def __init__(self, latency: float, stream: bytes) -> None:
        self.latency = latency
        self.stream = stream
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self._answer(head.split(" ", 2)[1], body)

    def _answer(self, path: str, body: bytes) -> None:
        if not path.endswith("/chat/completions"):
            reply = _response("404 Not Found", "application/json", b'{"error": "no"}')
        elif b'"stream": true' in body or b'"stream":true' in body:
            reply = _response("200 OK", "text/event-stream", self.stream, chunked=True)
        else:
            reply = _response("200 OK", "application/json", COMPLETION)
        if self.latency:
            asyncio.get_running_loop().call_later(self.latency, self._write, reply)
        else:
            self._write(reply)

    def _write(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)


async def serve(port: int, latency: float, chunks: int) -> None:
    loop = asyncio.get_running_loop()
    stream = stream_body(chunks)
    server = await loop.create_server(
        lambda: Bench(latency, stream), "127.0.0.1", port, backlog=1024
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--chunks", type=int, default=100)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.latency, args.chunks))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
