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
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from relay_core.plugin import (
    AuthenticationError,
    BatchCounts,
    BatchItem,
    BatchLimits,
    BatchState,
    Capability,
    ConfigError,
    ContextWindowExceeded,
    DocumentPart,
    EndEvent,
    ErrorRule,
    FinishReason,
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
    Request,
    Response,
    StreamAssembler,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageEvent,
    classify_stream_error,
    closing_stream,
    error_info,
    jsonl,
    parse_lines,
)

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient, SSEEvent

__all__ = ["MistralProvider", "wire_tool_call_id"]

_PATH = "/chat/completions"
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    # The prompt plus the answer reached the model's context window.
    "model_length": "length",
    "tool_calls": "tool_calls",
    "error": "error",
}
_STATES: dict[str, BatchState] = {
    # Accepted but not started: Relay's first state, whatever the provider calls it.
    "QUEUED": "validating",
    "RUNNING": "in_progress",
    "SUCCESS": "completed",
    "FAILED": "failed",
    "TIMEOUT_EXCEEDED": "expired",
    "CANCELLATION_REQUESTED": "cancelling",
    "CANCELLED": "cancelled",
}
# The HTTP status each of Mistral's error types comes with when it fails a whole request,
# so that an error inside a 200 stream is classified as that answer would be: the error
# glossary's four categories, and the other types Mistral's error bodies carry.
_ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "invalid_model": 400,
    "invalid_function_call": 400,
    "authentication_error": 401,
    "rate_limit_error": 429,
    "rate_limited": 429,
    "server_error": 500,
    "internal_server_error": 500,
    "service_unavailable": 503,
}
_OPTIONS = frozenset({"batch_timeout_hours"})
_TOOL_CHOICES = frozenset({"auto", "none", "any", "required"})
_TOOL_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def wire_tool_call_id(relay_id: str) -> str:
    """The tool call id Mistral accepts for ``relay_id``.

    Mistral refuses any id that is not exactly 9 ASCII letters or digits, so ids made
    by other providers (``call_...``, ``toolu_...``) are replaced by a stable 9-character
    digest: the same id always maps to the same digest, so a call and its result still
    match. Mistral's own ids pass through unchanged.
    """
    if _TOOL_CALL_ID.fullmatch(relay_id):
        return relay_id
    number = int.from_bytes(hashlib.sha256(relay_id.encode("utf-8")).digest()[:8], "big")
    digits = []
    for _ in range(9):
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(digits)


def _int(mapping: Any, key: str) -> int:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, int) else 0


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=_int(raw, "prompt_tokens"),
        output_tokens=_int(raw, "completion_tokens"),
        cached_input_tokens=_int(raw.get("prompt_tokens_details"), "cached_tokens"),
    )


def _finish(value: Any) -> FinishReason:
    return _FINISH.get(str(value), "unknown")


def _arguments_text(arguments: Any) -> str:
    # Mistral documents arguments as a JSON string, but its schema also allows an object.
    if isinstance(arguments, dict):
        return json.dumps(arguments)
    return arguments if isinstance(arguments, str) else ""


