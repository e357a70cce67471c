"""Discovery through the entry point, lazy loading, declared capabilities and settings."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from mistral_support import MODEL, Recorder

import relay_mistral
from relay_core import (
    Capability,
    ConfigError,
    DocumentPart,
    Hub,
    ImagePart,
    Message,
    PluginRegistry,
    ProviderSettings,
    Request,
    ResponseSchema,
    Tool,
    UnsupportedCapability,
)
from relay_core.hub import required_capabilities
from relay_mistral._adapter import MistralProvider


def _python(code: str, **env: str) -> Any:
    """Run ``code`` in a fresh interpreter (no RELAY_* steering) and parse its JSON."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_entry_point_is_discovered_without_importing_the_adapter() -> None:
    out = _python("""
        import json, sys
        from relay_core import PluginRegistry

        registry = PluginRegistry()
        providers = registry.providers()
        infos = {i.name: [i.distribution, i.version] for i in registry.plugins()}
        heavy = sorted(m for m in sys.modules
                       if m.startswith("relay_mistral._") or m.split(".")[0] == "httpx")
        adapter = registry.provider("mistral").load()
        print(json.dumps({"adapter": providers["mistral"].adapter, "info": infos.get("mistral"),
                          "heavy": heavy, "loaded": adapter.__module__ + ":" + adapter.__name__}))
    """)
    assert out["adapter"] == "relay_mistral._adapter:MistralProvider"
    assert out["info"] == ["relay-mistral", "0.1.0"]
    assert out["heavy"] == []
    assert out["loaded"] == "relay_mistral._adapter:MistralProvider"


def test_importing_the_plugin_module_stays_light() -> None:
    modules = _python("""
        import json, sys
        import relay_mistral
        print(json.dumps(sorted(sys.modules)))
    """)
    heavy = [m for m in modules if m.startswith("relay_mistral._") or m.split(".")[0] == "httpx"]
    assert heavy == []


def test_the_block_list_hides_the_plugin() -> None:
    code = """
        import json
        from relay_core import PluginRegistry
        print(json.dumps(sorted(PluginRegistry().providers())))
    """
    assert "mistral" in _python(code, RELAY_PLUGINS="mistral")
    assert "mistral" not in _python(code, RELAY_BLOCK_PLUGINS="mistral")


def test_in_code_registration_gives_the_adapter() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(relay_mistral, name="mistral")
    assert registry.provider("mistral").load() is MistralProvider


def test_the_declared_settings() -> None:
    assert MistralProvider.name == "mistral"
    assert MistralProvider.api_key_env == "MISTRAL_API_KEY"
    assert MistralProvider.default_base_url == "https://api.mistral.ai/v1"
    assert MistralProvider.capabilities == frozenset(Capability) - {Capability.BATCH}


def test_every_declared_capability_is_accepted_by_the_hub(make_hub: Callable[..., Hub]) -> None:
    request = Request(
        messages=[
            Message.user(ImagePart(url="https://x/y.png"), DocumentPart(url="https://x/y.pdf"))
        ],
        tools=[Tool("f")],
        response_schema=ResponseSchema({"type": "object"}),
    )
    needs = required_capabilities(request) | {Capability.THINKING, Capability.STREAM}
    assert needs == set(MistralProvider.capabilities)
    make_hub(Recorder()).get(f"mistral/{MODEL}").prepare(request)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.submit_batch([Request.from_prompt("x", custom_id="a")]),
        lambda p: p.batch_status("job_1"),
        lambda p: p.cancel_batch("job_1"),
        lambda p: p.list_batches(),
    ],
)
def test_batches_are_not_offered_yet(call: Callable[[MistralProvider], Any]) -> None:
    provider = MistralProvider(ProviderSettings(name="mistral"))
    assert not provider.supports(Capability.BATCH)
    with pytest.raises(UnsupportedCapability, match="mistral does not support batch"):
        asyncio.run(call(provider))


def test_options_are_refused(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(Recorder(), "providers:\n  mistral:\n    options: {safe_prompt: true}\n")
    with pytest.raises(ConfigError, match="takes no options"):
        hub.chat(f"mistral/{MODEL}", "Hi")


def test_a_base_url_from_the_catalog_is_used(make_hub: Callable[..., Hub]) -> None:
    recorder = Recorder()
    hub = make_hub(recorder, "providers:\n  mistral:\n    base_url: https://eu.example.test/v1\n")
    hub.chat(f"mistral/{MODEL}", "Hi")
    assert str(recorder.requests[-1].url) == "https://eu.example.test/v1/chat/completions"
