"""OpenAI-compatible servers: relay-openai's Chat Completions mapping, with what differs.

Nothing of the wire mapping is re-implemented: :class:`OpenAICompatProvider` subclasses
:class:`relay_openai.chat.OpenAIProvider` and adjusts the payload it builds and the
answers it parses:

- Chat Completions only (the Responses API is OpenAI's own); the system prompt always goes
  as a ``system`` message, never ``developer``; no OpenAI-Organization/-Project headers;
  an ``Authorization`` header only when a key is configured.
- ``reasoning_content`` (DeepSeek, vLLM before 0.11, llama.cpp) or ``reasoning`` (Groq with
  ``reasoning_format: parsed``, OpenRouter, vLLM 0.11+) in answers and stream deltas
  becomes a :class:`ThinkingPart` / :class:`ThinkingDelta`.
- Options (``providers.<name>.options``; presets set defaults, the catalog overrides):

  ``max_tokens_field``  ``max_tokens`` (default) or ``max_completion_tokens``
  ``structured_output`` ``json_schema`` (default) or ``json_object``: the fallback for
                        servers without schema enforcement; the schema goes in the system
                        prompt and the answer is validated here
  ``stream_usage``      ``true`` (default) sends ``stream_options.include_usage``; switch
                        it off for servers that reject the field
  ``strict_tools``      ``false`` (default): tools go as they are, with no ``strict``
                        field; ``true`` compiles them for strict mode as relay-openai
                        does, for a server known to enforce it

Capabilities are class attributes, one small subclass per profile, so the hub's check and
``relay providers`` both read the truth without instantiating anything.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from relay_core.plugin import (
    Capability,
    ConfigError,
    EndEvent,
    ErrorRule,
    InvalidRequestError,
    MalformedResponse,
    ProviderSettings,
    Request,
    Response,
    ResponseSchema,
    SSEEvent,
    StreamAssembler,
    StreamEvent,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    closing_stream,
    schema_errors,
)
from relay_openai.chat import OpenAIProvider
from relay_openai.embeddings import EncodingFormat

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient, SamplingLimits

__all__ = [
    "DeepSeekProvider",
    "EmbeddingServerProvider",
    "OpenAICompatProvider",
    "OpenRouterProvider",
]

_MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")
_STRUCTURED_MODES = ("json_schema", "json_object")
# Where compatible servers put reasoning text, in order of preference.
_REASONING_FIELDS = ("reasoning_content", "reasoning")
_BASE_CAPABILITIES = frozenset(
    {
        Capability.CHAT,
        Capability.STREAM,
        Capability.TOOLS,
        Capability.STRUCTURED_OUTPUT,
        Capability.VISION,
        Capability.THINKING,
    }
)


def _reasoning(message: Mapping[str, Any]) -> str:
    for key in _REASONING_FIELDS:
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _normalised_usage(usage: Any) -> Any:
    """DeepSeek reports cache hits as ``prompt_cache_hit_tokens``; give relay-openai's
    usage mapping the ``prompt_tokens_details.cached_tokens`` it reads."""
    if not isinstance(usage, dict) or "prompt_cache_hit_tokens" not in usage:
        return usage
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and "cached_tokens" in details:
        return usage
    details = dict(details) if isinstance(details, dict) else {}
    details["cached_tokens"] = usage["prompt_cache_hit_tokens"]
    return {**usage, "prompt_tokens_details": details}


def _normalised_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """A chunk with its usage where relay-openai looks for it, or the chunk itself."""
    usage = chunk.get("usage")
    if not usage:
        # Groq's streams carry the usage in their own extension object.
        extension = chunk.get("x_groq")
        if isinstance(extension, dict) and isinstance(extension.get("usage"), dict):
            usage = extension["usage"]
    normalised = _normalised_usage(usage)
    if normalised is chunk.get("usage"):
        return chunk
    return {**chunk, "usage": normalised}


@attrs.frozen
class _ParsedEvent(SSEEvent):
    """An event whose JSON was parsed on its way through :meth:`_stream_chat`'s tap:
    relay-openai reads it without parsing it again (once per chunk, on every stream)."""

    parsed: Any = attrs.field(default=None, kw_only=True, eq=False, repr=False)

    def json(self) -> Any:
        return self.parsed


def schema_instruction(schema: ResponseSchema) -> str:
    """The system-prompt text that asks for JSON valid against ``schema`` (the fallback)."""
    text = json.dumps(schema.schema, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return (
        "Reply with a single JSON object and nothing else (no prose, no code fences). "
        f"It must be valid against this JSON Schema:\n{text}"
    )


class OpenAICompatProvider(OpenAIProvider):
    """Any server speaking Chat Completions at ``base_url`` (``POST /chat/completions``)."""

    name = "openai-compat"
    capabilities = _BASE_CAPABILITIES
    # Local servers need no key; hosted presets name theirs in the registration defaults.
    # (The ignores: relay-openai leaves these unannotated, so mypy narrows them to its
    # values' types; Provider declares the real ones repeated here.)
    api_key_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    # The core's classification covers these servers' errors: 402 (out of credit at
    # DeepSeek and OpenRouter) and insufficient_quota are QuotaExceeded there. OpenAI's
    # model_not_found rule holds too, whatever status a server sends it with.
    error_rules: ClassVar[Sequence[ErrorRule]] = OpenAIProvider.error_rules
    # OpenRouter (relaying some upstreams) and other compatible servers end a whole
    # answer, usage chunk and data: [DONE] included, with no finish_reason: the stream
    # is complete, and sending the paid call again would not change that.
    done_ends_stream: ClassVar[bool] = True
    # Compatible servers all answer decimal floats, and not every one reads
    # encoding_format (older Ollama, Together): none is sent. Profiles that declare
    # Capability.EMBEDDINGS use relay-openai's POST /embeddings as it is.
    embedding_encoding: ClassVar[EncodingFormat | None] = None

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        options = settings.options
        if options.get("api", "chat") != "chat":
            raise ConfigError(
                f"providers.{settings.name}.options.api: {settings.name} speaks Chat "
                f"Completions only (the Responses API is OpenAI's own), not {options['api']!r}"
            )
        if not (settings.base_url or self.default_base_url):
            # Fail when the hub builds the adapter, not with a transport error per call.
            raise ConfigError(
                f"provider {settings.name!r} needs a base_url: set providers.{settings.name}"
                ".base_url in the catalog, e.g. http://127.0.0.1:8000/v1"
            )
        super().__init__(settings, http)
        self.max_tokens_field: str = self._choice("max_tokens_field", _MAX_TOKENS_FIELDS)
        self.structured_output: str = self._choice("structured_output", _STRUCTURED_MODES)
        self.stream_usage = self._flag("stream_usage", default=True)
        self.strict_tools = self._flag("strict_tools", default=False)

    def _flag(self, option: str, *, default: bool) -> bool:
        value = self.settings.options.get(option, default)
        if not isinstance(value, bool):
            raise ConfigError(
                f"providers.{self.settings.name}.options.{option} must be true or false, "
                f"not {value!r}"
            )
        return value

    def _choice(self, option: str, allowed: tuple[str, ...]) -> str:
        value = self.settings.options.get(option, allowed[0])
        if value not in allowed:
            raise ConfigError(
                f"providers.{self.settings.name}.options.{option} must be one of "
                f"{', '.join(map(repr, allowed))}, not {value!r}"
            )
        return str(value)

    # -- request ------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        # No OpenAI-Organization/-Project (OpenAI's own), and nothing at all without a key:
        # local servers are called bare. Extra headers come from the catalog's `headers`.
        if self.settings.api_key is None:
            return {}
        return {"authorization": f"Bearer {self.settings.api_key.reveal()}"}

    def sampling_limits(self, request: Request) -> SamplingLimits | None:
        # relay-openai's model families are OpenAI's; a compatible server's model names
        # (openai/o3 at OpenRouter, anything at vLLM) say nothing about what it takes.
        return None

    def build_payload(self, request: Request, *, stream: bool = False) -> tuple[str, Any]:
        api, _ = self._split_kwargs(request)
        if api != "chat":
            raise InvalidRequestError(
                f"{self.settings.name} speaks Chat Completions only; the Responses API is "
                "OpenAI's own",
                provider=self.settings.name,
                model=request.model,
            )
        path, payload = super().build_payload(request, stream=stream)
        if stream and not self.stream_usage and "stream_options" not in request.provider_kwargs:
            payload.pop("stream_options", None)
        return path, payload

    def _chat_payload(self, request: Request) -> dict[str, Any]:
        payload = super()._chat_payload(request)
        messages: list[dict[str, Any]] = payload["messages"]
        # relay-openai sends OpenAI's reasoning models a "developer" message; compatible
        # servers know only "system" (a model named o3-... at OpenRouter included).
        if messages and messages[0]["role"] == "developer":
            messages[0]["role"] = "system"
        if request.config.top_k is not None:
            # Not OpenAI's: only the servers that declare top_k get here (TOP_K_SETTINGS).
            payload["top_k"] = request.config.top_k
        if self.max_tokens_field == "max_tokens" and "max_completion_tokens" in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        schema = request.response_schema
        if schema is not None and self.structured_output == "json_object":
            payload["response_format"] = {"type": "json_object"}
            instruction = schema_instruction(schema)
            if messages and messages[0]["role"] == "system":
                messages[0]["content"] = f"{messages[0]['content']}\n\n{instruction}"
            else:
                messages.insert(0, {"role": "system", "content": instruction})
        return payload

    def _chat_tool(self, tool: Tool) -> dict[str, Any]:
        sent = super()._chat_tool(tool)
        if not sent["function"]["strict"]:
            # Loose tools go without the field, which some servers reject or misread.
            del sent["function"]["strict"]
        return sent

    # -- answers ------------------------------------------------------------------------

    def _parse_chat(self, body: dict[str, Any], request: Request) -> Response:
        parsed = super()._parse_chat(
            {**body, "usage": _normalised_usage(body.get("usage"))}, request
        )
        message = body["choices"][0].get("message") or {}
        thinking = _reasoning(message) if isinstance(message, dict) else ""
        content = (ThinkingPart(thinking), *parsed.content) if thinking else parsed.content
        response = attrs.evolve(parsed, content=content, raw=body)
        self._check_structured(response, request)
        return response

    async def _stream_chat(
        self, events: AsyncIterator[SSEEvent], request: Request
    ) -> AsyncIterator[StreamEvent]:
        # relay-openai's stream parser knows no reasoning deltas, so they are taken out of
        # the events on their way in and put back in order on the way out: everything read
        # from chunk N is queued before relay-openai yields what chunk N holds.
        thinking: list[ThinkingDelta] = []

        async def tapped() -> AsyncIterator[SSEEvent]:
            async for event in events:
                try:
                    chunk = json.loads(event.data)
                except ValueError:
                    yield event  # "[DONE]", or junk relay-openai reports as malformed
                    continue
                if not isinstance(chunk, dict):
                    yield event
                    continue
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") if isinstance(choice, dict) else None
                    text = _reasoning(delta) if isinstance(delta, dict) else ""
                    if text:
                        thinking.append(ThinkingDelta(text))
                normalised = _normalised_chunk(chunk)
                if normalised is chunk:
                    yield _ParsedEvent(event.data, event.event, event.id, event.retry, parsed=chunk)
                else:
                    yield SSEEvent(json.dumps(normalised), event.event, event.id, event.retry)

        assembler = StreamAssembler(provider=self.settings.name)
        taps = tapped()
        parsed = super()._stream_chat(taps, request)
        # relay-openai's parser stops at [DONE]: both generators are closed here.
        async with closing_stream(taps), closing_stream(parsed):
            async for event in parsed:
                while thinking:
                    yield assembler.feed(thinking.pop(0))
                if isinstance(event, EndEvent):
                    end = event.response
                    response = assembler.response(
                        model=end.model, finish_reason=end.finish_reason, id=end.id, raw=end.raw
                    )
                    content = self._without_strict_nulls(response.content, request)
                    response = attrs.evolve(response, content=content)
                    self._check_structured(response, request)
                    yield EndEvent(response)
                else:
                    yield assembler.feed(event)

    def _check_structured(self, response: Response, request: Request) -> None:
        """In the json_object fallback nothing on the server enforced the schema: check it.
        A bad answer is MalformedResponse, which the hub retries."""
        schema = request.response_schema
        if schema is None or self.structured_output != "json_object":
            return
        if response.finish_reason == "tool_calls":
            return  # the model called a tool instead of answering: nothing to check yet
        try:
            value = json.loads(response.text)
        except ValueError as error:
            raise MalformedResponse(
                f"structured output is not JSON ({error}): {response.text[:200]!r}",
                provider=self.settings.name,
                model=request.model,
            ) from error
        problems = schema_errors(value, schema.schema)
        if problems:
            shown = "; ".join(problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise MalformedResponse(
                f"structured output does not match schema {schema.name!r}: {shown}{more}",
                provider=self.settings.name,
                model=request.model,
            )


# The servers that also take top_k, an extension to Chat Completions (vLLM, Together,
# OpenRouter, ...).
TOP_K_SETTINGS = OpenAIProvider.generation_settings | {"top_k"}


class DeepSeekProvider(OpenAICompatProvider):
    """DeepSeek's API: text only (no image input)."""

    capabilities = _BASE_CAPABILITIES - {Capability.VISION}


class OpenRouterProvider(OpenAICompatProvider):
    """OpenRouter: also takes PDF documents as ``file`` content parts, as OpenAI does."""

    capabilities = _BASE_CAPABILITIES | {Capability.DOCUMENTS}
    generation_settings = TOP_K_SETTINGS


class EmbeddingServerProvider(OpenAICompatProvider):
    """A server that also embeds at ``POST /embeddings``: the generic entry, Ollama and
    llama.cpp (started with ``--embeddings``). Ollama takes ``dimensions`` (older versions
    ignore it, which the adapter reports as an error rather than return longer vectors)."""

    capabilities = _BASE_CAPABILITIES | {Capability.EMBEDDINGS}
