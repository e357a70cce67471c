"""relay-vertex: Google Vertex AI providers.

``vertex``: Gemini models through Vertex's GenerateContent API, with batch prediction
jobs. ``vertex-openai``: the model garden's managed models (Llama, Mistral, DeepSeek...)
through Vertex's OpenAI-compatible Chat Completions endpoint. Both use Google Cloud
credentials (application-default, or a service-account key given as ``api_key``).

This module only registers; it stays light because it is imported whenever plugins load.
The adapters, httpx and google-auth are imported when a call first needs them.
"""

from __future__ import annotations

from collections.abc import Callable

from relay_core.plugin import hookimpl

__all__: list[str] = []

__version__ = "0.1.0"


@hookimpl
def relay_register_providers(register: Callable[..., None]) -> None:
    register("vertex", "relay_vertex._adapter:VertexProvider")
    register("vertex-openai", "relay_vertex._openai:VertexOpenAIProvider")
