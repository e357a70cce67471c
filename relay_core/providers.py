"""The provider adapter: the class a provider plugin writes.

An adapter maps Relay's unified types to one provider's wire format and back, and
declares what it can do. Everything else (credentials, HTTP pooling, retries, SSE
parsing, error translation, cost, streaming assembly) is the core's; an adapter reaches
it through ``self.settings`` and ``self.http``.

A minimal adapter::

    class EchoProvider(Provider):
        name = "echo"
        capabilities = frozenset({Capability.CHAT})

        async def chat(self, request: Request) -> Response:
            return Response(content=request.messages[-1].text, model=self.model_of(request))
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from attrs import field, frozen

from relay_core.capabilities import Capability
from relay_core.embeddings import EmbeddingRequest, EmbeddingResponse
from relay_core.errors import ConfigError, ProviderError, UnsupportedCapability
from relay_core.serialize import unstructure
from relay_core.types import BatchItem, ProviderBatch, Request, Response, StreamEvent

if TYPE_CHECKING:
    from relay_core.http import HttpClient
    from relay_core.secrets import Secret

__all__ = [
    "BASIC_SETTINGS",
    "BatchLimits",
    "Capability",
    "EmbeddingLimits",
    "ErrorRule",
    "Provider",
    "ProviderSettings",
    "provider_state_dir",
]

# The workspace whose job is calling an adapter's batch methods, if any (see
# provider_state_dir). A context variable rather than an adapter setting: one hub, and so
# one adapter, may serve jobs of several workspaces at once.
_workspace: ContextVar[Path | None] = ContextVar("relay_batch_workspace", default=None)


def provider_state_dir(provider: str) -> Path | None:
    """Where an adapter that stands in for a provider's own servers (relay-mock) keeps
    what those servers would keep, such as its batches: ``WORKSPACE/providers/PROVIDER``
    while a batch job of that workspace calls the adapter, so that every process
    following the job finds the same batches; ``None`` outside a job. ``provider`` is the
    adapter's ``settings.name``. The directory may not exist yet.
    """
    workspace = _workspace.get()
    if workspace is None:
        return None
    if not provider or provider.startswith(".") or "/" in provider or "\\" in provider:
        raise ValueError(f"provider name {provider!r} cannot name a directory")
    return workspace / "providers" / provider


@contextlib.contextmanager
def batch_workspace(directory: Path) -> Iterator[None]:
    """Within: :func:`provider_state_dir` answers for ``directory``. For the batch layer,
    around every call it makes to an adapter's batch methods."""
    token = _workspace.set(directory)
    try:
        yield
    finally:
        _workspace.reset(token)


BASIC_SETTINGS: frozenset[str] = frozenset({"temperature", "top_p", "max_tokens", "stop", "seed"})
"""The generation settings an adapter honours unless it declares its own
(``Provider.generation_settings``)."""


@frozen
class ErrorRule:
    """One line of an adapter's error classification table.

    The core matches a failed HTTP answer against an adapter's rules in order: a rule
    applies when ``status`` (if given) equals the status code, ``contains`` (if given)
    occurs in the response body, and ``header`` (if given, a ``(name, value)`` pair) is
    a header of the answer whose value starts with ``value`` (for providers that name
    the error in a header, as AWS does in ``x-amzn-errortype``), and ``code`` (if given)
    equals the error code of a JSON body (``error.code``, or a top-level ``code``: the
    code says what went wrong where one status stands for several causes, as OpenAI's
    Responses API answers an unknown model with 400 and ``model_not_found``). The first
    match decides the error class; with no match the core classifies by status code
    alone.
    """

    error: type[ProviderError]
    status: int | None = None
    contains: str | None = None
    header: tuple[str, str] | None = None
    code: str | None = None


@frozen(kw_only=True)
class BatchLimits:
    """What one provider batch may hold. The core splits a bigger job into several
    provider batches, so an adapter's ``submit_batch`` never receives more than this.

    ``max_bytes`` is measured on the lines :meth:`Provider.batch_line` returns, encoded
    as JSONL (UTF-8, one newline each); ``None`` means no limit.
    """

    max_requests: int | None = None
    max_bytes: int | None = None


