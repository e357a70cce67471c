"""Google credentials for Vertex AI: where they come from, and the access token they give.

google-auth is imported here only when a call first needs a token (or the project of the
application-default credentials), never when the adapter module is imported. Its calls
block (file reads, the metadata server, the token endpoint), so they run in a worker
thread, one at a time behind a lock; the token is kept until shortly before it expires.

google-auth speaks HTTP through a ``google.auth.transport.Request``; the one here is
httpx's synchronous client, so the plugin needs neither ``requests`` nor ``urllib3``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from relay_core.plugin import (
    AuthenticationError,
    ConfigError,
    ProviderError,
    ProviderUnavailable,
    Secret,
    mask,
)

if TYPE_CHECKING:
    import google.auth.credentials

__all__ = ["SCOPE", "GoogleAuth"]

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# A token with less than this left is refreshed before use: a request sent with it could
# still be in flight (or queued behind retries) when it expires.
REFRESH_MARGIN = datetime.timedelta(minutes=5)
# The credentials JSON documents api_key may hold: a service-account key (the console's)
# and a user's (`gcloud auth application-default login` writes one). Other kinds (workload
# identity federation...) are for GOOGLE_APPLICATION_CREDENTIALS, which google-auth reads
# with its own checks.
_KEY_TYPES = ("service_account", "authorized_user")


class GoogleAuth:
    """The credentials of one Vertex provider entry and the bearer token they give.

    ``key`` is the catalog's ``api_key`` (a reference to a credentials JSON document,
    resolved by the core); without it, application-default credentials are used
    (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default login``, the
    metadata server). Nothing here is imported or read before the first call.
    """

    def __init__(self, provider: str, key: Secret | None, *, timeout: float = 30.0) -> None:
        self._provider = provider
        self._info: dict[str, Any] | None = _key_info(provider, key) if key else None
        self._timeout = timeout
        self._credentials: google.auth.credentials.Credentials | None = None
        self._project: str | None = None
        self._token: Secret | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        source = "key" if self._info is not None else "application-default credentials"
        return f"GoogleAuth({self._provider!r}, {source})"

    @property
    def key_project(self) -> str | None:
        """The project named in the credentials JSON, known without importing anything."""
        project = (self._info or {}).get("project_id") or (self._info or {}).get("quota_project_id")
        return project if isinstance(project, str) and project else None

    async def token(self) -> str:
        """A bearer token with at least REFRESH_MARGIN left, refreshed if needed."""
        token = self._token
        if token is not None and self._fresh():
            return token.reveal()
        return await asyncio.to_thread(self._refresh)

    async def project(self) -> str | None:
        """The project of the credentials (for ADC: what google.auth.default found)."""
        if self.key_project:
            return self.key_project
        await asyncio.to_thread(self._load)
        return self._project

    # -- in a worker thread -------------------------------------------------------------

    def _fresh(self) -> bool:
        credentials = self._credentials
        if credentials is None or self._token is None:
            return False
        expiry = credentials.expiry  # naive UTC, as google-auth keeps it
        if expiry is None:
            return True
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        return bool(expiry - now > REFRESH_MARGIN)

    def _load(self) -> google.auth.credentials.Credentials:
        with self._lock:
            if self._credentials is None:
                self._credentials = self._guarded(self._credentials_now)
            return self._credentials

    def _refresh(self) -> str:
        credentials = self._load()
        with self._lock:
            # Another caller may have refreshed while this one waited for the lock.
            if not self._fresh():
                request = _request(self._timeout)
                self._guarded(lambda: credentials.refresh(request))  # type: ignore[no-untyped-call]
                if not credentials.token:
                    raise AuthenticationError(
                        "Google credentials gave no access token", provider=self._provider
                    )
                self._token = Secret(str(credentials.token), source="google-auth token")
            assert self._token is not None
            return self._token.reveal()

    def _credentials_now(self) -> google.auth.credentials.Credentials:
        if self._info is not None:
            return _from_info(self._info)
        import google.auth

        credentials, project = google.auth.default(scopes=[SCOPE], request=_request(self._timeout))
        self._project = project
        return credentials

    def _guarded(self, call: Any) -> Any:
        """``call()`` with google-auth's failures as Relay's typed errors (masked: a token
        endpoint's answer might echo what it was sent)."""
        import google.auth.exceptions as failures

        try:
            return call()
        except failures.DefaultCredentialsError as error:
            raise AuthenticationError(
                f"no Google credentials for provider {self._provider!r}: {mask(str(error))} "
                "(run `gcloud auth application-default login`, set "
                f"GOOGLE_APPLICATION_CREDENTIALS, or give providers.{self._provider}.api_key "
                "as a reference to a service-account key, e.g. file:~/sa.json)",
                provider=self._provider,
            ) from None
        except failures.TransportError as error:
            raise ProviderUnavailable(
                f"the Google token endpoint could not be reached: {mask(str(error))}",
                provider=self._provider,
            ) from None
        except failures.RefreshError as error:
            # retryable is google-auth's own reading (a 5xx from the token endpoint).
            kind: type[ProviderError] = (
                ProviderUnavailable if getattr(error, "retryable", False) else AuthenticationError
            )
            raise kind(
                f"Google refused the credentials: {mask(str(error))}", provider=self._provider
            ) from None
        except failures.GoogleAuthError as error:
            raise AuthenticationError(
                f"Google credentials failed: {mask(str(error))}", provider=self._provider
            ) from None


def _key_info(provider: str, key: Secret) -> dict[str, Any]:
    """The credentials JSON behind ``api_key``, checked without saying what it holds."""
    where = f"providers.{provider}.api_key"
    try:
        info = json.loads(key.reveal())
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise ConfigError(
            f"{where} ({key.source or 'a reference'}) must resolve to a Google credentials "
            "JSON document (a service-account key: file:~/sa.json); Vertex API keys "
            "(express mode) are not supported by relay-vertex"
        )
    kind = info.get("type")
    if kind not in _KEY_TYPES:
        raise ConfigError(
            f"{where} ({key.source or 'a reference'}) is JSON of type {kind!r}, not one of "
            f"{', '.join(_KEY_TYPES)}"
        )
    return info


def _from_info(info: Mapping[str, Any]) -> google.auth.credentials.Credentials:
    """Credentials of a checked type (google-auth's type-specific loaders, as it asks)."""
    if info.get("type") == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call,no-any-return]
            info, scopes=[SCOPE]
        )
    from google.oauth2 import credentials

    return credentials.Credentials.from_authorized_user_info(info, scopes=[SCOPE])  # type: ignore[no-untyped-call,no-any-return]


