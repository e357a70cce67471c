"""The Anthropic adapter: Relay's types to the Messages API (``POST /messages``) and back,
and the Message Batches API (``/messages/batches``) over the same mapping.

Credentials, pooling, retries, SSE parsing and the translation of failed answers are the
core's; this module maps requests to payloads and answers to responses. The plugin's
README lists the options and every mapping, with the choices made where Relay and
Anthropic differ (seed, reasoning, structured output, redacted thinking).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
from attrs import frozen

from relay_core.plugin import (
    REASONING_BUDGETS,
    AuthenticationError,
    BatchCounts,
    BatchItem,
    BatchLimits,
    BatchState,
    Capability,
    Citation,
    CitationDelta,
    ConfigError,
    ContentPolicyError,
    ContextWindowExceeded,
    DocumentPart,
    EndEvent,
    ErrorInfo,
    ErrorRule,
    FinishReason,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
    Part,
    Provider,
    ProviderBatch,
    ProviderError,
    ProviderSettings,
    ProviderUnavailable,
    QuotaExceeded,
    Request,
    Response,
    ResponseSchema,
    SamplingLimits,
    ServerToolCallDelta,
    ServerToolCallPart,
    ServerToolResultDelta,
    ServerToolResultPart,
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
    parse_lines,
    schema_errors,
    within_limits,
)

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient, SSEEvent

__all__ = [
    "BATCH_LIMITS",
    "DEFAULT_MAX_TOKENS",
    "FREE_CHOICES",
    "REASONING_BUDGETS",
    "THINKING_LIMITS",
    "AnthropicProvider",
    "StructuredOutput",
    "alternating_turns",
    "thinks_by_kwargs",
    "timestamp_seconds",
]

API_VERSION = "2023-06-01"
# The Messages API requires max_tokens; this is sent when neither the call nor the
# catalog sets one (option ``default_max_tokens``).
DEFAULT_MAX_TOKENS = 4096
# What Claude takes of the sampling settings with extended thinking on (Anthropic's
# extended-thinking guide): temperature 1 only, top_p from 0.95 to 1, no top_k. Anything
# else is a 400, so it is dropped with a warning (relay_core.sampling). Bedrock's Claude
# routes share it.
THINKING_LIMITS = SamplingLimits(
    reason="extended thinking is on",
    ranges={"temperature": (1.0, 1.0), "top_p": (0.95, 1.0)},
    kwargs=frozenset({"top_k"}),
)
# The tool_choice values that leave the model free, the only ones thinking allows.
FREE_CHOICES = (None, "auto", "none")

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # The server paused a long turn (server tools); send the answer back to continue.
    "pause_turn": "unknown",
}
# The HTTP status each documented error type comes with, so that an ``error`` event in
# a stream (which arrives after a 200) is classified like the same error as an answer.
_ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# The batch body is the JSONL lines joined by commas inside this wrapper, so it is at most
# the wrapper's length longer than the JSONL the core measures against ``max_bytes``.
_BATCH_WRAPPER = (b'{"requests":[', b"]}")
# Anthropic's documented limits: 100,000 requests or 256 MB (read as 10**6 bytes, the
# smaller reading) per batch.
BATCH_LIMITS = BatchLimits(
    max_requests=100_000, max_bytes=256_000_000 - sum(map(len, _BATCH_WRAPPER))
)
# What the API accepts as a custom_id; anything else fails the whole batch.
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LIST_LIMIT = 100  # per page, of the API's 1 to 1000
_LIST_PAGES = 2
_UNRUN: dict[str, BatchState] = {"canceled": "cancelled", "expired": "expired"}


@frozen
class _Options:
    """The catalog's ``options`` for an Anthropic provider, checked once."""

    default_max_tokens: int = DEFAULT_MAX_TOKENS
    version: str = API_VERSION
    beta: tuple[str, ...] = ()

    @classmethod
    def parse(cls, settings: ProviderSettings) -> _Options:
        options = dict(settings.options)
        where = f"providers.{settings.name}.options"
        unknown = sorted(set(options) - {"default_max_tokens", "anthropic_version", "beta"})
        if unknown:
            raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}")
        max_tokens = options.get("default_max_tokens", DEFAULT_MAX_TOKENS)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigError(f"{where}.default_max_tokens must be a positive integer")
        version = options.get("anthropic_version", API_VERSION)
        if not isinstance(version, str) or not version:
            raise ConfigError(f"{where}.anthropic_version must be a date string")
        beta = options.get("beta", ())
        beta = (beta,) if isinstance(beta, str) else beta
        if not isinstance(beta, (list, tuple)) or not all(isinstance(b, str) for b in beta):
            raise ConfigError(f"{where}.beta must be a string or a list of strings")
        return cls(max_tokens, version, tuple(beta))


