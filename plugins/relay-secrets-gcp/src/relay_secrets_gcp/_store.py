"""AccessSecretVersion through google-cloud-secret-manager, with application default
credentials (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default
login``, a workload's service account)."""

from __future__ import annotations

import threading
from typing import Any

from relay_core.plugin import PluginNotInstalled, secret_field

__all__ = ["client", "fetch", "version_name"]

_client: Any = None
_lock = threading.Lock()


def _library() -> tuple[Any, Any, Any]:
    try:
        import google.api_core.exceptions as api_errors
        import google.auth.exceptions as auth_errors
        from google.cloud import secretmanager
    except ImportError:
        raise PluginNotInstalled(
            "gcp-sm",
            "google-cloud-secret-manager",
            what="google-cloud-secret-manager, which gcp-sm: credentials are read with,",
        ) from None
    return secretmanager, api_errors, auth_errors


def client() -> Any:
    """The Secret Manager client, made once."""
    global _client
    with _lock:
        if _client is None:
            secretmanager, _, auth_errors = _library()
            try:
                _client = secretmanager.SecretManagerServiceClient()
            except auth_errors.DefaultCredentialsError:
                raise LookupError(
                    "no Google credentials found to read Secret Manager: set "
                    "GOOGLE_APPLICATION_CREDENTIALS or run gcloud auth application-default login"
                ) from None
        return _client


def version_name(reference: str) -> tuple[str, str | None]:
    """``projects/P/secrets/S[/versions/V][#field]``: the version's resource name (the
    latest when none is named) and the field."""
    name, _, field = reference.partition("#")
    parts = name.strip("/").split("/")
    if len(parts) == 4 and parts[0] == "projects" and parts[2] == "secrets":
        parts += ["versions", "latest"]
    if len(parts) != 6 or parts[0::2] != ["projects", "secrets", "versions"] or "" in parts:
        raise LookupError(
            "a gcp-sm reference is written gcp-sm:projects/PROJECT/secrets/NAME"
            "[/versions/VERSION][#field]"
        )
    return "/".join(parts), field or None


def fetch(reference: str, manager: Any = None) -> str:
    """The secret ``reference`` names; :class:`LookupError` naming the reference and the
    service's status, never a value."""
    name, field = version_name(reference)
    shown = f"gcp-sm:{reference}"
    _, api_errors, auth_errors = _library()
    manager = manager or client()
    try:
        answer = manager.access_secret_version(name=name)
    except api_errors.GoogleAPICallError as error:
        status = type(error).__name__
        raise LookupError(f"Google Secret Manager answered {status} for {name!r}") from None
    except (api_errors.GoogleAPIError, auth_errors.GoogleAuthError) as error:
        raise LookupError(
            f"Google Secret Manager could not be asked for {name!r} ({type(error).__name__})"
        ) from None
    try:
        text = bytes(answer.payload.data).decode("utf-8")
    except UnicodeDecodeError:
        raise LookupError(f"{shown}: the secret holds binary data, not text") from None
    return secret_field(text, field, shown)
