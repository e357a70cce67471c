"""Registration in code and the declared capabilities (discovery through the entry point,
lazy loading and the block list are checked by the conformance suite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from anthropic_support import MODEL, ok

import relay_anthropic
from relay_anthropic._adapter import AnthropicProvider
from relay_core import (
    BatchLimits,
    Capability,
    CredentialError,
    Hub,
    PluginRegistry,
    ProviderSettings,
    Request,
)
from relay_core.errors import AuthenticationError
from relay_core.hub import required_capabilities
from relay_core.testing import FakeServer


def test_in_code_registration_gives_the_adapter() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(relay_anthropic, name="anthropic")
    assert registry.provider("anthropic").load() is AnthropicProvider


def test_the_declared_settings() -> None:
    assert AnthropicProvider.name == "anthropic"
    assert AnthropicProvider.api_key_env == "ANTHROPIC_API_KEY"
    assert AnthropicProvider.default_base_url == "https://api.anthropic.com/v1"
    assert AnthropicProvider.capabilities == frozenset(Capability)
    assert AnthropicProvider.batch_limits == BatchLimits(
        max_requests=100_000, max_bytes=256_000_000 - len('{"requests":[]}')
    )
    assert AnthropicProvider.batch_metadata is False


def test_every_declared_capability_is_accepted_by_the_hub(make_hub: Callable[..., Hub]) -> None:
    from relay_core import DocumentPart, ImagePart, Message, ResponseSchema, Tool

    hub = make_hub(FakeServer(ok()))
    request = Request(
        messages=[
            Message.user(ImagePart(url="https://x/y.png"), DocumentPart(url="https://x/y.pdf"))
        ],
        tools=[Tool("f")],
        response_schema=ResponseSchema({"type": "object"}),
    )
    needs = required_capabilities(request) | {
        Capability.THINKING,
        Capability.STREAM,
        Capability.BATCH,
        Capability.SERVER_TOOLS,  # needed by no request: it lets server-tool parts through
    }
    assert needs == set(AnthropicProvider.capabilities)
    handle = hub.get(f"anthropic/{MODEL}")
    handle.prepare(request)  # raises UnsupportedCapability for anything undeclared


def test_a_missing_key_names_the_environment_variable(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    server = FakeServer(ok())
    with pytest.raises(CredentialError, match="ANTHROPIC_API_KEY"):
        make_hub(server).chat(f"anthropic/{MODEL}", "Hi")
    provider = AnthropicProvider(ProviderSettings(name="anthropic"))
    with pytest.raises(AuthenticationError, match="ANTHROPIC_API_KEY"):
        asyncio.run(provider.chat(Request.from_prompt("Hi", model=MODEL)))
    assert server.requests == []
