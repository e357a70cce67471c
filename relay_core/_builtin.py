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


# A key, a token or a password fits many times over; a file larger than this is not one
# (a log, a device such as /dev/zero), and it is not read past this size.
MAX_CREDENTIAL_FILE = 16 * 1024


def resolve_file(path: str) -> str:
    """The one secret in the file at ``path``, stripped of surrounding blank space.

    A file that is not one plausible secret is refused with :class:`LookupError` naming
    the path and never its content: several non-empty lines (a PEM, a mistaken path such
    as ``/etc/shadow``), more than :data:`MAX_CREDENTIAL_FILE` bytes, or not UTF-8.
    """
    file = Path(path).expanduser()
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_CREDENTIAL_FILE + 1)
    except OSError as error:
        raise LookupError(f"cannot read {file}: {error.strerror}") from None
    if len(raw) > MAX_CREDENTIAL_FILE:
        raise LookupError(
            f"{file} is larger than {MAX_CREDENTIAL_FILE // 1024} KiB: not a credential file"
        )
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise LookupError(f"{file} is not UTF-8 text: not a credential file") from None
    if not value:
        raise LookupError(f"{file} is empty")
    lines = sum(1 for line in value.splitlines() if line.strip())
    if lines > 1:
        raise LookupError(
            f"{file} holds {lines} non-empty lines, not one secret (a key file or a "
            "mistaken path?): put the secret alone in the file"
        )
    return value


def check_private_file(path: str) -> None:
    """:class:`LookupError` when the file at ``path`` can be read or written by users
    other than its owner and group (``defaults.strict_credential_files``)."""
    file = Path(path).expanduser()
    try:
        mode = file.stat().st_mode
    except OSError as error:
        raise LookupError(f"cannot read {file}: {error.strerror}") from None
    if mode & 0o007:
        raise LookupError(
            f"{file} is readable or writable by every user (mode {mode & 0o777:o}); "
            f"strict_credential_files requires chmod o-rwx {file}"
        )


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
