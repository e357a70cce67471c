"""relay-mistral: the Mistral provider (``POST /v1/chat/completions`` and batch jobs).

This module only registers; it stays light because it is imported whenever plugins load.
The adapter (``relay_mistral._adapter``), and httpx with it, is imported by the core on
the first call.
"""

from __future__ import annotations

from collections.abc import Callable

from relay_core.plugin import hookimpl

__all__: list[str] = []

__version__ = "0.1.0"


@hookimpl
def relay_register_providers(register: Callable[..., None]) -> None:
    register("mistral", "relay_mistral._adapter:MistralProvider")
