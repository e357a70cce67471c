"""The Gemini adapter: Relay's types to the Gemini API (``models/*:generateContent`` and
``:streamGenerateContent?alt=sse``) and back, and Gemini batch mode
(``models/*:batchGenerateContent`` over a JSONL file uploaded through the Files API).

Credentials, pooling, retries, SSE parsing, stream assembly and the translation of failed
answers are the core's; this module maps requests to payloads and answers to responses.
The plugin's README lists every mapping and the choices made where Relay and Gemini
differ (generated tool-call ids, reasoning budgets, tool results, streamed ``raw``).
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import attrs

from relay_core.plugin import (
    AuthenticationError,
    BatchCounts,
    BatchItem,
    BatchLimits,
    BatchState,
    Capability,
    ConfigError,
    ContentPolicyError,
    ContextWindowExceeded,
    DocumentPart,
    EndEvent,
    ErrorInfo,
    ErrorRule,
    FinishReason,
    GenerationConfig,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
    NotFoundError,
    Part,
    Provider,
    ProviderBatch,
    ProviderError,
    ProviderSettings,
    QuotaExceeded,
    ReasoningEffort,
    Request,
    Response,
    StreamAssembler,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageEvent,
    classify_stream_error,
    closing_stream,
    error_info,
    jsonl,
    merge_kwargs,
    parse_lines,
)

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient, SSEEvent

__all__ = [
    "GENERATED_ID_PREFIX",
    "REASONING_BUDGETS",
    "GeminiProvider",
    "http_status",
    "timestamp_seconds",
]

# Gemini takes a thinking budget in tokens. low/medium/high are the budgets Google's own
# OpenAI-compatible endpoint uses for reasoning_effort; 512 is the smallest budget every
# Gemini 2.5 model accepts (Flash-Lite's floor; Pro's is 128).
REASONING_BUDGETS: dict[ReasoningEffort, int] = {
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
}
# The Gemini API often leaves functionCall.id out. Relay needs an id to pair results with
# calls, so one is derived from the answer; ids with this prefix are Relay's and are never
# sent back to Gemini, which did not issue them.
GENERATED_ID_PREFIX = "gemini-call-"

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    # The model produced a call Gemini could not accept: the turn ended on an error.
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
}
# google.rpc status names and the HTTP status each comes with (google/rpc/code.proto), so
# that an error object in a stream (which arrives after a 200) or in a batch output line
# (which carries only the numeric code) is classified like the same error as an answer.
_STATUS_CODES: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# google.rpc.Code by number: a batch output line's error is a google.rpc.Status, whose
# ``code`` is this number, not an HTTP status.
_RPC_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
# Batch states: the REST reference names them BATCH_STATE_*, the batch guide's examples
# JOB_STATE_* (the SDKs' names); both are read. Gemini has no "validating" or
# "cancelling" step: a batch waiting its turn is reported as validating, the one state
# Relay has for "accepted, not running yet".
_STATE_NAMES: dict[str, BatchState] = {
    "PENDING": "validating",
    "QUEUED": "validating",
    "RUNNING": "in_progress",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "EXPIRED": "expired",
}
_STATES: dict[str, BatchState] = {
    prefix + name: state
    for prefix in ("BATCH_STATE_", "JOB_STATE_")
    for name, state in _STATE_NAMES.items()
}
# The display name carries the metadata given at submit, so list_batches can give it back.
_TAG_PREFIX = "relay:"
_BATCH_ID = re.compile(r"batches/[^/?#]+")
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


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
        }
    )
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
            _method_path(request.model, "generateContent"),
            json=self.payload(request),
            headers=self._headers(),
            model=request.model,
        )
        return self._parse(body, request.model)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        events = self.http.stream_sse(
            "POST",
            _method_path(request.model, "streamGenerateContent") + "?alt=sse",
            json=self.payload(request),
            headers=self._headers(),
            model=request.model,
        )
        parsed = self._stream_events(events, request)
        # Closed however the stream ends, early stops by the caller included.
        async with closing_stream(events), closing_stream(parsed):
            async for event in parsed:
                yield event

    async def _stream_events(
        self, events: AsyncIterator[SSEEvent], request: Request
    ) -> AsyncIterator[StreamEvent]:
        # Each chunk's parts are read by chat's parser and fed to the core's assembler as
        # deltas: a piece that carries a signature ends its part (Gemini signs a part's
        # last piece), calls arrive whole. Top-level fields are the last chunk's.
        assembler = StreamAssembler(provider=self.settings.name)
        chunks: list[dict[str, Any]] = []
        top: dict[str, Any] = {}
        reason: str | None = None
        calls = 0
        async for sse in events:
            chunk = sse.json()
            if not isinstance(chunk, dict):
                raise self._malformed(f"a stream chunk is not a JSON object: {sse.data[:200]!r}")
            if "error" in chunk:
                raise self._stream_error(chunk, request)
            _raise_if_blocked(chunk, self.settings.name, request.model)
            chunks.append(chunk)
            top.update(chunk)
            try:
                candidate = (chunk.get("candidates") or [{}])[0]
                reason = candidate.get("finishReason") or reason
                wire = (candidate.get("content") or {}).get("parts") or []
                parts = list(_from_wire(wire, chunk.get("responseId"), calls))
            except MalformedResponse as error:
                error.provider = error.provider or self.settings.name
                raise
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
                raise self._malformed(f"{type(error).__name__}: {error}") from error
            for part in parts:
                yield assembler.feed(_delta(part, calls))
                calls += isinstance(part, ToolCallPart)
            if "usageMetadata" in chunk:
                yield assembler.feed(UsageEvent(_usage(chunk["usageMetadata"])))
        if not reason:
            raise self._malformed("the stream ended before the answer had a finishReason")
        yield EndEvent(
            assembler.response(
                model=top.get("modelVersion") or request.model,
                finish_reason=_finish(reason, calls > 0),
                id=top.get("responseId"),
                raw=chunks,
            )
        )

    # -- batches --------------------------------------------------------------------------

    def batch_line(self, request: Request) -> dict[str, Any]:
        """A line of the batch input file: the request's ``custom_id`` as Gemini's ``key``,
        and the same GenerateContentRequest ``chat`` sends."""
        return {"key": request.custom_id, "request": self.payload(request)}

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        models = sorted({request.model for request in requests})
        if len(models) != 1:
            raise InvalidRequestError(
                "a Gemini batch runs one model (it is in the URL); this one has "
                + (", ".join(models) or "no requests"),
                provider=self.settings.name,
            )
        missing = [i for i, request in enumerate(requests) if not request.custom_id]
        if missing:
            raise InvalidRequestError(
                f"request {missing[0]} of the batch has no custom_id; each needs a unique one",
                provider=self.settings.name,
            )
        name = _TAG_PREFIX + urlencode(sorted(metadata.items()))
        file = await self._upload(jsonl(self.batch_line(r) for r in requests), name)
        operation = await self.http.json(
            "POST",
            _method_path(models[0], "batchGenerateContent"),
            json={"batch": {"displayName": name, "inputConfig": {"fileName": file}}},
            headers=self._headers(),
            model=models[0],
        )
        return self._batch(operation)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        operation = await self.http.json("GET", self._batch_path(batch_id), headers=self._headers())
        return self._batch(operation)

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        batch = await self.batch_status(batch_id)
        output = _output(batch.raw)
        model = str(_fields(batch.raw).get("model") or "").removeprefix("models/")
        lines: AsyncIterable[str] | Iterable[str]
        if isinstance(output.get("responsesFile"), str):
            lines = self.http.stream_lines(
                "GET",
                self._media_url("download", quote(output["responsesFile"], safe="/-._~"))
                + ":download?alt=media",
                headers=self._headers(),
            )
        elif isinstance(output.get("inlinedResponses"), dict):
            # A batch submitted inline elsewhere: its answers sit in the status itself.
            inlined = output["inlinedResponses"].get("inlinedResponses") or []
            lines = (json.dumps(item, ensure_ascii=False) for item in inlined)
        elif batch.done:
            return  # failed, expired or cancelled before any output: the core fails them all
        else:
            raise InvalidRequestError(
                f"batch {batch.id!r} is not finished (state {batch.state}); results are "
                "available once batch_status reports it done",
                provider=self.settings.name,
            )
        async for item in parse_lines(
            lines,
            lambda line: self._batch_item(line, model),
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
        """The URL path of a batch: ids are Gemini's resource names (``batches/abc``), and a
        bare ``abc`` is read as one. Anything else cannot be a batch, so it is not found."""
        name = batch_id if batch_id.startswith("batches/") else f"batches/{batch_id}"
        if not _BATCH_ID.fullmatch(name):
            raise NotFoundError(
                f"no batch {batch_id!r}: Gemini batch ids look like batches/<id>",
                provider=self.settings.name,
            )
        return "/" + quote(name, safe="/-._~")

    def _media_url(self, kind: str, resource: str) -> str:
        """The Files API's media endpoints sit beside the API's path, not under it:
        ``{origin}/upload/v1beta/files`` and ``{origin}/download/v1beta/files/x``."""
        base = urlsplit(self.base_url)
        return f"{base.scheme}://{base.netloc}/{kind}{base.path}/{resource}"

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
        """A batch's long-running Operation (create, get, list) as Relay's view of it."""
        if not isinstance(operation, dict):
            raise self._malformed(f"a batch is not a JSON object: {str(operation)[:200]!r}")
        fields = _fields(operation)
        name = operation.get("name") or fields.get("name")
        if not isinstance(name, str):
            raise self._malformed("a batch has no name")
        stats = fields.get("batchStats") or {}
        state = _STATES.get(str(fields.get("state")))
        if state is None:  # BATCH_STATE_UNSPECIFIED, or a state newer than this adapter
            state = "failed" if operation.get("done") else "in_progress"
        display = str(fields.get("displayName") or "")
        return ProviderBatch(
            id=name,
            provider=self.settings.name,
            state=state,
            counts=BatchCounts(
                # int64 fields: proto JSON writes them as strings, and leaves zeros out.
                int(stats.get("requestCount") or 0),
                int(stats.get("successfulRequestCount") or 0),
                int(stats.get("failedRequestCount") or 0),
            ),
            created_at=timestamp_seconds(fields.get("createTime")),
            ended_at=timestamp_seconds(fields.get("endTime")),
            metadata=(
                dict(parse_qsl(display.removeprefix(_TAG_PREFIX), keep_blank_values=True))
                if display.startswith(_TAG_PREFIX)
                else {}
            ),
            raw=operation,
        )

    def _batch_item(self, line: Any, model: str) -> BatchItem:
        """One output line: ``{key, response}`` or ``{key, error: google.rpc.Status}``
        (inline answers keep the key in ``metadata.key``)."""
        key = line["key"] if "key" in line else line["metadata"]["key"]
        if not isinstance(key, str):
            raise MalformedResponse(f"the line's key is not a string: {key!r}")
        if "response" not in line:
            error = line["error"]
            return BatchItem(
                key,
                error=error_info(
                    http_status(error),
                    {"error": error},
                    provider=self.settings.name,
                    rules=self.error_rules,
                    custom_id=key,
                ),
                raw=line,
            )
        try:
            response = self._parse(line["response"], model)
        except ProviderError as failed:  # a blocked prompt, an answer with no candidates
            failed.custom_id = key
            return BatchItem(key, error=ErrorInfo.from_exception(failed), raw=line)
        return BatchItem(key, response=attrs.evolve(response, custom_id=key), raw=line)

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
        payload: dict[str, Any] = {"contents": _contents(request.messages)}
        if request.system:
            payload["systemInstruction"] = {"parts": [{"text": request.system}]}
        generation = _generation_config(request.config)
        if request.response_schema is not None:
            generation["responseMimeType"] = "application/json"
            # responseJsonSchema takes standard JSON Schema; responseSchema takes only
            # Google's OpenAPI subset and would refuse $ref, additionalProperties...
            generation["responseJsonSchema"] = request.response_schema.schema
        if generation:
            payload["generationConfig"] = generation
        if request.tools:
            payload["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
        if request.tool_choice is not None:
            payload["toolConfig"] = {"functionCallingConfig": _tool_choice(request.tool_choice)}
        # Key by key at every depth, as the core merges catalog and call kwargs:
        # {"generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}} keeps the rest.
        return merge_kwargs(payload, request.provider_kwargs)

    # -- answers --------------------------------------------------------------------------

    def _parse(self, body: Any, model: str) -> Response:
        if isinstance(body, dict):
            _raise_if_blocked(body, self.settings.name, model)
        try:
            return _response(body, model)
        except MalformedResponse as error:
            error.provider = error.provider or self.settings.name
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            raise self._malformed(
                f"answer has an unexpected shape: {type(error).__name__}: {error}"
            ) from error

    def _malformed(self, message: str) -> MalformedResponse:
        return MalformedResponse(message, provider=self.settings.name, status_code=200)

    def _stream_error(self, chunk: Mapping[str, Any], request: Request) -> ProviderError:
        """An error object mid-stream, classified by the core as the same error would be
        as an HTTP answer."""
        error = chunk.get("error")
        status = 500
        if isinstance(error, dict):
            code = error.get("code")
            status = (
                code if isinstance(code, int) else _STATUS_CODES.get(str(error.get("status")), 500)
            )
        return classify_stream_error(
            status, chunk, rules=self.error_rules, provider=self.settings.name, model=request.model
        )


# ---------------------------------------------------------------------------- batches


def _fields(operation: Any) -> Mapping[str, Any]:
    """The GenerateContentBatch of an Operation (its ``metadata``), or the batch itself."""
    if not isinstance(operation, dict):
        return {}
    metadata = operation.get("metadata")
    return metadata if isinstance(metadata, dict) else operation


def _output(operation: Any) -> Mapping[str, Any]:
    """Where a finished batch's answers are: the Operation's ``response`` (what the batch
    guide reads), else the batch's own ``output``."""
    response = operation.get("response") if isinstance(operation, dict) else None
    if isinstance(response, dict) and (
        "responsesFile" in response or "inlinedResponses" in response
    ):
        return response
    output = _fields(operation).get("output")
    return output if isinstance(output, dict) else {}


