"""The adapter for servers that speak OpenAI's Chat Completions, for plugins that need
one of their own.

relay-serve puts one in front of each backend it pools, and relay-vertex reaches Vertex
AI's OpenAI-compatible endpoint through it. This is the public face of
``relay_openai_compat._adapter``: :class:`OpenAICompatProvider` (a ``base_url``, an
optional key, the catalog's options) keeps its meaning across minor versions, the
private module's other names do not.

Importing this module imports the adapter and httpx with it: import it from an adapter
module, never from a plugin's entry point.
"""

from __future__ import annotations

from relay_openai_compat._adapter import OpenAICompatProvider

__all__ = ["OpenAICompatProvider"]
