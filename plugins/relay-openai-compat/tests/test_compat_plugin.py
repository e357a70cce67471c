"""Discovery through the entry point (lazily, in a subprocess), declared capabilities,
error classification, key masking, and the schema check of the fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import relay_openai_compat
from relay_core import (
    AuthenticationError,
    Capability,
    NotFoundError,
    PluginRegistry,
    QuotaExceeded,
    RateLimitError,
)
from relay_core.testing import secret_shown
from relay_openai_compat._adapter import (
    DeepSeekProvider,
    EmbeddingServerProvider,
    OpenAICompatProvider,
    OpenRouterProvider,
)
from relay_openai_compat._together import TogetherProvider
from relay_openai_compat._vllm import VLLMProvider

# Declared by the adapters that gain embeddings and exact token counts (issue 22).
NOT_YET = {Capability.EMBEDDINGS, Capability.TOKEN_COUNT}

NAMES = [
    "deepseek",
    "fireworks",
    "groq",
    "llama-cpp",
    "ollama",
    "openai-compat",
    "openrouter",
    "together",
    "vllm",
    "xai",
]


def _python(code: str, **env: str) -> Any:
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


def test_the_entry_point_is_discovered_without_importing_any_adapter() -> None:
    out = _python(
        """
        import json, sys
        from relay_core import PluginRegistry

        registry = PluginRegistry()
        providers = registry.providers()
        mine = {n: [e.plugin, e.adapter, dict(e.defaults)] for n, e in providers.items()
                if e.plugin == "openai-compat"}
        infos = {i.name: i.distribution for i in registry.plugins()}
        heavy = sorted(m for m in sys.modules if m.startswith(("relay_openai_compat._",
                       "relay_openai._")) or m.split(".")[0] == "httpx")
        loaded = registry.provider("groq").load()
        print(json.dumps({"mine": mine, "dist": infos.get("openai-compat"), "heavy": heavy,
                          "loaded": [loaded.__module__, loaded.__name__]}))
        """,
        RELAY_PLUGINS="openai-compat",
    )
    assert sorted(out["mine"]) == NAMES
    assert out["dist"] == "relay-openai-compat"
    assert out["heavy"] == []
    assert out["loaded"] == ["relay_openai_compat._adapter", "OpenAICompatProvider"]
    groq = out["mine"]["groq"]
    assert groq[1] == "relay_openai_compat._adapter:OpenAICompatProvider"
    assert groq[2]["api_key_env"] == "GROQ_API_KEY"
    assert out["mine"]["vllm"][2]["api_key_env"] is None
    assert out["mine"]["openai-compat"][2] == {}


def test_the_block_list_hides_every_preset() -> None:
    code = """
        import json
        from relay_core import PluginRegistry
        print(json.dumps(sorted(PluginRegistry().providers())))
    """
    assert set(NAMES) <= set(_python(code, RELAY_PLUGINS="openai-compat"))
    assert not set(NAMES) & set(
        _python(code, RELAY_PLUGINS="openai-compat", RELAY_BLOCK_PLUGINS="openai-compat")
    )


def test_in_code_registration_picks_the_profile_per_preset() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(relay_openai_compat, name="openai-compat")
    assert registry.provider("together").load() is TogetherProvider
    assert registry.provider("groq").load() is OpenAICompatProvider
    assert registry.provider("deepseek").load() is DeepSeekProvider
    assert registry.provider("openrouter").load() is OpenRouterProvider
    for name in ("openai-compat", "ollama", "llama-cpp"):
        assert registry.provider(name).load() is EmbeddingServerProvider


def test_declared_capabilities() -> None:
    base = (
        frozenset(Capability)
        - NOT_YET
        - {
            Capability.BATCH,
            Capability.DOCUMENTS,
            Capability.SERVER_TOOLS,
        }
    )
    assert OpenAICompatProvider.capabilities == base
    assert DeepSeekProvider.capabilities == base - {Capability.VISION}
    assert OpenRouterProvider.capabilities == base | {Capability.DOCUMENTS}
    embeds = {Capability.EMBEDDINGS}
    assert TogetherProvider.capabilities == base | {Capability.BATCH} | embeds
    assert VLLMProvider.capabilities == base | {Capability.BATCH} | embeds
    assert EmbeddingServerProvider.capabilities == base | embeds
    assert OpenAICompatProvider.api_key_env is None
    assert OpenAICompatProvider.default_base_url is None


def _error(message: str, code: str = "", kind: str = "invalid_request_error") -> Any:
    return {"error": {"message": message, "type": kind, "code": code}}


@pytest.mark.parametrize(
    ("preset", "status", "body", "error"),
    [
        ("deepseek", 402, _error("Insufficient Balance"), QuotaExceeded),
        ("openrouter", 402, _error("Insufficient credits"), QuotaExceeded),
        (
            "groq",
            429,
            _error("Rate limit reached", "rate_limit_exceeded", "tokens"),
            RateLimitError,
        ),
        (
            "ollama",
            404,
            {"error": {"message": 'model "qwen9" not found, try pulling it first'}},
            NotFoundError,
        ),
    ],
)
def test_error_classification(
    server: Any, make_hub: Any, waits: list[float], preset: str, status: int, body: Any, error: type
) -> None:
    server.reply(body, status=status)
    hub = make_hub(f"providers:\n  {preset}: {{max_retries: 0}}\n")
    with pytest.raises(error) as caught:
        hub.chat(f"{preset}/m", "Hi")
    assert type(caught.value) is error
    assert caught.value.provider == preset
    assert caught.value.provider_message == body["error"]["message"]


def test_a_key_echoed_by_the_provider_is_masked_everywhere(
    server: Any,
    make_hub: Any,
    fake_key: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.reply(_error(f"Invalid API Key: {fake_key}", "invalid_api_key"), status=401)
    with pytest.raises(AuthenticationError) as caught:
        make_hub().chat("groq/m", "Hi")
    assert secret_shown(fake_key, caught.value, caplog.text, *capsys.readouterr()) == []
