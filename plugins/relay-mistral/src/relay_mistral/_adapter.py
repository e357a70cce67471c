"""The Mistral adapter: Relay's types to Mistral's chat completions API and back.

Mistral's wire format looks like OpenAI's Chat Completions but differs in most details
(``random_seed``, ``max_tokens``, string ``image_url``, ``document_url`` chunks, ``name``
on tool results, 9-character tool call ids, content as a list of ``thinking``/``text``
chunks for reasoning, usage in the last stream chunk without ``stream_options``), so this
is a mapping of its own rather than a subclass of relay-openai's.

Every key of ``provider_kwargs`` is merged into the payload untouched, last, so it can
set what Relay does not map (``safe_prompt``, ``parallel_tool_calls``, ``prompt_mode``,
``presence_penalty``...) or override anything mapped here.

Batches are Mistral batch jobs: the chat bodies go up as one JSONL file (``POST /files``),
a job runs them (``/batch/jobs``), and the answers come back as output and error files.

The wire format is in pure modules, one surface each: ``_payload`` (requests), ``_parse``
(answers), ``_events`` (streams) and ``_batches`` (batch jobs). This class sends what they
build and hands them what comes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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
    Request,
    Response,
    StreamEvent,
    closing_stream,
    jsonl,
    parse_lines,
)
from relay_mistral import _batches, _embeddings, _events, _parse
from relay_mistral._payload import payload, wire_tool_call_id

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient

__all__ = ["MistralProvider", "wire_tool_call_id"]

_PATH = "/chat/completions"
_OPTIONS = frozenset({"batch_timeout_hours"})


class MistralProvider(Provider):
    """Mistral over HTTP: ``POST /v1/chat/completions``, plain or streamed."""

    name = "mistral"
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
        }
    )
    generation_settings = BASIC_SETTINGS | {"frequency_penalty", "presence_penalty"}
    api_key_env = "MISTRAL_API_KEY"
    default_base_url = "https://api.mistral.ai/v1"
    error_rules = (
        # "Prompt contains N tokens ... too large for model with M maximum context length".
        ErrorRule(ContextWindowExceeded, status=400, contains="too large for model"),
        # An unknown model is a 400 at Mistral; as NotFoundError a fallback group moves on.
        ErrorRule(NotFoundError, status=400, contains="invalid_model"),
        # The error glossary's example: {"type": "invalid_request_error", "param": "model",
        # "code": "unknown_model"}.
        ErrorRule(NotFoundError, contains="unknown_model"),
        # A batch id that is not a UUID fails path validation (422 at "job_id") instead
        # of a 404; either way no such batch exists.
        ErrorRule(NotFoundError, status=422, contains='"job_id"'),
    )
    # docs.mistral.ai "Known limitations": at most 100,000 requests and 512 MB per batch
    # file (read as 512 * 10**6 bytes, the smaller meaning of "MB").
    batch_limits = BatchLimits(max_requests=100_000, max_bytes=512 * 10**6)
    batch_metadata = True
    # Mistral caps an embeddings request at 16,384 tokens summed over its inputs and
    # documents no count limit; the core's estimate (four characters a token)
    # undercounts dense text, so the budget keeps a quarter as margin.
    embedding_limits = EmbeddingLimits(max_tokens=12_000)
    # Mistral takes no cache marks; it reports prompt_tokens_details.cached_tokens.
    prompt_caching = "automatic"

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        super().__init__(settings, http)
        where = f"providers.{settings.name}.options"
        unknown = sorted(set(settings.options) - _OPTIONS)
        if unknown:
            raise ConfigError(
                f"{where}: the mistral provider takes no options but batch_timeout_hours, "
                f"got {unknown}; put request fields in params or provider_kwargs"
            )
        hours = settings.options.get("batch_timeout_hours")
        if hours is not None and (
            isinstance(hours, bool) or not isinstance(hours, int) or hours < 1
        ):
            raise ConfigError(
                f"{where}.batch_timeout_hours: a whole number of hours (1 or more), got {hours!r}"
            )
        self.batch_timeout_hours: int | None = hours

    # -- calls --------------------------------------------------------------------------

    def _headers(self, model: str | None = None) -> dict[str, str]:
        if self.settings.api_key is None:
            raise AuthenticationError(
                f"no API key: set {self.api_key_env} or providers.{self.settings.name}.api_key",
                provider=self.settings.name,
                model=model,
            )
        return {"authorization": f"Bearer {self.settings.api_key.reveal()}"}

    async def chat(self, request: Request) -> Response:
        payload = self.build_payload(request)
        body = await self.http.json(
            "POST", _PATH, json=payload, headers=self._headers(request.model), model=request.model
        )
        if not isinstance(body, dict):
            raise MalformedResponse(
                "answer is not a JSON object", provider=self.settings.name, model=request.model
            )
        return self.parse(body, request)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        payload = self.build_payload(request, stream=True)
        headers = self._headers(request.model)
        events = self.http.stream_sse(
            "POST", _PATH, json=payload, headers=headers, model=request.model
        )
        parsed = _events.stream_events(
            events, model=request.model, provider=self.settings.name, rules=self.error_rules
        )
        # Closed however the stream ends, early stops by the caller included.
        async with closing_stream(events), closing_stream(parsed):
            async for event in parsed:
                yield event

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        body = await self.http.json(
            "POST",
            "/embeddings",
            json=_embeddings.payload(request),
            headers=self._headers(request.model),
            model=request.model,
        )
        return _embeddings.parse(body, request, provider=self.settings.name)

    # -- batches ------------------------------------------------------------------------

    def batch_line(self, request: Request) -> Mapping[str, Any]:
        body = self.build_payload(request)
        # The job names the model once for every line (Mistral's documented lines carry none).
        body.pop("model", None)
        return {"custom_id": request.custom_id, "body": body}

    def _batch(self, job: Any) -> ProviderBatch:
        return _batches.batch(job, self.settings.name)

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        model = _batches.single_model(requests, self.settings.name)
        headers = self._headers(model)
        upload = await self.http.upload(
            "/files",
            jsonl(self.batch_line(request) for request in requests),
            filename="relay-batch.jsonl",
            media_type="application/jsonl",
            fields={"purpose": "batch"},
            headers=headers,
            model=model,
        )
        file_id = upload.get("id") if isinstance(upload, dict) else None
        if not isinstance(file_id, str):
            raise MalformedResponse("file upload answer has no id", provider=self.settings.name)
        job = _batches.job_body(file_id, model, metadata, self.batch_timeout_hours)
        created = await self.http.json(
            "POST", "/batch/jobs", json=job, headers=headers, model=model
        )
        return self._batch(created)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        job = await self.http.json(
            "GET", f"/batch/jobs/{quote(batch_id, safe='')}", headers=self._headers()
        )
        return self._batch(job)

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        batch = await self.batch_status(batch_id)
        if batch.done:
            return batch
        try:
            job = await self.http.json(
                "POST", f"/batch/jobs/{quote(batch_id, safe='')}/cancel", headers=self._headers()
            )
        except InvalidRequestError:
            # It finished between the two calls: cancelling a finished batch is no error.
            batch = await self.batch_status(batch_id)
            if batch.done:
                return batch
            raise
        return self._batch(job)

    async def list_batches(self) -> Sequence[ProviderBatch]:
        page = await self.http.json(
            "GET",
            "/batch/jobs",
            params={"page": 0, "page_size": 100, "order_by": "-created"},
            headers=self._headers(),
        )
        batches = [self._batch(job) for job in (page or {}).get("data") or ()]
        return sorted(batches, key=lambda batch: batch.created_at or 0, reverse=True)

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        batch = await self.batch_status(batch_id)
        model = str(batch.raw.get("model") or "")
        for kind in ("output_file", "error_file"):
            file_id = batch.raw.get(kind)
            if not file_id:
                continue
            lines = self.http.stream_lines(
                "GET", f"/files/{quote(str(file_id), safe='')}/content", headers=self._headers()
            )
            source = f"{kind.replace('_', ' ')} {file_id}"
            async for item in parse_lines(
                lines,
                lambda line: _batches.batch_item(
                    line, model=model, provider=self.settings.name, rules=self.error_rules
                ),
                source=source,
            ):
                yield item

    # -- wire -----------------------------------------------------------------------------

    def build_payload(self, request: Request, *, stream: bool = False) -> dict[str, Any]:
        """The JSON body this adapter sends for ``request``."""
        return payload(request, provider=self.settings.name, stream=stream)

    def parse(self, body: dict[str, Any], request: Request) -> Response:
        """A non-streamed answer body as a :class:`Response`."""
        return _parse.response(body, request.model, self.settings.name)
