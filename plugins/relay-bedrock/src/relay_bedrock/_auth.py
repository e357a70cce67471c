"""Authentication for Bedrock and S3: SigV4 signatures from botocore's credential chain,
or a Bedrock API key sent as a bearer token; and the classification of failed answers
by the error type AWS names in a header.

botocore is imported here only inside functions, when a signed call is made: loading
the adapter, or a catalog, never imports it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

import httpx

from relay_core.plugin import (
    AuthenticationError,
    ConfigError,
    ErrorRule,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    Secret,
    Timeout,
    classify_stream_error,
    mask,
    remember,
)

__all__ = ["AwsCredentials", "BearerAuth", "BedrockAuth", "SigV4", "header_rules", "stream_error"]

# What each error type AWS names (``x-amzn-errortype`` on an answer, ``:exception-type``
# in a stream) means; ``None``: decided by the message (a ValidationException may say the
# input is too long), then by status.
_BY_TYPE: dict[str, type[ProviderError] | None] = {
    "ThrottlingException": RateLimitError,
    "ServiceQuotaExceededException": QuotaExceeded,
    "ValidationException": None,
    "ConflictException": InvalidRequestError,
    "AccessDeniedException": AuthenticationError,
    "UnrecognizedClientException": AuthenticationError,
    "InvalidSignatureException": AuthenticationError,
    "IncompleteSignatureException": AuthenticationError,
    "ExpiredTokenException": AuthenticationError,
    "ResourceNotFoundException": NotFoundError,
    "ModelNotReadyException": ProviderUnavailable,
    "ServiceUnavailableException": ProviderUnavailable,
    "InternalServerException": ProviderUnavailable,
    "ModelErrorException": ProviderUnavailable,
    "ModelStreamErrorException": ProviderUnavailable,
    "ModelTimeoutException": Timeout,
}
# The HTTP status each stream exception stands for (Bedrock's API reference), so one
# that arrives after a 200 is classified as the same error answered at once would be.
_STREAM_STATUS = {
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 400,
    "ValidationException": 400,
    "ModelStreamErrorException": 424,
    "ModelTimeoutException": 408,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
}


def _type_name(value: str) -> str:
    # ``ValidationException:http://internal.amazon.com/coral/...`` in a header,
    # ``validationException`` as a stream's exception type.
    name = value.split(":", 1)[0].strip()
    return name[:1].upper() + name[1:]


def _rules(name: str, rules: Sequence[ErrorRule]) -> tuple[ErrorRule, ...]:
    error = _BY_TYPE.get(name)
    # A rule with neither status nor wording matches every answer: the type decides.
    return ((ErrorRule(error),) if error is not None else ()) + tuple(rules)


def header_rules() -> tuple[ErrorRule, ...]:
    """The classification of failed answers by the AWS error type their
    ``x-amzn-errortype`` header names (a ValidationException is left to the wording
    rules and the status)."""
    return tuple(
        ErrorRule(error, header=("x-amzn-errortype", name))
        for name, error in _BY_TYPE.items()
        if error is not None
    )


def stream_error(
    error_type: str, payload: Any, *, rules: Sequence[ErrorRule], provider: str, model: str
) -> ProviderError:
    """The typed error for an exception message inside an event stream."""
    name = _type_name(error_type)
    return classify_stream_error(
        _STREAM_STATUS.get(name, 500),
        payload,
        rules=_rules(name, rules),
        provider=provider,
        model=model,
    )


class BedrockAuth(httpx.Auth):
    """Authenticates one request: subclasses say how (a bearer key, or SigV4)."""

    requires_request_body = True

    def sign(self, request: httpx.Request) -> None:
        """Add the credentials to ``request``."""

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        self.sign(request)
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        self.sign(request)
        yield request


class BearerAuth(BedrockAuth):
    """A Bedrock API key: no signature, an ``Authorization: Bearer`` header."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def sign(self, request: httpx.Request) -> None:
        request.headers["authorization"] = f"Bearer {self._token.reveal()}"


