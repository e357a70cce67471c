"""Registration in code, declared capabilities and settings (discovery through the entry
point, lazy loading and the block list are checked by the conformance suite)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mistral_support import MODEL, ok_server

from relay_core import (
    Capability,
    ConfigError,
    Hub,
    ProviderSettings,
)
from relay_mistral._adapter import MistralProvider

# Declared by the adapters that gain embeddings and exact token counts (issue 22).
NOT_YET = {Capability.TOKEN_COUNT}


def test_the_declared_settings() -> None:
    assert MistralProvider.name == "mistral"
    assert MistralProvider.api_key_env == "MISTRAL_API_KEY"
    assert MistralProvider.default_base_url == "https://api.mistral.ai/v1"
    assert MistralProvider.capabilities == frozenset(Capability) - NOT_YET - {
        Capability.SERVER_TOOLS
    }


def test_options_are_refused(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(ok_server(), "providers:\n  mistral:\n    options: {safe_prompt: true}\n")
    with pytest.raises(ConfigError, match="takes no options but batch_timeout_hours"):
        hub.chat(f"mistral/{MODEL}", "Hi")


@pytest.mark.parametrize("hours", [0, -1, 1.5, "24", True])
def test_a_batch_timeout_must_be_whole_hours(hours: Any) -> None:
    with pytest.raises(ConfigError, match="batch_timeout_hours: a whole number of hours"):
        MistralProvider(ProviderSettings(name="mistral", options={"batch_timeout_hours": hours}))


def test_a_base_url_from_the_catalog_is_used(make_hub: Callable[..., Hub]) -> None:
    server = ok_server()
    hub = make_hub(server, "providers:\n  mistral:\n    base_url: https://eu.example.test/v1\n")
    hub.chat(f"mistral/{MODEL}", "Hi")
    assert str(server.requests[-1].url) == "https://eu.example.test/v1/chat/completions"