@frozen
class StructuredOutput:
    """Structured output as a forced tool: Anthropic's documented way to get JSON that
    follows a schema. A schema whose values are not objects is wrapped in one, because
    a tool's input is always an object."""

    name: str
    schema: dict[str, Any]
    wrapped: bool

    @classmethod
    def of(cls, response_schema: ResponseSchema) -> StructuredOutput:
        schema = response_schema.schema
        is_object = schema.get("type") == "object" or (
            "type" not in schema and "properties" in schema
        )
        return cls(response_schema.name, schema, wrapped=not is_object)

    def tool(self) -> dict[str, Any]:
        input_schema = self.schema
        if self.wrapped:
            inner = {k: v for k, v in self.schema.items() if k not in ("$defs", "definitions")}
            input_schema = {"type": "object", "properties": {"value": inner}, "required": ["value"]}
            # Local references point at the root: keep their targets there.
            for key in ("$defs", "definitions"):
                if key in self.schema:
                    input_schema[key] = self.schema[key]
        return {
            "name": self.name,
            "description": f"Answer with a value for {self.name}, following its schema.",
            "input_schema": input_schema,
        }

    def text(self, arguments: Any, *, check: bool) -> str:
        """The tool's input as the answer's JSON text, checked against the schema."""
        value = (
            arguments.get("value") if self.wrapped and isinstance(arguments, dict) else arguments
        )
        if check:
            errors = schema_errors(value, self.schema)
            if errors:
                raise MalformedResponse(
                    f"structured output does not follow the schema {self.name!r}: "
                    + "; ".join(errors[:5])
                )
        return json.dumps(value, ensure_ascii=False)

    def settle(
        self, content: list[Part], answer: str | None, finish: FinishReason, stop: str
    ) -> tuple[list[Part], FinishReason]:
        """The answer's parts and finish reason once the forced call has carried the
        JSON (``answer``, ``None`` when the model made no such call; ``stop`` names the
        provider's stop reason for the error). The call is how the answer travels, not a
        call for the caller to run: the JSON becomes the text, any prose beside it is
        dropped, and ``tool_calls`` becomes ``stop``. An answer cut by the token limit
        may have no call; any other must."""
        if answer is None and finish != "length":
            raise MalformedResponse(
                f"the answer has no call of the structured-output tool {self.name!r} ({stop})"
            )
        content = [part for part in content if not isinstance(part, TextPart)]
        if answer is not None:
            content.append(TextPart(answer))
            finish = "stop" if finish == "tool_calls" else finish
        return content, finish


