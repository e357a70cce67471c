"""Error classification: Mistral's error bodies to Relay's error tree, retries that honour
``Retry-After``, errors inside a stream, and the key kept out of every message and log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from mistral_support import KEY, MODEL, Recorder, chunk, completion, json_answer, sse_answer

from relay_core import (
    AuthenticationError,
    ContextWindowExceeded,
    Hub,
    InvalidRequestError,
    NotFoundError,
    ProviderUnavailable,
    RateLimitError,
)

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
        (404, {"detail": "Not Found"}, NotFoundError, "Not Found"),
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
        make_hub(Recorder(json_answer(body, status)), NO_RETRY).chat(TARGET, "Hi")
    assert type(caught.value) is error
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert caught.value.provider == "mistral"  # type: ignore[attr-defined]
    assert message in str(caught.value)


def test_a_429_is_retried_after_the_wait_mistral_asks_for(
    make_hub: MakeHub, waits: list[float]
) -> None:
    recorder = Recorder(
        json_answer(
            mistral_error("Rate limit exceeded", "rate_limited", "1300"),
            429,
            **{"retry-after": "3"},
        ),
        json_answer(completion("Hello!")),
    )
    response = make_hub(recorder).chat(TARGET, "Hi")
    assert response.text == "Hello!"
    assert waits == [3.0]
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(("status", "body"), [(401, {"detail": "Unauthorized"}), (422, VALIDATION)])
def test_fail_fast_errors_are_not_retried(
    make_hub: MakeHub, waits: list[float], status: int, body: Any
) -> None:
    recorder = Recorder(json_answer(body, status))
    with pytest.raises((AuthenticationError, InvalidRequestError)):
        make_hub(recorder).chat(TARGET, "Hi")
    assert waits == []
    assert len(recorder.requests) == 1


def test_a_failed_stream_start_is_classified_and_retried(
    make_hub: MakeHub, waits: list[float]
) -> None:
    recorder = Recorder(
        json_answer({"message": "Requests rate limit exceeded"}, 429, **{"retry-after": "1"}),
        sse_answer([chunk({"content": "ok"}, "stop")]),
    )
    events = list(make_hub(recorder).stream(TARGET, "Hi"))
    assert events[-1].response.text == "ok"  # type: ignore[union-attr]
    assert waits == [1.0]


def test_an_error_inside_a_stream_is_typed(make_hub: MakeHub, waits: list[float]) -> None:
    events = [
        chunk({"content": "Hel"}),
        mistral_error("Rate limit exceeded", "rate_limited", "1300"),
    ]
    hub = make_hub(Recorder(sse_answer(events, done=False)), NO_RETRY)
    with pytest.raises(RateLimitError, match="Rate limit exceeded"):
        list(hub.stream(TARGET, "Hi"))


def test_the_key_never_shows_in_errors_or_logs(
    make_hub: MakeHub,
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    body = mistral_error(f"Invalid key {KEY} for this workspace", "invalid_request_error")
    with pytest.raises(AuthenticationError) as caught:
        make_hub(Recorder(json_answer(body, 401))).chat(TARGET, "Hi")
    error = caught.value
    for text in (str(error), repr(error), error.provider_message, error.message):
        assert KEY not in text
    out = capsys.readouterr()
    assert KEY not in out.out + out.err + caplog.text


def test_a_missing_key_is_a_credential_error_before_sending(
    make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from relay_core import CredentialError, ProviderSettings, Request
    from relay_mistral._adapter import MistralProvider

    monkeypatch.delenv("MISTRAL_API_KEY")
    recorder = Recorder()
    with pytest.raises(CredentialError, match="MISTRAL_API_KEY"):
        make_hub(recorder).chat(TARGET, "Hi")
    provider = MistralProvider(ProviderSettings(name="mistral"))
    with pytest.raises(AuthenticationError, match="MISTRAL_API_KEY"):
        asyncio.run(provider.chat(Request.from_prompt("Hi", model=MODEL)))
    assert recorder.requests == []


def test_transport_failures_are_typed(make_hub: MakeHub, waits: list[float]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ProviderUnavailable):
        make_hub(refuse, NO_RETRY).chat(TARGET, "Hi")
