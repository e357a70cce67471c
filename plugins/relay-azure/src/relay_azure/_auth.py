"""Microsoft Entra ID tokens for Azure OpenAI, fetched from a ``TokenCredential``.

A ``TokenCredential`` is anything with ``get_token(scope) -> AccessToken`` (``.token``,
``.expires_on`` in Unix seconds), as azure-identity's credentials are. Its calls block
(they may reach the Entra endpoint or run the Azure CLI), so they run in a worker thread,
never on the event loop; a token is kept until shortly before it expires, and held only
as a :class:`~relay_core.secrets.Secret`, which masks it wherever text is written.

azure-identity is an optional extra (``relay-azure[entra]``), imported by
:func:`default_credential` on the first call that needs a token: never when the adapter
module is imported, plugins are listed or a catalog is loaded.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Callable
from typing import Any

from relay_core.plugin import AuthenticationError, ConfigError, Secret

__all__ = ["ENTRA_SCOPE", "REFRESH_MARGIN", "EntraTokens", "default_credential"]

# The scope Azure OpenAI's dated API takes tokens for (the v1 API accepts it too).
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
# A token is replaced this many seconds before it expires, so none expires in flight.
REFRESH_MARGIN = 300.0


def default_credential() -> Any:
    """azure-identity's ``DefaultAzureCredential`` (environment, workload identity,
    managed identity, Azure CLI...), importing azure-identity now."""
    try:
        identity = importlib.import_module("azure.identity")
    except ImportError as error:
        raise ConfigError(
            "options.auth 'entra' needs azure-identity, which is not installed: "
            "pip install 'relay-azure[entra]'"
        ) from error
    return identity.DefaultAzureCredential()


class EntraTokens:
    """Bearer tokens for ``scope`` from the credential ``credential_factory`` builds (on
    the first token asked for; by default :func:`default_credential`), cached until
    :data:`REFRESH_MARGIN` seconds before they expire. Safe to share between event loops
    and threads."""

    def __init__(
        self,
        scope: str = ENTRA_SCOPE,
        *,
        provider: str = "azure",
        credential_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scope = scope
        self._provider = provider
        self._factory = credential_factory
        self._clock = clock
        # A threading lock, not an asyncio one: the sync hub runs calls on several loops.
        self._lock = threading.Lock()
        self._credential: Any = None
        self._token: Secret | None = None
        self._expires_on = 0.0

    def __repr__(self) -> str:
        return f"EntraTokens(scope={self.scope!r})"

    def cached(self) -> Secret | None:
        """The current token when it is still good for a while, else None."""
        if self._token is not None and self._clock() < self._expires_on - REFRESH_MARGIN:
            return self._token
        return None

    async def token(self) -> Secret:
        """A token good for at least the refresh margin; fetched off the event loop."""
        cached = self.cached()
        if cached is not None:
            return cached
        return await asyncio.to_thread(self._fetch)

    def _fetch(self) -> Secret:
        with self._lock:
            # Another caller may have fetched it while this one waited for the lock.
            cached = self.cached()
            if cached is not None:
                return cached
            if self._credential is None:
                # Looked up now, not at definition, so azure-identity loads only here.
                self._credential = (self._factory or default_credential)()
            try:
                access = self._credential.get_token(self.scope)
            except Exception as error:  # azure-identity raises several unrelated types
                raise AuthenticationError(
                    f"Microsoft Entra ID gave no token for {self.scope}: "
                    f"{type(error).__name__}: {error}",
                    provider=self._provider,
                ) from error
            token = getattr(access, "token", None)
            expires_on = getattr(access, "expires_on", None)
            if not isinstance(token, str) or not token or not isinstance(expires_on, (int, float)):
                raise AuthenticationError(
                    f"the credential's get_token({self.scope!r}) returned no usable token",
                    provider=self._provider,
                )
            self._token = Secret(token, source="Microsoft Entra ID")
            self._expires_on = float(expires_on)
            return self._token
