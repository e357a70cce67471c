"""relay-secrets-vault: the ``vault:`` credential scheme, read from HashiCorp Vault's
KV v2 engine.

``api_key: vault:secret/data/relay#openai`` in a catalog is the ``openai`` field of the
secret ``relay`` in the mount ``secret``; ``#field`` may be left out when the secret
has one field. This module is imported whenever plugins load, so it only registers:
hvac loads on the first reference resolved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay_core.plugin import CachedSecrets, hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SCHEME", "TTL", "resolver"]

SCHEME = "vault"
TTL = 300.0
"""Seconds a secret read is kept before it is read again (``hub.refresh_credentials()``
forgets it at once)."""


def _fetch(reference: str) -> str:
    from relay_secrets_vault._store import fetch

    return fetch(reference)


resolver = CachedSecrets(_fetch, ttl=TTL)
"""The resolver registered for ``vault:``: a :class:`relay_core.plugin.CachedSecrets`."""


@hookimpl
def relay_register_credential_resolvers(
    register: Callable[[str, Callable[[str], str]], None],
) -> None:
    register(SCHEME, resolver)
