"""The Gemini API's wire format, for plugins that speak it too.

relay-vertex serves Gemini models through Vertex AI, whose ``generateContent`` bodies,
answers, streams and errors are the Gemini API's; it builds on these. This is the public
face of ``relay_gemini._adapter``: the names below keep their meaning across minor
versions, the private module's other names do not.

- :class:`GeminiProvider`: the adapter, to subclass.
- :func:`http_status`: the HTTP status a ``google.rpc.Status`` error stands for.
- :func:`timestamp_seconds`: Google's RFC 3339 times (nanosecond fractions) as Unix
  seconds.

Importing this module imports the adapter and httpx with it: import it from an adapter
module, never from a plugin's entry point.
"""

from __future__ import annotations

from relay_gemini._adapter import GeminiProvider, http_status, timestamp_seconds

__all__ = ["GeminiProvider", "http_status", "timestamp_seconds"]
