"""Azure OpenAI: relay-openai's Chat Completions mapping, at Azure's URLs, with Azure's auth.

Nothing of the wire mapping is re-implemented: :class:`AzureOpenAIProvider` subclasses
:class:`relay_openai.chat.OpenAIProvider` and changes what Azure does differently:

- URLs. ``azure/<deployment>``: the model part is a deployment name. The dated API
  (``options.api_version``, default :data:`DEFAULT_API_VERSION`) is
  ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`` and
  ``{endpoint}/openai/{files,batches}...?api-version=...``; ``api_version: v1`` selects
  the v1 API, ``{endpoint}/openai/v1/...`` with no api-version and the deployment as the
  body's ``model``. The endpoint is ``base_url`` or ``$AZURE_OPENAI_ENDPOINT``.
- Auth. An API key in the ``api-key`` header (``api_key``, else ``$AZURE_OPENAI_API_KEY``),
  or a Microsoft Entra ID bearer token: from a credential reference
  (``options.entra_token``), or from azure-identity's ``DefaultAzureCredential``
  (``options.auth: entra``; see :mod:`relay_azure._auth`).
- Content filtering. A prompt the filter refuses is a 400 ``content_filter`` answer:
  ``ContentPolicyError`` (the core's wording rules, plus a rule for
  ``ResponsibleAIPolicyViolation``). An answer the filter withheld whole
  (``finish_reason: content_filter`` and nothing else) is a ``ContentPolicyError`` naming
  the categories that fired; one it cut short keeps its text with finish reason
  ``content_filter``. ``prompt_filter_results`` and ``content_filter_results`` stay in
  ``raw``; a stream's first chunk, which carries only those, is skipped as it has no
  choices.
- A 404 at the chat URL names the deployment and the endpoint.
- Embeddings: ``POST .../deployments/{deployment}/embeddings`` (v1: ``/openai/v1/embeddings``),
  relay-openai's body and parsing (:mod:`relay_openai.embeddings`).
- Chat Completions only (Azure's Responses API is not mapped); the system prompt always
  goes as ``system`` (deployment names say nothing reliable about the model behind them).
- Sampling: relay-openai's model families (reasoning models take no ``temperature`` nor
  ``top_p``) are looked up by the deployment name, Azure's default being the model's
  name; a misread name costs one dropped setting, with a warning.
- Global Batch: relay-openai's batch code at Azure's URLs; the lines' ``url`` is
  ``/chat/completions`` and their ``model`` the (global batch) deployment name.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

from relay_azure._auth import ENTRA_SCOPE, EntraTokens
from relay_core.plugin import (
    BatchItem,
    BatchLimits,
    Capability,
    ConfigError,
    ContentPolicyError,
    CredentialError,
    EmbeddingRequest,
    EmbeddingResponse,
    EndEvent,
    ErrorRule,
    InvalidRequestError,
    NotFoundError,
    ProviderBatch,
    ProviderSettings,
    Request,
    Response,
    StreamEvent,
    closing_stream,
)
from relay_openai.chat import OpenAIProvider

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient, Secret

__all__ = ["API_KEY_ENV", "DEFAULT_API_VERSION", "ENDPOINT_ENV", "AzureOpenAIProvider"]

# The latest GA version of the data-plane inference and authoring APIs (chat, files,
# batches); see the README's "Verified against".
DEFAULT_API_VERSION = "2024-10-21"
V1 = "v1"
API_KEY_ENV = "AZURE_OPENAI_API_KEY"
ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
_AUTH_MODES = ("api-key", "entra")
_OPTIONS = frozenset({"api", "api_version", "auth", "entra_token", "entra_scope"})
# Where Azure reports what its filter found: on a choice (answers), per prompt
# (prompt_filter_results[].content_filter_results) and in a 400's innererror.
_FILTER_KEYS = ("content_filter_results", "content_filter_result")


def filtered_categories(raw: Any) -> list[str]:
    """The content-filter categories marked ``filtered: true`` anywhere in ``raw`` (an
    answer, a list of stream chunks or an error body), sorted."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _FILTER_KEYS and isinstance(value, dict):
                    found.update(
                        name
                        for name, result in value.items()
                        if isinstance(result, dict) and result.get("filtered") is True
                    )
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(raw)
    return sorted(found)


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI deployments over Chat Completions (see the module docstring)."""

    name = "azure"
    capabilities = frozenset(
        {
            Capability.CHAT,
            Capability.STREAM,
            Capability.TOOLS,
            Capability.STRUCTURED_OUTPUT,
            Capability.VISION,
            Capability.BATCH,
            Capability.EMBEDDINGS,
        }
    )
    # None: the hub must not demand a key, since Entra ID needs none. The adapter reads
    # AZURE_OPENAI_API_KEY itself when it authenticates with a key.
    api_key_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    # The core reads content_filter and context_length_exceeded in 400 bodies; Azure's
    # inner code says the same where a body words it differently.
    error_rules: ClassVar[Sequence[ErrorRule]] = (
        ErrorRule(ContentPolicyError, status=400, contains="ResponsibleAIPolicyViolation"),
    )
    # Global Batch's documented limits: 100,000 requests and 200 MB per input file.
    batch_limits = BatchLimits(max_requests=100_000, max_bytes=200_000_000)

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        options = settings.options
        where = f"providers.{settings.name}.options"
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(_OPTIONS))}"
            )
        if options.get("api", "chat") != "chat":
            raise ConfigError(
                f"{where}.api: relay-azure speaks Chat Completions only, not {options['api']!r}"
            )
        super().__init__(settings, http)
        self.endpoint = self._endpoint()
        version = options.get("api_version", DEFAULT_API_VERSION)
        if not isinstance(version, str) or not version:
            raise ConfigError(
                f"{where}.api_version must be a version such as {DEFAULT_API_VERSION!r} "
                f"or 'v1', not {version!r}"
            )
        self.api_version: str = version
        self._api_key: Secret | None = None
        self._bearer: Secret | None = None
        self._entra: EntraTokens | None = None
        self._configure_auth()

    def __repr__(self) -> str:
        return (
            f"AzureOpenAIProvider(name={self.settings.name!r}, endpoint={self.endpoint!r}, "
            f"api_version={self.api_version!r}, auth={self.auth!r})"
        )

    # -- settings -----------------------------------------------------------------------

    def _endpoint(self) -> str:
        endpoint = self.settings.base_url or os.environ.get(ENDPOINT_ENV)
        if not endpoint:
            raise ConfigError(
                f"provider {self.settings.name!r} needs its Azure OpenAI endpoint: set "
                f"providers.{self.settings.name}.base_url (https://<resource>.openai.azure.com) "
                f"or {ENDPOINT_ENV}"
            )
        endpoint = endpoint.rstrip("/")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ConfigError(
                f"providers.{self.settings.name}.base_url must be the resource's endpoint "
                f"alone, like https://<resource>.openai.azure.com (no /openai/... path), "
                f"not {endpoint!r}"
            )
        return endpoint

    @property
    def auth(self) -> str:
        """How calls authenticate: ``api-key``, ``entra-token`` (a token from a reference)
        or ``entra`` (DefaultAzureCredential)."""
        if self._entra is not None:
            return "entra"
        return "api-key" if self._api_key is not None else "entra-token"

    def _configure_auth(self) -> None:
        name, options = self.settings.name, self.settings.options
        where = f"providers.{name}.options"
        mode = options.get("auth")
        token_ref = options.get("entra_token")
        if mode is not None and mode not in _AUTH_MODES:
            raise ConfigError(f"{where}.auth must be 'api-key' or 'entra', not {mode!r}")
        if token_ref is not None and mode is not None:
            raise ConfigError(
                f"{where}: entra_token is a token already; leave out auth ({mode!r}) beside it"
            )
        scope = options.get("entra_scope", ENTRA_SCOPE)
        if not isinstance(scope, str) or not scope:
            raise ConfigError(f"{where}.entra_scope must be a scope such as {ENTRA_SCOPE!r}")
        if (token_ref is not None or mode == "entra") and self.settings.api_key is not None:
            raise ConfigError(
                f"providers.{name}: api_key and Microsoft Entra ID are both configured; keep one"
            )
        if token_ref is not None:
            self._bearer = self._resolve(token_ref, f"{where}.entra_token")
        elif mode == "entra":
            self._entra = EntraTokens(scope, provider=name)
        else:
            self._api_key = self.settings.api_key or self._key_from_environment()

    def _resolve(self, reference: Any, where: str) -> Secret:
        """A credential reference from the options, resolved as the core resolves
        ``api_key`` (``$env.NAME``, ``file:PATH``, ``keyring:SERVICE/USER``)."""
        from relay_core.plugin import CredentialRef, PluginRegistry, resolve_credential

        try:
            parsed = CredentialRef.parse(reference) if isinstance(reference, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            # Never echo the value: it may be the token itself, pasted inline.
            raise ConfigError(
                f"{where} must be a credential reference ($env.NAME, file:PATH or "
                "keyring:SERVICE/USER), never the token itself"
            )
        return resolve_credential(parsed, PluginRegistry(autoload=False))

    def _key_from_environment(self) -> Secret:
        from relay_core.plugin import Secret

        key = os.environ.get(API_KEY_ENV)
        if not key:
            name = self.settings.name
            raise CredentialError(
                f"provider {name!r} needs an API key or Microsoft Entra ID: set {API_KEY_ENV}, "
                f"give providers.{name}.api_key as a reference, or set "
                f"providers.{name}.options.auth: entra (or options.entra_token)"
            )
        return Secret(key, source=f"${API_KEY_ENV}")

    # -- URLs and headers -----------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The absolute URL of an API path (``/chat/completions``, ``/batches/{id}``...),
        its query included: httpx would replace a URL's query with ``params=``, not add."""
        query = {} if self.api_version == V1 else {"api-version": self.api_version}
        query.update(params or {})
        prefix = "/openai/v1" if self.api_version == V1 else "/openai"
        return f"{self.endpoint}{prefix}{path}" + (f"?{urlencode(query)}" if query else "")

    def _chat_url(self, deployment: str) -> str:
        if self.api_version == V1:
            return self._url("/chat/completions")  # the deployment travels as "model"
        return self._url(f"/deployments/{quote(deployment, safe='')}/chat/completions")

    def _embeddings_url(self, deployment: str) -> str:
        if self.api_version == V1:
            return self._url("/embeddings")  # the deployment travels as "model"
        return self._url(f"/deployments/{quote(deployment, safe='')}/embeddings")

    def _headers(self) -> dict[str, str]:
        # No OpenAI-Organization/-Project: they are OpenAI's own.
        if self._bearer is not None:
            return {"authorization": f"Bearer {self._bearer.reveal()}"}
        assert self._api_key is not None
        return {"api-key": self._api_key.reveal()}

    async def _authorize(self) -> None:
        """Put a fresh Entra ID token where :meth:`_headers` reads it: every entry point
        awaits this first (headers are built synchronously, tokens fetched in a thread).
        Concurrent calls may replace it under each other: any fresh token will do."""
        if self._entra is not None:
            self._bearer = await self._entra.token()

    # -- chat ---------------------------------------------------------------------------

    def build_payload(self, request: Request, *, stream: bool = False) -> tuple[str, Any]:
        api, _ = self._split_kwargs(request)
        if api != "chat":
            raise InvalidRequestError(
                "relay-azure speaks Chat Completions only; Azure's Responses API is not mapped",
                provider=self.settings.name,
                model=request.model,
            )
        _, payload = super().build_payload(request, stream=stream)
        return self._chat_url(request.model), payload

    def _chat_payload(self, request: Request) -> dict[str, Any]:
        payload = super()._chat_payload(request)
        messages: list[dict[str, Any]] = payload["messages"]
        # relay-openai guesses "developer" from the model name; here it is a deployment
        # name, which may say anything. "system" is what every Azure model takes.
        if messages and messages[0]["role"] == "developer":
            messages[0]["role"] = "system"
        return payload

    async def chat(self, request: Request) -> Response:
        await self._authorize()
        try:
            response = await super().chat(request)
        except NotFoundError as error:
            raise self._no_deployment(error, request) from error
        return self._unfiltered(response, request)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        await self._authorize()
        events = super().stream(request)
        try:
            async with closing_stream(events):
                async for event in events:
                    if isinstance(event, EndEvent):
                        self._unfiltered(event.response, request)
                    yield event
        except NotFoundError as error:
            raise self._no_deployment(error, request) from error

    # -- embeddings -------------------------------------------------------------------

    def embedding_payload(self, request: EmbeddingRequest) -> tuple[str, dict[str, Any]]:
        # The body names the deployment as "model" either way, as for chat (the dated
        # API reads it from the URL, the v1 API from the body).
        _, body = super().embedding_payload(request)
        return self._embeddings_url(request.model), body

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        await self._authorize()
        try:
            return await super().embed(request)
        except NotFoundError as error:
            raise self._no_deployment(error, request) from error

    def _no_deployment(
        self, error: NotFoundError, request: Request | EmbeddingRequest
    ) -> NotFoundError:
        return NotFoundError(
            f"no deployment {request.model!r} at {self.endpoint} (the name after 'azure/' is "
            f"a deployment name, as the resource lists it): {error.provider_message}",
            provider=self.settings.name,
            model=request.model,
            status_code=error.status_code,
        )

    def _unfiltered(self, response: Response, request: Request) -> Response:
        """``response``, unless Azure's content filter withheld all of it."""
        if response.finish_reason != "content_filter" or response.content:
            return response
        categories = filtered_categories(response.raw)
        which = f" ({', '.join(categories)})" if categories else ""
        raise ContentPolicyError(
            f"Azure's content filter withheld the answer{which}",
            provider=self.settings.name,
            model=request.model,
        )

    # -- batches ------------------------------------------------------------------------

    def _batch_endpoint(self, request: Request) -> str:
        self._split_kwargs(request)  # refuses a malformed provider_kwargs["openai"]
        return "/chat/completions"

    def finish_batch_response(self, request: Request, response: Response) -> Response:
        return self._unfiltered(super().finish_batch_response(request, response), request)

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        await self._authorize()
        return await super().submit_batch(requests, metadata=metadata)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        await self._authorize()
        return await super().batch_status(batch_id)

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        await self._authorize()
        return await super().cancel_batch(batch_id)

    async def list_batches(self) -> Sequence[ProviderBatch]:
        await self._authorize()
        return await super().list_batches()

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        await self._authorize()
        async for item in super().batch_results(batch_id):
            yield item

    def _file_lines(self, file_id: str) -> AsyncIterator[str]:
        return self.http.stream_lines(
            "GET", self._url(f"/files/{quote(file_id, safe='')}/content"), headers=self._headers()
        )

    async def _batch_json(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        url = self._url(path, params)
        return await self.http.json(method, url, headers=self._headers(), **kwargs)

    async def _upload(
        self, path: str, data: bytes, filename: str, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        answer = await self.http.upload(
            self._url(path), data, filename=filename, fields=fields, headers=self._headers()
        )
        return self._object(answer, "the uploaded file")
