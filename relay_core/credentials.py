"""Resolving credentials: references (``$env.NAME``, ``keyring:S/U``, ``file:PATH``,
a secret manager's ``aws-sm:...``), and keys handed in code (a :class:`~relay_core.Secret`
or a resolver callable the application owns).

Reference resolvers come from plugins through ``relay_register_credential_resolvers``;
the built-in plugin provides ``env``, ``file`` and ``keyring``, the relay-secrets-*
plugins a secret manager each. A value is resolved when a provider's adapter is built
and is only ever held as a :class:`~relay_core.Secret`. :class:`CachedSecrets` and
:func:`secret_field` are what a secret-manager plugin builds its resolver from.

A resolved value is never echoed, whatever its shape: a value that is not one plausible
secret (several lines: a PEM, a mistaken ``file:/etc/shadow``) is a
:class:`CredentialError` naming the reference, never the content. An HTTP header cannot
carry it anyway, and the error that would say so quotes it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from relay_core._builtin import check_private_file
from relay_core.config import ApiKey, CredentialRef
from relay_core.errors import ConfigError, CredentialError, RelayError
from relay_core.secrets import Secret

if TYPE_CHECKING:
    from relay_core.config import Location
    from relay_core.plugins import PluginRegistry

__all__ = [
    "CachedSecrets",
    "resolve_api_key",
    "resolve_credential",
    "secret_field",
    "url_from_environment",
]

# The plugin to install for a secret manager's scheme: the hint of an unknown scheme.
_DISTRIBUTION_OF_SCHEME = {
    "aws-sm": "relay-secrets-aws",
    "gcp-sm": "relay-secrets-gcp",
    "vault": "relay-secrets-vault",
}


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
        distribution = _DISTRIBUTION_OF_SCHEME.get(reference.scheme)
        install = f"pip install {distribution} for it; " if distribution else ""
        # Not "in {reference}": what follows an unknown scheme's colon may be the secret
        # itself ("admin:S3cretPassw0rd!" reads as scheme "admin").
        raise CredentialError(
            f"no resolver for credential scheme {reference.scheme!r}; {install}installed "
            f"schemes: {known} (written $env.NAME, file:PATH or keyring:SERVICE/USER)",
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
    except RelayError:
        raise
    except Exception as error:
        # A resolver's own failure (a client library's error) may quote what it read:
        # its type goes in the message, the error itself only in the chain.
        raise CredentialError(
            f"credential {reference} cannot be resolved: its resolver raised "
            f"{type(error).__name__}",
            **location,
        ) from error
    if any(mark in value.strip() for mark in "\r\n\0"):
        raise CredentialError(
            f"credential {reference} holds several lines, not one secret; its content is not shown",
            **location,
        )
    return Secret(value, source=str(reference))


def resolve_api_key(
    provider: str,
    key: ApiKey,
    plugins: PluginRegistry,
    *,
    where: Location | None = None,
    private_files: bool = False,
) -> Secret:
    """The secret of ``provider``'s key however it was given: a reference (resolved as
    :func:`resolve_credential` does), a :class:`Secret`, or a resolver callable (called
    now; a coroutine it returns is run to completion on an event loop of its own)."""
    if isinstance(key, Secret):
        return key
    if isinstance(key, CredentialRef):
        return resolve_credential(key, plugins, where=where, private_files=private_files)
    name = getattr(key, "__qualname__", None) or type(key).__name__
    try:
        value = key()
        if hasattr(value, "__await__"):
            value = _run_coroutine(value)
    except RelayError:
        raise
    except Exception as error:
        raise CredentialError(
            f"the credential resolver {name} of provider {provider!r} raised "
            f"{type(error).__name__}; its message is not shown, see the chained error"
        ) from error
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str) or not value.strip():
        shown = "an empty string" if isinstance(value, str) else type(value).__name__
        raise CredentialError(
            f"the credential resolver {name} of provider {provider!r} returned {shown}, "
            "not a key (a str or a Secret)"
        )
    return Secret(value, source=f"resolver {name}")


def _run_coroutine(awaitable: Any) -> Any:
    """Run ``awaitable`` to its end from synchronous code, which may itself run inside
    an event loop (adapters are built on the hub's loop): on a loop of its own, in a
    thread of its own, for the moment it takes."""
    import asyncio

    async def wait() -> Any:
        return await awaitable

    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(wait()))
        except BaseException as error:  # re-raised in the caller's thread below
            failure.append(error)

    thread = threading.Thread(target=run, name="relay-credential-resolver")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def secret_field(text: str, field: str | None, reference: str) -> str:
    """The secret a secret manager holds: ``text`` itself when no ``field`` is asked
    (``aws-sm:prod/openai``), else the string at key ``field`` of the JSON object it
    holds (``aws-sm:prod/llm#openai``). :class:`LookupError` naming the reference and
    the keys there are (names, never values)."""
    if not field:
        return text
    try:
        data = json.loads(text)
    except ValueError:
        raise LookupError(
            f"{reference} asks for field {field!r} but the secret is not a JSON object"
        ) from None
    if not isinstance(data, dict):
        raise LookupError(f"{reference} asks for field {field!r} but the secret is not an object")
    value = data.get(field)
    if not isinstance(value, str):
        known = ", ".join(repr(key) for key in sorted(data)) or "none"
        what = "has no string field" if field not in data else "holds no string at"
        raise LookupError(f"{reference}: the secret {what} {field!r}; its fields: {known}")
    return value


class CachedSecrets:
    """What a secret-manager plugin registers as its resolver: ``fetch(name)`` asked
    once per ``ttl`` seconds for each reference, the answer kept in memory meanwhile.

    Every answer is remembered for masking as soon as it arrives. ``cache_clear()``
    forgets them all; :meth:`relay_core.Hub.refresh_credentials` calls it, so a key
    rotated in the manager is read again at once rather than after the TTL.
    """

    def __init__(self, fetch: Callable[[str], str], *, ttl: float = 300.0) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._values: dict[str, tuple[float, Secret]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        now = time.monotonic()
        with self._lock:
            kept = self._values.get(name)
        if kept is not None and now - kept[0] < self.ttl:
            return kept[1].reveal()
        secret = Secret(self._fetch(name))
        with self._lock:
            self._values[name] = (now, secret)
        return secret.reveal()

    def cache_clear(self) -> None:
        """Forget every answer kept, so the next use of each reference calls ``fetch``
        again; the values already seen stay masked."""
        with self._lock:
            self._values.clear()

    def __repr__(self) -> str:
        return (
            f"CachedSecrets({getattr(self._fetch, '__qualname__', self._fetch)!r}, ttl={self.ttl})"
        )


def url_from_environment(url: str, *, setting: str) -> str:
    """``url``, or for ``$env.NAME`` the URL that environment variable holds, so that a
    password in a database's URL never sits in a file, a command line or a shell
    history. ``setting`` names where the URL was given (``"plugins.serve.database"``),
    for the :class:`ConfigError` raised when the variable is not set."""
    if not url.startswith("$env."):
        return url
    name = url.removeprefix("$env.")
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{setting} is {url}, but the environment variable {name} is not set")
    return value
