"""Error classification: Cohere's documented error answers to Relay's error tree, errors
inside a stream, malformed answers, and the key kept out of every message and log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cohere_support import KEY, NO_RETRY, TARGET, answer, call, event, text, text_stream

from relay_core import (
    AuthenticationError,
    ContextWindowExceeded,
    Hub,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    Timeout,
)
from relay_core.testing import FakeServer, json_answer, secret_shown, sse_answer

MakeHub = Callable[..., Hub]


def cohere_error(message: str) -> dict[str, Any]:
    """Cohere's error body: ``{"message"}``, with an ``id`` on the v2 API."""
    return {"id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "message": message}


# The error reference's example messages, by status (docs.cohere.com/reference/errors).
ERRORS: list[tuple[int, Any, type[ProviderError], str]] = [
    (
        400,
        cohere_error("invalid request: temperature must be between 0 and 1.0 inclusive."),
        InvalidRequestError,
        "temperature",
    ),
    (
        400,
        cohere_error(
            "too many tokens: total number of tokens in the prompt cannot exceed "
            "4081 - received 4292. Try using a shorter prompt."
        ),
        ContextWindowExceeded,
        "cannot exceed",
    ),
    (
        400,
        cohere_error(
            "too many tokens: max tokens must be less than or equal to 4096, the "
            "maximum output for this model - received 8192."
        ),
        InvalidRequestError,
        "max tokens",
    ),
    (401, {"message": "no api key supplied"}, AuthenticationError, "no api key"),
    (
        402,
        cohere_error(
            "Please add or update your payment method at "
            "https://dashboard.cohere.com/billing?tab=payment to continue"
        ),
        QuotaExceeded,
        "payment method",
    ),
    (403, {"message": "Forbidden"}, AuthenticationError, "Forbidden"),
    (
        404,
        cohere_error(
            "model 'command-z' not found, make sure the correct model ID was used "
            "and that you have access to the model."
        ),
        NotFoundError,
        "not found",
    ),
    (
        422,
        cohere_error("invalid request: messages must not be empty"),
        InvalidRequestError,
        "messages",
    ),
    (
        429,
        cohere_error("trial token rate limit exceeded, limit is 100000 tokens per minute"),
        RateLimitError,
        "rate limit",
    ),
    (498, {"message": "invalid token"}, AuthenticationError, "invalid token"),
    (499, cohere_error("request cancelled"), ProviderUnavailable, "cancelled"),
    (500, {"message": "internal server error"}, ProviderUnavailable, "internal"),
    (501, {"message": "not implemented"}, InvalidRequestError, "not implemented"),
    (503, {"message": "service unavailable"}, ProviderUnavailable, "unavailable"),
    (504, {"message": "gateway timeout"}, Timeout, "timeout"),
]


@pytest.mark.parametrize(("status", "body", "error", "message"), ERRORS)
def test_error_classification(
    make_hub: MakeHub,
    waits: list[float],
    status: int,
    body: Any,
    error: type[ProviderError],
    message: str,
) -> None:
    with pytest.raises(error) as caught:
        make_hub(FakeServer(json_answer(body, status)), NO_RETRY).chat(TARGET, "Hi")
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert caught.value.provider == "cohere"
    assert message in str(caught.value)


def test_a_429_is_retried_after_the_wait_asked_for(make_hub: MakeHub, waits: list[float]) -> None:
    server = FakeServer(
        json_answer(cohere_error("Please wait and try again later"), 429, retry_after="4"),
        json_answer(answer(text("Hello!"))),
    )
    assert make_hub(server).chat(TARGET, "Hi").text == "Hello!"
    assert waits == [4.0]
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 402, 498])
def test_fail_fast_errors_are_not_retried(
    make_hub: MakeHub, waits: list[float], status: int
) -> None:
    server = FakeServer(json_answer(cohere_error("no"), status))
    with pytest.raises(ProviderError) as caught:
        make_hub(server).chat(TARGET, "Hi")
    assert not caught.value.retryable
    assert len(server.requests) == 1
    assert waits == []


def _failed_stream(make_hub: MakeHub, error: str, finish: str = "ERROR") -> ProviderError:
    events = [
        *text_stream("Hel")[:-1],
        event("message-end", delta={"finish_reason": finish, "error": error}),
    ]
    hub = make_hub(FakeServer(sse_answer(events)), NO_RETRY)
    with pytest.raises(ProviderError) as caught:
        list(hub.stream(TARGET, "Hi"))
    assert caught.value.status_code is None
    return caught.value


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("internal server error, this has been reported to our developers", ProviderUnavailable),
        (
            "too many tokens: multi-hop prompt is too long even after truncation",
            ContextWindowExceeded,
        ),
        ("invalid request: tool call id not found in previous tool calls", InvalidRequestError),
        ("streaming error - scroll down for more streaming errors", ProviderUnavailable),
    ],
)
def test_an_error_inside_a_stream_is_typed_by_its_wording(
    make_hub: MakeHub, message: str, error: type[ProviderError]
) -> None:
    found = _failed_stream(make_hub, message)
    assert type(found) is error
    assert message in str(found)