class SigV4(BedrockAuth):
    """An AWS Signature Version 4 by botocore, over the method, URL, host, content type,
    ``x-amz-*`` headers and body: headers a proxy may rewrite (connection,
    accept-encoding) are left out of the signature."""

    def __init__(self, credentials: Any, *, service: str, region: str) -> None:
        self._credentials = credentials
        self._service = service
        self._region = region

    def sign(self, request: httpx.Request) -> None:
        from botocore.auth import (  # type: ignore[import-untyped,unused-ignore]
            S3SigV4Auth,
            SigV4Auth,
        )
        from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped,unused-ignore]

        signed = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in ("host", "content-type") or name.lower().startswith("x-amz-")
        }
        aws = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=signed
        )
        # S3 signs its path as it is and wants the payload's hash in a header.
        signer = S3SigV4Auth if self._service == "s3" else SigV4Auth
        _quiet_signer()
        signer(self._credentials, self._service, self._region).add_auth(aws)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256"):
            if name in aws.headers:
                request.headers[name.lower()] = aws.headers[name]


def _drop_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


def _quiet_signer() -> None:
    """botocore's signer logs the canonical request at DEBUG, and the session token
    with it: those records are dropped, whatever level a program sets."""
    logger = logging.getLogger("botocore.auth")
    if _drop_debug not in logger.filters:
        logger.addFilter(_drop_debug)


class AwsCredentials:
    """botocore's credential chain for one profile (``None``: the default chain), read
    on first use. botocore refreshes temporary credentials (SSO, roles) itself; reading
    them may touch files or the network, so it runs off the event loop."""

    def __init__(self, profile: str | None, *, provider: str) -> None:
        self._profile = profile
        self._provider = provider
        self._lock = threading.Lock()
        self._session: Any = None
        self._credentials: Any = None

    def _botocore(self) -> Any:
        with self._lock:
            if self._session is None:
                import botocore.session  # type: ignore[import-untyped,unused-ignore]

                self._session = botocore.session.Session(profile=self._profile)
            return self._session

    def region(self) -> str | None:
        """The region of the profile or the environment, as the AWS SDKs read it."""
        import botocore.exceptions  # type: ignore[import-untyped,unused-ignore]

        try:
            region = self._botocore().get_config_variable("region")
        except botocore.exceptions.ProfileNotFound:
            raise self._no_profile() from None
        return str(region) if region else None

    def _frozen(self) -> Any:
        import botocore.exceptions

        try:
            with self._lock:
                credentials = self._credentials
            if credentials is None:
                credentials = self._botocore().get_credentials()
                if credentials is None:
                    raise AuthenticationError(
                        f"no AWS credentials found for provider {self._provider!r} "
                        f"({self._where()}): set them in the environment, the shared "
                        "credentials file, SSO or an instance role, or give the provider "
                        "an API key",
                        provider=self._provider,
                    )
                with self._lock:
                    self._credentials = credentials
            # Refreshes expiring temporary credentials first: may do I/O.
            frozen = credentials.get_frozen_credentials()
        except botocore.exceptions.ProfileNotFound:
            raise self._no_profile() from None
        except botocore.exceptions.BotoCoreError as error:
            raise AuthenticationError(
                f"AWS credentials for provider {self._provider!r} ({self._where()}) could "
                f"not be read: {type(error).__name__}: {mask(str(error))}",
                provider=self._provider,
            ) from None
        # An answer or a log line echoing one shows *** from now on.
        for value in (frozen.access_key, frozen.secret_key, frozen.token):
            if value:
                remember(value)
        return frozen

    async def frozen(self) -> Any:
        """Current credentials (access key, secret, token), refreshed when near expiry."""
        return await asyncio.to_thread(self._frozen)

    def _where(self) -> str:
        return f"profile {self._profile!r}" if self._profile else "the default chain"

    def _no_profile(self) -> ConfigError:
        return ConfigError(
            f"providers.{self._provider}.options.credentials names AWS profile "
            f"{self._profile!r}, which is in neither the shared config nor the credentials file"
        )
