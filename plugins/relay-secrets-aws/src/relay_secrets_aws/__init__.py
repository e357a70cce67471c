"""relay-secrets-aws: the ``aws-sm:`` credential scheme, read from AWS Secrets Manager.

``api_key: aws-sm:prod/llm#openai`` in a catalog is the ``openai`` field of the JSON
secret ``prod/llm``; without ``#field`` the whole secret string is the key. This module
is imported whenever plugins load, so it only registers: botocore loads on the first
reference resolved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay_core.plugin import CachedSecrets, hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SCHEME", "TTL", "resolver"]

SCHEME = "aws-sm"
TTL = 300.0
"""Seconds a secret read is kept before it is read again (``hub.refresh_credentials()``
forgets it at once)."""


def _fetch(reference: str) -> str:
    from relay_secrets_aws._store import fetch

    return fetch(reference)


resolver = CachedSecrets(_fetch, ttl=TTL)
"""The resolver registered for ``aws-sm:``: a :class:`relay_core.plugin.CachedSecrets`."""


@hookimpl
def relay_register_credential_resolvers(
    register: Callable[[str, Callable[[str], str]], None],
) -> None:
    register(SCHEME, resolver)
