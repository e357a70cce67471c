"""Answers as the JSON text both stores keep (and measure ``max_bytes`` by)."""

from __future__ import annotations

from relay_core.plugin import Response, dumps, loads

__all__ = ["decode", "encode"]


def encode(response: Response) -> str:
    """The stored form: Relay's own JSON for a response (``parsed`` is left out; the hub
    parses a hit again against the request's schema)."""
    return dumps(response)


def decode(text: str) -> Response:
    """The response back; raises whatever JSON or cattrs raise for a row that does not
    fit (the stores turn that into a miss)."""
    return loads(text, Response)
