"""relay-azure: Azure OpenAI deployments (``azure/<deployment>``) as a Relay provider.

This module only registers; it stays light because it is imported whenever plugins load.
The adapter (``relay_azure._adapter``, built on relay-openai's) and httpx with it are
imported by the core on the first call, or here on first access to
:class:`AzureOpenAIProvider`; azure-identity only when a call needs an Entra ID token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from relay_core.plugin import hookimpl, lazy_exports

if TYPE_CHECKING:
    from relay_azure._adapter import AzureOpenAIProvider

__all__ = ["AzureOpenAIProvider"]

__version__ = "0.1.0"

__getattr__, __dir__ = lazy_exports(
    __name__, globals(), {"AzureOpenAIProvider": "relay_azure._adapter"}
)


@hookimpl
def relay_register_providers(register: Callable[..., None]) -> None:
    register("azure", "relay_azure._adapter:AzureOpenAIProvider")
