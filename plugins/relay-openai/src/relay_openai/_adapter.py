"""The OpenAI adapter: Relay's types to Chat Completions or the Responses API and back.

Which wire API a call uses is the catalog option ``providers.<name>.options.api``
(``"chat"``, the default, or ``"responses"``), overridable per request with
``provider_kwargs={"openai": {"api": "responses"}}``. The ``"openai"`` key of
``provider_kwargs`` is Relay's, for the adapter, and never reaches the wire; every other
key is merged into the payload untouched, last, so it can override anything mapped here.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args
from urllib.parse import quote

import attrs

from relay_core.plugin import (
    BatchItem,
    BatchLimits,
    BatchState,
    Capability,
    ConfigError,
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
    SamplingLimits,
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
    closing_stream,
    jsonl,
    parse_lines,
    within_limits,
)
from relay_openai._batch import BATCH_DONE, batch_state, batch_view, json_object, output_item
from relay_openai._models import (
    MODEL_FAMILIES,
    ModelFamily,
    is_reasoning_model,
    model_family,
    sampling_limits,
)
from relay_openai._schema import schema_for_openai, without_strict_nulls
from relay_openai._wire import (
    arguments,
    data_url,
    image_url,
    int_field,
    merge_text,
    reported_error,
)

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient, SSEEvent

__all__ = ["MODEL_FAMILIES", "ModelFamily", "OpenAIProvider", "model_family"]

Api = Literal["chat", "responses"]
_APIS: tuple[Api, ...] = ("chat", "responses")
# The key of provider_kwargs that holds settings for this adapter, not for the wire.
_OWN_KWARGS = "openai"
_OWN_KWARGS_KEYS = frozenset({"api"})


_CHAT_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
_INCOMPLETE_FINISH: dict[str, FinishReason] = {
    "max_output_tokens": "length",
    "content_filter": "content_filter",
}


def _chat_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=int_field(raw, "prompt_tokens"),
        output_tokens=int_field(raw, "completion_tokens"),
        cached_input_tokens=int_field(raw.get("prompt_tokens_details"), "cached_tokens"),
        reasoning_tokens=int_field(raw.get("completion_tokens_details"), "reasoning_tokens"),
    )


def _responses_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=int_field(raw, "input_tokens"),
        output_tokens=int_field(raw, "output_tokens"),
        cached_input_tokens=int_field(raw.get("input_tokens_details"), "cached_tokens"),
        reasoning_tokens=int_field(raw.get("output_tokens_details"), "reasoning_tokens"),
    )


class OpenAIProvider(Provider):
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
        }
    )
    # Declared as the base class does, so subclasses (relay-openai-compat) may override.
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    # The core's classification covers OpenAI's errors, insufficient_quota included,
    # but for an unknown model: Chat Completions answers 404, the Responses API 400,
    # both with code model_not_found. As NotFoundError, a fallback group moves on.
    error_rules: ClassVar[Sequence[ErrorRule]] = (ErrorRule(NotFoundError, code="model_not_found"),)
    # The Batch API's documented limits: 50,000 requests and 200 MB per input file.
    batch_limits = BatchLimits(max_requests=50_000, max_bytes=200_000_000)
    batch_metadata: ClassVar[bool] = True
    # Both APIs answer a system prompt alone (a system or developer message; instructions).
    system_only: ClassVar[bool] = True
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

    def _split_kwargs(self, request: Request) -> tuple[Api, dict[str, Any]]:
        """The wire API for this call, and the provider_kwargs meant for the payload."""
        extra = dict(request.provider_kwargs)
        own = extra.pop(_OWN_KWARGS, None) or {}
        if not isinstance(own, Mapping) or not set(own) <= _OWN_KWARGS_KEYS:
            raise InvalidRequestError(
                f"provider_kwargs[{_OWN_KWARGS!r}] takes only {sorted(_OWN_KWARGS_KEYS)}, "
                f"got {own!r}",
                provider=self.settings.name,
                model=request.model,
            )
        api = own.get("api", self.api)
        if api not in _APIS:
            raise InvalidRequestError(
                f"provider_kwargs[{_OWN_KWARGS!r}]['api'] must be 'chat' or 'responses', "
                f"not {api!r}",
                provider=self.settings.name,
                model=request.model,
            )
        return api, extra

    def _invalid(self, request: Request, message: str) -> InvalidRequestError:
        return InvalidRequestError(message, provider=self.settings.name, model=request.model)

    def _reported_error(self, error: Any, request: Request) -> ProviderError:
        """An error the provider reported with no HTTP status of its own (inside a 200
        stream, or a failed response), classified as the answer its code stands for."""
        return reported_error(
            error, provider=self.settings.name, model=request.model, rules=self.error_rules
        )

    def _tool_parameters(self, tool: Tool) -> tuple[dict[str, Any], bool]:
        """A tool's parameters as sent, and whether the tool is sent strict: compiled for
        strict mode when it can express them, else unchanged and loose."""
        return schema_for_openai(tool.parameters, strict=self.strict_tools)

    def _without_strict_nulls(self, content: Sequence[Part], request: Request) -> tuple[Part, ...]:
        """``content`` with the nulls dropped from strict tools' calls, at the arguments
        the tool leaves optional: strict mode made them required, so the model filled
        them with null where the caller's schema means "absent"."""
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
        responses = raw.get("endpoint") == "/v1/responses"
        parse = self._parse_responses if responses else self._parse_chat
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
                lambda line: output_item(
                    line, parse, provider=self.settings.name, rules=self.error_rules
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

    # -- Chat Completions: request ------------------------------------------------------

    def _chat_payload(self, request: Request) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.system:
            role = "developer" if is_reasoning_model(request.model) else "system"
            messages.append({"role": role, "content": request.system})
        for message in request.messages:
            messages.extend(self._chat_messages(message, request))
        payload: dict[str, Any] = {"model": request.model, "messages": messages}
        config = request.config
        for key, value in (
            ("temperature", config.temperature),
            ("top_p", config.top_p),
            # max_tokens is deprecated and refused by reasoning models; this works for all.
            ("max_completion_tokens", config.max_tokens),
            ("stop", list(config.stop) if config.stop else None),
            ("seed", config.seed),
            ("reasoning_effort", config.reasoning_effort()),
        ):
            if value is not None:
                payload[key] = value
        if request.tools:
            payload["tools"] = [self._chat_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            payload["tool_choice"] = (
                request.tool_choice
                if request.tool_choice in ("auto", "none", "required")
                else {"type": "function", "function": {"name": request.tool_choice}}
            )
        if request.response_schema is not None:
            schema = request.response_schema
            wire_schema, strict = schema_for_openai(schema.schema, strict=schema.strict)
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.name, "schema": wire_schema, "strict": strict},
            }
        return payload

    def _chat_tool(self, tool: Tool) -> dict[str, Any]:
        parameters, strict = self._tool_parameters(tool)
        function: dict[str, Any] = {"name": tool.name}
        if tool.description:
            function["description"] = tool.description
        function["parameters"] = parameters
        function["strict"] = strict
        return {"type": "function", "function": function}

    def _chat_messages(self, message: Message, request: Request) -> list[dict[str, Any]]:
        # Tool results travel as one "tool" message each, wherever Relay carries them.
        results = [
            {"role": "tool", "tool_call_id": p.tool_call_id, "content": p.content}
            for p in message.content
            if isinstance(p, ToolResultPart)
        ]
        rest = [p for p in message.content if not isinstance(p, ToolResultPart)]
        if message.role == "assistant":
            return [*results, *self._chat_assistant(rest, request)]
        if not rest:
            return results
        content: list[dict[str, Any]] = []
        for part in rest:
            if isinstance(part, TextPart):
                content.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                image: dict[str, Any] = {"url": image_url(part)}
                if part.detail is not None:
                    image["detail"] = part.detail
                content.append({"type": "image_url", "image_url": image})
            elif isinstance(part, DocumentPart):
                if part.data is None:
                    raise self._invalid(
                        request,
                        "Chat Completions takes documents as bytes only; send the document's "
                        "data, or use the Responses API "
                        "(provider_kwargs={'openai': {'api': 'responses'}}) for a URL",
                    )
                content.append(
                    {
                        "type": "file",
                        "file": {
                            "filename": part.name or "document.pdf",
                            "file_data": data_url(part.media_type, part.base64()),
                        },
                    }
                )
            elif isinstance(part, ThinkingPart):
                continue  # only assistants think; nothing to send
            else:
                raise self._invalid(request, f"a user message cannot carry a {part.TAG} part")
        if len(content) == 1 and content[0]["type"] == "text":
            return [*results, {"role": "user", "content": content[0]["text"]}]
        return [*results, {"role": "user", "content": content}]

    def _chat_assistant(self, parts: Sequence[Part], request: Request) -> list[dict[str, Any]]:
        text = "".join(p.text for p in parts if isinstance(p, TextPart))
        calls = [p for p in parts if isinstance(p, ToolCallPart)]
        if any(isinstance(p, (ImagePart, DocumentPart)) for p in parts):
            raise self._invalid(request, "an assistant message can carry only text and tool calls")
        # ThinkingParts are dropped: Chat Completions has no field for reasoning sent back
        # (OpenAI keeps reasoning server-side and does not return its text here).
        if not text and not calls:
            return []
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in calls
            ]
        return [message]

    # -- Chat Completions: response -----------------------------------------------------

    def _parse_chat(self, body: dict[str, Any], request: Request) -> Response:
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise MalformedResponse(
                "answer has no choices", provider=self.settings.name, model=request.model
            )
        choice = choices[0]
        message = choice.get("message") or {}
        content: list[Part] = []
        finish = _CHAT_FINISH.get(str(choice.get("finish_reason")), "unknown")
        if message.get("refusal"):
            content.append(TextPart(message["refusal"]))
            finish = "content_filter"
        elif message.get("content"):
            content.append(TextPart(message["content"]))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            name = function.get("name", "")
            content.append(
                ToolCallPart(
                    call.get("id", ""),
                    name,
                    arguments(name, function.get("arguments"), self.settings.name),
                )
            )
        return Response(
            content=self._without_strict_nulls(content, request),
            model=body.get("model") or request.model,
            id=body.get("id"),
            finish_reason=finish,
            usage=_chat_usage(body.get("usage")),
            raw=body,
        )

    async def _stream_chat(
        self, events: AsyncIterator[SSEEvent], request: Request
    ) -> AsyncIterator[StreamEvent]:
        assembler = StreamAssembler(provider=self.settings.name)
        chunks: list[Any] = []
        finish: FinishReason | None = None
        refused = False
        response_id: str | None = None
        model = request.model
        done = False
        async for event in events:
            if event.data.strip() == "[DONE]":
                done = True
                break
            chunk = event.json()
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk:
                raise self._reported_error(chunk["error"], request)
            chunks.append(chunk)
            response_id = chunk.get("id") or response_id
            model = chunk.get("model") or model
            if chunk.get("usage"):
                yield assembler.feed(UsageEvent(_chat_usage(chunk["usage"])))
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("refusal"):
                    refused = True
                    yield assembler.feed(TextDelta(delta["refusal"]))
                if delta.get("content"):
                    yield assembler.feed(TextDelta(delta["content"]))
                for call in delta.get("tool_calls") or ():
                    function = call.get("function") or {}
                    yield assembler.feed(
                        ToolCallDelta(
                            call.get("index", 0),
                            id=call.get("id"),
                            name=function.get("name"),
                            arguments=function.get("arguments") or "",
                        )
                    )
                if choice.get("finish_reason"):
                    finish = _CHAT_FINISH.get(choice["finish_reason"], "unknown")
        if finish is None and not (done and self.done_ends_stream):
            # A body that just stops is a cut connection, not a short answer.
            raise MalformedResponse(
                "stream ended before a finish_reason"
                + ("" if done else " (and before data: [DONE])"),
                provider=self.settings.name,
                model=request.model,
            )
        if refused:
            finish = "content_filter"
        # With no finish_reason (done_ends_stream), the assembler infers it from the content.
        response = assembler.response(model=model, finish_reason=finish, id=response_id, raw=chunks)
        content = self._without_strict_nulls(response.content, request)
        yield EndEvent(attrs.evolve(response, content=content))

    # -- Responses API: request ---------------------------------------------------------

    def _responses_payload(self, request: Request) -> dict[str, Any]:
        config = request.config
        for name, unsupported in (("stop", config.stop), ("seed", config.seed)):
            if unsupported is not None:
                raise self._invalid(
                    request, f"the Responses API has no {name!r}; use the Chat Completions API"
                )
        items: list[dict[str, Any]] = []
        for message in request.messages:
            items.extend(self._responses_items(message, request))
        payload: dict[str, Any] = {"model": request.model, "input": items}
        if request.system:
            payload["instructions"] = request.system
        for key, value in (
            ("temperature", config.temperature),
            ("top_p", config.top_p),
            ("max_output_tokens", config.max_tokens),
        ):
            if value is not None:
                payload[key] = value
        effort = config.reasoning_effort()
        if effort is not None:
            payload["reasoning"] = {"effort": effort}
        if request.tools:
            payload["tools"] = [self._responses_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            payload["tool_choice"] = (
                request.tool_choice
                if request.tool_choice in ("auto", "none", "required")
                else {"type": "function", "name": request.tool_choice}
            )
        if request.response_schema is not None:
            schema = request.response_schema
            wire_schema, strict = schema_for_openai(schema.schema, strict=schema.strict)
            payload["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": schema.name,
                    "schema": wire_schema,
                    "strict": strict,
                }
            }
        return payload

    def _responses_tool(self, tool: Tool) -> dict[str, Any]:
        # Always say which: the Responses API makes a function tool strict unless told
        # otherwise, and would refuse a schema strict mode cannot express.
        parameters, strict = self._tool_parameters(tool)
        sent: dict[str, Any] = {"type": "function", "name": tool.name}
        if tool.description:
            sent["description"] = tool.description
        return {**sent, "parameters": parameters, "strict": strict}

    def _responses_items(self, message: Message, request: Request) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        content: list[dict[str, Any]] = []
        assistant = message.role == "assistant"

        def flush() -> None:
            if content:
                items.append({"role": "assistant" if assistant else "user", "content": [*content]})
                content.clear()

        for part in message.content:
            if isinstance(part, TextPart):
                kind = "output_text" if assistant else "input_text"
                content.append({"type": kind, "text": part.text})
            elif isinstance(part, ImagePart) and not assistant:
                content.append(
                    {
                        "type": "input_image",
                        "image_url": image_url(part),
                        "detail": part.detail or "auto",
                    }
                )
            elif isinstance(part, DocumentPart) and not assistant:
                if part.url is not None:
                    content.append({"type": "input_file", "file_url": part.url})
                else:
                    content.append(
                        {
                            "type": "input_file",
                            "filename": part.name or "document.pdf",
                            "file_data": data_url(part.media_type, part.base64()),
                        }
                    )
            elif isinstance(part, ToolCallPart):
                flush()
                items.append(
                    {
                        "type": "function_call",
                        "call_id": part.id,
                        "name": part.name,
                        "arguments": json.dumps(part.arguments),
                    }
                )
            elif isinstance(part, ToolResultPart):
                flush()
                items.append(
                    {
                        "type": "function_call_output",
                        "call_id": part.tool_call_id,
                        "output": part.content,
                    }
                )
            elif isinstance(part, ThinkingPart):
                # A reasoning item can only be sent back whole (its id and encrypted
                # content), which a ThinkingPart does not keep; the summary text alone is
                # not accepted as input, and the model answers well without it.
                continue
            else:
                raise self._invalid(request, f"an assistant message cannot carry a {part.TAG} part")
        flush()
        return items

    # -- Responses API: response --------------------------------------------------------

    def _parse_responses(self, body: dict[str, Any], request: Request) -> Response:
        if body.get("status") == "failed":
            raise self._reported_error(body.get("error"), request)
        content: list[Part] = []
        refused = False
        for item in body.get("output") or ():
            kind = item.get("type")
            if kind == "message":
                for block in item.get("content") or ():
                    if block.get("type") == "output_text" and block.get("text"):
                        content.append(TextPart(block["text"]))
                    elif block.get("type") == "refusal":
                        refused = True
                        content.append(TextPart(block.get("refusal", "")))
            elif kind == "function_call":
                name = item.get("name", "")
                content.append(
                    ToolCallPart(
                        item.get("call_id", ""),
                        name,
                        arguments(name, item.get("arguments"), self.settings.name),
                    )
                )
            elif kind == "reasoning":
                text = "\n\n".join(s.get("text", "") for s in item.get("summary") or ())
                if text:
                    content.append(ThinkingPart(text))
        has_calls = any(isinstance(p, ToolCallPart) for p in content)
        return Response(
            content=self._without_strict_nulls(merge_text(content), request),
            model=body.get("model") or request.model,
            id=body.get("id"),
            finish_reason=self._responses_finish(body, refused=refused, has_calls=has_calls),
            usage=_responses_usage(body.get("usage")),
            raw=body,
        )

    @staticmethod
    def _responses_finish(body: dict[str, Any], *, refused: bool, has_calls: bool) -> FinishReason:
        if refused:
            return "content_filter"
        if body.get("status") == "incomplete":
            reason = (body.get("incomplete_details") or {}).get("reason")
            return _INCOMPLETE_FINISH.get(str(reason), "unknown")
        return "tool_calls" if has_calls else "stop"

    async def _stream_responses(
        self, events: AsyncIterator[SSEEvent], request: Request
    ) -> AsyncIterator[StreamEvent]:
        assembler = StreamAssembler(provider=self.settings.name)
        refused = False
        final: dict[str, Any] | None = None
        async for event in events:
            data = event.json()
            if not isinstance(data, dict):
                continue
            kind = data.get("type") or event.event
            if kind == "response.output_text.delta":
                yield assembler.feed(TextDelta(data.get("delta", "")))
            elif kind == "response.refusal.delta":
                refused = True
                yield assembler.feed(TextDelta(data.get("delta", "")))
            elif kind == "response.reasoning_summary_text.delta":
                yield assembler.feed(ThinkingDelta(data.get("delta", "")))
            elif kind == "response.reasoning_summary_part.added" and data.get("summary_index"):
                # Summary parts are joined by a blank line, as in the non-streamed answer.
                yield assembler.feed(ThinkingDelta("\n\n"))
            elif kind == "response.output_item.added":
                item = data.get("item") or {}
                if item.get("type") == "function_call":
                    yield assembler.feed(
                        ToolCallDelta(
                            data.get("output_index", 0),
                            id=item.get("call_id"),
                            name=item.get("name"),
                            arguments=item.get("arguments") or "",
                        )
                    )
            elif kind == "response.function_call_arguments.delta":
                yield assembler.feed(
                    ToolCallDelta(data.get("output_index", 0), arguments=data.get("delta", ""))
                )
            elif kind in ("response.completed", "response.incomplete"):
                final = data.get("response") or {}
                break
            elif kind == "response.failed":
                raise self._reported_error((data.get("response") or {}).get("error"), request)
            elif kind == "error":
                raise self._reported_error(data, request)
        if final is None:
            raise MalformedResponse(
                "stream ended before response.completed",
                provider=self.settings.name,
                model=request.model,
            )
        yield assembler.feed(UsageEvent(_responses_usage(final.get("usage"))))
        has_calls = any(isinstance(p, ToolCallPart) for p in assembler.content())
        response = assembler.response(
            model=final.get("model") or request.model,
            finish_reason=self._responses_finish(final, refused=refused, has_calls=has_calls),
            id=final.get("id"),
            raw=final,
        )
        content = self._without_strict_nulls(response.content, request)
        yield EndEvent(attrs.evolve(response, content=content))
