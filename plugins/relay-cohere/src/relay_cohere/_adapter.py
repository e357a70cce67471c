"""The Cohere adapter: Relay's types to Cohere's v2 chat API and back.

Cohere's v2 chat (``POST /v2/chat``) looks like OpenAI's Chat Completions in its messages
and tools, but differs everywhere else: sampling is ``p``/``k``/``stop_sequences``,
``tool_choice`` is ``REQUIRED``/``NONE``, structured output is
``{"type": "json_object", "json_schema": ...}``, reasoning is a ``thinking`` token
budget, the answer is one ``message`` with typed content blocks and a ``tool_plan``,
usage comes as billed units and tokens, and a stream is a sequence of typed events
(``message-start`` ... ``message-end``). So this is a mapping of its own.

Every key of ``provider_kwargs`` is merged into the payload untouched, last, so it can
set what Relay does not map (``k``, ``frequency_penalty``, ``presence_penalty``,
``safety_mode``, ``strict_tools``, ``citation_options``, ``documents``, ``priority``...)
or override anything mapped here.

Cohere has no batch API for chat: the core runs batch jobs on its concurrent engine.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from relay_cohere import _embeddings
from relay_core.plugin import (
    BASIC_SETTINGS,
    AuthenticationError,
    Capability,
    ConfigError,
    ContextWindowExceeded,
    DocumentPart,
    EmbeddingLimits,
    EmbeddingRequest,
    EmbeddingResponse,
    EndEvent,
    ErrorRule,
    FinishReason,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
    Part,
    Provider,
    ProviderError,
    ProviderSettings,
    ProviderUnavailable,
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
)

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient, SSEEvent

__all__ = ["CohereProvider"]

_PATH = "/v2/chat"
_FINISH: dict[str, FinishReason] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR": "error",
    # Cohere stopped the generation for taking too long: the answer is cut short.
    "TIMEOUT": "error",
}
_TOOL_CHOICES = {"none": "NONE", "required": "REQUIRED", "any": "REQUIRED"}
# Documents Cohere reads as text: everything else (PDFs, images) it cannot take.
_TEXT_MEDIA = ("text/", "application/json", "application/xml")


def _number(mapping: Any, key: str) -> int:
    # Cohere's schema types token counts as numbers; they are whole in practice.
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value)


def _object(mapping: Any, key: str) -> dict[str, Any]:
    """``mapping[key]`` when both are JSON objects, else an empty one: stream events
    leave out what they do not carry."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, dict) else {}


def _usage(raw: Any) -> Usage:
    """Billed units, what Cohere charges for (and what prices are quoted in); the raw
    ``tokens`` (the prompt template included) only when no billed units came."""
    if not isinstance(raw, dict):
        return Usage()
    counts = raw.get("billed_units")
    if not isinstance(counts, dict) or not counts:
        counts = raw.get("tokens")
    return Usage(
        input_tokens=_number(counts, "input_tokens"),
        output_tokens=_number(counts, "output_tokens"),
        cached_input_tokens=_number(raw, "cached_tokens"),
    )


def _finish(value: Any) -> FinishReason:
    return _FINISH.get(str(value), "unknown")


def _error_status(message: str) -> int:
    """The HTTP status an error reported inside a stream stands for, read from its
    wording: Cohere's 400 messages begin ``invalid request`` or ``too many tokens``;
    anything else failed on Cohere's side."""
    lowered = message.lower()
    return 400 if lowered.startswith(("invalid request", "too many tokens")) else 500


