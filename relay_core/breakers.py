"""Circuit breakers: stop calling a provider's model that keeps failing, probe it later.

One breaker per provider and model, switched on by ``circuit_breaker`` in the catalog
(``defaults`` for every provider, or one provider's entry). A breaker is **closed**
while calls succeed; ``failures`` calls failing in a row (each after its retries) open
it, and for ``reset_after`` seconds every call fails at once with
:class:`~relay_core.errors.CircuitOpen`, which a group answers by moving to its next
member without waiting. Then it is **half open**: ``half_open_probes`` calls go through;
the first success closes it, a failure opens it for another ``reset_after``.

Only failures that say something about the provider count: a bad request, a prompt
over the context window or a refused content proves the provider is up, and counts as
a success.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from relay_core.config import BreakerSettings
from relay_core.errors import (
    CircuitOpen,
    ContentPolicyError,
    ContextWindowExceeded,
    InvalidRequestError,
    ProviderError,
)

__all__ = ["BreakerState", "CircuitBreaker", "counts_as_failure"]

BreakerState = Literal["closed", "open", "half_open"]


def counts_as_failure(error: BaseException) -> bool:
    """Whether ``error`` is evidence that the provider is failing (not the request)."""
    return isinstance(error, ProviderError) and not isinstance(
        error, (InvalidRequestError, ContextWindowExceeded, ContentPolicyError, CircuitOpen)
    )


class CircuitBreaker:
    """The breaker of one provider and model. Thread-safe; never blocks."""

    def __init__(
        self,
        settings: BreakerSettings,
        *,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._advance()
            return self._state

    def acquire(self, *, provider: str, model: str, custom_id: str | None = None) -> None:
        """Let a call through, or raise :class:`CircuitOpen` saying when to try again.
        Every call let through must end in :meth:`record` or :meth:`release`."""
        with self._lock:
            self._advance()
            if self._state == "closed":
                return
            if self._state == "half_open" and self._probes < self.settings.half_open_probes:
                self._probes += 1
                return
            wait = max(0.0, self._opened_at + self.settings.reset_after - self._clock())
        raise CircuitOpen(
            f"{self._failures} calls in a row failed; the next probe goes through in {wait:.1f}s",
            retry_after=wait if wait > 0 else None,
            provider=provider,
            model=model,
            custom_id=custom_id,
        )

    def record(self, error: BaseException | None) -> None:
        """The verdict on a call let through: ``None`` for a success, else its error."""
        with self._lock:
            if self._state == "half_open":
                self._probes = max(0, self._probes - 1)
            if error is not None and counts_as_failure(error):
                self._failures += 1
                if self._state == "half_open" or self._failures >= self.settings.failures:
                    self._opened_at = self._clock()
                    self._move("open")
            else:
                self._failures = 0
                self._move("closed")

    def release(self) -> None:
        """A call let through ended with no verdict (cancelled): free its probe slot."""
        with self._lock:
            if self._state == "half_open":
                self._probes = max(0, self._probes - 1)

    def _advance(self) -> None:
        if self._state == "open" and self._clock() - self._opened_at >= self.settings.reset_after:
            self._probes = 0
            self._move("half_open")

    def _move(self, state: BreakerState) -> None:
        old, self._state = self._state, state
        if old != state and self._on_change is not None:
            self._on_change(self.name, old, state)
