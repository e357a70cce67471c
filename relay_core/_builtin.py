"""The built-in plugin: credential resolvers for ``$env.NAME``, ``file:PATH`` and
``keyring:SERVICE/USER``. Registered like any other plugin, under ``relay.builtin``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from relay_core.hookspecs import hookimpl


def resolve_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise LookupError(f"environment variable {name} is not set")
    return value


def resolve_file(path: str) -> str:
    file = Path(path).expanduser()
    try:
        value = file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise LookupError(f"cannot read {file}: {error.strerror}") from None
    if not value:
        raise LookupError(f"{file} is empty")
    return value


def resolve_keyring(reference: str) -> str:
    service, sep, user = reference.partition("/")
    if not sep or not service or not user:
        raise LookupError("a keyring reference is written keyring:SERVICE/USER")
    import keyring
    import keyring.errors

    try:
        value = keyring.get_password(service, user)
    except keyring.errors.NoKeyringError:
        raise LookupError(keyring_unavailable("it cannot be read")) from None
    except keyring.errors.KeyringError as error:
        # The backend's own words may be long or odd; its kind says enough.
        raise LookupError(f"the keyring could not be read ({type(error).__name__})") from None
    if value is None:
        raise LookupError(f"no password for service {service!r}, user {user!r} in the keyring")
    return value


def keyring_unavailable(consequence: str) -> str:
    """What to say when this machine has no keyring backend (a headless Linux, a
    container): ``consequence`` is what that means for the command."""
    return (
        f"no system keyring is available here, so {consequence}: install a backend "
        "(pip install keyrings.alt, or run a Secret Service such as GNOME Keyring), or "
        "give the key as $env.NAME or file:PATH instead of keyring:"
    )


@hookimpl
def relay_register_credential_resolvers(
    register: Callable[[str, Callable[[str], str]], None],
) -> None:
    register("env", resolve_env)
    register("file", resolve_file)
    register("keyring", resolve_keyring)
