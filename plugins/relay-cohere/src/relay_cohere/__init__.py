"""relay-cohere: the Cohere provider (``POST /v2/chat``, plain or streamed).

This module only registers; it stays light because it is imported whenever plugins load.
The adapter (``relay_cohere._adapter``), and httpx with it, is imported by the core on
the first call, or here on first access to :class:`CohereProvider`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from relay_core.plugin import hookimpl, lazy_exports

if TYPE_CHECKING:
    from relay_cohere._adapter import CohereProvider

__all__ = ["CohereProvider"]

__version__ = "0.1.0"

__getattr__, __dir__ = lazy_exports(
    __name__, globals(), {"CohereProvider": "relay_cohere._adapter"}
)


@hookimpl
def relay_register_providers(register: Callable[..., None]) -> None:
    register("cohere", "relay_cohere._adapter:CohereProvider")