class AnthropicProvider(Provider):
    """Anthropic's Messages API. See the plugin's README for options and mappings."""

    name = "anthropic"
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
            Capability.SERVER_TOOLS,
        }
    )
    api_key_env = "ANTHROPIC_API_KEY"
    default_base_url = "https://api.anthropic.com/v1"
    # Only where Anthropic differs from the core's defaults (see the README's table).
    error_rules = (
        ErrorRule(ProviderUnavailable, status=529),
        ErrorRule(ProviderUnavailable, contains="overloaded_error"),
        ErrorRule(ContextWindowExceeded, contains="request_too_large"),
        ErrorRule(ContextWindowExceeded, status=400, contains="exceed context limit"),
        ErrorRule(ContentPolicyError, status=400, contains="content filtering policy"),
        # Out of credit or over a spend limit the account set: documented as 402
        # billing_error (the core's status table), but also answered as a 400.
        ErrorRule(QuotaExceeded, status=400, contains="credit balance is too low"),
        ErrorRule(QuotaExceeded, status=400, contains="reached your specified"),
    )
    batch_limits = BATCH_LIMITS
    # Anthropic keeps no caller data with a batch: the core matches by time and count.
    batch_metadata = False

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        super().__init__(settings, http)
        self.options = _Options.parse(settings)

    # -- calls ----------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        payload, structured = self.payload(request)
        body = await self.http.json(
            "POST", "/messages", json=payload, headers=self._headers(), model=request.model
        )
        return self._parse(body, structured)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        payload, structured = self.payload(request, stream=True)
        events = self.http.stream_sse(
            "POST", "/messages", json=payload, headers=self._headers(), model=request.model
        )
        parsed = self._stream_events(events, structured, request)
        # Closed however the stream ends: the parser stops at message_stop, and the
        # caller may stop sooner.
        async with closing_stream(events), closing_stream(parsed):
            async for event in parsed:
                yield event

    async def _stream_events(
        self, events: AsyncIterator[SSEEvent], structured: StructuredOutput | None, request: Request
    ) -> AsyncIterator[StreamEvent]:
        # The answer is rebuilt as the Message JSON the non-streaming call returns and read
        # by the same parser, so the end event equals chat's answer, raw included, by
        # construction (StreamAssembler could not give raw, and would join consecutive
        # text blocks that chat keeps apart; see the README).
        message: dict[str, Any] = {}
        blocks: dict[int, dict[str, Any]] = {}
        arguments: dict[int, list[str]] = {}
        async for sse in events:
            data = sse.json()
            kind = data.get("type", sse.event) if isinstance(data, dict) else sse.event
            if kind == "message_start":
                message = dict(data["message"])
                message["usage"] = dict(message.get("usage") or {})
                yield UsageEvent(_usage(message["usage"]))
            elif kind == "content_block_start":
                index, block = data["index"], dict(data["content_block"])
                blocks[index] = block
                for event in _block_started(index, block, arguments, structured):
                    yield event
            elif kind == "content_block_delta":
                piece = _delta(data["index"], data["delta"], blocks, arguments, structured)
                if piece is not None:
                    yield piece
            elif kind == "content_block_stop":
                index = data["index"]
                if index in arguments:
                    blocks[index]["input"] = _arguments(arguments.pop(index), blocks[index])
            elif kind == "message_delta":
                message.update(data.get("delta") or {})
                message.setdefault("usage", {}).update(data.get("usage") or {})
                yield UsageEvent(_usage(message["usage"]))
            elif kind == "message_stop":
                message["content"] = [blocks[i] for i in sorted(blocks)]
                response = self._parse(message, structured)
                if structured is not None and response.text:
                    # Held back until complete: only checked JSON leaves the adapter.
                    yield TextDelta(response.text)
                yield EndEvent(response)
                return
            elif kind == "error":
                raise self._stream_error(data, request)
            # ping, and event types added later, carry nothing to map.

    # -- batches --------------------------------------------------------------------------

    def batch_line(self, request: Request) -> Mapping[str, Any]:
        custom_id = request.custom_id or ""
        if not _CUSTOM_ID.fullmatch(custom_id):
            raise InvalidRequestError(
                f"custom_id {custom_id!r} cannot go into an Anthropic batch, which takes 1 "
                "to 64 letters, digits, '_' or '-'",
                provider=self.settings.name,
                custom_id=request.custom_id,
            )
        return {"custom_id": custom_id, "params": self.payload(request)[0]}

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        # ``metadata`` is not sent: a Message Batch has no field for caller data.
        # JSON escapes newlines inside strings, so the only ones in JSONL end lines.
        lines = jsonl(self.batch_line(r) for r in requests).rstrip(b"\n").replace(b"\n", b",")
        body = await self.http.json(
            "POST",
            "/messages/batches",
            content=lines.join(_BATCH_WRAPPER),
            headers={**self._headers(), "content-type": "application/json"},
        )
        return self._batch(body)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        return self._batch(await self._get_batch(batch_id))

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        batch = await self._get_batch(batch_id)
        url = batch.get("results_url")
        if not url:
            raise InvalidRequestError(
                f"batch {batch_id!r} has no results yet (processing_status "
                f"{batch.get('processing_status')!r}); they come once it has ended",
                provider=self.settings.name,
            )
        # results_url is absolute and on Anthropic's API, which wants the same key and
        # version headers as every other call.
        lines = self.http.stream_lines("GET", url, headers=self._headers())
        async for item in parse_lines(lines, self._batch_item, source=f"results of {batch_id}"):
            yield item

    def finish_batch_response(self, request: Request, response: Response) -> Response:
        # A result line does not say that its request asked for structured output: with
        # the request in hand, the forced tool call is read back into JSON text (and
        # checked against the schema) exactly as chat reads it.
        if request.response_schema is None:
            return response
        structured = StructuredOutput.of(request.response_schema)
        return attrs.evolve(self._parse(response.raw, structured), custom_id=response.custom_id)

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        try:
            body = await self.http.json(
                "POST", f"{_batch_path(batch_id)}/cancel", headers=self._headers()
            )
        except ProviderError as error:
            # Anthropic does not document its answer to cancelling a batch that has
            # ended; whatever refusal it is, an ended batch is returned unchanged.
            if error.status_code not in (400, 409):
                raise
            batch = await self.batch_status(batch_id)
            if not batch.done:
                raise
            return batch
        return self._batch(body)

    async def list_batches(self) -> Sequence[ProviderBatch]:
        batches: list[ProviderBatch] = []
        params: dict[str, Any] = {"limit": _LIST_LIMIT}
        for _ in range(_LIST_PAGES):
            page = await self.http.json(
                "GET", "/messages/batches", params=params, headers=self._headers()
            )
            batches += [self._batch(batch) for batch in page.get("data") or ()]
            if not page.get("has_more") or not page.get("last_id"):
                break
            params = {"limit": _LIST_LIMIT, "after_id": page["last_id"]}
        return batches

    async def _get_batch(self, batch_id: str) -> Any:
        return await self.http.json("GET", _batch_path(batch_id), headers=self._headers())

    def _batch(self, body: Any) -> ProviderBatch:
        try:
            counts = {k: int(body["request_counts"].get(k) or 0) for k in _BATCH_COUNTS}
            total = sum(counts.values())
            return ProviderBatch(
                id=body["id"],
                provider=self.settings.name,
                state=_batch_state(body["processing_status"], counts, total),
                counts=BatchCounts(
                    total,
                    counts["succeeded"],
                    counts["errored"] + counts["canceled"] + counts["expired"],
                ),
                created_at=timestamp_seconds(body.get("created_at")),
                ended_at=timestamp_seconds(body.get("ended_at")),
                raw=body,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise MalformedResponse(
                f"message batch has an unexpected shape: {type(error).__name__}: {error}",
                provider=self.settings.name,
                status_code=200,
            ) from error

    def _batch_item(self, line: Any) -> BatchItem:
        custom_id, result = line["custom_id"], line["result"]
        kind = result["type"]
        if kind == "succeeded":
            response = self._parse(result["message"], None)
            return BatchItem(custom_id, attrs.evolve(response, custom_id=custom_id), raw=line)
        if kind == "errored":
            return BatchItem(custom_id, error=self._result_error(result, custom_id), raw=line)
        if kind in _UNRUN:
            state = _UNRUN[kind]
            message = f"the batch was {state} before this request ran"
            return BatchItem(custom_id, error=ErrorInfo(state, message, retryable=True), raw=line)
        raise ValueError(f"unknown result type {kind!r}")

    def _result_error(self, result: Mapping[str, Any], custom_id: str) -> ErrorInfo:
        """An errored result, classified as the same error would be as an HTTP answer:
        its type stands for the status that answer would have had."""
        body = result["error"]  # an error response: {"type": "error", "error": {...}}
        details = body.get("error") if isinstance(body.get("error"), dict) else body
        status = _ERROR_STATUS.get(str(details.get("type")), 500)
        return error_info(
            status, body, provider=self.settings.name, rules=self.error_rules, custom_id=custom_id
        )

    # -- requests -------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self.settings.api_key is None:
            raise AuthenticationError(
                f"no API key for provider {self.settings.name!r}: set ANTHROPIC_API_KEY",
                provider=self.settings.name,
            )
        headers = {
            "x-api-key": self.settings.api_key.reveal(),
            "anthropic-version": self.options.version,
        }
        if self.options.beta:
            headers["anthropic-beta"] = ",".join(self.options.beta)
        return headers

    def payload(
        self, request: Request, *, stream: bool = False
    ) -> tuple[dict[str, Any], StructuredOutput | None]:
        """The Messages API body for ``request``, and the structured-output plan if any."""
        config = request.config
        # A budget in tokens; an effort is looked up in the core's table (1024, the API's
        # smallest budget, for "minimal"). A budget of 0 means thinking off.
        budget = config.reasoning_budget(REASONING_BUDGETS) or None
        if budget is not None or thinks_by_kwargs(request.provider_kwargs):
            request = within_limits(request, THINKING_LIMITS, provider=self.settings.name)
            config = request.config
            # (A response schema replaces tool_choice, and is refused with thinking below.)
            if request.response_schema is None and request.tool_choice not in FREE_CHOICES:
                raise InvalidRequestError(
                    f"tool_choice {request.tool_choice!r} forces a tool call, which "
                    "Anthropic does not allow with extended thinking; use 'auto' or drop "
                    "the thinking budget",
                    provider=self.settings.name,
                    model=request.model,
                )
        max_tokens = config.max_tokens
        if max_tokens is None:
            max_tokens = self.options.default_max_tokens + (budget or 0)
        elif budget is not None and max_tokens <= budget:
            raise InvalidRequestError(
                f"max_tokens ({max_tokens}) must be larger than the thinking budget "
                f"({budget}): Anthropic counts thinking inside max_tokens",
                provider=self.settings.name,
            )
        payload: dict[str, Any] = {
            "model": request.model,
            "max_tokens": max_tokens,
            "messages": _messages(request.messages),
        }
        if request.system:
            payload["system"] = request.system
        if config.temperature is not None:
            payload["temperature"] = config.temperature
        if config.top_p is not None:
            payload["top_p"] = config.top_p
        if config.stop:
            payload["stop_sequences"] = list(config.stop)
        # config.seed is not sent: the Messages API has no seed (see the README).
        if budget is not None:
            payload["thinking"] = {"type": "enabled", "budget_tokens": budget}
        tools = [_tool(tool) for tool in request.tools]
        structured = None
        if request.response_schema is not None:
            structured = StructuredOutput.of(request.response_schema)
            if budget is not None:
                raise InvalidRequestError(
                    "structured output forces a tool call, which Anthropic does not allow "
                    "with extended thinking; drop the thinking budget or the schema",
                    provider=self.settings.name,
                )
            if any(tool.name == structured.name for tool in request.tools):
                raise InvalidRequestError(
                    f"the response schema's name {structured.name!r} is also a tool's name",
                    provider=self.settings.name,
                )
            tools.append(structured.tool())
            payload["tool_choice"] = {"type": "tool", "name": structured.name}
        elif request.tool_choice is not None:
            payload["tool_choice"] = _tool_choice(request.tool_choice)
        if tools:
            payload["tools"] = tools
        if stream:
            payload["stream"] = True
        payload.update(request.provider_kwargs)
        return payload, structured

    # -- answers --------------------------------------------------------------------------

    def _parse(self, body: Any, structured: StructuredOutput | None) -> Response:
        try:
            return _response(body, structured)
        except MalformedResponse as error:
            error.provider = error.provider or self.settings.name
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            raise MalformedResponse(
                f"answer has an unexpected shape: {type(error).__name__}: {error}",
                provider=self.settings.name,
                status_code=200,
            ) from error

    def _stream_error(self, data: Any, request: Request) -> ProviderError:
        """An ``error`` event mid-stream, classified by the core as the same error would
        be as an HTTP answer."""
        error = data.get("error") if isinstance(data, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        return classify_stream_error(
            _ERROR_STATUS.get(str(kind), 500),
            data,
            rules=self.error_rules,
            provider=self.settings.name,
            model=request.model,
        )


# ---------------------------------------------------------------------------- batches

_BATCH_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


def _batch_path(batch_id: str) -> str:
    return f"/messages/batches/{quote(batch_id, safe='')}"


def _batch_state(status: str, counts: Mapping[str, int], total: int) -> BatchState:
    """Anthropic's three processing states, with an ended batch told apart by its counts:
    a batch that ran none of its requests ended as it was cancelled or expired."""
    if status == "in_progress":
        return "in_progress"
    if status == "canceling":
        return "cancelling"
    if status == "ended":
        for kind, state in _UNRUN.items():
            if total and counts[kind] == total:
                return state
        return "completed"
    raise ValueError(f"unknown processing_status {status!r}")


def timestamp_seconds(value: Any) -> float | None:
    """RFC 3339 (``2024-09-24T18:37:24.100435Z``) as Unix seconds. Python 3.10's
    ``fromisoformat`` takes neither ``Z`` nor fractions other than 3 or 6 digits."""
    if not value:
        return None
    text = re.sub(r"\.(\d+)", lambda m: "." + m[1][:6].ljust(6, "0"), str(value))
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


# ---------------------------------------------------------------------------- to the wire


def _tool(tool: Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["input_schema"] = tool.parameters
    return spec


def thinks_by_kwargs(kwargs: Mapping[str, Any]) -> bool:
    """Whether ``provider_kwargs`` turn thinking on themselves (``{"thinking": {"type":
    "adaptive"}}``, a mode Relay's ``reasoning`` does not express)."""
    thinking = kwargs.get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")


def _tool_choice(choice: str) -> dict[str, Any]:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Relay's turns as Anthropic's."""
    return alternating_turns(messages, _block)


def alternating_turns(
    messages: tuple[Message, ...], block: Callable[[Part], dict[str, Any] | None]
) -> list[dict[str, Any]]:
    """Relay's turns with each part mapped by ``block`` (``None`` drops it), for APIs
    that want roles to alternate (Anthropic's Messages, Bedrock's Converse): tool
    results travel in user turns, consecutive turns of one role are merged, and a turn
    left empty is dropped."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [mapped for part in message.content if (mapped := block(part)) is not None]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _block(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        # The API rejects empty text blocks; an empty part says nothing anyway.
        if not part.text:
            return None
        text: dict[str, Any] = {"type": "text", "text": part.text}
        # Anthropic's own citations go back as received; another provider's are in a
        # form the API does not take, and the text stands without them.
        citations = [c.data for c in part.citations if c.data.get("type") in _CITATIONS]
        if citations:
            text["citations"] = citations
        return text
    if isinstance(part, ServerToolCallPart):
        if part.server is not None:
            return {
                "type": "mcp_tool_use",
                "id": part.id,
                "name": part.name,
                "server_name": part.server,
                "input": part.arguments,
            }
        return {
            "type": "server_tool_use",
            "id": part.id,
            "name": part.name,
            "input": part.arguments,
        }
    if isinstance(part, ServerToolResultPart):
        block = {"type": part.kind, "tool_use_id": part.tool_call_id, "content": part.content}
        if part.kind == _MCP_RESULT:
            # The MCP result says whether it failed; the built-in tools' results say it
            # inside their content (a ``..._error`` type).
            block["is_error"] = part.is_error
        return block
    if isinstance(part, ImagePart):
        return {"type": "image", "source": _image_source(part)}
    if isinstance(part, DocumentPart):
        document: dict[str, Any] = {"type": "document", "source": _document_source(part)}
        if part.name:
            document["title"] = part.name
        return document
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.arguments}
    if isinstance(part, ToolResultPart):
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": part.tool_call_id,
            "content": part.content,
        }
        if part.is_error:
            result["is_error"] = True
        return result
    if isinstance(part, ThinkingPart):
        if part.redacted:
            return {"type": "redacted_thinking", "data": part.signature or ""}
        if part.signature:
            return {"type": "thinking", "thinking": part.text, "signature": part.signature}
        # Unsigned thinking (from another provider) cannot be verified by Anthropic,
        # which would reject the request: it is left out.
        return None
    raise InvalidRequestError(f"content of type {type(part).__name__} has no Anthropic form")


def _image_source(part: ImagePart) -> dict[str, Any]:
    if part.url is not None:
        return {"type": "url", "url": part.url}
    if not part.media_type:
        raise InvalidRequestError("an image given as bytes needs a media_type (image/png...)")
    return {"type": "base64", "media_type": part.media_type, "data": part.base64()}


def _document_source(part: DocumentPart) -> dict[str, Any]:
    if part.url is not None:
        return {"type": "url", "url": part.url}
    if part.media_type == "application/pdf":
        return {"type": "base64", "media_type": "application/pdf", "data": part.base64()}
    if part.media_type.startswith("text/"):
        text = (part.data or b"").decode("utf-8", errors="replace")
        return {"type": "text", "media_type": "text/plain", "data": text}
    raise InvalidRequestError(
        f"Anthropic reads PDF and plain-text documents, not {part.media_type!r}"
    )


# ---------------------------------------------------------------------------- from the wire

# The citation types the Messages API returns on text blocks and takes back.
_CITATIONS = frozenset(
    {
        "char_location",
        "page_location",
        "content_block_location",
        "web_search_result_location",
        "search_result_location",
    }
)
_MCP_RESULT = "mcp_tool_result"
# Blocks of a tool the server runs: their input streams like a tool call's, but the
# caller never runs them.
_SERVER_CALLS = frozenset({"server_tool_use", "mcp_tool_use"})


def _citation(data: Mapping[str, Any]) -> Citation:
    title = data.get("title", data.get("document_title"))
    return Citation(
        url=data.get("url"),
        title=title if isinstance(title, str) else None,
        cited_text=data.get("cited_text"),
        data=dict(data),
    )


def _is_server_result(block: Mapping[str, Any]) -> bool:
    """A server tool's result: ``web_search_tool_result``, ``code_execution_tool_result``,
    ``bash_code_execution_tool_result``, ``web_fetch_tool_result``, ``mcp_tool_result``
    and those added later (each names the call it answers)."""
    kind = str(block.get("type"))
    return kind.endswith("_tool_result") and kind != "tool_result" and "tool_use_id" in block


def _server_result(block: Mapping[str, Any]) -> ServerToolResultPart:
    content = block.get("content")
    if block["type"] == _MCP_RESULT:
        failed = bool(block.get("is_error"))
    else:
        failed = isinstance(content, dict) and str(content.get("type", "")).endswith("_error")
    return ServerToolResultPart(block["tool_use_id"], block["type"], content, is_error=failed)


def _server_call(block: Mapping[str, Any]) -> ServerToolCallPart:
    if not isinstance(block["input"], dict):
        raise MalformedResponse(f"server tool call {block['name']!r} input is not an object")
    return ServerToolCallPart(
        block["id"], block["name"], block["input"], server=block.get("server_name")
    )


def _usage(usage: Mapping[str, Any]) -> Usage:
    # Anthropic's input_tokens leave out cache reads and writes; Relay's include them.
    read = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + read + written,
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_input_tokens=read,
        cache_write_tokens=written,
    )


