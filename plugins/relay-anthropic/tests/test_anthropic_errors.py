"""Error classification (answers and stream error events), retries, and the key kept
out of every error and log line."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from anthropic_support import KEY, MODEL, message, stream_of, streamed

from relay_core import (
    AuthenticationError,
    ContentPolicyError,
    ContextWindowExceeded,
    Hub,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    Timeout,
)
from relay_core.testing import FakeServer, json_answer, secret_shown, sse_answer

TARGET = f"anthropic/{MODEL}"
NO_RETRY = "providers:\n  anthropic: {max_retries: 0}\n"


def error_body(kind: str, text: str) -> dict[str, object]:
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_1"}


CASES = [
    (400, "invalid_request_error", "max_tokens: Field required", InvalidRequestError),
    (
        400,
        "invalid_request_error",
        "prompt is too long: 250000 tokens > 200000 maximum",
        ContextWindowExceeded,
    ),
    (
        400,
        "invalid_request_error",
        "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000",
        ContextWindowExceeded,
    ),
    (
        400,
        "invalid_request_error",
        "Output blocked by content filtering policy",
        ContentPolicyError,
    ),
    (401, "authentication_error", "invalid x-api-key", AuthenticationError),
    (
        402,
        "billing_error",
        "Your credit balance is too low to access the Anthropic API.",
        QuotaExceeded,
    ),
    # Out of credit, or over the account's own spend limit, answered as a 400.
    (
        400,
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
        "Billing to upgrade or purchase credits.",
        QuotaExceeded,
    ),
    (
        400,
        "invalid_request_error",
        "You have reached your specified API usage limits. You will regain access on "
        "2026-12-01 at 00:00 UTC.",
        QuotaExceeded,
    ),
    (403, "permission_error", "Your API key does not have permission", AuthenticationError),
    (404, "not_found_error", "model: claude-nope", NotFoundError),
    (
        413,
        "request_too_large",
        "Request exceeds the maximum allowed number of bytes.",
        ContextWindowExceeded,
    ),
    (
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
        RateLimitError,
    ),
    (500, "api_error", "Internal server error", ProviderUnavailable),
    (504, "timeout_error", "Request timed out", Timeout),
    (529, "overloaded_error", "Overloaded", ProviderUnavailable),
]


@pytest.mark.parametrize(("status", "kind", "text", "error"), CASES)
def test_answers_are_classified(
    make_hub: Callable[..., Hub], status: int, kind: str, text: str, error: type[ProviderError]
) -> None:
    hub = make_hub(FakeServer(json_answer(error_body(kind, text), status)), NO_RETRY)
    with pytest.raises(ProviderError) as caught:
        hub.chat(TARGET, "Hi")
    assert type(caught.value) is error
    assert caught.value.provider_message == text
    assert (caught.value.status_code, caught.value.provider, caught.value.model) == (
        status,
        "anthropic",
        MODEL,
    )


@pytest.mark.parametrize(("status", "kind", "text", "error"), CASES)
def test_stream_error_events_are_classified_like_answers(
    make_hub: Callable[..., Hub], status: int, kind: str, text: str, error: type[ProviderError]
) -> None:
    events = stream_of(message([{"type": "text", "text": "Hello"}]))[:4]
    events.append({"type": "error", "error": {"type": kind, "message": text}})
    hub = make_hub(FakeServer(sse_answer(events, named=True)), NO_RETRY)
    with pytest.raises(ProviderError) as caught:
        list(hub.stream(TARGET, "Hi"))
    assert type(caught.value) is error
    assert caught.value.provider_message == text
    assert caught.value.status_code is None


def test_an_unknown_stream_error_type_is_unavailable(make_hub: Callable[..., Hub]) -> None:
    events = [{"type": "error", "error": {"type": "brand_new_error", "message": "?"}}]
    with pytest.raises(ProviderUnavailable):
        list(make_hub(FakeServer(sse_answer(events, named=True)), NO_RETRY).stream(TARGET, "Hi"))


def test_an_error_before_the_first_event_is_retried(
    make_hub: Callable[..., Hub], waits: list[float]
) -> None:
    server = FakeServer(
        json_answer(error_body("overloaded_error", "Overloaded"), 529),
        streamed(message([{"type": "text", "text": "Hello"}])),
    )
    events = list(make_hub(server).stream(TARGET, "Hi"))
    assert events[-1].response.text == "Hello"  # type: ignore[union-attr]
    assert len(server.requests) == 2
    assert len(waits) == 1


def test_retry_after_is_honoured(make_hub: Callable[..., Hub], waits: list[float]) -> None:
    server = FakeServer(
        json_answer(error_body("rate_limit_error", "slow down"), 429, retry_after="12"),
        json_answer(message([{"type": "text", "text": "ok"}])),
    )
    assert make_hub(server).chat(TARGET, "Hi").text == "ok"
    assert waits == [12.0]


def test_the_key_never_reaches_an_error_or_a_log_line(
    make_hub: Callable[..., Hub],
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    echo = error_body("authentication_error", f"invalid x-api-key: {KEY}")
    overloaded = error_body("overloaded_error", f"Overloaded (key {KEY})")
    server = FakeServer(json_answer(overloaded, 529), json_answer(echo, 401))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as caught:
        make_hub(server).chat(TARGET, "Hi")
    assert server.requests[0].headers["x-api-key"] == KEY  # it did go on the wire
    assert secret_shown(KEY, caught.value, caplog.text, *capsys.readouterr()) == []
    assert "invalid x-api-key" in str(caught.value)
