"""GetSecretValue through botocore, with the credentials and region of botocore's own
chain (environment, shared config and profile, SSO, instance or task role).

A secret's ARN names its region, which then wins over the configured one.
``AWS_ENDPOINT_URL_SECRETS_MANAGER`` (botocore's own setting) points it elsewhere, for
LocalStack or a VPC endpoint.
"""

from __future__ import annotations

import threading
from typing import Any

from relay_core.plugin import PluginNotInstalled, secret_field

__all__ = ["client_for", "fetch"]

_clients: dict[str | None, Any] = {}
_lock = threading.Lock()


def _botocore() -> Any:
    try:
        import botocore.exceptions  # type: ignore[import-untyped,unused-ignore]
        import botocore.session  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise PluginNotInstalled(
            "aws-sm", "botocore", what="botocore, which aws-sm: credentials are read with,"
        ) from None
    return botocore


def client_for(region: str | None) -> Any:
    """The Secrets Manager client of ``region`` (default: the configured one), made
    once: a client is thread-safe and costs tens of milliseconds to make."""
    with _lock:
        client = _clients.get(region)
        if client is None:
            botocore = _botocore()
            session = botocore.session.get_session()
            try:
                client = session.create_client("secretsmanager", region_name=region)
            except botocore.exceptions.NoRegionError:
                raise LookupError(
                    "no AWS region is configured for Secrets Manager: set AWS_REGION (or a "
                    "profile's region), or write the secret's full ARN"
                ) from None
            _clients[region] = client
        return client


def _region_of(secret_id: str) -> str | None:
    # arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME
    parts = secret_id.split(":")
    return parts[3] if secret_id.startswith("arn:") and len(parts) > 3 and parts[3] else None


def fetch(reference: str, client: Any = None) -> str:
    """The secret ``SECRET_ID[#field]`` names; :class:`LookupError` naming the reference
    and what went wrong (an error code, never a value) when it cannot be read."""
    secret_id, _, field = reference.partition("#")
    shown = f"aws-sm:{reference}"
    if not secret_id:
        raise LookupError("an aws-sm reference is written aws-sm:SECRET_ID or SECRET_ID#field")
    botocore = _botocore()
    if client is None:
        client = client_for(_region_of(secret_id))
    try:
        answer = client.get_secret_value(SecretId=secret_id)
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "an error")
        raise LookupError(f"AWS Secrets Manager answered {code} for {secret_id!r}") from None
    except botocore.exceptions.NoCredentialsError:
        raise LookupError(
            "no AWS credentials found to read Secrets Manager (environment, profile, role)"
        ) from None
    except botocore.exceptions.BotoCoreError as error:
        raise LookupError(
            f"AWS Secrets Manager could not be asked for {secret_id!r} ({type(error).__name__})"
        ) from None
    text = answer.get("SecretString")
    if text is None:
        binary = answer.get("SecretBinary")
        try:
            text = binary.decode("utf-8") if isinstance(binary, bytes) else None
        except UnicodeDecodeError:
            text = None
        if text is None:
            raise LookupError(f"{shown}: the secret holds binary data, not text")
    return secret_field(text, field or None, shown)