def _response(body: Any, structured: StructuredOutput | None) -> Response:
    stop_reason = body.get("stop_reason")
    finish: FinishReason = _FINISH.get(stop_reason, "unknown")
    content: list[Part] = []
    answer: str | None = None
    for block in body["content"]:
        kind = block["type"]
        if kind == "text":
            citations = [_citation(c) for c in block.get("citations") or ()]
            content.append(TextPart(block["text"], citations=citations))
        elif kind == "thinking":
            content.append(ThinkingPart(block["thinking"], signature=block.get("signature")))
        elif kind == "redacted_thinking":
            # The encrypted thinking goes where Relay keeps what must be sent back as is.
            content.append(ThinkingPart("", signature=block["data"], redacted=True))
        elif kind == "tool_use":
            if structured is not None and block["name"] == structured.name:
                answer = structured.text(block["input"], check=finish != "length")
                continue
            if not isinstance(block["input"], dict):
                raise MalformedResponse(f"tool call {block['name']!r} input is not an object")
            content.append(ToolCallPart(block["id"], block["name"], block["input"]))
        elif kind in _SERVER_CALLS:
            content.append(_server_call(block))
        elif _is_server_result(block):
            content.append(_server_result(block))
        # Other new block types stay in ``raw``.
    if structured is not None:
        content, finish = structured.settle(content, answer, finish, f"stop_reason {stop_reason!r}")
    return Response(
        content=tuple(content),
        model=body["model"],
        id=body["id"],
        finish_reason=finish,
        usage=_usage(body.get("usage") or {}),
        raw=body,
    )


