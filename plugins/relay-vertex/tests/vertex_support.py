"""Shared helpers of relay-vertex's tests: a service-account key made for the test, the
OAuth token endpoint it points to (a server on 127.0.0.1), and Vertex answer bodies. A
module of its own name, so tests of other plugins in the same session never import these
under the name ``conftest``."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# RELAY_RECORD=once re-records cassettes with the shell's real Google credentials and
# project (application-default credentials, GOOGLE_CLOUD_PROJECT); see the cassettes' README.
RECORDING = os.environ.get("RELAY_RECORD", "none") != "none"
CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-vertex"
PROJECT = "my-project"
MODEL = "gemini-2.5-flash"
GLOBAL = f"https://aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/global"
REGIONAL = (
    f"https://us-central1-aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/us-central1"
)


def private_key_pem() -> str:
    """A fresh RSA key in PEM, as a service-account key file holds one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class TokenServer:
    """Google's OAuth token endpoint, played on 127.0.0.1: each JWT-bearer grant gets the
    next token (``vertex-token-1``, ``-2``...) valid for ``expires_in`` seconds, or the
    error queued with :meth:`refuse`."""

    def __init__(self) -> None:
        self.grants: list[dict[str, list[str]]] = []
        self.expires_in = 3600
        self.refusal: tuple[int, dict[str, Any]] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                server.grants.append(parse_qs(self.rfile.read(length).decode()))
                if server.refusal is not None:
                    status, body = server.refusal
                else:
                    status = 200
                    body = {
                        "access_token": f"vertex-token-{len(server.grants)}",
                        "expires_in": server.expires_in,
                        "token_type": "Bearer",
                    }
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/token"

    def refuse(self, status: int, body: dict[str, Any]) -> None:
        self.refusal = (status, body)

    @contextmanager
    def running(self) -> Iterator[TokenServer]:
        thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._http.shutdown()
            self._http.server_close()


def service_account(token_uri: str, private_key: str, project: str = PROJECT) -> dict[str, Any]:
    """A service-account key JSON document, as the Cloud console writes one."""
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": private_key,
        "client_email": f"relay-test@{project}.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }


def answer(
    parts: list[dict[str, Any]], finish: str | None = "STOP", **extra: Any
) -> dict[str, Any]:
    """A GenerateContentResponse with one candidate, as Vertex writes it."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12},
        "modelVersion": MODEL,
        "createTime": "2025-09-01T10:00:00.000000Z",
        "responseId": "vertex-response-1",
        **extra,
    }


def google_error(
    code: int, status: str, message: str, details: list[Any] | None = None
) -> dict[str, Any]:
    """Google's error body: ``{"error": {"code", "message", "status"}}``."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}