def _thinking_text(chunk: dict[str, Any]) -> str:
    inner = chunk.get("thinking")
    if isinstance(inner, str):
        return inner
    return "".join(
        c.get("text", "") for c in inner or () if isinstance(c, dict) and c.get("type") == "text"
    )


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
        }
    )
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
        parsed = self._stream(events, request)
        # Closed however the stream ends, early stops by the caller included.
        async with closing_stream(events), closing_stream(parsed):
            async for event in parsed:
                yield event

    # -- batches ------------------------------------------------------------------------

    def batch_line(self, request: Request) -> Mapping[str, Any]:
        body = self.build_payload(request)
        # The job names the model once for every line (Mistral's documented lines carry none).
        body.pop("model", None)
        return {"custom_id": request.custom_id, "body": body}

    def _batch(self, job: Any) -> ProviderBatch:
        if not isinstance(job, dict) or not isinstance(job.get("id"), str):
            raise MalformedResponse("batch job is not a JSON object", provider=self.settings.name)
        completed_at = job.get("completed_at")
        return ProviderBatch(
            id=job["id"],
            provider=self.settings.name,
            # An unknown status is one Mistral added later; keep polling rather than stop.
            state=_STATES.get(str(job.get("status")), "in_progress"),
            counts=BatchCounts(
                total=_int(job, "total_requests"),
                completed=_int(job, "succeeded_requests"),
                failed=_int(job, "failed_requests"),
            ),
            created_at=job.get("created_at"),
            ended_at=completed_at if isinstance(completed_at, (int, float)) else None,
            metadata=dict(job.get("metadata") or {}),
            raw=job,
        )

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        models = sorted({request.model for request in requests})
        if len(models) != 1:
            raise InvalidRequestError(
                f"a Mistral batch job runs one model, got {models or 'no requests'}",
                provider=self.settings.name,
            )
        headers = self._headers(models[0])
        upload = await self.http.upload(
            "/files",
            jsonl(self.batch_line(request) for request in requests),
            filename="relay-batch.jsonl",
            media_type="application/jsonl",
            fields={"purpose": "batch"},
            headers=headers,
            model=models[0],
        )
        file_id = upload.get("id") if isinstance(upload, dict) else None
        if not isinstance(file_id, str):
            raise MalformedResponse("file upload answer has no id", provider=self.settings.name)
        job: dict[str, Any] = {
            "input_files": [file_id],
            "model": models[0],
            "endpoint": "/v1/chat/completions",
            "metadata": {str(key): str(value) for key, value in metadata.items()},
        }
        if self.batch_timeout_hours is not None:
            job["timeout_hours"] = self.batch_timeout_hours
        created = await self.http.json(
            "POST", "/batch/jobs", json=job, headers=headers, model=models[0]
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
        request = Request(messages=(), model=str(batch.raw.get("model") or ""))
        for kind in ("output_file", "error_file"):
            file_id = batch.raw.get(kind)
            if not file_id:
                continue
            lines = self.http.stream_lines(
                "GET", f"/files/{quote(str(file_id), safe='')}/content", headers=self._headers()
            )
            source = f"{kind.replace('_', ' ')} {file_id}"
            async for item in parse_lines(
                lines, lambda line: self._item(line, request), source=source
            ):
                yield item

    def _item(self, line: Any, request: Request) -> BatchItem:
        """One line of an output or error file: ``{"custom_id", "response": {"status_code",
        "body"}, "error"}``."""
        custom_id = line["custom_id"]
        if not isinstance(custom_id, str):
            raise TypeError("custom_id is not a string")
        response = line.get("response") or {}
        status = response.get("status_code")
        body = response.get("body")
        failure = line.get("error")
        if isinstance(status, int) and status < 400 and not failure:
            if not isinstance(body, dict):
                raise MalformedResponse("answer body is not a JSON object")
            return BatchItem(custom_id, response=self.parse(body, request), raw=line)
        # An error with no HTTP status failed on Mistral's side: a 500, worth a retry.
        code = status if isinstance(status, int) and status >= 400 else 500
        detail = body if body else failure
        return BatchItem(
            custom_id,
            error=error_info(
                code,
                detail if isinstance(detail, (str, dict)) else json.dumps(detail),
                provider=self.settings.name,
                rules=self.error_rules,
                custom_id=custom_id,
            ),
            raw=line,
        )

    # -- request ------------------------------------------------------------------------

    def _invalid(self, request: Request, message: str) -> InvalidRequestError:
        return InvalidRequestError(message, provider=self.settings.name, model=request.model)

    def build_payload(self, request: Request, *, stream: bool = False) -> dict[str, Any]:
        """The JSON body this adapter sends for ``request``."""
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        names = {
            call.id: call.name
            for message in request.messages
            for call in message.content
            if isinstance(call, ToolCallPart)
        }
        for message in request.messages:
            messages.extend(self._messages(message, request, names))
        payload: dict[str, Any] = {"model": request.model, "messages": messages}
        config = request.config
        # Mistral's reference takes every Relay effort as it is. It has no token budget:
        # any budget asks for "high", the setting its reasoning guide documents as the one
        # that returns the thinking; 0 sends nothing (models without adjustable reasoning
        # may refuse the field, and Mistral's own "none" can go in provider_kwargs).
        effort: str | None = config.reasoning if isinstance(config.reasoning, str) else None
        if effort is None and config.thinks:
            effort = "high"
        for key, value in (
            ("temperature", config.temperature),
            ("top_p", config.top_p),
            ("max_tokens", config.max_tokens),
            ("stop", list(config.stop) if config.stop else None),
            ("random_seed", config.seed),
            ("reasoning_effort", effort),
        ):
            if value is not None:
                payload[key] = value
        if request.tools:
            # No "strict" (Mistral's default is false): Relay's Tool has no such flag, and
            # Mistral documents neither what it changes nor a schema subset it needs.
            payload["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        **({"description": tool.description} if tool.description else {}),
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
        if request.tool_choice is not None:
            payload["tool_choice"] = (
                request.tool_choice
                if request.tool_choice in _TOOL_CHOICES
                else {"type": "function", "function": {"name": request.tool_choice}}
            )
        if request.response_schema is not None:
            # Sent as given: Mistral documents no subset of JSON Schema to compile to.
            schema = request.response_schema
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.name,
                    "schema": schema.schema,
                    "strict": schema.strict,
                },
            }
        if stream:
            # No stream_options: Mistral always sends usage in the last chunk.
            payload["stream"] = True
        payload.update(request.provider_kwargs)
        return payload

    def _messages(
        self, message: Message, request: Request, names: dict[str, str]
    ) -> list[dict[str, Any]]:
        # Tool results travel as one "tool" message each, wherever Relay carries them.
        results: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, ToolResultPart):
                result: dict[str, Any] = {
                    "role": "tool",
                    "tool_call_id": wire_tool_call_id(part.tool_call_id),
                    "content": part.content,
                }
                name = part.name or names.get(part.tool_call_id)
                if name:
                    result["name"] = name
                results.append(result)
        rest = [p for p in message.content if not isinstance(p, ToolResultPart)]
        if message.role == "assistant":
            return [*results, *self._assistant(rest, request)]
        if not rest:
            return results
        chunks: list[dict[str, Any]] = []
        for part in rest:
            if isinstance(part, TextPart):
                chunks.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                chunks.append({"type": "image_url", "image_url": self._image(part)})
            elif isinstance(part, DocumentPart):
                chunks.append(self._document(part, request))
            elif isinstance(part, ThinkingPart):
                continue  # only assistants think; nothing to send
            else:
                raise self._invalid(request, f"a user message cannot carry a {part.TAG} part")
        if len(chunks) == 1 and chunks[0]["type"] == "text":
            return [*results, {"role": "user", "content": chunks[0]["text"]}]
        return [*results, {"role": "user", "content": chunks}]

    @staticmethod
    def _image(part: ImagePart) -> str | dict[str, str]:
        url = part.url or f"data:{part.media_type or 'image/png'};base64,{part.base64()}"
        # The documented form is a bare string; the object form exists to carry detail.
        return {"url": url, "detail": part.detail} if part.detail else url

    def _document(self, part: DocumentPart, request: Request) -> dict[str, Any]:
        if part.url is not None:
            url = part.url
        elif part.media_type == "application/pdf":
            url = f"data:application/pdf;base64,{part.base64()}"
        else:
            raise self._invalid(
                request,
                f"Mistral reads documents from a URL or as PDF bytes, not {part.media_type} "
                "bytes; send the text as a TextPart instead",
            )
        chunk: dict[str, Any] = {"type": "document_url", "document_url": url}
        if part.name:
            chunk["document_name"] = part.name
        return chunk

    def _assistant(self, parts: Sequence[Part], request: Request) -> list[dict[str, Any]]:
        if any(isinstance(p, (ImagePart, DocumentPart)) for p in parts):
            raise self._invalid(
                request, "an assistant message can carry only text, thinking and tool calls"
            )
        calls = [p for p in parts if isinstance(p, ToolCallPart)]
        # Reasoning models answer better when their thinking is sent back (Mistral asks
        # for it); redacted thinking is another provider's ciphertext and is left out.
        thinking = [p for p in parts if isinstance(p, ThinkingPart) and not p.redacted]
        message: dict[str, Any] = {"role": "assistant"}
        if thinking:
            chunks: list[dict[str, Any]] = []
            for part in parts:
                if isinstance(part, ThinkingPart) and not part.redacted:
                    chunk: dict[str, Any] = {
                        "type": "thinking",
                        "thinking": [{"type": "text", "text": part.text}],
                    }
                    if part.signature:
                        chunk["signature"] = part.signature
                    chunks.append(chunk)
                elif isinstance(part, TextPart) and part.text:
                    chunks.append({"type": "text", "text": part.text})
            message["content"] = chunks
        else:
            text = "".join(p.text for p in parts if isinstance(p, TextPart))
            if text:
                message["content"] = text
        if calls:
            message["tool_calls"] = [
                {
                    "id": wire_tool_call_id(call.id),
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in calls
            ]
        return [message] if len(message) > 1 else []

    # -- response -----------------------------------------------------------------------

    def _content(self, content: Any) -> Iterable[TextPart | ThinkingPart]:
        if isinstance(content, str):
            if content:
                yield TextPart(content)
            return
        for chunk in content or ():
            if not isinstance(chunk, dict):
                continue
            if chunk.get("type") == "text" and chunk.get("text"):
                yield TextPart(chunk["text"])
            elif chunk.get("type") == "thinking":
                yield ThinkingPart(_thinking_text(chunk), signature=chunk.get("signature"))
            # Other chunks (references, images) are not Relay content; they stay in raw.

    def _tool_call(self, call: Any) -> ToolCallPart:
        function = call.get("function") or {}
        name = function.get("name", "")
        text = _arguments_text(function.get("arguments")).strip() or "{}"
        try:
            arguments = json.loads(text)
        except json.JSONDecodeError as error:
            raise MalformedResponse(
                f"tool call {name!r} has arguments that are not JSON: {error}",
                provider=self.settings.name,
            ) from error
        if not isinstance(arguments, dict):
            raise MalformedResponse(
                f"tool call {name!r} arguments are not a JSON object",
                provider=self.settings.name,
            )
        return ToolCallPart(call.get("id") or "", name, arguments)

    def parse(self, body: dict[str, Any], request: Request) -> Response:
        """A non-streamed answer body as a :class:`Response`."""
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise MalformedResponse(
                "answer has no choices", provider=self.settings.name, model=request.model
            )
        choice = choices[0]
        message = choice.get("message") or {}
        content: list[Part] = []
        for part in self._content(message.get("content")):
            # Adjacent text chunks are one part, as a stream's assembler joins them.
            if content and isinstance(part, TextPart) and isinstance(content[-1], TextPart):
                content[-1] = TextPart(content[-1].text + part.text)
            else:
                content.append(part)
        content.extend(self._tool_call(call) for call in message.get("tool_calls") or ())
        return Response(
            content=tuple(content),
            model=body.get("model") or request.model,
            id=body.get("id"),
            finish_reason=_finish(choice.get("finish_reason")),
            usage=_usage(body.get("usage")),
            raw=body,
        )

    def _stream_error(self, chunk: dict[str, Any], request: Request) -> ProviderError:
        """An error Mistral reported inside a 200 stream, classified as the HTTP answer
        its type stands for; an error with no known type but an HTTP status as its
        ``code`` as that status, and any other as a 500 (Mistral failed on its side)."""
        error = chunk.get("error", chunk)
        error = error if isinstance(error, dict) else {}
        status = _ERROR_STATUS.get(str(error.get("type")))
        code = error.get("code")
        if status is None and str(code).isdecimal() and 400 <= int(str(code)) < 600:
            status = int(str(code))
        return classify_stream_error(
            status or 500,
            chunk,
            rules=self.error_rules,
            provider=self.settings.name,
            model=request.model,
        )

    async def _stream(
        self, events: AsyncIterator[SSEEvent], request: Request
    ) -> AsyncIterator[StreamEvent]:
        assembler = StreamAssembler(provider=self.settings.name)
        chunks: list[Any] = []
        finish: FinishReason | None = None
        response_id: str | None = None
        model = request.model
        # Mistral sends each tool call whole, and parallel calls have been seen sharing
        # index 0: a new id always opens a new call, so calls are never merged.
        slots: dict[str, int] = {}
        last_slot: dict[int, int] = {}
        async for event in events:
            if event.data.strip() == "[DONE]":
                break
            chunk = event.json()
            if not isinstance(chunk, dict):
                continue
            if chunk.get("object") == "error" or "error" in chunk:
                raise self._stream_error(chunk, request)
            chunks.append(chunk)
            response_id = chunk.get("id") or response_id
            model = chunk.get("model") or model
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                for part in self._content(delta.get("content")):
                    if isinstance(part, TextPart):
                        yield assembler.feed(TextDelta(part.text))
                    elif part.text or part.signature:
                        yield assembler.feed(ThinkingDelta(part.text, signature=part.signature))
                for call in delta.get("tool_calls") or ():
                    wire_index = call.get("index") or 0
                    call_id = call.get("id")
                    if call_id and call_id not in slots:
                        slots[call_id] = len(slots)
                    slot = slots[call_id] if call_id else last_slot.get(wire_index, wire_index)
                    last_slot[wire_index] = slot
                    function = call.get("function") or {}
                    yield assembler.feed(
                        ToolCallDelta(
                            slot,
                            id=call_id,
                            name=function.get("name"),
                            arguments=_arguments_text(function.get("arguments")),
                        )
                    )
                if choice.get("finish_reason"):
                    finish = _finish(choice["finish_reason"])
            if chunk.get("usage"):
                yield assembler.feed(UsageEvent(_usage(chunk["usage"])))
        if finish is None:
            raise MalformedResponse(
                "stream ended before a finish_reason",
                provider=self.settings.name,
                model=request.model,
            )
        yield EndEvent(
            assembler.response(model=model, finish_reason=finish, id=response_id, raw=chunks)
        )
