"""HTTP for provider adapters: pooled clients, the retry policy, and error translation.

This is the one boundary where lower-level failures become Relay errors:

- httpx transport errors → :class:`~relay_core.Timeout` or
  :class:`~relay_core.ProviderUnavailable` (:func:`translate_transport_error`);
- HTTP error answers → the adapter's :class:`~relay_core.providers.ErrorRule` table, then
  the status code (:func:`classify_status`).

httpx is imported when the first client is built, never at ``import relay_core``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import random
import sys
import time
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from attrs import frozen

from relay_core import errors
from relay_core.secrets import mask
from relay_core.streaming import SSEDecoder, closing_stream

if TYPE_CHECKING:
    import httpx

    from relay_core.providers import ErrorRule, ProviderSettings
    from relay_core.streaming import SSEEvent

__all__ = [
    "HttpClient",
    "HttpPool",
    "RetryPolicy",
    "classify_status",
    "classify_stream_error",
    "parse_retry_after",
    "retrying",
    "translate_transport_error",
]

T = TypeVar("T")

# The status codes every provider shares; an adapter's rules refine these.
_BY_STATUS: dict[int, type[errors.ProviderError]] = {
    400: errors.InvalidRequestError,
    401: errors.AuthenticationError,
    402: errors.QuotaExceeded,
    403: errors.AuthenticationError,
    404: errors.NotFoundError,
    408: errors.Timeout,
    409: errors.ProviderUnavailable,
    413: errors.ContextWindowExceeded,
    422: errors.InvalidRequestError,
    429: errors.RateLimitError,
    504: errors.Timeout,
}
# Wording that means the same thing at every provider that uses it.
_COMMON_RULES: tuple[tuple[str, type[errors.ProviderError]], ...] = (
    ("context_length_exceeded", errors.ContextWindowExceeded),
    ("maximum context length", errors.ContextWindowExceeded),
    ("prompt is too long", errors.ContextWindowExceeded),
    ("content_policy_violation", errors.ContentPolicyError),
    ("content_filter", errors.ContentPolicyError),
)
_MAX_ERROR_BODY = 2000


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``retry-after`` (seconds or HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(body: str) -> str:
    """The provider's own message when the body is the usual JSON error shape."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body.strip()[:_MAX_ERROR_BODY] or "(empty body)"
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]  # Gemini sometimes wraps its error object in a list
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        for key in ("message", "detail", "error"):
            if isinstance(error.get(key), str):
                return str(error[key])
        if isinstance(error.get("detail"), list):
            return _validation_details(error["detail"])
    if isinstance(error, str):
        return error
    return body.strip()[:_MAX_ERROR_BODY]


def _validation_details(details: list[Any]) -> str:
    """FastAPI-style 422 details as "where: what" lines, leaving out the ``input`` each
    one echoes, which may be the user's content."""
    lines = []
    for detail in details:
        if isinstance(detail, dict):
            where = ".".join(str(step) for step in detail.get("loc", ()))
            what = str(detail.get("msg", "invalid"))
            lines.append(f"{where}: {what}" if where else what)
    return "; ".join(lines)[:_MAX_ERROR_BODY] or "invalid request"


def _retry_info_delay(body: str) -> float | None:
    """The wait a Google API asks for in its body (``google.rpc.RetryInfo``'s
    ``retryDelay``, a duration such as ``"7s"``), for answers with no Retry-After."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = str(detail.get("retryDelay", ""))
            try:
                return max(0.0, float(delay.removesuffix("s")))
            except ValueError:
                return None
    return None


def _error_code(body: str) -> str | None:
    """The error code of a JSON error body: ``error.code``, else a top-level ``code``
    (a string; numeric codes are statuses, not causes)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    for holder in (error, payload):
        if isinstance(holder, dict) and isinstance(holder.get("code"), str):
            return str(holder["code"])
    return None


def _has_header(headers: Mapping[str, str], name: str, prefix: str) -> bool:
    lowered = name.lower()
    return any(
        key.lower() == lowered and value.startswith(prefix) for key, value in headers.items()
    )


