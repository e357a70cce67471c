"""The Gemini adapter: the requests and uploads of the Gemini API
(``models/*:generateContent``, ``:streamGenerateContent?alt=sse``, and batch mode's
``models/*:batchGenerateContent`` over a JSONL file uploaded through the Files API).

The wire format is in pure modules, each one surface: :mod:`relay_gemini.payload`
(requests), :mod:`relay_gemini.parse` (answers), :mod:`relay_gemini.events` (streams),
:mod:`relay_gemini.batches` (batch mode) and :mod:`relay_gemini.rpc` (Google's errors and
times). This class sends what they build and hands them what comes back. Credentials,
pooling, retries, SSE parsing, stream assembly and the translation of failed answers are
the core's. The plugin's README lists every mapping and the choices made where Relay and
Gemini differ (generated tool-call ids, reasoning budgets, tool results, streamed ``raw``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs

from relay_core.plugin import (
    BASIC_SETTINGS,
    AuthenticationError,
    BatchItem,
    BatchLimits,
    Capability,
    ConfigError,
    ContextWindowExceeded,
    EmbeddingLimits,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorRule,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    Provider,
    ProviderBatch,
    ProviderSettings,
    QuotaExceeded,
    Request,
    Response,
    StreamEvent,
    closing_stream,
    jsonl,
    parse_lines,
)
from relay_gemini import batches, count, embeddings, events, parse
from relay_gemini.parse import GENERATED_ID_PREFIX
from relay_gemini.payload import REASONING_BUDGETS, method_path, payload
from relay_gemini.rpc import http_status, timestamp_seconds

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient

# The wire names re-exported here are the ones this module has always offered.
__all__ = [
    "GENERATED_ID_PREFIX",
    "REASONING_BUDGETS",
    "GeminiProvider",
    "http_status",
    "timestamp_seconds",
]


class GeminiProvider(Provider):
    """The Gemini API (Google AI Studio keys). See the plugin's README for the mappings."""

    name = "gemini"
    capabilities = frozenset(
        {
            Capability.CHAT,
            Capability.STREAM,
            Capability.TOOLS,
            Capability.STRUCTURED_OUTPUT,
            Capability.VISION,
            Capability.DOCUMENTS,
            Capability.THINKING,
            Capability.BATCH,
            Capability.EMBEDDINGS,
            Capability.TOKEN_COUNT,
        }
    )
    generation_settings = BASIC_SETTINGS | {
        "top_k",
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
        "top_logprobs",
    }
    api_key_env = "GEMINI_API_KEY"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    # Only where Gemini differs from the core's defaults: it answers a bad key with 400
    # INVALID_ARGUMENT, says "too long" and "no billing" in its own words, and answers a
    # Files API URI it does not know with 403. A 402 (prepay credits depleted) is the
    # core's QuotaExceeded; every other 429 stays a rate limit (see the README).
    error_rules = (
        ErrorRule(AuthenticationError, status=400, contains="API_KEY_INVALID"),
        ErrorRule(AuthenticationError, status=400, contains="API key not valid"),
        ErrorRule(AuthenticationError, status=400, contains="API key expired"),
        ErrorRule(
            ContextWindowExceeded, status=400, contains="exceeds the maximum number of tokens"
        ),
        ErrorRule(ContextWindowExceeded, status=400, contains="payload size exceeds the limit"),
        # Depleted prepay credits as a 429 (before Gemini answered them with 402, and
        # still so in batch lines, whose rpc code 8 reads as 429).
        ErrorRule(QuotaExceeded, status=429, contains="prepayment credits are depleted"),
        ErrorRule(QuotaExceeded, status=403, contains="BILLING_DISABLED"),
        # "Gemini API free tier is not available in your country. Please enable billing..."
        ErrorRule(QuotaExceeded, status=400, contains="enable billing"),
        # "You do not have permission to access the File x or it may not exist." (files
        # expire after 48 hours)
        ErrorRule(NotFoundError, status=403, contains="or it may not exist"),
    )
    # 2 GB is Gemini's limit on a batch input file (counted as 10^9 bytes, the safe
    # reading). It documents no request count; 50,000 keeps one batch's results, and its
    # share of the per-model enqueued-token quota, at the size of the other batch APIs'.
    batch_limits = BatchLimits(max_requests=50_000, max_bytes=2_000_000_000)
    batch_metadata = True
    # batchEmbedContents takes at most 100 requests; each text is cut at the model's
    # 2,048 tokens, so there is no per-call token limit to split on.
    embedding_limits = EmbeddingLimits(max_inputs=embeddings.MAX_INPUTS)
    # Implicit caching: Gemini reports cachedContentTokenCount by itself; marks are not
    # sent (explicit cachedContents are not mapped: see the README).
    prompt_caching = "automatic"

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        super().__init__(settings, http)
        if settings.options:
            raise ConfigError(
                f"providers.{settings.name}.options: unknown option(s) "
                f"{', '.join(sorted(settings.options))} (the gemini provider takes none; "
                "send other API fields through provider_kwargs)"
            )

    # -- calls ----------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        body = await self.http.json(
            "POST",
            method_path(request.model, "generateContent"),
            json=self.payload(request),
            headers=self._headers(),
            model=request.model,
        )
        return self._parse(body, request.model)

    async def count_tokens(self, request: Request) -> int:
        answer = await self.http.json(
            "POST",
            method_path(request.model, "countTokens"),
            json=self.count_payload(request),
            headers=self._headers(),
            model=request.model,
        )
        return count.parse_count(answer, provider=self.settings.name, model=request.model)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        sse = self.http.stream_sse(
            "POST",
            method_path(request.model, "streamGenerateContent") + "?alt=sse",
            json=self.payload(request),
            headers=self._headers(),
            model=request.model,
        )
        parsed = events.stream_events(
            sse, model=request.model, provider=self.settings.name, rules=self.error_rules
        )
        # Closed however the stream ends, early stops by the caller included.
        async with closing_stream(sse), closing_stream(parsed):
            async for event in parsed:
                yield event

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        body = await self.http.json(
            "POST",
            method_path(request.model, "batchEmbedContents"),
            json=embeddings.payload(request),
            headers=self._headers(),
            model=request.model,
        )
        return embeddings.response(body, request, self.settings.name)

    # -- batches --------------------------------------------------------------------------

    def batch_line(self, request: Request) -> dict[str, Any]:
        """A line of the batch input file: the request's ``custom_id`` as Gemini's ``key``,
        and the same GenerateContentRequest ``chat`` sends."""
        return {"key": request.custom_id, "request": self.payload(request)}

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        model = batches.single_model(requests, self.settings.name)
        name = batches.display_name(metadata)
        file = await self._upload(jsonl(self.batch_line(r) for r in requests), name)
        operation = await self.http.json(
            "POST",
            method_path(model, "batchGenerateContent"),
            json={"batch": {"displayName": name, "inputConfig": {"fileName": file}}},
            headers=self._headers(),
            model=model,
        )
        return self._batch(operation)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        operation = await self.http.json("GET", self._batch_path(batch_id), headers=self._headers())
        return self._batch(operation)

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        batch = await self.batch_status(batch_id)
        output = batches.output(batch.raw)
        model = batches.model_of(batch.raw)
        lines: AsyncIterable[str] | Iterable[str] | None
        if isinstance(output.get("responsesFile"), str):
            lines = self.http.stream_lines(
                "GET",
                self._media_url("download", quote(output["responsesFile"], safe="/-._~"))
                + ":download?alt=media",
                headers=self._headers(),
            )
        else:
            # A batch submitted inline elsewhere: its answers sit in the status itself.
            lines = batches.inlined_lines(output)
        if lines is None:
            if batch.done:
                return  # failed, expired or cancelled before any output: the core fails all
            raise InvalidRequestError(
                f"batch {batch.id!r} is not finished (state {batch.state}); results are "
                "available once batch_status reports it done",
                provider=self.settings.name,
            )
        async for item in parse_lines(
            lines,
            lambda line: batches.batch_item(
                line, model=model, provider=self.settings.name, rules=self.error_rules
            ),
            source=f"output of {batch.id}",
            id_field="key",
        ):
            yield item

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        try:
            await self.http.json(
                "POST", self._batch_path(batch_id) + ":cancel", headers=self._headers()
            )
        except InvalidRequestError:
            # Gemini may refuse to cancel a batch that has just finished: not an error here.
            batch = await self.batch_status(batch_id)
            if batch.done:
                return batch
            raise
        batch = await self.batch_status(batch_id)
        # Gemini goes straight to CANCELLED; until it shows, the batch is cancelling.
        return batch if batch.done else attrs.evolve(batch, state="cancelling")

    async def list_batches(self) -> Sequence[ProviderBatch]:
        batches: list[ProviderBatch] = []
        params: dict[str, str] = {"pageSize": "100"}
        for _ in range(2):  # the core looks for batches of the last moments only
            page = await self.http.json("GET", "/batches", params=params, headers=self._headers())
            batches.extend(self._batch(operation) for operation in page.get("operations") or [])
            if not page.get("nextPageToken"):
                break
            params = {**params, "pageToken": str(page["nextPageToken"])}
        return sorted(batches, key=lambda b: b.created_at or 0.0, reverse=True)

    def _batch_path(self, batch_id: str) -> str:
        return batches.batch_path(batch_id, self.settings.name)

    def _media_url(self, kind: str, resource: str) -> str:
        return batches.media_url(self.base_url, kind, resource)

    async def _upload(self, data: bytes, display_name: str) -> str:
        """Upload ``data`` as a JSONL file (the Files API's resumable protocol, in one
        chunk) and return its name, ``files/...``."""
        start = await self.http.request(
            "POST",
            self._media_url("upload", "files"),
            json={"file": {"displayName": display_name}},
            headers={
                **self._headers(),
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(len(data)),
                # The MIME type Google's own batch examples give a JSONL input file.
                "X-Goog-Upload-Header-Content-Type": "jsonl",
            },
        )
        url = start.headers.get("x-goog-upload-url")
        if not url:
            raise self._malformed("the Files API answered the upload start with no upload URL")
        # The upload URL carries its own session id: the key does not go to it.
        uploaded = await self.http.json(
            "POST",
            url,
            content=data,
            headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
            per_read_timeout=True,
        )
        name = (uploaded.get("file") or {}).get("name") if isinstance(uploaded, dict) else None
        if not isinstance(name, str):
            raise self._malformed(f"the uploaded file has no name: {str(uploaded)[:200]!r}")
        return name

    def _batch(self, operation: Any) -> ProviderBatch:
        """A batch's Operation as Relay's view of it (relay-vertex reads its jobs here)."""
        return batches.batch(operation, self.settings.name)

    # -- requests -------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self.settings.api_key is None:
            raise AuthenticationError(
                f"no API key for provider {self.settings.name!r}: set GEMINI_API_KEY "
                "(or api_key: $env.GOOGLE_API_KEY in the catalog)",
                provider=self.settings.name,
            )
        # A header, never the ?key= query parameter: URLs end up in logs and proxies.
        return {"x-goog-api-key": self.settings.api_key.reveal()}

    def payload(self, request: Request) -> dict[str, Any]:
        """The GenerateContentRequest body for ``request`` (the model is in the URL)."""
        return payload(request)

    def count_payload(self, request: Request) -> dict[str, Any]:
        """The countTokens body for ``request``."""
        return count.count_payload(request.model, self.payload(request))

    # -- answers --------------------------------------------------------------------------

    def _parse(self, body: Any, model: str) -> Response:
        return parse.response(body, model, self.settings.name)

    def _malformed(self, message: str) -> MalformedResponse:
        return parse.malformed(message, self.settings.name)