class CohereProvider(Provider):
    """Cohere over HTTP: ``POST /v2/chat``, plain or streamed."""

    name = "cohere"
    capabilities = frozenset(
        {
            Capability.CHAT,
            Capability.STREAM,
            Capability.TOOLS,
            Capability.STRUCTURED_OUTPUT,
            Capability.VISION,
            Capability.DOCUMENTS,
            Capability.THINKING,
            Capability.EMBEDDINGS,
        }
    )
    # What Cohere's SDK reads (it also falls back to COHERE_API_KEY, undocumented; the
    # core reads one variable, so write `api_key: $env.COHERE_API_KEY` for that one).
    # Cohere's logprobs come per token id without alternatives; not mapped yet.
    generation_settings = BASIC_SETTINGS | {"top_k", "frequency_penalty", "presence_penalty"}
    api_key_env = "CO_API_KEY"
    default_base_url = "https://api.cohere.com"
    # Cohere takes no cache marks; it reports usage.cached_tokens.
    prompt_caching = "automatic"
    error_rules = (
        # "too many tokens: max tokens must be less than or equal to 4096, the maximum
        # output for this model": the max_tokens setting is wrong, not the prompt.
        ErrorRule(InvalidRequestError, status=400, contains="too many tokens: max tokens"),
        # "too many tokens: total number of tokens in the prompt cannot exceed ...",
        # "too many tokens: size limit exceeded by N tokens ...".
        ErrorRule(ContextWindowExceeded, status=400, contains="too many tokens"),
        # The SDK's InvalidTokenError: the key was refused.
        ErrorRule(AuthenticationError, status=498),
        # "request cancelled", "streaming error": cancelled on Cohere's side; the error
        # reference says to try again.
        ErrorRule(ProviderUnavailable, status=499),
        # Not implemented: asking again will not change that.
        ErrorRule(InvalidRequestError, status=501),
    )
    # 96 texts a call; each text is truncated (or refused) by the model on its own.
    embedding_limits = EmbeddingLimits(max_inputs=_embeddings.MAX_INPUTS)

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        super().__init__(settings, http)
        if settings.options:
            raise ConfigError(
                f"providers.{settings.name}.options: the cohere provider takes no options, "
                f"got {sorted(settings.options)}; put request fields in params or "
                "provider_kwargs"
            )

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
            raise self._malformed(request, "answer is not a JSON object")
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

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        body = await self.http.json(
            "POST",
            _embeddings.PATH,
            json=_embeddings.payload(request),
            headers=self._headers(request.model),
            model=request.model,
        )
        return _embeddings.response(body, request, self.settings.name)

    # -- request ------------------------------------------------------------------------

    def _invalid(self, request: Request, message: str) -> InvalidRequestError:
        return InvalidRequestError(message, provider=self.settings.name, model=request.model)

    def _malformed(self, request: Request, message: str) -> MalformedResponse:
        return MalformedResponse(message, provider=self.settings.name, model=request.model)

    def build_payload(self, request: Request, *, stream: bool = False) -> dict[str, Any]:
        """The JSON body this adapter sends for ``request``."""
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        documents: list[dict[str, Any]] = []
        for message in request.messages:
            messages.extend(self._messages(message, request, documents))
        payload: dict[str, Any] = {"model": request.model, "messages": messages}
        if documents:
            payload["documents"] = documents
        config = request.config
        for key, value in (
            ("max_tokens", config.max_tokens),
            ("temperature", config.temperature),
            ("p", config.top_p),
            ("k", config.top_k),
            ("stop_sequences", list(config.stop) if config.stop else None),
            ("seed", config.seed),
            ("frequency_penalty", config.frequency_penalty),
            ("presence_penalty", config.presence_penalty),
        ):
            if value is not None:
                payload[key] = value
        if config.reasoning is not None:
            # Cohere takes a budget; an effort is looked up in the core's table. Its
            # reasoning models think by default, so 0 turns thinking off explicitly.
            budget = config.reasoning_budget()
            payload["thinking"] = (
                {"type": "enabled", "token_budget": budget} if budget else {"type": "disabled"}
            )
        tools = list(request.tools)
        choice = request.tool_choice
        if choice is not None and choice != "auto" and choice not in _TOOL_CHOICES:
            # Cohere cannot force one named tool; offering only that one, required,
            # has the same effect.
            tools = [tool for tool in tools if tool.name == choice]
            if not tools:
                raise self._invalid(request, f"tool_choice names {choice!r}, not among the tools")
            choice = "required"
        if tools:
            payload["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        **({"description": tool.description} if tool.description else {}),
                        "parameters": tool.parameters,
                    },
                }
                for tool in tools
            ]
        if choice in _TOOL_CHOICES:
            payload["tool_choice"] = _TOOL_CHOICES[choice]
        if request.response_schema is not None:
            # Cohere always holds the answer to the schema: there is no "strict" to send.
            payload["response_format"] = {
                "type": "json_object",
                "json_schema": request.response_schema.schema,
            }
        # As Cohere's SDK does: the reference lists `stream` as a field of every request.
        payload["stream"] = stream
        payload.update(request.provider_kwargs)
        return payload

    def _messages(
        self, message: Message, request: Request, documents: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        # Tool results travel as one "tool" message each, wherever Relay carries them.
        results = [
            {
                "role": "tool",
                "tool_call_id": part.tool_call_id,
                # A text block takes any result; a bare string should be a JSON object.
                "content": [{"type": "text", "text": part.content}],
            }
            for part in message.content
            if isinstance(part, ToolResultPart)
        ]
        rest = [p for p in message.content if not isinstance(p, ToolResultPart)]
        if message.role == "assistant":
            return [*results, *self._assistant(rest, request)]
        blocks: list[dict[str, Any]] = []
        for part in rest:
            if isinstance(part, TextPart):
                blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                blocks.append({"type": "image_url", "image_url": self._image(part)})
            elif isinstance(part, DocumentPart):
                documents.append(self._document(part, request, len(documents)))
            elif isinstance(part, ThinkingPart):
                continue  # only assistants think; nothing to send
            else:
                raise self._invalid(request, f"a user message cannot carry a {part.TAG} part")
        if not blocks:
            return results
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            return [*results, {"role": "user", "content": blocks[0]["text"]}]
        return [*results, {"role": "user", "content": blocks}]

    @staticmethod
    def _image(part: ImagePart) -> dict[str, str]:
        url = part.url or f"data:{part.media_type or 'image/png'};base64,{part.base64()}"
        return {"url": url, "detail": part.detail} if part.detail else {"url": url}

    def _document(self, part: DocumentPart, request: Request, number: int) -> dict[str, Any]:
        """A text document as one of Cohere's RAG ``documents``; the answer cites them."""
        if part.data is None or not part.media_type.startswith(_TEXT_MEDIA):
            raise self._invalid(
                request,
                "Cohere reads documents as text only (text/*, JSON, XML bytes), not "
                f"{part.media_type} {'bytes' if part.data is not None else 'by URL'}",
            )
        try:
            text = part.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise self._invalid(request, f"document {part.name!r} is not UTF-8 text") from error
        data = {"title": part.name, "text": text} if part.name else {"text": text}
        return {"id": part.name or f"doc_{number}", "data": data}

    def _assistant(self, parts: Sequence[Part], request: Request) -> list[dict[str, Any]]:
        if any(isinstance(p, (ImagePart, DocumentPart)) for p in parts):
            raise self._invalid(
                request, "an assistant message can carry only text, thinking and tool calls"
            )
        calls = [p for p in parts if isinstance(p, ToolCallPart)]
        text = "".join(p.text for p in parts if isinstance(p, TextPart))
        # Redacted thinking is another provider's ciphertext: nothing Cohere can read.
        thinking = [
            {"type": "thinking", "thinking": p.text}
            for p in parts
            if isinstance(p, ThinkingPart) and not p.redacted
        ]
        message: dict[str, Any] = {"role": "assistant"}
        if calls:
            # Text beside tool calls is what Cohere answered as its tool plan: it goes
            # back where it came from.
            if thinking:
                message["content"] = thinking
            if text:
                message["tool_plan"] = text
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in calls
            ]
        elif thinking:
            message["content"] = [*thinking, *([{"type": "text", "text": text}] if text else [])]
        elif text:
            message["content"] = text
        return [message] if len(message) > 1 else []

    # -- response -----------------------------------------------------------------------

    def _blocks(self, content: Any, request: Request) -> Iterable[TextPart | ThinkingPart]:
        if content is None:
            return
        if isinstance(content, str):
            if content:
                yield TextPart(content)
            return
        if not isinstance(content, list):
            raise self._malformed(request, "message content is neither a list nor text")
        for block in content:
            if not isinstance(block, dict):
                raise self._malformed(request, "a content block is not a JSON object")
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                if block["text"]:
                    yield TextPart(block["text"])
            elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
                yield ThinkingPart(block["thinking"])
            # Other blocks are not Relay content; they stay in raw.

    def _tool_call(self, call: Any, request: Request) -> ToolCallPart:
        function = _object(call, "function")
        name = function.get("name")
        call_id = call.get("id") if isinstance(call, dict) else None
        if not isinstance(name, str) or not name or not isinstance(call_id, str):
            raise self._malformed(request, "a tool call has no id or no function name")
        arguments = function.get("arguments") or "{}"
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError as error:
            raise self._malformed(
                request, f"tool call {name!r} has arguments that are not JSON: {error}"
            ) from error
        if not isinstance(parsed, dict):
            raise self._malformed(request, f"tool call {name!r} arguments are not a JSON object")
        return ToolCallPart(call_id, name, parsed)

    def parse(self, body: dict[str, Any], request: Request) -> Response:
        """A non-streamed answer body as a :class:`Response`."""
        message = body.get("message")
        if not isinstance(message, dict):
            raise self._malformed(request, "answer has no message")
        content: list[Part] = []
        plan = message.get("tool_plan")
        texts = [*self._blocks(message.get("content"), request)]
        if isinstance(plan, str) and plan:
            texts.append(TextPart(plan))
        for part in texts:
            # Adjacent text is one part, as a stream's assembler joins it.
            if content and isinstance(part, TextPart) and isinstance(content[-1], TextPart):
                content[-1] = TextPart(content[-1].text + part.text)
            else:
                content.append(part)
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise self._malformed(request, "tool_calls is not a list")
        content.extend(self._tool_call(call, request) for call in calls)
        return Response(
            content=tuple(content),
            model=request.model,
            id=body.get("id") if isinstance(body.get("id"), str) else None,
            finish_reason=_finish(body.get("finish_reason")),
            usage=_usage(body.get("usage")),
            raw=body,
        )

    def _stream_error(self, error: str, request: Request) -> ProviderError:
        """An error Cohere reported in a 200 stream's ``message-end``, classified as the
        HTTP answer its wording stands for."""
        return classify_stream_error(
            _error_status(error),
            {"message": error},
            rules=self.error_rules,
            provider=self.settings.name,
            model=request.model,
        )

    async def _stream(
        self, events: AsyncIterator[SSEEvent], request: Request
    ) -> AsyncIterator[StreamEvent]:
        assembler = StreamAssembler(provider=self.settings.name)
        received: list[Any] = []
        finish: FinishReason | None = None
        response_id: str | None = None
        call_index = 0
        async for event in events:
            if event.data.strip() == "[DONE]":
                break
            chunk = event.json()
            if not isinstance(chunk, dict):
                raise self._malformed(request, "a stream event is not a JSON object")
            received.append(chunk)
            kind = chunk.get("type")
            delta = _object(chunk, "delta")
            message = _object(delta, "message")
            if kind == "message-start":
                response_id = chunk.get("id") or response_id
            elif kind in ("content-start", "content-delta"):
                block = _object(message, "content")
                thinking, text = block.get("thinking"), block.get("text")
                if isinstance(thinking, str) and thinking:
                    yield assembler.feed(ThinkingDelta(thinking))
                elif isinstance(text, str) and text:
                    yield assembler.feed(TextDelta(text))
            elif kind == "tool-plan-delta":
                plan = message.get("tool_plan")
                if isinstance(plan, str) and plan:
                    yield assembler.feed(TextDelta(plan))
            elif kind in ("tool-call-start", "tool-call-delta"):
                if isinstance(chunk.get("index"), int):
                    call_index = chunk["index"]
                call = _object(message, "tool_calls")
                function = _object(call, "function")
                arguments = function.get("arguments")
                yield assembler.feed(
                    ToolCallDelta(
                        call_index,
                        id=call.get("id"),
                        name=function.get("name"),
                        arguments=arguments if isinstance(arguments, str) else "",
                    )
                )
            elif kind == "message-end":
                error = delta.get("error")
                if isinstance(error, str) and error:
                    raise self._stream_error(error, request)
                response_id = chunk.get("id") or response_id
                if delta.get("usage") is not None:
                    yield assembler.feed(UsageEvent(_usage(delta["usage"])))
                finish = _finish(delta.get("finish_reason"))
            # content-end, tool-call-end, citation-start/end and debug carry nothing
            # Relay's content holds; they stay in raw.
        if finish is None:
            raise self._malformed(request, "stream ended before its message-end event")
        yield EndEvent(
            assembler.response(
                model=request.model, finish_reason=finish, id=response_id, raw=received
            )
        )
