"""relay-gemini: the Gemini API (Google AI Studio) as a Relay provider.

This module only registers; it is imported whenever plugins load, so it stays light.
The adapter (``relay_gemini._adapter``), and httpx with it, load on the first call.
"""

from __future__ import annotations

from collections.abc import Callable

from relay_core.plugin import hookimpl

__all__: list[str] = []

__version__ = "0.1.0"


@hookimpl
def relay_register_providers(register: Callable[..., None]) -> None:
    register("gemini", "relay_gemini._adapter:GeminiProvider")