def classify_status(
    status: int,
    body: str,
    headers: Mapping[str, str],
    *,
    rules: Sequence[ErrorRule] = (),
    provider: str | None = None,
    model: str | None = None,
    custom_id: str | None = None,
) -> errors.ProviderError:
    """The typed error for a failed HTTP answer (the body and message are masked)."""
    lowered_body = body.lower()
    code = _error_code(body) if any(rule.code is not None for rule in rules) else None
    cls: type[errors.ProviderError] | None = None
    for rule in rules:
        if (
            (rule.status is None or rule.status == status)
            and (rule.contains is None or rule.contains.lower() in lowered_body)
            and (rule.header is None or _has_header(headers, *rule.header))
            and (rule.code is None or rule.code == code)
        ):
            cls = rule.error
            break
    # An exhausted quota comes as a 429 at OpenAI, yet waiting will not end it.
    if cls is None and status < 500 and "insufficient_quota" in lowered_body:
        cls = errors.QuotaExceeded
    # Wording rules read 4xx bodies, but a 429 is a rate limit whatever its body says.
    if cls is None and status < 500 and status != 429:
        for needle, candidate in _COMMON_RULES:
            if needle in lowered_body:
                cls = candidate
                break
    if cls is None:
        cls = _BY_STATUS.get(status) or (
            errors.ProviderUnavailable if status >= 500 else errors.InvalidRequestError
        )
    message = mask(_error_message(body))
    kwargs: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "status_code": status,
        "custom_id": custom_id,
    }
    if cls.retryable:
        # A 503 may say when to come back as well as a 429 (RFC 9110, 10.2.3).
        retry_after = parse_retry_after(headers)
        if retry_after is None:
            retry_after = _retry_info_delay(body)
        return cls(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)


def classify_stream_error(
    status: int,
    payload: Any,
    *,
    rules: Sequence[ErrorRule] = (),
    provider: str | None = None,
    model: str | None = None,
) -> errors.ProviderError:
    """The typed error for an error a provider reports inside a stream that had already
    answered 200: classified as an HTTP answer with ``status`` and body ``payload`` would
    be (the adapter knows which status each of its error types stands for), but with no
    ``status_code``, since the HTTP answer itself succeeded."""
    found = classify_status(
        status, json.dumps(payload), {}, rules=rules, provider=provider, model=model
    )
    found.status_code = None
    return found


def translate_transport_error(
    error: Exception, *, provider: str | None = None, model: str | None = None
) -> errors.ProviderError:
    """The typed error for an httpx exception that carries no HTTP answer."""
    import httpx

    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        return errors.Timeout(text, provider=provider, model=model)
    if isinstance(error, httpx.DecodingError):
        return errors.MalformedResponse(text, provider=provider, model=model)
    if isinstance(error, (httpx.TransportError, httpx.StreamError)):
        return errors.ProviderUnavailable(text, provider=provider, model=model)
    return errors.ProviderError(text, provider=provider, model=model)


# ---------------------------------------------------------------------------- retries


async def _sleep(seconds: float) -> None:
    # One seam for tests to record backoff waits instead of sleeping through them.
    await asyncio.sleep(seconds)