def http_status(error: Mapping[str, Any]) -> int:
    """The HTTP status a google.rpc.Status stands for: its code is google.rpc.Code's
    number (an HTTP status when it is 100 or more)."""
    code = error.get("code")
    if isinstance(code, int) and code >= 100:
        return code
    if isinstance(code, int) and 0 < code < len(_RPC_NAMES):
        return _STATUS_CODES[_RPC_NAMES[code]]
    return _STATUS_CODES.get(str(error.get("status")), 500)


def timestamp_seconds(value: Any) -> float | None:
    """RFC 3339 (``2025-07-28T09:30:12.123456789Z``) as Unix seconds. Python before 3.11
    reads neither the Z nor nine fractional digits, hence the regex."""
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    moment = datetime.fromisoformat(f"{whole}.{(fraction or '0')[:6]:0<6}{zone}")
    return moment.timestamp()


# ---------------------------------------------------------------------------- to the wire


def _method_path(model: str, method: str) -> str:
    # A bare name is a base model; "tunedModels/x" (or "models/x") is already a resource.
    resource = model if "/" in model else f"models/{model}"
    return "/" + quote(resource, safe="/-._~") + ":" + method


def _generation_config(config: GenerationConfig) -> dict[str, Any]:
    generation: dict[str, Any] = {}
    if config.temperature is not None:
        generation["temperature"] = config.temperature
    if config.top_p is not None:
        generation["topP"] = config.top_p
    if config.max_tokens is not None:
        generation["maxOutputTokens"] = config.max_tokens
    if config.stop:
        generation["stopSequences"] = list(config.stop)
    if config.seed is not None:
        generation["seed"] = config.seed
    budget = config.reasoning_budget(REASONING_BUDGETS)
    if budget is not None:
        # A budget of 0 switches thinking off: there are no thoughts to include then.
        thinking: dict[str, Any] = {"thinkingBudget": budget}
        if budget != 0:
            thinking["includeThoughts"] = True
        generation["thinkingConfig"] = thinking
    return generation


