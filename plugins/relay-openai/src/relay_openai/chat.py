"""OpenAI's wire formats (Chat Completions, and the Responses API beside it), for plugins
that speak them too.

relay-openai-compat (Groq, DeepSeek, vLLM, Ollama, ...) and relay-azure build on
:class:`OpenAIProvider`, changing what their servers do differently. This is the public
face of ``relay_openai._adapter``: the names below keep their meaning across minor
versions, the private module's other names do not.

- :class:`OpenAIProvider`: the adapter, to subclass.
- :class:`ModelFamily`, :func:`model_family`, :data:`MODEL_FAMILIES`: what each OpenAI
  model family accepts (reasoning, sampling settings, token-limit field).

Importing this module imports the adapter and httpx with it: import it from an adapter
module, never from a plugin's entry point.
"""

from __future__ import annotations

from relay_openai._adapter import MODEL_FAMILIES, ModelFamily, OpenAIProvider, model_family

__all__ = ["MODEL_FAMILIES", "ModelFamily", "OpenAIProvider", "model_family"]