@frozen(kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring ``Retry-After``.

    ``max_attempts`` counts the first try. ``deadline`` (seconds) bounds the whole call,
    waits included; a ``Retry-After`` longer than the time left ends the retries at once.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    deadline: float | None = None

    def backoff(self, attempt: int, error: BaseException) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` starts at 1)."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


async def retrying(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[int, errors.ProviderError, float], None] | None = None,
) -> T:
    """Await ``call()`` until it succeeds, fails with a non-retryable error, or the policy
    is spent; the last error is raised as it was."""
    started = time.monotonic()
    attempt = 1
    while True:
        try:
            return await call()
        except errors.ProviderError as error:
            if not error.retryable or attempt >= policy.max_attempts:
                raise
            wait = policy.backoff(attempt, error)
            if policy.deadline is not None:
                left = policy.deadline - (time.monotonic() - started)
                if wait >= left:
                    raise
            if on_retry is not None:
                on_retry(attempt, error, wait)
            await _sleep(wait)
            attempt += 1


# ---------------------------------------------------------------------------- clients


# httpcore's pool matches waiting requests to connections in time that grows with both
# (encode/httpcore#1035): one client carrying hundreds of concurrent calls spends more
# time there than on the network. A (provider, base URL) therefore gets another client
# once each one it has carries this many calls, up to _MAX_SHARDS of them; a program
# making a few calls at a time keeps using one client and its warm connections.
_CALLS_PER_SHARD = 16
_MAX_SHARDS = 16


class _Shards:
    """The clients of one (provider, base URL) on one event loop, and the calls each
    is carrying."""

    def __init__(self, make: Callable[[], httpx.AsyncClient], *, grow: bool) -> None:
        self._make = make
        self._grow = grow
        self.clients: list[httpx.AsyncClient] = []
        self.calls: list[int] = []

    def first(self) -> httpx.AsyncClient:
        if not self.clients:
            self._add()
        return self._fresh(0)

    @contextlib.contextmanager
    def lease(self) -> Iterator[httpx.AsyncClient]:
        """The least busy client, counted busy with one more call while in use."""
        if not self.clients:
            self._add()
        index = min(range(len(self.calls)), key=self.calls.__getitem__)
        if self.calls[index] >= _CALLS_PER_SHARD and self._grow and len(self.clients) < _MAX_SHARDS:
            index = self._add()
        client = self._fresh(index)
        self.calls[index] += 1
        try:
            yield client
        finally:
            self.calls[index] -= 1

    def _add(self) -> int:
        self.clients.append(self._make())
        self.calls.append(0)
        return len(self.clients) - 1

    def _fresh(self, index: int) -> httpx.AsyncClient:
        if self.clients[index].is_closed:
            self.clients[index] = self._make()
        return self.clients[index]


class HttpPool:
    """Pooled ``httpx.AsyncClient`` s per (provider, base URL) and event loop.

    A client is bound to the loop it was created on, so clients are kept per loop; a
    hub used from sync code runs all calls on its own loop and so shares them. Calls
    take the least busy client of their provider, and a provider carrying many calls
    at once gets more than one (see ``_CALLS_PER_SHARD``). ``transport`` replaces the
    network, e.g. with ``httpx.MockTransport`` in tests; then one client serves all.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport
        self._ssl: Any = None
        self._shards: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, str], _Shards]
        ] = weakref.WeakKeyDictionary()

    def client(self, provider: str, base_url: str, *, timeout: float) -> httpx.AsyncClient:
        """The first client of ``provider`` at ``base_url`` on the running loop."""
        return self._of(provider, base_url, timeout).first()

    def lease(
        self, provider: str, base_url: str, *, timeout: float
    ) -> contextlib.AbstractContextManager[httpx.AsyncClient]:
        """The least busy client of ``provider`` at ``base_url``, for one call."""
        return self._of(provider, base_url, timeout).lease()

    def _of(self, provider: str, base_url: str, timeout: float) -> _Shards:
        shards = self._shards.setdefault(asyncio.get_running_loop(), {})
        key = (provider, base_url)
        if key not in shards:
            shards[key] = _Shards(
                lambda: self._new_client(base_url, timeout), grow=self._transport is None
            )
        return shards[key]

    def _new_client(self, base_url: str, timeout: float) -> httpx.AsyncClient:
        import httpx

        return httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=self._transport or self._network(base_url),
            follow_redirects=True,
        )

    def _network(self, base_url: str) -> httpx.AsyncBaseTransport:
        """httpx over aiohttp (:mod:`relay_core._transport`), for one client of
        ``base_url``. httpx's proxy variables and ``verify`` do not reach a transport
        given to it: the shared TLS context is passed, and the proxy the environment
        names for ``base_url`` is found here, once. (aiohttp's own ``trust_env`` would
        look for it, and in ``~/.netrc``, in a worker thread on every request.)"""
        import httpx

        from relay_core._transport import AiohttpTransport

        if self._ssl is None:
            # One TLS context for every client: building one reads the CA bundle.
            self._ssl = httpx.create_ssl_context()
        return AiohttpTransport(ssl_context=self._ssl, proxy=_environment_proxy(base_url))

    async def aclose(self) -> None:
        """Close the clients of the running loop (others close with their loop)."""
        shards = self._shards.pop(asyncio.get_running_loop(), {})
        for each in shards.values():
            for client in each.clients:
                await client.aclose()


async def _within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """``awaitable``'s result, or :class:`TimeoutError` after ``seconds``.

    ``asyncio.timeout`` (3.11) cancels the running task when time is up;
    ``asyncio.wait_for`` runs the awaitable in a task of its own, which costs a task
    and a loop turn on every request."""
    if seconds is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


def _environment_proxy(url: str) -> str | None:
    """The proxy ``$HTTPS_PROXY`` / ``$HTTP_PROXY`` / ``$ALL_PROXY`` name for ``url``,
    unless ``$NO_PROXY`` exempts its host (as httpx's own transport would)."""
    # Its proxy and bypass rules, read once per client.
    from urllib.request import getproxies_environment, proxy_bypass

    parts = urlsplit(url)
    proxies = getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass(parts.hostname or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


# The URLs an HttpClient keeps parsed: its few endpoints, and room for paths that vary.
_KNOWN_URLS = 64

Prepare = Callable[[str, Mapping[str, str] | None], Awaitable[tuple[str, Mapping[str, str]]]]


class HttpClient:
    """What an adapter calls as ``self.http``: JSON and SSE over the pooled client, with
    the provider's base URL, timeout and headers, raising Relay's typed errors.

    ``prepare``, when an adapter sets it, is awaited before every request with its URL
    and headers and returns the ones to send: for what is known only when the call is
    made (a token refreshed from a credential chain, a URL prefix naming a project the
    credentials tell). Signing the final bytes is ``auth=`` (an ``httpx.Auth``) instead.
    """

    prepare: Prepare | None = None

    def __init__(
        self,
        pool: HttpPool,
        settings: ProviderSettings,
        *,
        base_url: str | None,
        rules: Sequence[ErrorRule] = (),
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._base_url = (base_url or "").rstrip("/")
        self._rules = rules
        self._urls: dict[str, httpx.URL] = {}

    def _url(self, client: httpx.AsyncClient, url: str) -> httpx.URL:
        """``url`` joined to the client's base URL, parsed once rather than twice on
        every request (httpx parses a relative URL, then the joined one: ~20 us)."""
        known = self._urls.get(url)
        if known is None:
            if len(self._urls) >= _KNOWN_URLS:
                self._urls.clear()  # paths naming files or batches come and go
            known = self._urls[url] = client.build_request("GET", url).url
        return known

    async def _prepared(
        self, url: str, headers: Mapping[str, str] | None
    ) -> tuple[str, Mapping[str, str] | None]:
        if self.prepare is None:
            return url, headers
        return await self.prepare(url, headers)

    @contextlib.contextmanager
    def _exchange(self, model: str | None) -> Iterator[httpx.AsyncClient]:
        """A pooled client leased for one exchange, httpx's errors raised as Relay's.

        Synchronous on purpose, as httpx's own transport maps httpcore's errors: a stream
        method's generator enters it around its ``yield``, so an adapter that stops
        reading early leaves the loop's finalizer one async generator to close, never a
        chain of them (which fails with "aclose(): asynchronous generator is already
        running")."""
        import httpx

        try:
            with self._pool.lease(
                self._settings.name, self._base_url, timeout=self._settings.timeout
            ) as client:
                yield client
        except (httpx.HTTPError, httpx.StreamError) as error:
            raise translate_transport_error(
                error, provider=self._settings.name, model=model
            ) from error

    async def _raise_for_status(self, response: httpx.Response, model: str | None) -> None:
        """A streamed answer's error status as a typed error, with its body read."""
        if response.is_error:
            body = (await response.aread()).decode("utf-8", errors="replace")
            raise self._status_error(response, body, model)

    def _headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        # Names are case-insensitive: a call's header replaces the settings' one, never
        # goes out beside it.
        call = dict(headers or {})
        replaced = {name.lower() for name in call}
        merged = {k: v for k, v in self._settings.headers.items() if k.lower() not in replaced}
        merged.update(call)
        return merged

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        per_read_timeout: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; a non-2xx answer or a transport failure raises a typed error,
        and so does an answer not read whole within the provider's ``timeout``.

        ``per_read_timeout`` makes the timeout bound each read and write instead of the
        whole exchange: for an upload, whose size sets how long it takes."""
        url, headers = await self._prepared(url, headers)
        timeout = self._settings.timeout
        try:
            # httpx's timeout bounds each read: an answer dripping in below it would
            # hold the call, and an engine worker, for ever. This bounds the whole.
            with self._exchange(model) as client:
                response = await _within(
                    client.request(
                        method,
                        self._url(client, url),
                        json=json,
                        headers=self._headers(headers),
                        **kwargs,
                    ),
                    None if per_read_timeout else timeout,
                )
        except asyncio.TimeoutError:
            raise errors.Timeout(
                f"no whole answer within the {timeout:g} s timeout",
                provider=self._settings.name,
                model=model,
            ) from None
        if response.is_error:
            raise self._status_error(response, response.text, model)
        return response

    async def json(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        per_read_timeout: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Send a request and return the answer's JSON body (``per_read_timeout``: as
        for :meth:`request`)."""
        response = await self.request(
            method,
            url,
            json=json,
            headers=headers,
            model=model,
            per_read_timeout=per_read_timeout,
            **kwargs,
        )
        try:
            return response.json()
        except ValueError as error:
            raise errors.MalformedResponse(
                f"answer is not JSON: {response.text[:200]!r}",
                provider=self._settings.name,
                model=model,
                status_code=response.status_code,
            ) from error

    async def upload(
        self,
        url: str,
        data: bytes,
        *,
        filename: str,
        media_type: str = "application/octet-stream",
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> Any:
        """POST ``data`` as the ``file`` field of a multipart form (with ``fields`` before
        it) and return the answer's JSON body: the file upload most batch APIs start with.

        The boundary is derived from the content, so the same bytes always upload as the
        same body: a recorded upload replays, and no content can hold its own hash."""
        boundary = f"relay-{hashlib.sha256(data).hexdigest()[:32]}"
        headers = {
            **(headers or {}),
            "content-type": f"multipart/form-data; boundary={boundary}",
        }
        return await self.json(
            "POST",
            url,
            headers=headers,
            model=model,
            data=dict(fields or {}),
            files={"file": (filename, data, media_type)},
            per_read_timeout=True,
        )

    async def stream_sse(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[SSEEvent]:
        """Send a request and yield its server-sent events as they arrive.

        The provider's ``timeout`` bounds the wait for the stream to begin and for each
        read after that, not the whole stream: a long answer may stream for longer."""
        headers = dict(headers or {})
        if not any(name.lower() == "accept" for name in headers):
            headers["accept"] = "text/event-stream"
        url, headers = await self._prepared(url, headers)
        # Each stream method is one generator with the request inside it: an adapter
        # that stops reading early (at OpenAI's [DONE]) leaves it to the event loop's
        # finalizer, which closes one generator cleanly but not a chain of them at once.
        with self._exchange(model) as client:
            async with client.stream(
                method, self._url(client, url), json=json, headers=self._headers(headers), **kwargs
            ) as response:
                await self._raise_for_status(response, model)
                # The decoder is fed here rather than wrapped in parse_sse(): one async
                # generator fewer for every event to pass through. The byte iterator is
                # closed here, not left to the finalizer, when the reader stops early.
                chunks = response.aiter_bytes()
                decoder = SSEDecoder()
                async with closing_stream(chunks):
                    async for chunk in chunks:
                        for event in decoder.feed(chunk):
                            yield event
                    for event in decoder.feed(b"", final=True):
                        yield event

    async def stream_bytes(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[bytes, None]:
        """Send a request and yield its body as it arrives, in chunks of any size: for a
        stream that is not server-sent events (AWS's binary event stream). ``kwargs`` go
        to httpx (``auth=`` for a request that must be signed); timeouts and errors are
        as for :meth:`stream_sse`."""
        url, headers = await self._prepared(url, headers)
        with self._exchange(model) as client:
            async with client.stream(
                method, self._url(client, url), json=json, headers=self._headers(headers), **kwargs
            ) as response:
                await self._raise_for_status(response, model)
                chunks = response.aiter_bytes()
                async with closing_stream(chunks):
                    async for chunk in chunks:
                        yield chunk

    async def stream_lines(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        """Send a request and yield its body's lines (without line endings) as they
        arrive: a batch output file of any size never sits in memory whole."""
        url, headers = await self._prepared(url, headers)
        with self._exchange(model) as client:
            async with client.stream(
                method, self._url(client, url), headers=self._headers(headers), **kwargs
            ) as response:
                await self._raise_for_status(response, model)
                lines = response.aiter_lines()
                async with closing_stream(lines):
                    async for line in lines:
                        yield line

    def _status_error(
        self, response: httpx.Response, body: str, model: str | None
    ) -> errors.ProviderError:
        return classify_status(
            response.status_code,
            body,
            response.headers,
            rules=self._rules,
            provider=self._settings.name,
            model=model,
        )
