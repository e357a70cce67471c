"""The HTTP boundary: status and transport errors become Relay's typed errors, the pooled
clients speak JSON and SSE, and retries honour the policy. No network: MockTransport only."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import inspect
import json
import types
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import relay_core.http as relay_http
from relay_core.errors import (
    AuthenticationError,
    ContentPolicyError,
    ContextWindowExceeded,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    Timeout,
)
from relay_core.http import (
    HttpClient,
    HttpPool,
    RetryPolicy,
    classify_status,
    retrying,
    translate_transport_error,
)
from relay_core.providers import ErrorRule, ProviderSettings
from relay_core.streaming import SSEEvent

BASE_URL = "https://api.acme.test/v1"
LEAKED_KEY = "sk-proj-abcdefghijklmnopqrstuvwx"


# ---------------------------------------------------------------------------- classify_status


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (402, QuotaExceeded),
        (403, AuthenticationError),
        (404, NotFoundError),
        (408, Timeout),
        (409, ProviderUnavailable),
        (413, ContextWindowExceeded),
        (418, InvalidRequestError),  # a 4xx nobody maps: the request is at fault
        (422, InvalidRequestError),
        (429, RateLimitError),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
        (504, Timeout),
        (529, ProviderUnavailable),  # a 5xx nobody maps: the provider is at fault
    ],
)
def test_default_status_mapping(status: int, expected: type[ProviderError]) -> None:
    error = classify_status(status, "something went wrong", {}, provider="acme", model="m-1")
    assert type(error) is expected
    assert error.status_code == status
    assert error.provider == "acme"
    assert error.model == "m-1"
    assert error.provider_message == "something went wrong"
    assert f"HTTP {status}" in str(error)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '{"error": {"message": "This model\'s maximum context length is 8192 tokens.",'
            ' "code": "context_length_exceeded"}}',
            ContextWindowExceeded,
        ),
        ("Maximum Context Length exceeded", ContextWindowExceeded),
        ("prompt is too long: 210000 tokens > 200000 maximum", ContextWindowExceeded),
        ('{"error": {"code": "content_policy_violation"}}', ContentPolicyError),
        ('{"error": {"code": "content_filter", "message": "filtered"}}', ContentPolicyError),
        ("your request was malformed", InvalidRequestError),
    ],
)
def test_common_wording_in_a_400_refines_the_class(
    body: str, expected: type[ProviderError]
) -> None:
    assert type(classify_status(400, body, {})) is expected


def test_common_wording_does_not_turn_a_server_error_into_a_client_error() -> None:
    # A 5xx is the provider's fault whatever its text says: keep it retryable.
    error = classify_status(500, "context_length_exceeded while routing", {})
    assert type(error) is ProviderUnavailable
    assert error.retryable


def test_an_exhausted_quota_is_not_a_rate_limit_to_wait_out() -> None:
    # OpenAI answers 429 for both; waiting ends one and never the other.
    body = (
        '{"error": {"message": "You exceeded your current quota, please check your plan '
        'and billing details.", "type": "insufficient_quota", "code": "insufficient_quota"}}'
    )
    error = classify_status(429, body, {"retry-after": "20"}, provider="openai")
    assert type(error) is QuotaExceeded
    assert not error.retryable
    assert "exceeded your current quota" in str(error)
    assert type(classify_status(429, '{"error": {"code": "rate_limit_exceeded"}}', {})) is (
        RateLimitError
    )


RULES = [
    ErrorRule(ContentPolicyError, status=400, contains="SAFETY"),
    ErrorRule(NotFoundError, status=400),
    ErrorRule(ProviderUnavailable, contains="overloaded_error"),
]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        # status and contains: both must hold (contains is case-insensitive)
        (400, "blocked for safety reasons", ContentPolicyError),
        (403, "blocked for safety reasons", AuthenticationError),
        # status only: beats the common wording rules and the status table
        (400, "context_length_exceeded", NotFoundError),
        (400, "anything", NotFoundError),
        # contains only: any status
        (529, '{"type": "error", "error": {"type": "overloaded_error"}}', ProviderUnavailable),
        (401, "overloaded_error", ProviderUnavailable),
        # no rule matches: the defaults decide
        (404, "no such model", NotFoundError),
        (413, "too big", ContextWindowExceeded),
    ],
)
def test_adapter_rules_take_precedence_in_order(
    status: int, body: str, expected: type[ProviderError]
) -> None:
    assert type(classify_status(status, body, {}, rules=RULES)) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # OpenAI's Responses API: an unknown model is a 400 with its code
        (
            '{"error": {"message": "The requested model \'x\' does not exist.", '
            '"type": "invalid_request_error", "param": "model", "code": "model_not_found"}}',
            NotFoundError,
        ),
        ('{"code": "model_not_found", "message": "no such model"}', NotFoundError),
        # the code compared whole, never found in the message text
        (
            '{"error": {"message": "model_not_found?", "code": "invalid_value"}}',
            InvalidRequestError,
        ),
        ("model_not_found", InvalidRequestError),
        ('{"error": {"code": 400}}', InvalidRequestError),
    ],
)
def test_a_rule_may_match_the_error_code_of_the_body(
    body: str, expected: type[ProviderError]
) -> None:
    rules = [ErrorRule(NotFoundError, code="model_not_found")]
    assert type(classify_status(400, body, {}, rules=rules)) is expected


def test_a_rule_may_read_the_error_type_from_a_header() -> None:
    # AWS names the error in a header; its body is only {"message": ...}.
    rules = [
        ErrorRule(QuotaExceeded, header=("x-amzn-errortype", "ServiceQuotaExceededException")),
        ErrorRule(RateLimitError, header=("X-Amzn-ErrorType", "ThrottlingException")),
    ]
    quota = {"X-Amzn-ErrorType": "ServiceQuotaExceededException:http://internal.amazon.com/"}
    assert type(classify_status(400, '{"message": "x"}', quota, rules=rules)) is QuotaExceeded
    throttled = {"x-amzn-errortype": "ThrottlingException", "retry-after": "2"}
    error = classify_status(400, '{"message": "slow down"}', throttled, rules=rules)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 2.0
    # Without the header the rule does not apply: the status decides.
    assert type(classify_status(400, '{"message": "x"}', {}, rules=rules)) is InvalidRequestError


def test_a_rule_that_names_rate_limit_error_carries_retry_after() -> None:
    rules = [ErrorRule(RateLimitError, contains="quota")]
    error = classify_status(400, "quota exhausted", {"retry-after": "12"}, rules=rules)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 12.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # OpenAI
        (
            {
                "error": {
                    "message": "The model `gpt-9` does not exist",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
            "The model `gpt-9` does not exist",
        ),
        # Anthropic
        (
            {
                "type": "error",
                "error": {"type": "not_found_error", "message": "model: claude-9"},
            },
            "model: claude-9",
        ),
        # Gemini
        (
            {
                "error": {
                    "code": 404,
                    "message": "models/gemini-9 is not found for API version v1beta",
                    "status": "NOT_FOUND",
                }
            },
            "models/gemini-9 is not found for API version v1beta",
        ),
        # Ollama and friends: the error is a bare string
        ({"error": "model 'llama9' not found"}, "model 'llama9' not found"),
        # FastAPI-style servers (vLLM)
        ({"detail": "Not Found"}, "Not Found"),
    ],
)
def test_the_providers_own_message_is_extracted(body: dict[str, Any], message: str) -> None:
    error = classify_status(404, json.dumps(body), {}, provider="acme")
    assert isinstance(error, NotFoundError)
    assert error.provider_message == message
    assert str(error) == f"not found (acme, HTTP 404): {message}"


def test_a_plain_text_body_is_the_message() -> None:
    error = classify_status(502, "  upstream connect error or disconnect\n", {})
    assert error.provider_message == "upstream connect error or disconnect"


def test_an_empty_body_says_so() -> None:
    assert classify_status(503, "", {}).provider_message == "(empty body)"


def test_a_huge_html_body_is_cut() -> None:
    body = "<html>" + "x" * 10_000 + "</html>"
    error = classify_status(502, body, {})
    assert error.provider_message.startswith("<html>xxx")
    assert len(error.provider_message) <= 2000


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(
            {
                "error": {
                    "message": f"Incorrect API key provided: {LEAKED_KEY}. You can find your"
                    " API key at https://platform.openai.com/account/api-keys.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            }
        ),
        f"Incorrect API key provided: {LEAKED_KEY}",
        f"<html><body>bad header Authorization: Bearer {LEAKED_KEY}</body></html>",
    ],
)
def test_a_key_echoed_in_the_body_is_masked(body: str) -> None:
    error = classify_status(401, body, {}, provider="acme")
    assert isinstance(error, AuthenticationError)
    assert "Incorrect API key provided" in error.provider_message or "bad header" in str(error)
    for text in (str(error), repr(error), error.provider_message, error.message, *error.args):
        assert LEAKED_KEY not in text
        assert "abcdefghijklmnopqrstuvwx" not in text


# ---------------------------------------------------------------------------- Retry-After


def test_429_retry_after_seconds() -> None:
    error = classify_status(429, "slow down", {"Retry-After": "7"})
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0
    assert error.retryable


def test_503_retry_after_is_kept_too() -> None:
    error = classify_status(503, "overloaded", {"Retry-After": "4"})
    assert isinstance(error, ProviderUnavailable)
    assert error.retry_after == 4.0
    assert classify_status(400, "bad", {"Retry-After": "4"}).retry_after is None


def test_429_retry_after_ms_wins_over_seconds() -> None:
    error = classify_status(429, "slow down", {"retry-after-ms": "1500", "retry-after": "9"})
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 1.5


def test_429_retry_after_http_date(monkeypatch: pytest.MonkeyPatch) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    when = email.utils.parsedate_to_datetime(date).timestamp()
    # Freeze the module's clock, not the whole process's.
    clock = types.SimpleNamespace(time=lambda: when - 120, monotonic=relay_http.time.monotonic)
    monkeypatch.setattr(relay_http, "time", clock)
    error = classify_status(429, "slow down", {"retry-after": date})
    assert isinstance(error, RateLimitError)
    assert error.retry_after == pytest.approx(120.0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # in the past: no wait
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after-ms": "junk", "retry-after": "3"}, 3.0),
    ],
)
def test_429_odd_retry_after_values(headers: dict[str, str], expected: float | None) -> None:
    error = classify_status(429, "slow down", headers)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == expected


# ---------------------------------------------------------------------------- transport errors


_TRANSPORT_BASES = (
    httpx.TransportError,
    httpx.TimeoutException,
    httpx.DecodingError,
    httpx.StreamError,
)


def _httpx_transport_error_classes() -> list[type[Exception]]:
    """Every httpx exception class under the four bases, exported or not, found by walking
    the module and the class tree, so a class added to httpx is covered without a edit."""
    found: set[type[Exception]] = set()

    def walk(cls: type[Exception]) -> None:
        if cls in found or not cls.__module__.startswith("httpx"):
            return
        found.add(cls)
        for sub in cls.__subclasses__():
            walk(sub)

    for name in dir(httpx):
        obj = getattr(httpx, name)
        if isinstance(obj, type) and issubclass(obj, _TRANSPORT_BASES):
            walk(obj)
    for base in _TRANSPORT_BASES:
        walk(base)
    return sorted(found, key=lambda cls: cls.__name__)


def _instantiate(cls: type[Exception]) -> Exception:
    required = [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return cls("boom") if required else cls()


def _expected_translation(cls: type[Exception]) -> type[ProviderError]:
    if issubclass(cls, httpx.TimeoutException):
        return Timeout
    if issubclass(cls, httpx.DecodingError):
        return MalformedResponse
    return ProviderUnavailable


HTTPX_ERRORS = _httpx_transport_error_classes()


def test_the_walk_finds_the_known_classes() -> None:
    # Guards the enumeration itself: if it found nothing, the tests below would pass vacuously.
    names = {cls.__name__ for cls in HTTPX_ERRORS}
    assert {
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "WriteTimeout",
        "PoolTimeout",
        "ReadError",
        "WriteError",
        "CloseError",
        "RemoteProtocolError",
        "LocalProtocolError",
        "ProxyError",
        "UnsupportedProtocol",
        "DecodingError",
        "StreamConsumed",
        "StreamClosed",
        "ResponseNotRead",
        "RequestNotRead",
    } <= names


@pytest.mark.parametrize("cls", HTTPX_ERRORS, ids=lambda cls: cls.__name__)
def test_every_httpx_transport_error_is_translated(cls: type[Exception]) -> None:
    error = translate_transport_error(_instantiate(cls), provider="acme", model="m-1")
    assert type(error) is _expected_translation(cls)
    assert error.retryable
    assert error.provider == "acme"
    assert error.model == "m-1"
    assert error.status_code is None
    assert cls.__name__ in str(error)


@pytest.mark.parametrize("cls", HTTPX_ERRORS, ids=lambda cls: cls.__name__)
async def test_every_httpx_transport_error_is_chained_through_the_client(
    cls: type[Exception], acme: Callable[..., HttpClient]
) -> None:
    original = _instantiate(cls)

    def handler(request: httpx.Request) -> httpx.Response:
        raise original

    client = acme(handler)
    with pytest.raises(_expected_translation(cls)) as caught:
        await client.request("GET", "/models", model="m-1")
    assert caught.value.__cause__ is original
    assert caught.value.provider == "acme"
    assert caught.value.retryable


# ---------------------------------------------------------------------------- HttpClient


Handler = Callable[[httpx.Request], Any]


@pytest.fixture
async def acme() -> AsyncIterator[Callable[..., HttpClient]]:
    """Build HttpClients for provider ``acme`` over a MockTransport; pools close after."""
    pools: list[HttpPool] = []

    def make(
        handler: Handler,
        *,
        rules: list[ErrorRule] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
    ) -> HttpClient:
        pool = HttpPool(transport=httpx.MockTransport(handler))
        pools.append(pool)
        settings = ProviderSettings(name="acme", timeout=timeout, headers=headers or {})
        return HttpClient(pool, settings, base_url=BASE_URL, rules=rules or [])

    yield make
    for pool in pools:
        await pool.aclose()


async def test_json_round_trip(acme: Callable[..., HttpClient]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "chat-1", "choices": [{"text": "hi"}]})

    # Header names are case-insensitive: the call's "x-override" replaces the catalog's.
    client = acme(handler, headers={"x-team": "evals", "X-Override": "from-settings"})
    answer = await client.json(
        "POST",
        "/chat/completions",
        json={"model": "m-1", "messages": [{"role": "user", "content": "héllo"}]},
        headers={"x-override": "from-call", "x-request": "42"},
    )
    assert answer == {"id": "chat-1", "choices": [{"text": "hi"}]}
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.acme.test/v1/chat/completions"
    assert request.headers["x-team"] == "evals"
    assert request.headers.get_list("x-override") == ["from-call"]
    assert request.headers["x-request"] == "42"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "model": "m-1",
        "messages": [{"role": "user", "content": "héllo"}],
    }


@pytest.mark.parametrize("path", ["models", "/models"])
async def test_paths_join_the_base_url(path: str, acme: Callable[..., HttpClient]) -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json=[])

    await acme(handler).json("GET", path)
    assert urls == ["https://api.acme.test/v1/models"]


async def test_error_status_raises_the_typed_error(acme: Callable[..., HttpClient]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={"error": {"message": f"Incorrect API key provided: {LEAKED_KEY}"}},
        )

    with pytest.raises(AuthenticationError) as caught:
        await acme(handler).json("POST", "/chat/completions", json={}, model="m-1")
    error = caught.value
    assert error.provider == "acme"
    assert error.model == "m-1"
    assert error.status_code == 401
    assert error.provider_message.startswith("Incorrect API key provided: ")
    assert str(error).startswith("authentication failed (acme/m-1, HTTP 401): ")
    assert LEAKED_KEY not in str(error)


async def test_the_adapters_rules_apply_to_its_client(acme: Callable[..., HttpClient]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "blocked: SAFETY"}})

    client = acme(handler, rules=[ErrorRule(ContentPolicyError, contains="safety")])
    with pytest.raises(ContentPolicyError, match="blocked: SAFETY"):
        await client.json("POST", "/generate", json={})


async def test_a_non_json_success_is_malformed(acme: Callable[..., HttpClient]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>gateway says hi</html>")

    with pytest.raises(MalformedResponse) as caught:
        await acme(handler).json("GET", "/models", model="m-1")
    assert caught.value.provider == "acme"
    assert caught.value.status_code == 200
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, ValueError)
    assert "gateway says hi" in str(caught.value)


async def test_connection_refused_is_provider_unavailable(
    acme: Callable[..., HttpClient],
) -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")

    def handler(request: httpx.Request) -> httpx.Response:
        raise refused

    with pytest.raises(ProviderUnavailable) as caught:
        await acme(handler).json("GET", "/models")
    assert caught.value.__cause__ is refused
    assert caught.value.provider == "acme"
    assert "Connection refused" in str(caught.value)


SSE_BODY = (
    b": keep-alive\n\n"
    b'data: {"delta": "Hel"}\n\n'
    b'data: {"delta": "lo \xc3\xa9"}\n\n'
    b"event: done\ndata: [DONE]\n\n"
)


async def _chunks(*pieces: bytes, error: Exception | None = None) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
    if error is not None:
        raise error


async def test_the_timeout_bounds_the_whole_answer_not_each_read(
    acme: Callable[..., HttpClient],
) -> None:
    async def drip() -> AsyncIterator[bytes]:
        # Each piece well within any read timeout; the whole answer far beyond the call's.
        yield b'{"answer": "'
        for _ in range(200):
            await asyncio.sleep(0.01)
            yield b"."
        yield b'"}'

    client = acme(lambda request: httpx.Response(200, content=drip()), timeout=0.3)
    with pytest.raises(Timeout, match=r"0\.3 s timeout"):
        await client.json("POST", "/slow", model="m")


async def test_a_request_runs_in_its_callers_task(acme: Callable[..., HttpClient]) -> None:
    # Bounding the whole answer must not cost a task per request (asyncio.wait_for's).
    seen: list[asyncio.Task[Any] | None] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(asyncio.current_task())
        return httpx.Response(200, json={})

    client = acme(handler, timeout=5.0)
    await client.json("POST", "/chat")
    assert seen == [asyncio.current_task()]


async def test_stream_sse_yields_parsed_events(acme: Callable[..., HttpClient]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        # Chunk boundaries fall inside a line and inside the two bytes of "é".
        cut1, cut2 = SSE_BODY.index(b"Hel") + 1, SSE_BODY.index(b"\xa9")
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=_chunks(SSE_BODY[:cut1], SSE_BODY[cut1:cut2], SSE_BODY[cut2:]),
        )

    client = acme(handler, headers={"x-team": "evals"})
    events = [event async for event in client.stream_sse("POST", "/chat", json={"stream": True})]
    assert events == [
        SSEEvent('{"delta": "Hel"}'),
        SSEEvent('{"delta": "lo é"}'),
        SSEEvent("[DONE]", event="done"),
    ]
    assert [event.json() for event in events[:2]] == [{"delta": "Hel"}, {"delta": "lo é"}]
    (request,) = seen
    assert str(request.url) == "https://api.acme.test/v1/chat"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["x-team"] == "evals"
    assert json.loads(request.content) == {"stream": True}


async def test_stream_sse_lets_the_adapter_choose_accept(
    acme: Callable[..., HttpClient],
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"data: x\n\n")

    client = acme(handler)
    events = [e async for e in client.stream_sse("GET", "/s", headers={"Accept": "*/*"})]
    assert events == [SSEEvent("x")]
    assert seen[0].headers.get_list("accept") == ["*/*"]


async def test_stream_sse_error_status_raises_with_the_providers_message(
    acme: Callable[..., HttpClient],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            headers={"retry-after": "4"},
            json={"type": "error", "error": {"type": "rate_limit_error", "message": "Too fast"}},
        )

    with pytest.raises(RateLimitError) as caught:
        async for _ in acme(handler).stream_sse("POST", "/chat", json={}, model="m-1"):
            pass
    assert caught.value.provider_message == "Too fast"
    assert caught.value.provider == "acme"
    assert caught.value.model == "m-1"
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 4.0


async def test_stream_sse_cut_mid_stream_is_provider_unavailable(
    acme: Callable[..., HttpClient],
) -> None:
    cut = httpx.ReadError("connection reset by peer")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_chunks(b"data: one\n\ndata: tw", error=cut))

    received: list[SSEEvent] = []

    async def consume() -> None:
        async for event in acme(handler).stream_sse("POST", "/chat"):
            received.append(event)

    with pytest.raises(ProviderUnavailable) as caught:
        await consume()
    assert received == [SSEEvent("one")]  # the half event is not yielded
    assert caught.value.__cause__ is cut


STREAM_METHODS = ("stream_sse", "stream_bytes", "stream_lines")


@pytest.mark.parametrize("method", STREAM_METHODS)
async def test_every_stream_method_raises_statuses_and_transport_errors_as_relays(
    method: str, acme: Callable[..., HttpClient]
) -> None:
    """The three stream methods share one lease and error translation: each gives the
    same typed errors for a refused status, a refused connection and a cut stream."""

    async def drain(handler: Handler) -> list[Any]:
        return [item async for item in getattr(acme(handler), method)("GET", "/s", model="m-1")]

    with pytest.raises(RateLimitError) as refused:
        await drain(lambda request: httpx.Response(429, json={"error": {"message": "Slow"}}))
    assert (refused.value.provider, refused.value.model) == ("acme", "m-1")
    assert refused.value.provider_message == "Slow"

    down = httpx.ConnectError("[Errno 111] Connection refused")

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise down

    with pytest.raises(ProviderUnavailable) as caught:
        await drain(unreachable)
    assert caught.value.__cause__ is down
    assert caught.value.provider == "acme"

    cut = httpx.ReadError("connection reset by peer")
    with pytest.raises(ProviderUnavailable) as caught:
        await drain(lambda request: httpx.Response(200, content=_chunks(b"data: a\n\n", error=cut)))
    assert caught.value.__cause__ is cut


async def test_pool_reuses_one_client_per_provider_and_base_url() -> None:
    pool = HttpPool(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    first = pool.client("acme", BASE_URL, timeout=5.0)
    assert pool.client("acme", BASE_URL, timeout=5.0) is first
    other_url = pool.client("acme", "https://eu.acme.test/v1", timeout=5.0)
    other_provider = pool.client("globex", BASE_URL, timeout=5.0)
    assert len({id(first), id(other_url), id(other_provider)}) == 3
    assert first.base_url == httpx.URL(BASE_URL + "/")

    await pool.aclose()
    assert first.is_closed
    assert other_url.is_closed
    assert other_provider.is_closed
    # A closed client is never handed out again.
    fresh = pool.client("acme", BASE_URL, timeout=5.0)
    assert fresh is not first
    assert not fresh.is_closed
    await pool.aclose()
    assert fresh.is_closed


async def test_clients_of_one_provider_share_the_pooled_client() -> None:
    seen: list[httpx.Request] = []
    pool = HttpPool(
        transport=httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(200))
    )
    settings = ProviderSettings(name="acme")
    one = HttpClient(pool, settings, base_url=BASE_URL)
    two = HttpClient(pool, settings, base_url=BASE_URL + "/")  # a trailing slash is the same
    await one.request("GET", "/a")
    await two.request("GET", "/b")
    assert [str(request.url) for request in seen] == [BASE_URL + "/a", BASE_URL + "/b"]
    with pool.lease("acme", BASE_URL, timeout=5.0) as leased:
        assert leased is pool.client("acme", BASE_URL, timeout=5.0)
    await pool.aclose()


async def test_a_few_calls_at_a_time_keep_one_client_and_its_connections() -> None:
    pool = HttpPool()
    first = pool.client("acme", BASE_URL, timeout=5.0)
    for _ in range(50):
        with (
            pool.lease("acme", BASE_URL, timeout=5.0) as a,
            pool.lease("acme", BASE_URL, timeout=5.0) as b,
        ):
            assert a is b is first
    await pool.aclose()


async def test_many_calls_at_once_spread_over_more_clients() -> None:
    # One httpx client slows down with hundreds of calls in its pool (encode/httpcore#1035).
    pool = HttpPool()
    with contextlib.ExitStack() as held:
        clients = [held.enter_context(pool.lease("acme", BASE_URL, timeout=5.0)) for _ in range(64)]
        distinct = {id(client) for client in clients}
        assert len(distinct) == 64 // relay_http._CALLS_PER_SHARD
        assert max(clients.count(client) for client in clients) == relay_http._CALLS_PER_SHARD
    # Once they are done, the next call takes the first client again.
    with pool.lease("acme", BASE_URL, timeout=5.0) as again:
        assert again is clients[0]
    await pool.aclose()
    assert all(client.is_closed for client in clients)


async def test_a_test_transport_serves_every_call_with_one_client() -> None:
    pool = HttpPool(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    with contextlib.ExitStack() as held:
        clients = {
            id(held.enter_context(pool.lease("acme", BASE_URL, timeout=5.0))) for _ in range(64)
        }
    assert len(clients) == 1
    await pool.aclose()


# ---------------------------------------------------------------------------- retries


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the waits between attempts instead of sleeping through them."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(relay_http, "_sleep", fake_sleep)
    return recorded


class Script:
    """An async callable that raises or returns the scripted outcomes in turn."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def test_retries_until_success(sleeps: list[float]) -> None:
    call = Script(ProviderUnavailable("down"), Timeout("slow"), "ok")
    assert await retrying(call, RetryPolicy(max_attempts=3)) == "ok"
    assert call.calls == 3
    assert len(sleeps) == 2


