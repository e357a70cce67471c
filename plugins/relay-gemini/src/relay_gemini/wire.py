"""The Gemini API's wire format, for plugins that speak it too.

relay-vertex serves Gemini models through Vertex AI, whose ``generateContent`` bodies,
answers, streams and errors are the Gemini API's; it builds on these. The wire format
lives in pure modules, one surface each, all public (their ``__all__`` names keep their
meaning across minor versions):

- :mod:`relay_gemini.payload`: a Request as a GenerateContentRequest
  (:func:`~relay_gemini.payload.payload`, :func:`~relay_gemini.payload.method_path`).
- :mod:`relay_gemini.parse`: a GenerateContentResponse as a Response, blocked prompts,
  usage, finish reasons.
- :mod:`relay_gemini.events`: streamGenerateContent's chunks as stream events.
- :mod:`relay_gemini.batches`: batch mode's Operations and output lines.
- :mod:`relay_gemini.count`: countTokens bodies (wrapped, and Vertex's flat form) and
  answers.
- :mod:`relay_gemini.rpc`: ``google.rpc.Status`` errors and RFC 3339 times.

This module gathers what relay-vertex takes:

- :class:`GeminiProvider`: the adapter, to subclass (its ``payload``, ``count_payload``, ``_parse``,
  ``_malformed``, ``_headers`` and ``_batch`` are the hooks a subclass builds on).
- :func:`http_status`: the HTTP status a ``google.rpc.Status`` error stands for.
- :func:`timestamp_seconds`: Google's RFC 3339 times (nanosecond fractions) as Unix
  seconds.

Importing this module imports the adapter with it: import it from an adapter module, never
from a plugin's entry point. The pure modules import only the plugin SDK.
"""

from __future__ import annotations

from relay_gemini._adapter import GeminiProvider
from relay_gemini.rpc import http_status, timestamp_seconds

__all__ = ["GeminiProvider", "http_status", "timestamp_seconds"]
