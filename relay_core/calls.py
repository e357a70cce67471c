"""What the per-call hooks receive besides the request: the call's context, and the
contract of a redactor that can restore what it replaced.

These are for plugin authors (guardrails, redaction, audit, tracing); applications never
build them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from attrs import field, frozen

from relay_core.tokens import TokenCount, estimate_tokens
from relay_core.types import Request, Response

if TYPE_CHECKING:
    from relay_core.pricing import PriceQuote

__all__ = ["CallInfo", "Restorer"]


@frozen(kw_only=True)
class CallInfo:
    """The call a request belongs to.

    ``alias`` is what the caller named (a model alias or ``provider/model``; for a group,
    the member being called, and ``group`` the group's name), ``provider`` and ``model``
    the concrete target, ``job_id``
    the batch job when the call is one of its requests, ``streaming`` whether the caller
    streams. :meth:`quote` is the price the call is billed at (worked out when asked), and
    :meth:`count_tokens` a request's input tokens.
    """

    alias: str
    provider: str
    model: str
    group: str | None = None
    job_id: str | None = None
    streaming: bool = False
    _quote: Callable[[], PriceQuote] = field(eq=False, repr=False, alias="quote")
    _count: Callable[[Request], TokenCount] | None = field(
        default=None, eq=False, repr=False, alias="count"
    )

    @property
    def target(self) -> str:
        """The concrete target called: ``provider/model``."""
        return f"{self.provider}/{self.model}"

    def quote(self) -> PriceQuote:
        """The price and its provenance (see :func:`relay_core.pricing.quote`)."""
        return self._quote()

    def count_tokens(self, request: Request) -> TokenCount:
        """The input tokens of ``request`` (as the hooks receive it) without I/O: exact
        where the provider's tokenizer runs in this process (OpenAI's, with
        ``relay-openai[tokens]``), else :func:`~relay_core.tokens.estimate_tokens`. A
        count endpoint is never called: a hook runs before every call and cannot wait."""
        if self._count is None:
            return TokenCount(tokens=estimate_tokens(request), exact=False, method="estimate")
        return self._count(request)


@runtime_checkable
class Restorer(Protocol):
    """Puts back what a redactor replaced, in one call's answer (``relay_restorer``).

    A stream's text goes through :meth:`feed` piece by piece: return the text that can
    be shown now and keep back a piece that may be the start of a placeholder; the hub
    calls :meth:`flush` when the text ends. The whole response goes through
    :meth:`restore` (text, thinking and tool call arguments).
    """

    def feed(self, text: str) -> str:
        """The restored text that is safe to emit after ``text`` arrived."""

    def flush(self) -> str:
        """What :meth:`feed` kept back, restored, at the end of the text."""

    def restore(self, response: Response) -> Response:
        """``response`` with every placeholder replaced by its original value."""