def _block_started(
    index: int,
    block: dict[str, Any],
    arguments: dict[int, list[str]],
    structured: StructuredOutput | None,
) -> list[StreamEvent]:
    kind = block.get("type")
    if kind == "tool_use":
        arguments[index] = []
        if structured is not None and block["name"] == structured.name:
            return []
        return [ToolCallDelta(index, id=block["id"], name=block["name"])]
    if kind in _SERVER_CALLS:
        arguments[index] = []
        return [
            ServerToolCallDelta(
                index, id=block["id"], name=block["name"], server=block.get("server_name")
            )
        ]
    if _is_server_result(block):
        result = _server_result(block)
        return [
            ServerToolResultDelta(result.tool_call_id, result.kind, result.content, result.is_error)
        ]
    if kind == "text" and block.get("text"):
        return [TextDelta(block["text"])]
    if kind == "thinking" and block.get("thinking"):
        return [ThinkingDelta(block["thinking"], signature=block.get("signature"))]
    if kind == "redacted_thinking":
        return [ThinkingDelta("", signature=block["data"], redacted=True)]
    return []


def _delta(
    index: int,
    delta: Mapping[str, Any],
    blocks: dict[int, dict[str, Any]],
    arguments: dict[int, list[str]],
    structured: StructuredOutput | None,
) -> StreamEvent | None:
    block = blocks[index]
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta["text"]
        return TextDelta(delta["text"])
    if kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta["thinking"]
        return ThinkingDelta(delta["thinking"])
    if kind == "signature_delta":
        block["signature"] = delta["signature"]
        return ThinkingDelta("", signature=delta["signature"])
    if kind == "input_json_delta":
        arguments.setdefault(index, []).append(delta["partial_json"])
        if block.get("type") in _SERVER_CALLS:
            return ServerToolCallDelta(index, arguments=delta["partial_json"])
        if structured is not None and block.get("name") == structured.name:
            return None
        return ToolCallDelta(index, arguments=delta["partial_json"])
    if kind == "citations_delta":
        # Kept on the block too, so the end response (read from the rebuilt message)
        # has the citations chat has.
        if block.get("citations") is None:
            block["citations"] = []
        block["citations"].append(delta["citation"])
        return CitationDelta(_citation(delta["citation"]))
    return None  # later delta types: kept out of the unified events


def _arguments(pieces: list[str], block: Mapping[str, Any]) -> Any:
    text = "".join(pieces).strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedResponse(
            f"tool call {block.get('name')!r} streamed input that is not JSON: {error}"
        ) from error
