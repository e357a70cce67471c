"""An MCP server for relay-mcp's tests, built with the SDK's MCPServer.

``python mcp_fixture_server.py stdio`` serves on standard input and output;
``python mcp_fixture_server.py http`` binds 127.0.0.1 on a free port, prints the port on
one line, and serves streamable HTTP at /mcp (requiring ``Authorization: Bearer
$RELAY_MCP_TEST_TOKEN`` when that variable is set).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel

server = MCPServer("relay-test", log_level="WARNING")


class Point(BaseModel):
    x: float
    y: float


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool()
def env_digest(name: str) -> str:
    """The SHA-256 of an environment variable of this server (never its value)."""
    return hashlib.sha256(os.environ.get(name, "").encode()).hexdigest()


@server.tool()
def refuse(reason: str) -> str:
    """Always refuses, as a tool error the model should read."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def explode() -> str:
    """Raises an unexpected exception."""
    raise RuntimeError("boom")


@server.tool()
def protocol_error() -> str:
    """Answers with a JSON-RPC error instead of a result."""
    raise MCPError(-32602, "this tool takes no requests today")


@server.tool()
def crash() -> str:
    """Kills this server's process mid-call."""
    print("crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
def slow(seconds: float) -> str:
    """Sleeps, then answers."""
    time.sleep(seconds)
    return "done"


@server.tool()
def picture() -> list[TextContent | ImageContent]:
    """A caption and a small PNG."""
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(2040)).decode()
    return [TextContent(text="a tiny picture"), ImageContent(data=png, mime_type="image/png")]


@server.tool(name="geo.distance-v2")
def distance(a: Point, b: Point) -> float:
    """Distance between two points."""
    return float(((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5)


def serve_http() -> None:
    import uvicorn

    app = server.streamable_http_app()
    token = os.environ.get("RELAY_MCP_TEST_TOKEN")

    async def guarded(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and token is not None:
            sent = dict(scope["headers"]).get(b"authorization", b"").decode()
            if sent != f"Bearer {token}":
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(guarded, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    if sys.argv[1:] == ["http"]:
        serve_http()
    else:
        server.run("stdio")
