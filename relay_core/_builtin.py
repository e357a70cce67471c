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

    value = keyring.get_password(service, user)
    if value is None:
        raise LookupError(f"no password for service {service!r}, user {user!r} in the keyring")
    return value


@hookimpl
def relay_register_credential_resolvers(
    register: Callable[[str, Callable[[str], str]], None],
) -> None:
    register("env", resolve_env)
    register("file", resolve_file)
    register("keyring", resolve_keyring)