@frozen(kw_only=True)
class EmbeddingLimits:
    """What one embedding call may hold. The core splits a bigger request into calls
    within these and joins the vectors back in order, so an adapter's ``embed`` never
    receives more. ``max_tokens`` is measured by the core's estimate of each input
    (about four characters a token, rounded up); ``None`` means no limit.
    """

    max_inputs: int | None = None
    max_tokens: int | None = None


@frozen(kw_only=True)
class ProviderSettings:
    """The resolved settings of one configured provider, as the adapter receives them.

    ``name`` is the catalog's key (``local-vllm``), which may differ from the plugin's
    provider name (``openai-compat``). ``api_key`` is resolved from its reference and
    masked everywhere; ``options`` holds the catalog's ``options`` mapping for settings
    only this adapter understands.
    """

    name: str
    api_key: Secret | None = None
    base_url: str | None = None
    timeout: float = 60.0
    max_retries: int = 3
    headers: Mapping[str, str] = field(factory=dict)
    options: Mapping[str, Any] = field(factory=dict)


class Provider:
    """Base class of provider adapters. Override what the provider supports.

    Class attributes to declare:

    - ``name``: the provider name used in ``provider/model`` targets.
    - ``capabilities``: a frozenset of :class:`Capability`.
    - ``api_key_env``: the environment variable read when the catalog gives no key
      (``None`` when the provider needs none).
    - ``default_base_url``: used when the catalog gives no ``base_url``.
    - ``error_rules``: the classification table for failed answers (see :class:`ErrorRule`).
    - ``batch_limits``: the most one provider batch may hold (see :class:`BatchLimits`).
    - ``embedding_limits``: the most one embedding call may hold (see
      :class:`EmbeddingLimits`).
    - ``embedding_batches``: whether the provider's batch API takes embedding requests
      (then implement :meth:`embedding_batch_line` and :meth:`submit_embedding_batch`).
    - ``batch_metadata``: whether :meth:`list_batches` reports the ``metadata`` given to
      :meth:`submit_batch` (in a metadata field, a display name, an input file's name...).
    - ``generation_settings``: the :class:`GenerationConfig` settings the provider
      honours (``reasoning`` is the ``THINKING`` capability's). The hub refuses a call
      that sets any other with :class:`UnsupportedSetting` before it reaches the adapter.
    - ``system_only``: whether the provider answers a request that has a system prompt
      and no message (OpenAI does; Anthropic wants at least one message). The hub refuses
      such a request before the call for an adapter that does not declare it.
    - ``prompt_caching``: how the provider caches prompts. ``"breakpoints"``: it caches
      up to the marks the request carries (``cache=True`` on a part or a message,
      ``Request.cache_system``, ``Request.cache_tools``), which the adapter maps to its
      wire form (Anthropic's ``cache_control``, Bedrock's ``cachePoint``).
      ``"automatic"``: it caches on its own and reports cache reads in the usage
      (OpenAI, Gemini); the marks are not sent. ``"none"`` (the default): no prompt
      cache. Marks are never an error: adapters that do not use them ignore them.
      Whatever the mode, map the cache reads and writes the provider reports into
      ``Usage.cached_input_tokens`` and ``Usage.cache_write_tokens``, both counted
      inside ``input_tokens``.

    Every method receives a :class:`Request` whose ``model`` is the provider's own model
    name (``gpt-4.1``, not ``openai/gpt-4.1``) and whose ``config`` already merges the
    catalog's params with the call's.
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    api_key_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    error_rules: ClassVar[Sequence[ErrorRule]] = ()
    # Not a ClassVar: an adapter may set its own per instance, from its options.
    batch_limits: BatchLimits = BatchLimits()
    embedding_limits: EmbeddingLimits = EmbeddingLimits()
    batch_metadata: ClassVar[bool] = True
    embedding_batches: ClassVar[bool] = False
    system_only: ClassVar[bool] = False
    prompt_caching: ClassVar[Literal["breakpoints", "automatic", "none"]] = "none"
    generation_settings: ClassVar[frozenset[str]] = BASIC_SETTINGS

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        """The hub passes its pooled client; an adapter built by hand (in a test) gets a
        client of its own."""
        if http is None:
            from relay_core.http import HttpClient, HttpPool

            http = HttpClient(
                HttpPool(),
                settings,
                base_url=settings.base_url or self.default_base_url,
                rules=self.error_rules,
            )
        self.settings = settings
        self.http = http

    @property
    def base_url(self) -> str:
        """The URL the provider's endpoints are under, without a trailing slash: the
        catalog's ``base_url``, else :attr:`default_base_url`. Raises :class:`ConfigError`
        when neither is set."""
        url = self.settings.base_url or self.default_base_url
        if not url:
            raise ConfigError(f"provider {self.settings.name!r} needs a base_url")
        return url.rstrip("/")

    def supports(self, capability: Capability) -> bool:
        """Whether the adapter declares ``capability``."""
        return capability in self.capabilities

    def unsupported(self, capability: Capability, request: Request | None = None) -> Exception:
        """The :class:`UnsupportedCapability` error to raise when a request needs
        ``capability`` and this provider lacks it."""
        return UnsupportedCapability(
            self.settings.name, str(capability), model=request.model if request else None
        )

    # -- calls --------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        """Send one request and return the whole answer.

        Return a :class:`Response` with ``content``, ``finish_reason``, ``usage``, ``id``,
        ``model`` and ``raw`` filled in; the core adds cost, latency, ``provider`` and
        ``custom_id``. Raise a :class:`ProviderError` subclass (usually by letting
        ``self.http`` raise it) on failure.
        """
        raise self.unsupported(Capability.CHAT, request)

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Yield the answer as events, ending with exactly one :class:`EndEvent` whose
        response equals what :meth:`chat` returns for the same content.

        Use :class:`relay_core.streaming.StreamAssembler` to build that response from the
        deltas, and ``self.http.stream_sse`` to read the provider's server-sent events.
        """
        raise self.unsupported(Capability.STREAM, request)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Return one vector per input, in order, for ``request.inputs``.

        Declare ``Capability.EMBEDDINGS``. Fill ``vectors``, ``usage`` (input tokens),
        ``model`` and ``raw``; the core adds cost, latency, ``provider`` and
        ``custom_id``, and has already split the inputs to respect
        ``embedding_limits``. Send ``dimensions`` where the provider takes it and raise
        ``self.unsupported(Capability.EMBEDDINGS, ...)`` never for it: a model that
        cannot shorten its vectors answers with the provider's own error. Map
        ``input_type`` where the provider takes a purpose; ignore it otherwise.
        """
        raise self.unsupported(Capability.EMBEDDINGS)

    def embedding_limits_for(self, model: str) -> EmbeddingLimits:
        """The most one embedding call to ``model`` may hold: :attr:`embedding_limits`,
        unless some of the provider's models take less (one text a call), which an
        adapter says by overriding this. The core splits by what it returns."""
        return self.embedding_limits

    async def count_tokens(self, request: Request) -> int:
        """The input tokens ``request`` would use, counted by the provider (its count
        endpoint) or its own tokenizer. Declare ``Capability.TOKEN_COUNT``; without it
        the hub estimates and says so (:class:`~relay_core.tokens.TokenCount`)."""
        raise self.unsupported(Capability.TOKEN_COUNT, request)

    def count_tokens_locally(self, request: Request) -> int | None:
        """The input tokens of ``request`` counted without I/O (a tokenizer in this
        process), or ``None`` when this adapter cannot (the default). Override it in an
        adapter that counts with a tokenizer, and have :meth:`count_tokens` return it: the
        hub prefers it, and a guardrail, which cannot wait on the network before every
        call, can use it (``count: exact``)."""
        return None

    # -- batches ------------------------------------------------------------------------
    #
    # The core owns a batch job's life: it writes the workspace files, splits the job to
    # respect ``batch_limits``, tags each provider batch, polls, merges and prices the
    # results, and resumes after a crash. An adapter only speaks the provider's batch API.

    def batch_line(self, request: Request) -> Mapping[str, Any]:
        """One request as a line of the provider's batch input, ``custom_id`` included.

        The core writes these lines to the job's ``provider-input`` files before it calls
        :meth:`submit_batch` (so a user can see exactly what was sent) and measures them
        against ``batch_limits.max_bytes``. Build the same lines in ``submit_batch``.
        The default, for providers without a wire format, is the unified request.
        """
        return {"custom_id": request.custom_id, "request": unstructure(request)}

    def embedding_batch_line(self, request: EmbeddingRequest) -> Mapping[str, Any]:
        """One embedding request as a line of the provider's batch input, as
        :meth:`batch_line` for chat. Only called when ``embedding_batches`` is declared,
        and for a request within ``embedding_limits`` (a bigger one runs in the engine)."""
        raise self.unsupported(Capability.BATCH)

    async def submit_embedding_batch(
        self, requests: Sequence[EmbeddingRequest], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        """Submit ``requests`` as one provider batch of embedding requests, as
        :meth:`submit_batch` does chat requests (a provider batch never mixes the two).
        Its :meth:`batch_results` yield items whose ``embedding`` holds the vectors."""
        raise self.unsupported(Capability.BATCH)

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        """Submit ``requests`` as one provider batch; return the provider's view of it.

        Every request has a unique ``custom_id`` and the provider's own model name; the
        core has already checked capabilities and split the job, so send them all. Store
        ``metadata`` (a few short string pairs) with the batch wherever the provider
        keeps caller data, and report it back in :meth:`list_batches` and
        :meth:`batch_status`: after a crash between "the provider accepted the batch" and
        "the core recorded its id", that tag is how the core finds the batch instead of
        paying for it twice. If the provider keeps nothing, set ``batch_metadata = False``
        (the core then matches by creation time and request count).
        """
        raise self.unsupported(Capability.BATCH)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        """The batch's current ``state`` (mapped to :data:`BatchState`) and ``counts``.

        Raise :class:`NotFoundError` for an id the provider does not know.
        """
        raise self.unsupported(Capability.BATCH)

    def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        """Yield one :class:`BatchItem` per request of a finished batch, in any order.

        Each item carries the provider's line as ``raw``. A line that cannot be parsed is
        not an exception: yield it as a failed item (``relay_core.batching.parse_lines``
        does this for JSONL output), so one bad answer never loses the others. Requests
        the provider never answered may be left out; the core marks them failed. Stream:
        an output file can hold a million lines (``self.http.stream_lines``).
        """
        raise self.unsupported(Capability.BATCH)

    def finish_batch_response(self, request: Request, response: Response) -> Response:
        """Finish a batch answer with its request in hand; by default, return it as is.

        :meth:`batch_results` parses output lines without their requests. Where ``chat``
        needs the request to shape the answer, override this: the core calls it for each
        answered request of a batch with the request as :meth:`batch_line` received it.
        (relay-anthropic turns the forced tool call that carries structured output back
        into JSON text here, as its ``chat`` does.) Raise a :class:`ProviderError` when
        the answer cannot be finished; that request is then recorded as failed with the
        provider's line kept, and the others are unaffected.
        """
        return response

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        """Ask the provider to cancel; return the batch's state after asking. Cancelling
        a finished batch is not an error: return its state unchanged."""
        raise self.unsupported(Capability.BATCH)

    async def list_batches(self) -> Sequence[ProviderBatch]:
        """The batches the provider knows for this account, newest first, with their
        ``metadata`` (see :meth:`submit_batch`). A few recent pages are enough: the core
        only looks for batches it submitted moments before a crash."""
        raise self.unsupported(Capability.BATCH)

    async def aclose(self) -> None:
        """Release what the adapter holds beyond the core's HTTP pool (rarely needed)."""