def _request(timeout: float) -> Any:
    """google-auth's HTTP transport, over httpx (imported with google-auth, on use)."""
    import google.auth.exceptions
    import google.auth.transport
    import httpx

    default_timeout = timeout

    class Response(google.auth.transport.Response):
        def __init__(self, response: httpx.Response) -> None:
            self._response = response

        @property
        def status(self) -> int:
            return self._response.status_code

        @property
        def headers(self) -> Mapping[str, str]:
            return self._response.headers

        @property
        def data(self) -> bytes:
            return self._response.content

    class Request(google.auth.transport.Request):
        def __call__(
            self,
            url: str,
            method: str = "GET",
            body: bytes | None = None,
            headers: Mapping[str, str] | None = None,
            timeout: float | None = None,
            **kwargs: Any,
        ) -> Response:
            try:
                with httpx.Client(timeout=timeout or default_timeout) as client:
                    answer = client.request(method, url, content=body, headers=headers)
            except httpx.HTTPError as error:
                raise google.auth.exceptions.TransportError(  # type: ignore[no-untyped-call]
                    f"{type(error).__name__}: {error}"
                ) from error
            return Response(answer)

    return Request()


def env_project() -> str | None:
    """The project the Google Cloud tools read from the environment."""
    return os.environ.get("GOOGLE_CLOUD_PROJECT") or None
