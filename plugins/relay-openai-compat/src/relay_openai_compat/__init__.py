"""relay-openai-compat: providers that speak OpenAI's Chat Completions wire format.

This module only registers; it stays light because it is imported whenever plugins load.
The adapters (``relay_openai_compat._adapter``, which builds on ``relay_openai._adapter``)
and httpx with them are imported by the core on the first call.

``openai-compat`` is the generic entry: it needs ``base_url`` from the catalog and sends no
key unless the catalog gives one. Every other name is a preset: the same wire format with
defaults (base URL, key variable, options) that the catalog may override. A preset's
capabilities are its adapter class's, so ``relay providers`` and the hub's capability
check read the same truth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay_core.plugin import hookimpl

__all__: list[str] = []

__version__ = "0.1.0"

_ADAPTER = "relay_openai_compat._adapter:OpenAICompatProvider"
# Capability profiles that differ from the generic one (see _adapter).
_DEEPSEEK = "relay_openai_compat._adapter:DeepSeekProvider"
_OPENROUTER = "relay_openai_compat._adapter:OpenRouterProvider"
_EMBEDDING_SERVER = "relay_openai_compat._adapter:EmbeddingServerProvider"

# name: (adapter, base_url, api_key_env, options). `None` as the key variable means the
# server needs no key: no Authorization header goes out unless the catalog sets api_key.
PRESETS: dict[str, tuple[str, str, str | None, dict[str, Any]]] = {
    "together": (
        "relay_openai_compat._together:TogetherProvider",
        "https://api.together.ai/v1",
        "TOGETHER_API_KEY",
        {},
    ),
    "groq": (
        _ADAPTER,
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
        {"max_tokens_field": "max_completion_tokens"},
    ),
    "deepseek": (
        _DEEPSEEK,
        "https://api.deepseek.com",
        "DEEPSEEK_API_KEY",
        # DeepSeek's JSON Output is json_object only: no json_schema response format.
        {"structured_output": "json_object"},
    ),
    "xai": (_ADAPTER, "https://api.x.ai/v1", "XAI_API_KEY", {}),
    "fireworks": (_ADAPTER, "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", {}),
    "openrouter": (_OPENROUTER, "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", {}),
    "vllm": ("relay_openai_compat._vllm:VLLMProvider", "http://127.0.0.1:8000/v1", None, {}),
    "ollama": (_EMBEDDING_SERVER, "http://127.0.0.1:11434/v1", None, {}),
    "llama-cpp": (_EMBEDDING_SERVER, "http://127.0.0.1:8080/v1", None, {}),
}


@hookimpl
def relay_register_providers(register: Callable[..., None]) -> None:
    # The generic entry may be any server; most that speak Chat Completions embed too.
    register("openai-compat", _EMBEDDING_SERVER)
    for name, (adapter, base_url, key_env, options) in PRESETS.items():
        register(
            name,
            adapter,
            defaults={"base_url": base_url, "api_key_env": key_env, "options": dict(options)},
        )
