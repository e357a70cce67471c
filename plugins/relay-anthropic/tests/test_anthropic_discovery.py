"""Registration in code and the declared capabilities (discovery through the entry point,
lazy loading and the block list are checked by the conformance suite)."""

from __future__ import annotations

from relay_anthropic._adapter import AnthropicProvider
from relay_core import (
    BatchLimits,
    Capability,
)

# Declared by the adapters that gain embeddings and exact token counts (issue 22).
NOT_YET = {Capability.EMBEDDINGS}


def test_the_declared_settings() -> None:
    assert AnthropicProvider.name == "anthropic"
    assert AnthropicProvider.api_key_env == "ANTHROPIC_API_KEY"
    assert AnthropicProvider.default_base_url == "https://api.anthropic.com/v1"
    assert AnthropicProvider.capabilities == frozenset(Capability) - NOT_YET
    assert AnthropicProvider.batch_limits == BatchLimits(
        max_requests=100_000, max_bytes=256_000_000 - len('{"requests":[]}')
    )
    assert AnthropicProvider.batch_metadata is False
