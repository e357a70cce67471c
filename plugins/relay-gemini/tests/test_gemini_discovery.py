"""Registration in code and the declared capabilities (discovery through the entry point,
lazy loading and the block list are checked by the conformance suite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from gemini_support import MODEL, Recorder

import relay_gemini
from relay_core import (
    Capability,
    CredentialError,
    Hub,
    PluginRegistry,
    ProviderSettings,
    Request,
)
from relay_core.errors import AuthenticationError
from relay_core.hub import required_capabilities
from relay_gemini._adapter import GeminiProvider


def test_in_code_registration_gives_the_adapter() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(relay_gemini, name="gemini")
    assert registry.provider("gemini").load() is GeminiProvider


def test_the_declared_settings() -> None:
    assert GeminiProvider.name == "gemini"
    assert GeminiProvider.api_key_env == "GEMINI_API_KEY"
    assert GeminiProvider.default_base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert GeminiProvider.capabilities == frozenset(Capability) - {Capability.SERVER_TOOLS}


def test_every_declared_capability_is_accepted_by_the_hub(make_hub: Callable[..., Hub]) -> None:
    from relay_core import DocumentPart, ImagePart, Message, ResponseSchema, Tool

    hub = make_hub(Recorder())
    request = Request(
        messages=[
            Message.user(ImagePart(url="https://x/y.png"), DocumentPart(url="https://x/y.pdf"))
        ],
        tools=[Tool("f")],
        response_schema=ResponseSchema({"type": "object"}),
    )
    # Thinking is asked for by config, streaming and batches by the call.
    needs = required_capabilities(request) | {
        Capability.THINKING,
        Capability.STREAM,
        Capability.BATCH,
    }
    assert needs == set(GeminiProvider.capabilities)
    handle = hub.get(f"gemini/{MODEL}")
    handle.prepare(request)  # raises UnsupportedCapability for anything undeclared


def test_a_missing_key_names_the_environment_variable(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY")
    recorder = Recorder()
    with pytest.raises(CredentialError, match="GEMINI_API_KEY"):
        make_hub(recorder).chat(f"gemini/{MODEL}", "Hi")
    provider = GeminiProvider(ProviderSettings(name="gemini"))
    with pytest.raises(AuthenticationError, match="GEMINI_API_KEY"):
        asyncio.run(provider.chat(Request.from_prompt("Hi", model=MODEL)))
    assert recorder.requests == []
