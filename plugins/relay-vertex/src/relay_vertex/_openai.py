"""Vertex's OpenAI-compatible Chat Completions endpoint: the model garden's managed
models (Llama, Mistral, DeepSeek, Qwen... as ``publisher/model``), and Gemini too.

relay-openai-compat's adapter does the mapping; this class only changes where requests
go (``{location_url}/endpoints/openapi/chat/completions``) and signs them with Google
Cloud credentials, as :mod:`relay_vertex._adapter` does for Gemini.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import attrs

from relay_core.plugin import ErrorRule, ProviderSettings
from relay_openai_compat.chat import OpenAICompatProvider
from relay_vertex._adapter import ERROR_RULES
from relay_vertex._auth import GoogleAuth
from relay_vertex._client import Endpoints, Options

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient

__all__ = ["VertexOpenAIProvider"]

# The model garden's managed models are regional (Llama 3.3 and most others are served
# in us-central1; few are on the global endpoint).
DEFAULT_LOCATION = "us-central1"


class VertexOpenAIProvider(OpenAICompatProvider):
    """Models of Vertex's model garden through its OpenAI-compatible endpoint
    (``vertex-openai/meta/llama-3.3-70b-instruct-maas``)."""

    name = "vertex-openai"
    # relay-openai-compat's: chat, stream, tools, structured output, vision, thinking.
    # No batch: Vertex's batch jobs for these models take OpenAI-format lines of their
    # own, which this plugin does not map (see the README).
    api_key_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    # Errors come in Google's shape ({"error": {"code", "message", "status"}}), worded
    # as for Gemini on Vertex.
    error_rules: ClassVar[Sequence[ErrorRule]] = ERROR_RULES

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        self.options = Options.parse(settings, default_location=DEFAULT_LOCATION)
        if self.options.gcs_uri is not None:
            from relay_core.plugin import ConfigError

            raise ConfigError(
                f"providers.{settings.name}.options.batch: the vertex-openai provider has "
                "no batch jobs"
            )
        # relay-openai-compat checks its own options (max_tokens_field...) and needs a
        # base_url: the endpoint's origin, the project's path being added per call.
        host = self.options.host(settings.base_url)
        super().__init__(
            attrs.evolve(settings, options=dict(self.options.rest), base_url=host), http
        )
        self.auth = GoogleAuth(settings.name, settings.api_key, timeout=settings.timeout)
        self.endpoints = Endpoints(settings, self.options, self.auth)
        self.http.prepare = self.endpoints.preparer("endpoints/openapi")

    def _headers(self) -> dict[str, str]:
        # The bearer token is added by the client's prepare; the api_key holds credentials JSON.
        return {}
