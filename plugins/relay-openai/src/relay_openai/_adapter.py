"""The OpenAI adapter: Relay's types to Chat Completions or the Responses API and back.

Which wire API a call uses is the catalog option ``providers.<name>.options.api``
(``"chat"``, the default, or ``"responses"``), overridable per request with
``provider_kwargs={"openai": {"api": "responses"}}``. The ``"openai"`` key of
``provider_kwargs`` is Relay's, for the adapter, and never reaches the wire; every other
key is merged into the payload untouched, last, so it can override anything mapped here.

This class only does the HTTP: the wire formats are pure functions in
:mod:`relay_openai.chat`, :mod:`relay_openai.responses` and ``_batch``; strict-mode
schemas are ``_schema``'s and the model families ``_models``'.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args
from urllib.parse import quote

import attrs

from relay_core.plugin import (
    BASIC_SETTINGS,
    BatchItem,
    BatchLimits,
    BatchState,
    Capability,
    ConfigError,
    EmbeddingLimits,
    EmbeddingRequest,
    ErrorRule,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    Part,
    Provider,
    ProviderBatch,
    ProviderError,
    ProviderSettings,
    Request,
    Response,
    SamplingLimits,
    StreamEvent,
    Tool,
    UnsupportedCapability,
    closing_stream,
    jsonl,
    parse_lines,
    within_limits,
)
from relay_openai import chat, embeddings, responses, tokens
from relay_openai._batch import BATCH_DONE, batch_state, batch_view, json_object, output_item
from relay_openai._embedding import EMBEDDINGS_ENDPOINT, OpenAIEmbeddings, embedding_item
from relay_openai._models import MODEL_FAMILIES, ModelFamily, model_family, sampling_limits
from relay_openai._schema import without_strict_nulls

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient, SSEEvent

__all__ = ["MODEL_FAMILIES", "ModelFamily", "OpenAIProvider", "model_family"]

Api = Literal["chat", "responses"]
_APIS: tuple[Api, ...] = ("chat", "responses")
# The key of provider_kwargs that holds settings for this adapter, not for the wire.
_OWN_KWARGS = "openai"
_OWN_KWARGS_KEYS = frozenset({"api"})


class OpenAIProvider(OpenAIEmbeddings, Provider):
    """OpenAI over HTTP: Chat Completions (``POST /chat/completions``) or the Responses
    API (``POST /responses``), chosen per call."""

    name = "openai"
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
    # Chat Completions' settings; the Responses API refuses those it lacks, per call.
    generation_settings: ClassVar[frozenset[str]] = BASIC_SETTINGS | {
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
        "top_logprobs",
    }
    # Declared as the base class does, so subclasses (relay-openai-compat) may override.
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    # The core's classification covers OpenAI's errors, insufficient_quota included,
    # but for an unknown model: Chat Completions answers 404, the Responses API 400,
    # both with code model_not_found. As NotFoundError, a fallback group moves on.
    error_rules: ClassVar[Sequence[ErrorRule]] = (ErrorRule(NotFoundError, code="model_not_found"),)
    # The Batch API's documented limits: 50,000 requests and 200 MB per input file.
    batch_limits = BatchLimits(max_requests=50_000, max_bytes=200_000_000)
    # POST /embeddings takes 2,048 inputs and 300,000 tokens (summed) per request. The
    # core's estimate, four characters a token, undercounts text that tokenizes densely
    # (code, non-Latin scripts): a third of the budget is kept as margin.
    embedding_limits = EmbeddingLimits(max_inputs=2048, max_tokens=200_000)
    # How vectors travel: base64 float32, as OpenAI's own SDK asks, is a third of the
    # bytes of decimal text. None sends no encoding_format (servers default to float).
    embedding_encoding: ClassVar[embeddings.EncodingFormat | None] = "base64"
    batch_metadata: ClassVar[bool] = True
    embedding_batches: ClassVar[bool] = True  # /v1/embeddings batches: _embedding
    # Both APIs answer a system prompt alone (a system or developer message; instructions).
    system_only: ClassVar[bool] = True
    # OpenAI caches long prompt prefixes by itself and reports prompt_tokens_details.
    # cached_tokens; cache marks are not sent (azure and the compat family inherit this).
    prompt_caching: ClassVar[Literal["breakpoints", "automatic", "none"]] = "automatic"
    # Whether a Chat Completions stream that reached ``data: [DONE]`` without any
    # finish_reason is whole (the reason then inferred: tool_calls when the answer holds
    # tool calls, else stop). OpenAI always sends one, so its absence means a broken
    # stream; compatible servers (OpenRouter relaying some upstreams) end complete
    # answers without it, and relay-openai-compat declares so.
    done_ends_stream: ClassVar[bool] = False
    # The provider's batch statuses as Relay's states: OpenAI's are the same words.
    batch_statuses: ClassVar[Mapping[str, BatchState]] = {
        state: state for state in get_args(BatchState)
    }

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        super().__init__(settings, http)
        api = settings.options.get("api", "chat")
        if api not in _APIS:
            raise ConfigError(
                f"providers.{settings.name}.options.api must be 'chat' or 'responses', not {api!r}"
            )
        self.api: Api = api
        # Whether tools whose parameters strict mode can express are sent strict.
        self.strict_tools = True

    # -- shared -------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.settings.api_key is not None:
            headers["authorization"] = f"Bearer {self.settings.api_key.reveal()}"
        # Like the official SDKs, fall back on their environment variables.
        organization = self.settings.options.get("organization") or os.environ.get("OPENAI_ORG_ID")
        project = self.settings.options.get("project") or os.environ.get("OPENAI_PROJECT_ID")
        if organization:
            headers["openai-organization"] = str(organization)
        if project:
            headers["openai-project"] = str(project)
        return headers

    def _own_kwargs(
        self, request: Request | EmbeddingRequest
    ) -> tuple[Mapping[str, Any], dict[str, Any]]:
        """This adapter's own settings (``provider_kwargs["openai"]``, never sent) and
        the provider_kwargs meant for the payload."""
        extra = dict(request.provider_kwargs)
        own = extra.pop(_OWN_KWARGS, None) or {}
        if not isinstance(own, Mapping) or not set(own) <= _OWN_KWARGS_KEYS:
            raise InvalidRequestError(
                f"provider_kwargs[{_OWN_KWARGS!r}] takes only {sorted(_OWN_KWARGS_KEYS)}, "
                f"got {own!r}",
                provider=self.settings.name,
                model=request.model,
            )
        return own, extra

    def _split_kwargs(self, request: Request) -> tuple[Api, dict[str, Any]]:
        """The wire API for this call, and the provider_kwargs meant for the payload."""
        own, extra = self._own_kwargs(request)
        api = own.get("api", self.api)
        if api not in _APIS:
            raise InvalidRequestError(
                f"provider_kwargs[{_OWN_KWARGS!r}]['api'] must be 'chat' or 'responses', "
                f"not {api!r}",
                provider=self.settings.name,
                model=request.model,
            )
        return api, extra

    def _without_strict_nulls(self, content: Sequence[Part], request: Request) -> tuple[Part, ...]:
        """``content`` with the nulls strict mode made the model send dropped."""
        return without_strict_nulls(content, request.tools, strict_tools=self.strict_tools)

    def finish_batch_response(self, request: Request, response: Response) -> Response:
        # Batch lines are parsed without their requests: drop strict tools' nulls here.
        content = self._without_strict_nulls(response.content, request)
        return response if content == response.content else attrs.evolve(response, content=content)

    def sampling_limits(self, request: Request) -> SamplingLimits | None:
        """The sampling settings ``request``'s model refuses, from :data:`MODEL_FAMILIES`:
        dropped with a warning before the payload is built (``relay_core.sampling``)."""
        return sampling_limits(request.model, thinks=request.config.thinks)

    def build_payload(self, request: Request, *, stream: bool = False) -> tuple[str, Any]:
        """The endpoint path and the JSON body this adapter sends for ``request``."""
        request = within_limits(request, self.sampling_limits(request), provider=self.settings.name)
        api, extra = self._split_kwargs(request)
        if api == "responses":
            path, payload = "/responses", self._responses_payload(request)
            if stream:
                payload["stream"] = True
        else:
            path, payload = "/chat/completions", self._chat_payload(request)
            if stream:
                payload["stream"] = True
                payload["stream_options"] = {"include_usage": True}
        payload.update(extra)
        return path, payload

    # -- token counts (tiktoken, in process) ----------------------------------------------

    def count_tokens_locally(self, request: Request) -> int | None:
        name = tokens.encoding_for(request.model)
        encoding = tokens.loaded_encoding(name) if name else None
        return tokens.chat_tokens(request, encoding) if encoding else None

    async def count_tokens(self, request: Request) -> int:
        name = tokens.encoding_for(request.model)
        if name is None:
            raise UnsupportedCapability(
                self.settings.name,
                "exact token counts for a model of no known OpenAI family",
                model=request.model,
            )
        # tiktoken may download the encoding's file: not on the event loop.
        encoding = await asyncio.to_thread(
            tokens.load_encoding, name, provider=self.settings.name, model=request.model
        )
        counted = tokens.chat_tokens(request, encoding)
        if counted is None:
            raise UnsupportedCapability(
                self.settings.name,
                "exact token counts of images, documents, audio, tools or a response "
                "schema (OpenAI documents no formula for them all)",
                model=request.model,
            )
        return counted

    async def chat(self, request: Request) -> Response:
        path, payload = self.build_payload(request)
        body = await self.http.json(
            "POST", path, json=payload, headers=self._headers(), model=request.model
        )
        if not isinstance(body, dict):
            raise MalformedResponse(
                "answer is not a JSON object", provider=self.settings.name, model=request.model
            )
        if path == "/responses":
            return self._parse_responses(body, request)
        return self._parse_chat(body, request)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        path, payload = self.build_payload(request, stream=True)
        events = self.http.stream_sse(
            "POST", path, json=payload, headers=self._headers(), model=request.model
        )
        inner = self._stream_responses if path == "/responses" else self._stream_chat
        # Both closed however the stream ends: the parsers stop at [DONE] or at
        # response.completed, and the caller may stop sooner.
        parsed = inner(events, request)
        async with closing_stream(events), closing_stream(parsed):
            async for event in parsed:
                yield event

    # -- embeddings ---------------------------------------------------------------------

    # -- batches ------------------------------------------------------------------------
    #
    # OpenAI's Batch API: the lines go up as a JSONL file (POST /files, purpose "batch"),
    # POST /batches starts the batch, and the results come back as output and error
    # files. Relay-openai-compat's batch providers reuse all of it, overriding the
    # few hooks below (_upload_batch_input, _create_batch, _list_batches_raw,
    # _batch_view) and ``batch_statuses`` where their API differs.

    def batch_line(self, request: Request) -> Mapping[str, Any]:
        if not self.supports(Capability.BATCH):
            return super().batch_line(request)
        _, body = self.build_payload(request)
        return {
            "custom_id": request.custom_id,
            "method": "POST",
            "url": self._batch_endpoint(request),
            "body": body,
        }

    def _batch_endpoint(self, request: Request) -> str:
        """The batch endpoint of the wire API ``chat`` would use for ``request``."""
        api, _ = self._split_kwargs(request)
        return "/v1/responses" if api == "responses" else "/v1/chat/completions"

    def _require_batch(self) -> None:
        # Subclasses inherit the batch code, but only those that declare it may use it.
        if not self.supports(Capability.BATCH):
            raise self.unsupported(Capability.BATCH)

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        self._require_batch()
        endpoints = sorted({self._batch_endpoint(request) for request in requests})
        if len(endpoints) != 1:
            raise InvalidRequestError(
                f"one batch goes to one endpoint, and these requests need {endpoints}: "
                "submit Chat Completions and Responses API requests as separate jobs",
                provider=self.settings.name,
            )
        data = jsonl(self.batch_line(request) for request in requests)
        uploaded = await self._upload_batch_input(data, len(requests), metadata)
        raw = await self._create_batch(str(uploaded["id"]), endpoints[0], metadata)
        return await self._batch_view(raw)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        self._require_batch()
        return await self._batch_view(await self._batch_raw(batch_id))

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        self._require_batch()
        try:
            raw = await self._batch_json("POST", f"/batches/{quote(batch_id, safe='')}/cancel")
        except ProviderError:
            # A finished batch cannot be cancelled (the provider refuses with an error);
            # for Relay that is no error, so answer with its state. Anything else stands.
            status = await self.batch_status(batch_id)
            if status.done:
                return status
            raise
        return await self._batch_view(self._object(raw, "the cancelled batch"))

    async def list_batches(self) -> Sequence[ProviderBatch]:
        self._require_batch()
        views = [await self._batch_view(raw) for raw in await self._list_batches_raw()]
        return sorted(views, key=lambda view: view.created_at or 0.0, reverse=True)

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        self._require_batch()
        raw = await self._batch_raw(batch_id)
        state = self._batch_state(raw)
        if state not in BATCH_DONE:
            raise InvalidRequestError(
                f"batch {batch_id!r} is not finished (state {state}); results are "
                "available once batch_status reports it done",
                provider=self.settings.name,
            )
        endpoint = raw.get("endpoint")
        parse = self._parse_responses if endpoint == "/v1/responses" else self._parse_chat
        embeddings = endpoint == EMBEDDINGS_ENDPOINT
        # Successes are in the output file, failures in the error file; either may be
        # missing (no success, no failure, or a batch that never ran).
        for key, kind in (("output_file_id", "output"), ("error_file_id", "error")):
            file_id = raw.get(key)
            if not isinstance(file_id, str) or not file_id:
                continue
            lines = self._file_lines(file_id)
            source = f"{kind} file {file_id} of batch {batch_id}"
            async for item in parse_lines(
                lines,
                lambda line: (
                    embedding_item(line, provider=self.settings.name, rules=self.error_rules)
                    if embeddings
                    else output_item(
                        line, parse, provider=self.settings.name, rules=self.error_rules
                    )
                ),
                source=source,
            ):
                yield item

    # Hooks for providers whose batch API differs from OpenAI's --------------------------

    def _file_lines(self, file_id: str) -> AsyncIterator[str]:
        """The lines of a stored file (a batch's output or error file)."""
        return self.http.stream_lines(
            "GET", f"/files/{quote(file_id, safe='')}/content", headers=self._headers()
        )

    async def _upload_batch_input(
        self, data: bytes, count: int, metadata: Mapping[str, str]
    ) -> dict[str, Any]:
        """Upload the JSONL input; return the provider's file object (with ``id``)."""
        return await self._upload("/files", data, "relay-batch.jsonl", {"purpose": "batch"})

    async def _create_batch(
        self, file_id: str, endpoint: str, metadata: Mapping[str, str]
    ) -> dict[str, Any]:
        """Start a batch over an uploaded file; return the provider's batch object."""
        body = {
            "input_file_id": file_id,
            "endpoint": endpoint,
            "completion_window": "24h",
            "metadata": dict(metadata),
        }
        return self._object(await self._batch_json("POST", "/batches", json=body), "the batch")

    async def _list_batches_raw(self) -> list[dict[str, Any]]:
        """The provider's most recent batch objects (one page: the core only looks for
        batches submitted moments ago)."""
        page = self._object(
            await self._batch_json("GET", "/batches", params={"limit": 100}), "the batch list"
        )
        return [item for item in page.get("data") or () if isinstance(item, dict)]

    async def _batch_view(self, raw: dict[str, Any]) -> ProviderBatch:
        """The provider's batch object as Relay's :class:`ProviderBatch`."""
        return batch_view(raw, state=self._batch_state(raw), provider=self.settings.name)

    # Shared plumbing -------------------------------------------------------------------

    async def _batch_json(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self.http.json(method, path, headers=self._headers(), **kwargs)

    async def _batch_raw(self, batch_id: str) -> dict[str, Any]:
        answer = await self._batch_json("GET", f"/batches/{quote(batch_id, safe='')}")
        return self._object(answer, f"batch {batch_id}")

    async def _upload(
        self, path: str, data: bytes, filename: str, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        # The core's multipart upload: its boundary comes from the content, so the same
        # lines always upload as the same bytes (and a recorded upload replays).
        answer = await self.http.upload(
            path, data, filename=filename, fields=fields, headers=self._headers()
        )
        return self._object(answer, "the uploaded file")

    def _object(self, value: Any, what: str) -> dict[str, Any]:
        return json_object(value, what, provider=self.settings.name)

    def _batch_state(self, raw: dict[str, Any]) -> BatchState:
        return batch_state(raw, self.batch_statuses, provider=self.settings.name)

    # -- the wire: relay_openai.chat and relay_openai.responses ------------------------
    #
    # Hooks for relay-openai-compat and relay-azure, which change what their servers do
    # differently.

    def _chat_payload(self, request: Request) -> dict[str, Any]:
        return chat.payload(request, provider=self.settings.name, tool=self._chat_tool)

    def _chat_tool(self, tool: Tool) -> dict[str, Any]:
        return chat.function_tool(tool, strict_tools=self.strict_tools)

    def _parse_chat(self, body: dict[str, Any], request: Request) -> Response:
        return chat.parse(
            body, request, provider=self.settings.name, strict_tools=self.strict_tools
        )

    def _stream_chat(
        self, events: AsyncIterator[SSEEvent], request: Request
    ) -> AsyncIterator[StreamEvent]:
        return chat.events(
            events,
            request,
            provider=self.settings.name,
            rules=self.error_rules,
            strict_tools=self.strict_tools,
            done_ends_stream=self.done_ends_stream,
        )

    def _responses_payload(self, request: Request) -> dict[str, Any]:
        return responses.payload(
            request, provider=self.settings.name, strict_tools=self.strict_tools
        )

    def _parse_responses(self, body: dict[str, Any], request: Request) -> Response:
        return responses.parse(
            body,
            request,
            provider=self.settings.name,
            rules=self.error_rules,
            strict_tools=self.strict_tools,
        )

    def _stream_responses(
        self, events: AsyncIterator[SSEEvent], request: Request
    ) -> AsyncIterator[StreamEvent]:
        return responses.events(
            events,
            request,
            provider=self.settings.name,
            rules=self.error_rules,
            strict_tools=self.strict_tools,
        )
