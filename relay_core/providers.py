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

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import field, frozen

from relay_core.errors import ProviderError, UnsupportedCapability
from relay_core.types import BatchItem, ProviderBatch, Request, Response, StreamEvent

if TYPE_CHECKING:
    from relay_core.http import HttpClient
    from relay_core.secrets import Secret

__all__ = ["Capability", "ErrorRule", "Provider", "ProviderSettings"]


class Capability(str, enum.Enum):
    """What an adapter can do. The hub checks a request's needs against these before
    calling, so an adapter never receives a request it declared it cannot serve."""

    CHAT = "chat"
    STREAM = "stream"
    TOOLS = "tools"
    STRUCTURED_OUTPUT = "structured_output"
    VISION = "vision"
    DOCUMENTS = "documents"
    THINKING = "thinking"
    BATCH = "batch"

    def __str__(self) -> str:
        return self.value


@frozen
class ErrorRule:
    """One line of an adapter's error classification table.

    The core matches a failed HTTP answer against an adapter's rules in order: a rule
    applies when ``status`` (if given) equals the status code and ``contains`` (if given)
    occurs in the response body. The first match decides the error class; with no match
    the core classifies by status code alone.
    """

    error: type[ProviderError]
    status: int | None = None
    contains: str | None = None


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

    Every method receives a :class:`Request` whose ``model`` is the provider's own model
    name (``gpt-4.1``, not ``openai/gpt-4.1``) and whose ``config`` already merges the
    catalog's params with the call's.
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    api_key_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    error_rules: ClassVar[Sequence[ErrorRule]] = ()

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
        url = self.settings.base_url or self.default_base_url
        if not url:
            from relay_core.errors import ConfigError

            raise ConfigError(f"provider {self.settings.name!r} needs a base_url")
        return url.rstrip("/")

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def unsupported(self, capability: Capability, request: Request | None = None) -> Exception:
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

    # -- batches ------------------------------------------------------------------------

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str] | None = None
    ) -> ProviderBatch:
        """Submit requests (each with a unique ``custom_id``) as one provider batch and
        return the provider's view of it. The core splits work to respect limits."""
        raise self.unsupported(Capability.BATCH)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        """The batch's current state and counts."""
        raise self.unsupported(Capability.BATCH)

    def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        """Yield one :class:`BatchItem` per request of a finished batch, in any order."""
        raise self.unsupported(Capability.BATCH)

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        """Ask the provider to cancel; return the batch's state after asking."""
        raise self.unsupported(Capability.BATCH)

    async def list_batches(self) -> Sequence[ProviderBatch]:
        """The batches the provider knows for this account, newest first."""
        raise self.unsupported(Capability.BATCH)

    async def aclose(self) -> None:
        """Release what the adapter holds beyond the core's HTTP pool (rarely needed)."""