async def test_gives_up_after_max_attempts_with_the_last_error(sleeps: list[float]) -> None:
    last = MalformedResponse("three")
    call = Script(ProviderUnavailable("one"), Timeout("two"), last, "never reached")
    with pytest.raises(MalformedResponse) as caught:
        await retrying(call, RetryPolicy(max_attempts=3))
    assert caught.value is last
    assert call.calls == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("bad key"),
        InvalidRequestError("bad request"),
        NotFoundError("no model"),
        ContextWindowExceeded("too long"),
        ContentPolicyError("refused"),
        ValueError("a bug, not a provider error"),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_non_retryable_errors_are_raised_at_once(
    error: Exception, sleeps: list[float]
) -> None:
    call = Script(error, "never reached")
    with pytest.raises(type(error)) as caught:
        await retrying(call, RetryPolicy(max_attempts=5))
    assert caught.value is error
    assert call.calls == 1
    assert sleeps == []


async def test_retry_after_is_the_wait(sleeps: list[float]) -> None:
    call = Script(RateLimitError("slow down", retry_after=7.5), "ok")
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=1.0)
    assert await retrying(call, policy) == "ok"
    assert sleeps == [7.5]


async def test_retry_after_from_the_wire_is_honoured(
    sleeps: list[float], acme: Callable[..., HttpClient]
) -> None:
    answers = [
        httpx.Response(429, headers={"retry-after": "3"}, json={"error": {"message": "slow"}}),
        httpx.Response(503, text="overloaded"),
        httpx.Response(200, json={"ok": True}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    client = acme(handler)
    retried: list[tuple[int, str]] = []
    result = await retrying(
        lambda: client.json("POST", "/chat", json={}),
        RetryPolicy(max_attempts=4, initial_backoff=0.25, max_backoff=1.0),
        on_retry=lambda attempt, error, wait: retried.append((attempt, type(error).__name__)),
    )
    assert result == {"ok": True}
    assert retried == [(1, "RateLimitError"), (2, "ProviderUnavailable")]
    assert sleeps[0] == 3.0
    assert 0.0 <= sleeps[1] <= 0.5


async def test_on_retry_sees_attempt_error_and_wait(sleeps: list[float]) -> None:
    errors = [ProviderUnavailable("a"), RateLimitError("b", retry_after=2.0), Timeout("c")]
    call = Script(*errors, "ok")
    seen: list[tuple[int, ProviderError, float]] = []
    await retrying(call, RetryPolicy(max_attempts=4), on_retry=lambda *args: seen.append(args))
    assert [attempt for attempt, _, _ in seen] == [1, 2, 3]
    assert [error for _, error, _ in seen] == errors
    assert [wait for _, _, wait in seen] == sleeps
    assert seen[1][2] == 2.0


async def test_a_deadline_shorter_than_retry_after_stops_at_once(sleeps: list[float]) -> None:
    error = RateLimitError("slow down", retry_after=30.0)
    call = Script(error, "never reached")
    retried: list[int] = []
    with pytest.raises(RateLimitError) as caught:
        await retrying(
            call,
            RetryPolicy(max_attempts=5, deadline=5.0),
            on_retry=lambda attempt, *_: retried.append(attempt),
        )
    assert caught.value is error
    assert call.calls == 1
    assert sleeps == []
    assert retried == []


async def test_a_deadline_longer_than_retry_after_lets_it_retry(sleeps: list[float]) -> None:
    call = Script(RateLimitError("slow down", retry_after=1.0), "ok")
    assert await retrying(call, RetryPolicy(max_attempts=5, deadline=600.0)) == "ok"
    assert sleeps == [1.0]


@given(
    attempt=st.integers(min_value=1, max_value=40),
    initial=st.floats(min_value=0.001, max_value=10.0),
    maximum=st.floats(min_value=0.001, max_value=120.0),
)
def test_full_jitter_stays_within_the_exponential_ceiling(
    attempt: int, initial: float, maximum: float
) -> None:
    policy = RetryPolicy(initial_backoff=initial, max_backoff=maximum)
    wait = policy.backoff(attempt, ProviderUnavailable("down"))
    assert 0.0 <= wait <= min(maximum, initial * 2 ** (attempt - 1))


@pytest.fixture
def extreme_jitter(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make the jitter draw its lower or upper bound, to see the ceiling exactly."""

    def choose(which: str) -> None:
        pick = (lambda low, high: low) if which == "low" else (lambda low, high: high)
        monkeypatch.setattr(relay_http, "random", types.SimpleNamespace(uniform=pick))

    return choose


def test_backoff_ceiling_doubles_up_to_the_maximum(
    extreme_jitter: Callable[[str], None],
) -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=3.0)
    error = Timeout("slow")
    extreme_jitter("high")
    assert [policy.backoff(n, error) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    extreme_jitter("low")
    assert [policy.backoff(n, error) for n in range(1, 7)] == [0.0] * 6


def test_backoff_is_jittered() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=60.0)
    waits = {policy.backoff(6, Timeout("slow")) for _ in range(50)}
    assert len(waits) > 1


def test_validation_details_are_summarised_without_echoing_input() -> None:
    body = json.dumps(
        {
            "detail": [
                {
                    "type": "extra_forbidden",
                    "loc": ["body", "store"],
                    "msg": "Extra inputs are not permitted",
                    "input": "the user's private text",
                },
                {"type": "missing", "loc": ["body", "model"], "msg": "Field required", "input": {}},
            ]
        }
    )
    error = classify_status(422, body, {}, provider="mistral")
    assert isinstance(error, InvalidRequestError)
    assert error.provider_message == (
        "body.store: Extra inputs are not permitted; body.model: Field required"
    )
    assert "private" not in str(error)


def test_a_google_retry_delay_in_the_body_is_the_wait() -> None:
    body = json.dumps(
        {
            "error": {
                "code": 429,
                "status": "RESOURCE_EXHAUSTED",
                "message": "quota",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7.5s"}
                ],
            }
        }
    )
    error = classify_status(429, body, {})
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.5
    # A Retry-After header, when there is one, wins.
    assert classify_status(429, body, {"retry-after": "2"}).retry_after == 2.0


def test_an_error_inside_a_stream_is_classified_without_a_status_code() -> None:
    from relay_core.http import classify_stream_error
    from relay_core.providers import ErrorRule

    payload = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    error = classify_stream_error(529, payload, provider="anthropic", model="m")
    assert isinstance(error, ProviderUnavailable)
    assert error.status_code is None
    assert error.provider_message == "Overloaded"
    ruled = classify_stream_error(
        400, payload, rules=[ErrorRule(ContextWindowExceeded, contains="overloaded")]
    )
    assert isinstance(ruled, ContextWindowExceeded)


async def test_prepare_sets_the_url_and_headers_of_every_request(
    acme: Callable[..., HttpClient],
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/stream"):
            return httpx.Response(
                200, content=b"data: {}\n\n", headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(200, json={"ok": True}, headers={"content-type": "application/json"})

    client = acme(handler)
    tokens = iter(["t1", "t2", "t3"])

    async def prepare(url: str, headers: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
        # What a cloud adapter does: a project prefix known late, a fresh token per call.
        return f"https://api.acme.test/v1/projects/p1{url}", {
            **(headers or {}),
            "authorization": f"Bearer {next(tokens)}",
        }

    client.prepare = prepare
    assert await client.json("POST", "/chat", json={}) == {"ok": True}
    assert [event async for event in client.stream_sse("POST", "/stream", json={})]
    assert [line async for line in client.stream_lines("GET", "/file")] == ['{"ok":true}']

    assert [str(r.url) for r in seen] == [
        "https://api.acme.test/v1/projects/p1/chat",
        "https://api.acme.test/v1/projects/p1/stream",
        "https://api.acme.test/v1/projects/p1/file",
    ]
    assert [r.headers["authorization"] for r in seen] == ["Bearer t1", "Bearer t2", "Bearer t3"]
    assert seen[1].headers["accept"] == "text/event-stream"


async def test_request_urls_are_joined_right_and_parsed_once_per_path(
    acme: Callable[..., HttpClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx._urls as urls  # where httpx parses a URL given as text

    seen: list[str] = []
    client = acme(lambda request: seen.append(str(request.url)) or httpx.Response(200, json={}))
    await client.json("POST", "/chat/completions", json={})  # warm: its URL parsed
    parsed: list[str] = []
    parse = urls.urlparse

    def counting(url: str = "", **kwargs: Any) -> Any:
        parsed.append(url)
        return parse(url, **kwargs)

    monkeypatch.setattr(urls, "urlparse", counting)
    for _ in range(3):
        await client.json("POST", "/chat/completions", json={})
    assert parsed == []  # the same endpoint's URL is not parsed on every call
    # Paths that vary (files, batches) are joined right, and the parsed ones stay few.
    for i in range(200):
        await client.json("GET", f"/files/f-{i}?limit=1")
    assert seen[-1] == BASE_URL + "/files/f-199?limit=1"
    assert seen[:4] == [BASE_URL + "/chat/completions"] * 4
    assert len(client._urls) <= 64
