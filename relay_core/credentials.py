"""Resolving credential references (``$env.NAME``, ``keyring:S/U``, ``file:PATH``...).

Resolvers come from plugins through ``relay_register_credential_resolvers``; the built-in
plugin provides ``env``, ``file`` and ``keyring``. A value is resolved when a provider is
first used and is only ever held as a :class:`~relay_core.Secret`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from relay_core.errors import CredentialError
from relay_core.secrets import Secret

if TYPE_CHECKING:
    from relay_core.config import CredentialRef, Location
    from relay_core.plugins import PluginRegistry

__all__ = ["resolve_credential"]


def resolve_credential(
    reference: CredentialRef, plugins: PluginRegistry, *, where: Location | None = None
) -> Secret:
    """The secret behind ``reference``; :class:`CredentialError` (naming the reference,
    never a value, and the catalog position in ``where``) when it cannot be resolved."""
    location = attrs.asdict(where) if where is not None else {}
    resolver = plugins.credential_resolver(reference.scheme)
    if resolver is None:
        known = ", ".join(sorted(plugins.credential_schemes()))
        raise CredentialError(
            f"no resolver for credential scheme {reference.scheme!r} in {reference}; "
            f"installed schemes: {known}",
            **location,
        )
    try:
        value = resolver(reference.name)
    except LookupError as error:
        raise CredentialError(
            f"credential {reference} cannot be resolved: {error}", **location
        ) from None
    return Secret(value, source=str(reference))
