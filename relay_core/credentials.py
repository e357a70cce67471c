"""Resolving credential references (``$env.NAME``, ``keyring:S/U``, ``file:PATH``...).

Resolvers come from plugins through ``relay_register_credential_resolvers``; the built-in
plugin provides ``env``, ``file`` and ``keyring``. A value is resolved when a provider is
first used and is only ever held as a :class:`~relay_core.Secret`.

A resolved value is never echoed, whatever its shape: a value that is not one plausible
secret (several lines: a PEM, a mistaken ``file:/etc/shadow``) is a
:class:`CredentialError` naming the reference, never the content. An HTTP header cannot
carry it anyway, and the error that would say so quotes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from relay_core._builtin import check_private_file
from relay_core.errors import CredentialError
from relay_core.secrets import Secret

if TYPE_CHECKING:
    from relay_core.config import CredentialRef, Location
    from relay_core.plugins import PluginRegistry

__all__ = ["resolve_credential"]


def resolve_credential(
    reference: CredentialRef,
    plugins: PluginRegistry,
    *,
    where: Location | None = None,
    private_files: bool = False,
) -> Secret:
    """The secret behind ``reference``; :class:`CredentialError` (naming the reference,
    never a value, and the catalog position in ``where``) when it cannot be resolved or
    is not one plausible secret. ``private_files`` (the catalog's
    ``defaults.strict_credential_files``) refuses a ``file:`` that every user may read."""
    location = attrs.asdict(where) if where is not None else {}
    resolver = plugins.credential_resolver(reference.scheme)
    if resolver is None:
        known = ", ".join(sorted(plugins.credential_schemes()))
        # Not "in {reference}": what follows an unknown scheme's colon may be the secret
        # itself ("admin:S3cretPassw0rd!" reads as scheme "admin").
        raise CredentialError(
            f"no resolver for credential scheme {reference.scheme!r}; installed schemes: "
            f"{known} (written $env.NAME, file:PATH or keyring:SERVICE/USER)",
            **location,
        )
    try:
        if private_files and reference.scheme == "file":
            check_private_file(reference.name)
        value = resolver(reference.name)
    except LookupError as error:
        raise CredentialError(
            f"credential {reference} cannot be resolved: {error}", **location
        ) from None
    if any(mark in value.strip() for mark in "\r\n\0"):
        raise CredentialError(
            f"credential {reference} holds several lines, not one secret; its content is not shown",
            **location,
        )
    return Secret(value, source=str(reference))
