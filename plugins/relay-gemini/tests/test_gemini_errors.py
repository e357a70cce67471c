"""Error classification (answers and error objects mid-stream), retries, and the key kept
out of every error, log line and URL."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from gemini_support import KEY, MODEL, Recorder, answer, sse_answer, stream_of

from relay_core import (
    AuthenticationError,
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
from relay_core.testing import json_answer, secret_shown

TARGET = f"gemini/{MODEL}"
NO_RETRY = "providers:\n  gemini: {max_retries: 0}\n"


def error_body(code: int, status: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "status": status, **extra}}


KEY_INVALID = error_body(
    400,
    "INVALID_ARGUMENT",
    "API key not valid. Please pass a valid API key.",
    details=[
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
    ],
)
# Google's answer when the prepay balance is spent: a 402 now, a 429 before.
PREPAY_DEPLETED = error_body(
    402,
    "RESOURCE_EXHAUSTED",
    "Your prepayment credits are depleted. Please go to AI Studio at "
    "https://ai.studio/projects to manage your project and billing. Learn more at "
    "https://ai.google.dev/gemini-api/docs/billing#prepay.",
)
PER_DAY = error_body(
    429,
    "RESOURCE_EXHAUSTED",
    "You exceeded your current quota, please check your plan and billing details.",
    details=[
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": (
                        "generativelanguage.googleapis.com/generate_content_free_tier_requests"
                    ),
                    "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                    "quotaValue": "250",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"},
    ],
)
CASES = [
    (KEY_INVALID, AuthenticationError),
    (
        error_body(
            400,
            "INVALID_ARGUMENT",
            "API Key not found. Please pass a valid API key.",
            details=[
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ],
        ),
        AuthenticationError,
    ),
    (
        error_body(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200293) exceeds the maximum number of tokens allowed "
            "(1048576).",
        ),
        ContextWindowExceeded,
    ),
    (
        error_body(
            400, "INVALID_ARGUMENT", "Request payload size exceeds the limit: 20971520 bytes."
        ),
        ContextWindowExceeded,
    ),
    (
        error_body(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
        InvalidRequestError,
    ),
    (
        error_body(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
        InvalidRequestError,
    ),
    (
        error_body(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
        AuthenticationError,
    ),
    (
        error_body(404, "NOT_FOUND", "models/gemini-nope is not found for API version v1beta."),
        NotFoundError,
    ),
    (
        error_body(
            403,
            "PERMISSION_DENIED",
            "You do not have permission to access the File 8ah1l2bq7v0c or it may not exist.",
        ),
        NotFoundError,
    ),
    # Out of credit or without billing: waiting does not help, another provider may.
    (PREPAY_DEPLETED, QuotaExceeded),
    (dict(PREPAY_DEPLETED, error={**PREPAY_DEPLETED["error"], "code": 429}), QuotaExceeded),
    (
        error_body(
            400,
            "FAILED_PRECONDITION",
            "Gemini API free tier is not available in your country. Please enable billing "
            "on your project in Google AI Studio.",
        ),
        QuotaExceeded,
    ),
    (
        error_body(
            403,
            "PERMISSION_DENIED",
            "This API method requires billing to be enabled. Please enable billing on project "
            "#123456789 by visiting https://console.developers.google.com/billing/enable?"
            "project=123456789 then retry.",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "BILLING_DISABLED",
                    "domain": "googleapis.com",
                    "metadata": {"consumer": "projects/123456789"},
                }
            ],
        ),
        QuotaExceeded,
    ),
    # Every other 429 is a rate limit, the per-day ones included (see the README).
    (
        error_body(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota."),
        RateLimitError,
    ),
    (PER_DAY, RateLimitError),
    (error_body(500, "INTERNAL", "An internal error has occurred."), ProviderUnavailable),
    (
        error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        ProviderUnavailable,
    ),
    (
        error_body(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
        Timeout,
    ),
]


def _message(body: dict[str, object]) -> str:
    return str(body["error"]["message"])  # type: ignore[index]


@pytest.mark.parametrize(("body", "error"), CASES)
def test_answers_are_classified(
    make_hub: Callable[..., Hub], body: dict[str, object], error: type[ProviderError]
) -> None:
    status = int(body["error"]["code"])  # type: ignore[index]
    hub = make_hub(Recorder(json_answer(body, status)), NO_RETRY)
    with pytest.raises(ProviderError) as caught:
        hub.chat(TARGET, "Hi")
    assert type(caught.value) is error
    assert caught.value.provider_message == _message(body)
    assert (caught.value.status_code, caught.value.provider, caught.value.model) == (
        status,
        "gemini",
        MODEL,
    )


@pytest.mark.parametrize(("body", "error"), CASES)
def test_list_wrapped_error_bodies_are_classified_the_same(
    make_hub: Callable[..., Hub], body: dict[str, object], error: type[ProviderError]
) -> None:
    status = int(body["error"]["code"])  # type: ignore[index]
    hub = make_hub(Recorder(json_answer([body], status)), NO_RETRY)
    with pytest.raises(error) as caught:
        hub.chat(TARGET, "Hi")
    assert caught.value.provider_message == _message(body)


@pytest.mark.parametrize(("body", "error"), CASES)
def test_stream_error_objects_are_classified_like_answers(
    make_hub: Callable[..., Hub], body: dict[str, object], error: type[ProviderError]
) -> None:
    chunks = [*stream_of(answer([{"text": "Hello there"}], finish=None))[:1], body]
    hub = make_hub(Recorder(sse_answer(chunks)), NO_RETRY)
    with pytest.raises(ProviderError) as caught:
        list(hub.stream(TARGET, "Hi"))
    assert type(caught.value) is error
    assert caught.value.provider_message == _message(body)
    assert caught.value.status_code is None  # the stream itself had answered 200


def test_a_stream_error_object_without_a_code_goes_by_its_status(
    make_hub: Callable[..., Hub],
) -> None:
    body = {"error": {"message": "Try later.", "status": "UNAVAILABLE"}}
    with pytest.raises(ProviderUnavailable):
        list(make_hub(Recorder(sse_answer([body])), NO_RETRY).stream(TARGET, "Hi"))


def test_an_error_before_the_first_event_is_retried(
    make_hub: Callable[..., Hub], waits: list[float]
) -> None:
    recorder = Recorder(
        json_answer(error_body(503, "UNAVAILABLE", "The model is overloaded."), 503),
        sse_answer(stream_of(answer([{"text": "Hello"}]))),
    )
    events = list(make_hub(recorder).stream(TARGET, "Hi"))
    assert events[-1].response.text == "Hello"  # type: ignore[union-attr]
    assert len(recorder.requests) == 2
    assert len(waits) == 1


def test_retry_after_is_honoured(make_hub: Callable[..., Hub], waits: list[float]) -> None:
    recorder = Recorder(
        json_answer(
            error_body(429, "RESOURCE_EXHAUSTED", "slow down"), 429, **{"retry-after": "12"}
        ),
        json_answer(answer([{"text": "ok"}])),
    )
    assert make_hub(recorder).chat(TARGET, "Hi").text == "ok"
    assert waits == [12.0]


def test_an_exhausted_quota_is_not_retried_and_a_fallback_moves_on(
    make_hub: Callable[..., Hub], waits: list[float]
) -> None:
    recorder = Recorder(json_answer(PREPAY_DEPLETED, 402))
    with pytest.raises(QuotaExceeded) as caught:
        make_hub(recorder).chat(TARGET, "Hi")
    assert len(recorder.requests) == 1
    assert waits == []
    assert not caught.value.retryable
    # Another account (a second provider entry) is worth trying: the group moves on.
    catalog = (
        "providers:\n"
        "  other-account: {plugin: gemini, api_key: $env.GEMINI_API_KEY}\n"
        "models:\n"
        f"  mine: {{target: gemini/{MODEL}}}\n"
        f"  theirs: {{target: other-account/{MODEL}}}\n"
        "groups:\n"
        "  resilient: {strategy: fallback, members: [mine, theirs]}\n"
    )
    recorder = Recorder(json_answer(PREPAY_DEPLETED, 402), json_answer(answer([{"text": "ok"}])))
    got = make_hub(recorder, catalog).chat("resilient", "Hi")
    assert (got.text, got.provider, len(recorder.requests)) == ("ok", "other-account", 2)


def test_a_bad_key_is_not_retried(make_hub: Callable[..., Hub], waits: list[float]) -> None:
    recorder = Recorder(json_answer(KEY_INVALID, 400))
    with pytest.raises(AuthenticationError):
        make_hub(recorder).chat(TARGET, "Hi")
    assert len(recorder.requests) == 1
    assert waits == []


def test_the_key_never_reaches_an_error_a_log_line_or_a_url(
    make_hub: Callable[..., Hub],
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    overloaded = error_body(503, "UNAVAILABLE", f"Overloaded (key {KEY})")
    echo = error_body(400, "INVALID_ARGUMENT", f"API key not valid: {KEY}")
    recorder = Recorder(json_answer(overloaded, 503), json_answer(echo, 400))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as caught:
        make_hub(recorder).chat(TARGET, "Hi")
    assert recorder.requests[0].headers["x-goog-api-key"] == KEY  # it did go on the wire
    urls = [str(request.url) for request in recorder.requests]
    assert secret_shown(KEY, caught.value, caplog.text, *capsys.readouterr(), *urls) == []
    assert "API key not valid" in str(caught.value)