def test_a_finish_reason_error_without_a_message_ends_as_an_error(make_hub: MakeHub) -> None:
    events = [*text_stream("Hel")[:-1], event("message-end", delta={"finish_reason": "ERROR"})]
    end = list(make_hub(FakeServer(sse_answer(events))).stream(TARGET, "Hi"))[-1]
    assert end.response.finish_reason == "error"  # type: ignore[union-attr]
    assert end.response.text == "Hel"  # type: ignore[union-attr]


def test_a_failed_stream_start_is_classified_and_retried(
    make_hub: MakeHub, waits: list[float]
) -> None:
    server = FakeServer(
        json_answer(cohere_error("Please wait and try again later"), 429, retry_after="1"),
        sse_answer(text_stream("ok")),
    )
    events = list(make_hub(server).stream(TARGET, "Hi"))
    assert events[-1].response.text == "ok"  # type: ignore[union-attr]
    assert waits == [1.0]


# Answers that do not follow Cohere's schema: each a MalformedResponse, never a KeyError.
MALFORMED: list[tuple[httpx.Response, str]] = [
    (httpx.Response(200, text="<html>gateway</html>"), "not JSON"),
    (json_answer(["not", "an", "object"]), "not a JSON object"),
    (json_answer({"id": "x", "finish_reason": "COMPLETE"}), "no message"),
    (json_answer({"message": {"content": 42}}), "neither a list nor text"),
    (json_answer({"message": {"content": ["text"]}}), "content block"),
    (json_answer({"message": {"tool_calls": {"id": "x"}}}), "not a list"),
    (json_answer(answer(tool_calls=[{"type": "function"}])), "no id or no function name"),
    (json_answer(answer(tool_calls=[call("c1", "f", "{not json")])), "not JSON"),
    (json_answer(answer(tool_calls=[call("c1", "f", "[1, 2]")])), "not a JSON object"),
]


@pytest.mark.parametrize(("reply", "message"), MALFORMED)
def test_a_malformed_answer_is_a_malformed_response(
    make_hub: MakeHub, reply: httpx.Response, message: str
) -> None:
    with pytest.raises(MalformedResponse, match=message) as caught:
        make_hub(FakeServer(reply), NO_RETRY).chat(TARGET, "Hi")
    assert caught.value.provider == "cohere"


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (text_stream("cut")[:-1], "before its message-end"),
        (["not json at all"], "not JSON"),
        (["[1, 2]"], "not a JSON object"),
        (
            [
                event(
                    "tool-call-start",
                    index=0,
                    delta={
                        "message": {
                            "tool_calls": {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "f", "arguments": '{"a": '},
                            }
                        }
                    },
                ),
                event("message-end", delta={"finish_reason": "TOOL_CALL"}),
            ],
            "not JSON",
        ),
    ],
)
def test_a_malformed_stream_is_a_malformed_response(
    make_hub: MakeHub, events: list[Any], message: str
) -> None:
    hub = make_hub(FakeServer(sse_answer(events)), NO_RETRY)
    with pytest.raises(MalformedResponse, match=message):
        list(hub.stream(TARGET, "Hi"))


def test_the_key_never_shows_in_errors_or_logs(
    make_hub: MakeHub,
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    body = cohere_error(f"invalid api token {KEY}")
    server = FakeServer(json_answer(body, 401))
    with pytest.raises(AuthenticationError) as caught:
        make_hub(server).chat(TARGET, "Hi")
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert secret_shown(KEY, caught.value, caplog.text, *capsys.readouterr()) == []


def test_a_key_from_another_variable_through_the_catalog(
    make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CO_API_KEY")
    monkeypatch.setenv("COHERE_API_KEY", KEY)
    server = FakeServer(json_answer(answer(text("ok"))))
    catalog = "providers:\n  cohere: {api_key: $env.COHERE_API_KEY}\n"
    assert make_hub(server, catalog).chat(TARGET, "Hi").text == "ok"
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_transport_failures_are_typed(make_hub: MakeHub, waits: list[float]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ProviderUnavailable):
        make_hub(refuse, NO_RETRY).chat(TARGET, "Hi")
