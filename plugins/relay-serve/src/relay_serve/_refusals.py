"""The server's own refusals, in OpenAI's error shape: full queue, bad key, a key's
limits or budget, and the stores a key is checked against being down."""

from __future__ import annotations

from attrs import frozen

from relay_serve._auth import Unauthorized
from relay_serve._budgets import OverBudget
from relay_serve._keystore import KeyStoreUnavailable
from relay_serve._limits import Overloaded
from relay_serve._quota import RateLimited
from relay_serve._state import StateUnavailable
from relay_serve._wire import ErrorAnswer, error_body

__all__ = ["Refusal", "refusal"]


@frozen
class Refusal:
    """The answer, the ``relay_serve_rejected_total`` reason it counts under (None: not
    counted there), and the event to log for the operator (None: the client's business,
    or logged once per outage elsewhere)."""

    answer: ErrorAnswer
    reason: str | None = None
    log: str | None = None


def refusal(error: BaseException, request_id: str) -> Refusal | None:
    """The answer for ``error`` if it is one of the server's own refusals; None for
    anything else (the upstream's errors, bad requests)."""
    if isinstance(error, Overloaded):
        body = error_body(str(error), "server_overloaded", code="queue_full")
        retry = {"retry-after": str(int(error.retry_after))}
        return Refusal(ErrorAnswer(429, body, retry), "queue_full")
    if isinstance(error, Unauthorized):
        body = error_body(str(error), "invalid_request_error", code=error.code)
        return Refusal(ErrorAnswer(401, body))
    if isinstance(error, OverBudget):
        # OpenAI's own answer for an exhausted quota: 429 insufficient_quota, which the
        # SDKs raise as RateLimitError (402 is unknown to them).
        body = error_body(str(error), "insufficient_quota", code="insufficient_quota")
        return Refusal(ErrorAnswer(429, body), "over_budget")
    if isinstance(error, KeyStoreUnavailable):
        body = error_body("The key store is unavailable; retry.", "server_error")
        return Refusal(ErrorAnswer(503, body), log="serve.key_store_unavailable")
    if isinstance(error, RateLimited):
        body = error_body(str(error), error.kind, code="rate_limit_exceeded")
        return Refusal(ErrorAnswer(429, body, error.headers))
    if isinstance(error, StateUnavailable):
        # Logged once per outage by the outage policy, not once per request.
        body = error_body(
            f"The server cannot check this key's limits now (request {request_id}); retry shortly.",
            "server_error",
            code="state_unavailable",
        )
        return Refusal(ErrorAnswer(503, body, {"retry-after": "1"}))
    return None
