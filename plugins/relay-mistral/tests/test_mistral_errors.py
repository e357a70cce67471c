"""Error classification: Mistral's error bodies to Relay's error tree, retries that honour
``Retry-After``, errors inside a stream, and the key kept out of every message and log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from mistral_support import KEY, MODEL, chunk, completion

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
)
from relay_core.testing import FakeServer, json_answer, secret_shown, sse_answer

MakeHub = Callable[..., Hub]
TARGET = f"mistral/{MODEL}"
NO_RETRY = "providers:\n  mistral: {max_retries: 0}\n"


def mistral_error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": kind, "param": None, "code": code}


VALIDATION = {
    "detail": [
        {
            "type": "missing",
            "loc": ["body", "messages"],
            "msg": "Field required",
            "input": {"model": MODEL},
        }
    ]
}


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            400,
            mistral_error(
                "Prompt contains 40960 tokens and 0 draft tokens, too large for model with "
                "32768 maximum context length",
                "invalid_request_error",
            ),
            ContextWindowExceeded,
            "too large for model",
        ),
        (
            400,
            mistral_error(
                "Tool call id was call_0fyp but must be a-z, A-Z, 0-9, with a length of 9.",
                "invalid_function_call",
                "3280",
            ),
            InvalidRequestError,
            "with a length of 9",
        ),
        (401, {"detail": "Unauthorized"}, AuthenticationError, "Unauthorized"),
        (
            401,
            {"message": "Unauthorized", "request_id": "933f233947ff6d346065bb297e4a4d56"},
            AuthenticationError,
            "Unauthorized",
        ),
        (
            400,
            mistral_error("Invalid model: mistral-huge", "invalid_model", "1500"),
            NotFoundError,
            "Invalid model",
        ),
        (
            400,
            mistral_error("Unknown model: mistral-huge", "invalid_request_error", "unknown_model"),
            NotFoundError,
            "Unknown model",
        ),
        (404, {"detail": "Not Found"}, NotFoundError, "Not Found"),
        # Mistral documents no billing error; a 402, should one come, is QuotaExceeded.
        (
            402,
            mistral_error("Payment required", "invalid_request_error"),
            QuotaExceeded,
            "Payment required",
        ),
        (422, VALIDATION, InvalidRequestError, "Field required"),
        (
            429,
            mistral_error("Rate limit exceeded", "rate_limited", "1300"),
            RateLimitError,
            "Rate limit exceeded",
        ),
        (429, {"message": "Requests rate limit exceeded"}, RateLimitError, "rate limit"),
        (
            503,
            mistral_error("Service unavailable.", "service_unavailable"),
            ProviderUnavailable,
            "unavailable",
        ),
    ],
)
def test_error_classification(
    make_hub: MakeHub,
    waits: list[float],
    status: int,
    body: Any,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error) as caught:
        make_hub(FakeServer(json_answer(body, status)), NO_RETRY).chat(TARGET, "Hi")
    assert type(caught.value) is error
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert caught.value.provider == "mistral"  # type: ignore[attr-defined]
    assert message in str(caught.value)


def test_a_429_is_retried_after_the_wait_mistral_asks_for(
    make_hub: MakeHub, waits: list[float]
) -> None:
    server = FakeServer(
        json_answer(
            mistral_error("Rate limit exceeded", "rate_limited", "1300"),
            429,
            retry_after="3",
        ),
        json_answer(completion("Hello!")),
    )
    response = make_hub(server).chat(TARGET, "Hi")
    assert response.text == "Hello!"
    assert waits == [3.0]
    assert len(server.requests) == 2


@pytest.mark.parametrize(("status", "body"), [(401, {"detail": "Unauthorized"}), (422, VALIDATION)])
def test_fail_fast_errors_are_not_retried(
    make_hub: MakeHub, waits: list[float], status: int, body: Any
) -> None:
    server = FakeServer(json_answer(body, status))
    with pytest.raises((AuthenticationError, InvalidRequestError)):
        make_hub(server).chat(TARGET, "Hi")
    assert waits == []
    assert len(server.requests) == 1


def test_a_failed_stream_start_is_classified_and_retried(
    make_hub: MakeHub, waits: list[float]
) -> None:
    server = FakeServer(
        json_answer({"message": "Requests rate limit exceeded"}, 429, retry_after="1"),
        sse_answer([chunk({"content": "ok"}, "stop")], done=True),
    )
    events = list(make_hub(server).stream(TARGET, "Hi"))
    assert events[-1].response.text == "ok"  # type: ignore[union-attr]
    assert waits == [1.0]


# Each of Mistral's error types, sent inside a 200 stream, and what it becomes: the error
# its HTTP answer would be (the plugin's rules included), with no status code.
STREAM_ERRORS: list[tuple[str, str, type[Exception]]] = [
    ("invalid_request_error", "Invalid value for 'stop'", InvalidRequestError),
    ("invalid_model", "Invalid model: mistral-huge", NotFoundError),
    ("invalid_function_call", "Tool call arguments are not valid JSON", InvalidRequestError),
    ("authentication_error", "Invalid API key", AuthenticationError),
    ("rate_limit_error", "Tokens per minute limit exceeded", RateLimitError),
    ("rate_limited", "Rate limit exceeded", RateLimitError),
    ("server_error", "Generation failed", ProviderUnavailable),
    ("internal_server_error", "Internal server error", ProviderUnavailable),
    ("service_unavailable", "Service unavailable.", ProviderUnavailable),
]


def _failed_stream(make_hub: MakeHub, error: Any) -> pytest.ExceptionInfo[ProviderError]:
    events = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), error]
    hub = make_hub(FakeServer(sse_answer(events)), NO_RETRY)
    with pytest.raises(ProviderError) as caught:
        list(hub.stream(TARGET, "Hi"))
    return caught


def test_every_mapped_stream_error_type_is_tested() -> None:
    from relay_mistral._events import _ERROR_STATUS

    assert {kind for kind, _, _ in STREAM_ERRORS} == set(_ERROR_STATUS)


@pytest.mark.parametrize(("kind", "message", "error"), STREAM_ERRORS)
def test_an_error_inside_a_stream_is_typed_by_its_type(
    make_hub: MakeHub, waits: list[float], kind: str, message: str, error: type[Exception]
) -> None:
    caught = _failed_stream(make_hub, mistral_error(message, kind))
    assert type(caught.value) is error
    assert caught.value.status_code is None
    assert caught.value.provider == "mistral"
    assert message in str(caught.value)


def test_a_context_window_error_inside_a_stream(make_hub: MakeHub, waits: list[float]) -> None:
    message = "Prompt contains 40960 tokens, too large for model with 32768 maximum context length"
    caught = _failed_stream(make_hub, mistral_error(message, "invalid_request_error"))
    assert type(caught.value) is ContextWindowExceeded


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # An unknown type is classified as a 500 answer: Mistral failed on its side.
        (mistral_error("Something new went wrong", "brand_new_error"), ProviderUnavailable),
        ({"error": "stream interrupted"}, ProviderUnavailable),
        # An unknown type whose code is an HTTP status is classified as that status.
        ({"object": "error", "message": "No such model", "code": 404}, NotFoundError),
        ({"object": "error", "message": "Out of credit", "code": "402"}, QuotaExceeded),
        # Mistral's own numeric codes are not HTTP statuses.
        (mistral_error("Something new", "brand_new_error", "3051"), ProviderUnavailable),
    ],
)
def test_an_unknown_error_inside_a_stream_is_classified_like_an_http_answer(
    make_hub: MakeHub, waits: list[float], error: Any, expected: type[Exception]
) -> None:
    caught = _failed_stream(make_hub, error)
    assert type(caught.value) is expected
    assert caught.value.status_code is None


def test_the_key_never_shows_in_errors_or_logs(
    make_hub: MakeHub,
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    body = mistral_error(f"Invalid key {KEY} for this workspace", "invalid_request_error")
    with pytest.raises(AuthenticationError) as caught:
        make_hub(FakeServer(json_answer(body, 401))).chat(TARGET, "Hi")
    assert secret_shown(KEY, caught.value, caplog.text, *capsys.readouterr()) == []


def test_transport_failures_are_typed(make_hub: MakeHub, waits: list[float]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ProviderUnavailable):
        make_hub(refuse, NO_RETRY).chat(TARGET, "Hi")
