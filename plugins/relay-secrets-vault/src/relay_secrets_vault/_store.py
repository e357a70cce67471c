"""KV v2 reads through hvac, with Vault's usual settings: ``VAULT_ADDR``,
``VAULT_TOKEN`` (or ``~/.vault-token``), ``VAULT_NAMESPACE``, ``VAULT_CACERT``."""

from __future__ import annotations

import os
import threading
from typing import Any

from relay_core.plugin import PluginNotInstalled, remember

__all__ = ["client", "fetch", "split"]

_client: Any = None
_lock = threading.Lock()


def _hvac() -> Any:
    try:
        import hvac  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise PluginNotInstalled(
            "vault", "hvac", what="hvac, which vault: credentials are read with,"
        ) from None
    return hvac


def client() -> Any:
    """The hvac client, made once from the environment."""
    global _client
    with _lock:
        if _client is None:
            hvac = _hvac()
            token = os.environ.get("VAULT_TOKEN")
            if token:
                remember(token)  # masked in every log line from now on
            _client = hvac.Client(
                url=os.environ.get("VAULT_ADDR"),
                token=token,
                namespace=os.environ.get("VAULT_NAMESPACE"),
                verify=os.environ.get("VAULT_CACERT") or True,
            )
        return _client


def split(reference: str) -> tuple[str, str, str | None]:
    """``MOUNT/data/PATH#field`` (the API path, as ``vault kv get`` prints it) or
    ``MOUNT/PATH#field``: the mount, the secret's path and the field."""
    location, _, field = reference.partition("#")
    mount, _, path = location.strip("/").partition("/")
    if path.startswith("data/"):
        path = path[len("data/") :]
    if not mount or not path:
        raise LookupError("a vault reference is written vault:MOUNT/data/PATH#field")
    return mount, path, field or None


def fetch(reference: str, vault: Any = None) -> str:
    """The field ``reference`` names; :class:`LookupError` naming the reference and
    what went wrong (a status, field names), never a value."""
    mount, path, field = split(reference)
    shown = f"vault:{reference}"
    hvac = _hvac()
    import requests

    vault = vault or client()
    try:
        answer = vault.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except hvac.exceptions.InvalidPath:
        raise LookupError(f"{shown}: no secret at {mount}/data/{path}") from None
    except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as error:
        raise LookupError(
            f"{shown}: Vault refused the read ({type(error).__name__}): check VAULT_TOKEN "
            "and its policy"
        ) from None
    except (hvac.exceptions.VaultError, requests.RequestException) as error:
        raise LookupError(f"{shown}: Vault could not be read ({type(error).__name__})") from None
    data = (answer.get("data") or {}).get("data") or {}
    if field is None:
        if len(data) != 1:
            names = ", ".join(repr(name) for name in sorted(data)) or "none"
            raise LookupError(f"{shown}: name a field with #field; its fields: {names}")
        (field,) = data
    value = data.get(field)
    if not isinstance(value, str):
        names = ", ".join(repr(name) for name in sorted(data)) or "none"
        raise LookupError(f"{shown}: no string field {field!r}; its fields: {names}")
    return value
