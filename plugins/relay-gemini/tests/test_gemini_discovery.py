"""Registration in code and the declared capabilities (discovery through the entry point,
lazy loading and the block list are checked by the conformance suite)."""

from __future__ import annotations

from relay_core import (
    Capability,
)
from relay_gemini._adapter import GeminiProvider

# Declared by the adapters that gain embeddings and exact token counts (issue 22).
NOT_YET: frozenset[Capability] = frozenset()


def test_the_declared_settings() -> None:
    assert GeminiProvider.name == "gemini"
    assert GeminiProvider.api_key_env == "GEMINI_API_KEY"
    assert GeminiProvider.default_base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert GeminiProvider.capabilities == frozenset(Capability) - NOT_YET - {
        Capability.SERVER_TOOLS
    }