def _declaration(tool: Tool) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    # parametersJsonSchema takes standard JSON Schema, as Relay's Tool.parameters is.
    declaration["parametersJsonSchema"] = tool.parameters
    return declaration


def _tool_choice(choice: str) -> dict[str, Any]:
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    return {"mode": "ANY", "allowedFunctionNames": [choice]}


def _contents(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Relay's turns as Gemini's contents: assistant turns are ``model``, tool results
    travel in ``user`` turns, and consecutive turns of one role are merged."""
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message.content, names)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _parts(content: Sequence[Part], names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, ThinkingPart):
            _thinking_to_wire(part, parts)
        elif isinstance(part, TextPart):
            # Kept even when empty for now: an older signature-only part may follow.
            parts.append(_signed({"text": part.text}, part.signature))
        elif isinstance(part, ToolCallPart):
            names[part.id] = part.name
            call: dict[str, Any] = {"name": part.name, "args": part.arguments}
            if not part.id.startswith(GENERATED_ID_PREFIX):
                call["id"] = part.id
            parts.append(_signed({"functionCall": call}, part.signature))
        elif isinstance(part, ToolResultPart):
            parts.append({"functionResponse": _function_response(part, names)})
        elif isinstance(part, ImagePart):
            parts.append(_media(part.url, part.data, part.media_type, part.base64, "image"))
        elif isinstance(part, DocumentPart):
            parts.append(_media(part.url, part.data, part.media_type, part.base64, "document"))
        else:  # pragma: no cover - every Part type is handled above
            raise InvalidRequestError(f"content of type {type(part).__name__} has no Gemini form")
    # Gemini refuses empty text parts; one is sent only as the carrier of a signature.
    return [p for p in parts if p.get("text") != "" or "thoughtSignature" in p or "thought" in p]


def _signed(part: dict[str, Any], signature: str | None) -> dict[str, Any]:
    if signature:
        part["thoughtSignature"] = signature
    return part


def _thinking_to_wire(part: ThinkingPart, parts: list[dict[str, Any]]) -> None:
    if part.redacted:
        return  # another provider's encrypted thinking: Gemini cannot read it
    previous = parts[-1] if parts else None
    if (
        not part.text
        and part.signature
        and previous is not None
        and ("functionCall" in previous or ("thought" not in previous and "text" in previous))
        and "thoughtSignature" not in previous
    ):
        # How relay-gemini kept a call's or a text's signature before parts had one (a
        # signature-only ThinkingPart right after it): stored answers still go back right.
        previous["thoughtSignature"] = part.signature
        return
    if part.text or part.signature:
        parts.append(_signed({"text": part.text, "thought": True}, part.signature))


def _function_response(part: ToolResultPart, names: Mapping[str, str]) -> dict[str, Any]:
    name = part.name or names.get(part.tool_call_id)
    if not name:
        raise InvalidRequestError(
            f"the tool result for call {part.tool_call_id!r} needs the function's name: "
            "Gemini pairs results with calls by name. Set ToolResultPart.name, or keep the "
            "assistant turn holding the call in the conversation"
        )
    try:
        value: Any = json.loads(part.content)
    except ValueError:
        value = part.content
    # Gemini wants an object; the SDK's own convention wraps anything else, and errors.
    if part.is_error:
        response = {"error": value}
    elif isinstance(value, dict):
        response = value
    else:
        response = {"result": value}
    result: dict[str, Any] = {"name": name, "response": response}
    if not part.tool_call_id.startswith(GENERATED_ID_PREFIX):
        result["id"] = part.tool_call_id
    return result


def _media(
    url: str | None, data: bytes | None, media_type: str | None, b64: Any, kind: str
) -> dict[str, Any]:
    if url is not None:
        mime = media_type or mimetypes.guess_type(url)[0]
        file_data: dict[str, Any] = {"fileUri": url}
        if mime:
            file_data["mimeType"] = mime
        return {"fileData": file_data}
    if not media_type:
        raise InvalidRequestError(f"an {kind} given as bytes needs a media_type (image/png...)")
    return {"inlineData": {"mimeType": media_type, "data": b64()}}


# ---------------------------------------------------------------------------- from the wire


def _raise_if_blocked(body: Mapping[str, Any], provider: str, model: str) -> None:
    """A prompt Gemini refused comes as a 200 with promptFeedback and no candidates."""
    feedback = body.get("promptFeedback")
    if body.get("candidates") or not isinstance(feedback, dict):
        return
    reason = feedback.get("blockReason")
    if not reason:
        return
    detail = feedback.get("blockReasonMessage")
    message = f"the prompt was blocked ({reason})" + (f": {detail}" if detail else "")
    raise ContentPolicyError(message, provider=provider, model=model)


def _usage(meta: Mapping[str, Any]) -> Usage:
    # candidatesTokenCount leaves the thoughts out; Relay's output_tokens include them.
    # Tokens of server-side tool results are read as input, as they are billed.
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(meta.get("promptTokenCount") or 0)
        + int(meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cached_input_tokens=int(meta.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _generated_id(response_id: Any, index: int, name: str, args: Any) -> str:
    """A stable id for a call Gemini gave none: the same for the same call in the same
    answer, streamed or not."""
    seed = json.dumps([response_id, index, name, args], sort_keys=True, ensure_ascii=False)
    return GENERATED_ID_PREFIX + hashlib.sha256(seed.encode()).hexdigest()[:24]


def _call(part: Mapping[str, Any], response_id: Any, index: int) -> ToolCallPart:
    call = part["functionCall"]
    name = call["name"]
    args = call.get("args") or {}
    if not isinstance(name, str) or not isinstance(args, dict):
        raise MalformedResponse(f"function call {name!r} has arguments that are not an object")
    call_id = call.get("id") or _generated_id(response_id, index, name, args)
    return ToolCallPart(call_id, name, args, signature=part.get("thoughtSignature"))


def _from_wire(
    parts: Sequence[Mapping[str, Any]], response_id: Any, calls: int = 0
) -> Iterator[Part]:
    """Gemini's parts in order, each with the signature Gemini put on it. ``calls``
    counts the calls before these parts (a stream reads them chunk by chunk)."""
    for part in parts:
        signature = part.get("thoughtSignature")
        if "functionCall" in part:
            yield _call(part, response_id, calls)
            calls += 1
        elif "text" in part:
            text = part["text"]
            if not isinstance(text, str):
                raise MalformedResponse("a text part holds no text")
            if part.get("thought") and (text or signature):
                yield ThinkingPart(text, signature=signature)
            elif text or signature:
                yield TextPart(text, signature=signature)
        # other parts (executable code, generated media...) are kept in raw only


def _delta(part: Part, index: int) -> StreamEvent:
    """A streamed part as the delta StreamAssembler makes it back from."""
    if isinstance(part, ToolCallPart):
        arguments = json.dumps(part.arguments, ensure_ascii=False)
        return ToolCallDelta(index, part.id, part.name, arguments, signature=part.signature)
    if isinstance(part, ThinkingPart):
        return ThinkingDelta(part.text, signature=part.signature)
    assert isinstance(part, TextPart)
    return TextDelta(part.text, signature=part.signature)


def _finish(reason: Any, has_calls: bool) -> FinishReason:
    finish: FinishReason = _FINISH.get(reason, "unknown") if reason else "unknown"
    return "tool_calls" if finish == "stop" and has_calls else finish


def _response(body: Any, model: str) -> Response:
    candidates = body.get("candidates") or []
    if not candidates:
        raise MalformedResponse("the answer has no candidates")
    candidate = candidates[0]
    parts = (candidate.get("content") or {}).get("parts") or []
    content = tuple(_from_wire(parts, body.get("responseId")))
    has_calls = any(isinstance(p, ToolCallPart) for p in content)
    return Response(
        content=content,
        model=body.get("modelVersion") or model,
        id=body.get("responseId"),
        finish_reason=_finish(candidate.get("finishReason"), has_calls),
        usage=_usage(body.get("usageMetadata") or {}),
        raw=body,
    )
