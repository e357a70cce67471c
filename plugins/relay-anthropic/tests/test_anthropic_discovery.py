"""Registration in code and the declared capabilities (discovery through the entry point,
lazy loading and the block list are checked by the conformance suite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from anthropic_support import MODEL, Recorder

import relay_anthropic
from relay_anthropic._adapter import AnthropicProvider
from relay_core import (
    Capability,
    CredentialError,
    Hub,
    PluginRegistry,
    ProviderSettings,
    Request,
    UnsupportedCapability,
)
from relay_core.errors import AuthenticationError
from relay_core.hub import required_capabilities


def test_in_code_registration_gives_the_adapter() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(relay_anthropic, name="anthropic")
    assert registry.provider("anthropic").load() is AnthropicProvider


def test_the_declared_settings() -> None:
    assert AnthropicProvider.name == "anthropic"
    assert AnthropicProvider.api_key_env == "ANTHROPIC_API_KEY"
    assert AnthropicProvider.default_base_url == "https://api.anthropic.com/v1"
    assert AnthropicProvider.capabilities == frozenset(Capability) - {Capability.BATCH}


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
    needs = required_capabilities(request) | {Capability.THINKING, Capability.STREAM}
    assert needs == set(AnthropicProvider.capabilities)
    handle = hub.get(f"anthropic/{MODEL}")
    handle.prepare(request)  # raises UnsupportedCapability for anything undeclared


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.submit_batch([Request.from_prompt("x", custom_id="a")]),
        lambda p: p.batch_status("msgbatch_1"),
        lambda p: p.cancel_batch("msgbatch_1"),
        lambda p: p.list_batches(),
    ],
)
def test_batches_are_not_offered_yet(call: Callable[[AnthropicProvider], Any]) -> None:
    provider = AnthropicProvider(ProviderSettings(name="anthropic"))
    assert not provider.supports(Capability.BATCH)
    with pytest.raises(UnsupportedCapability, match="anthropic does not support batch"):
        asyncio.run(call(provider))


def test_a_missing_key_names_the_environment_variable(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    recorder = Recorder()
    with pytest.raises(CredentialError, match="ANTHROPIC_API_KEY"):
        make_hub(recorder).chat(f"anthropic/{MODEL}", "Hi")
    provider = AnthropicProvider(ProviderSettings(name="anthropic"))
    with pytest.raises(AuthenticationError, match="ANTHROPIC_API_KEY"):
        asyncio.run(provider.chat(Request.from_prompt("Hi", model=MODEL)))
    assert recorder.requests == []
