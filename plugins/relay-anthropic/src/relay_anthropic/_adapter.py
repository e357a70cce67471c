"""The Anthropic adapter: the Messages API (``POST /messages``) and the Message Batches
API (``/messages/batches``) over HTTP.

Credentials, pooling, retries, SSE parsing and the translation of failed answers are the
core's; the wire format is :mod:`relay_anthropic.messages` (and ``_batches``), pure
functions this class sends and reads through the core's HTTP client. The plugin's README
lists the options and every mapping, with the choices made where Relay and Anthropic
differ (seed, reasoning, structured output, redacted thinking).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from relay_anthropic._batches import (
    BATCH_LIMITS,
    batch_body,
    batch_item,
    batch_line,
    batch_path,
    provider_batch,
    results_url,
)
from relay_anthropic.messages.count import count_payload, parse_count
from relay_anthropic.messages.events import message_events
from relay_anthropic.messages.parse import parse_message
from relay_anthropic.messages.payload import DEFAULT_MAX_TOKENS, message_payload
from relay_anthropic.messages.structured import StructuredOutput
from relay_core.plugin import (
    AuthenticationError,
    BatchItem,
    Capability,
    ConfigError,
    ContentPolicyError,
    ContextWindowExceeded,
    ErrorRule,
    Provider,
    ProviderBatch,
    ProviderError,
    ProviderSettings,
    ProviderUnavailable,
    QuotaExceeded,
    Request,
    Response,
    StreamEvent,
    closing_stream,
    parse_lines,
)

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient

__all__ = ["API_VERSION", "DEFAULT_MAX_TOKENS", "AnthropicProvider"]

API_VERSION = "2023-06-01"
_LIST_LIMIT = 100  # per page, of the API's 1 to 1000
_LIST_PAGES = 2


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
            Capability.TOKEN_COUNT,
        }
    )
    # No seed (left out, as a seed is best effort), penalties or log probabilities.
    generation_settings = frozenset({"temperature", "top_p", "top_k", "max_tokens", "stop"})
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
    # cache_control on the marked blocks (messages.payload); the README says how.
    prompt_caching = "breakpoints"

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
        parsed = message_events(
            events,
            structured,
            provider=self.settings.name,
            model=request.model,
            rules=self.error_rules,
        )
        # Closed however the stream ends: the parser stops at message_stop, and the
        # caller may stop sooner.
        async with closing_stream(events), closing_stream(parsed):
            async for event in parsed:
                yield event

    async def count_tokens(self, request: Request) -> int:
        body = count_payload(self.payload(request)[0])
        answer = await self.http.json(
            "POST",
            "/messages/count_tokens",
            json=body,
            headers=self._headers(),
            model=request.model,
        )
        return parse_count(answer, provider=self.settings.name, model=request.model)

    # -- batches --------------------------------------------------------------------------

    def batch_line(self, request: Request) -> Mapping[str, Any]:
        return batch_line(request, self.payload(request)[0], provider=self.settings.name)

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        # ``metadata`` is not sent: a Message Batch has no field for caller data.
        body = await self.http.json(
            "POST",
            "/messages/batches",
            content=batch_body(self.batch_line(r) for r in requests),
            headers={**self._headers(), "content-type": "application/json"},
        )
        return self._batch(body)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        return self._batch(await self._get_batch(batch_id))

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        batch = await self._get_batch(batch_id)
        url = results_url(batch, batch_id, provider=self.settings.name)
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
                "POST", f"{batch_path(batch_id)}/cancel", headers=self._headers()
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
        return await self.http.json("GET", batch_path(batch_id), headers=self._headers())

    def _batch(self, body: Any) -> ProviderBatch:
        return provider_batch(body, provider=self.settings.name)

    def _batch_item(self, line: Any) -> BatchItem:
        return batch_item(line, provider=self.settings.name, rules=self.error_rules)

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
        return message_payload(
            request,
            default_max_tokens=self.options.default_max_tokens,
            provider=self.settings.name,
            stream=stream,
        )

    # -- answers --------------------------------------------------------------------------

    def _parse(self, body: Any, structured: StructuredOutput | None) -> Response:
        return parse_message(body, structured, provider=self.settings.name)
