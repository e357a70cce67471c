"""Helpers for relay-serve's tests: the catalog they serve, a small ``trouble`` provider
that raises any Relay error on demand or stalls until cancelled, a handle on a running
server, and a parser for the metrics text. (A uniquely named module rather than
conftest, so that test sessions holding every plugin's tests import the right one.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import attrs
import httpx
import openai

import relay_core.errors as relay_errors
from relay_core import Capability, Provider, Request, Response, hookimpl
from relay_core.types import StreamEvent, TextDelta

CATALOG = """\
providers:
  mock:
    max_retries: 0
    options:
      faults:
        slow: {kind: latency, seconds: 600}
        limited: {kind: rate_limit, retry_after: 7}
  trouble:
    max_retries: 0
models:
  fast: mock/echo
  thinker: mock/think
  slow: mock/slow
  limited: mock/limited
  stall: trouble/stall
"""


class TroubleProvider(Provider):
    """``trouble/<ErrorClassName>`` raises that Relay error; ``trouble/stall`` never
    answers (its stream sends one piece first) and records being cancelled;
    ``trouble/midstream`` streams one piece, then fails as unavailable. Every call's
    model is recorded in ``calls``, so a test can tell that none was made."""

    name = "trouble"
    capabilities = frozenset({Capability.CHAT, Capability.STREAM})
    cancelled: ClassVar[list[str]] = []
    calls: ClassVar[list[str]] = []

    async def chat(self, request: Request) -> Response:
        self.calls.append(request.model)
        if request.model == "stall":
            await self._stall(request)
        raise self._error(request)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        self.calls.append(request.model)
        if request.model in ("stall", "midstream"):
            yield TextDelta("partial")
        if request.model == "stall":
            await self._stall(request)
        raise self._error(request)

    async def _stall(self, request: Request) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(request.custom_id or "")
            raise

    def _error(self, request: Request) -> Exception:
        kind = getattr(relay_errors, request.model, relay_errors.ProviderUnavailable)
        message = "upstream said no; key sk-upstreamSECRET0123456789abcdef leaked in text"
        if kind is relay_errors.RateLimitError:
            return kind(message, retry_after=2.5, provider="trouble", status_code=429)
        return kind(message, provider="trouble")


class TroublePlugin:
    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        register("trouble", TroubleProvider)


@attrs.define
class Served:
    """A running server: its base URL, the app's internals and helpers to call it."""

    url: str
    app: Any
    clients: list[openai.OpenAI] = attrs.field(factory=list)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def client(self, api_key: str = "unused", **options: Any) -> openai.OpenAI:
        """An SDK client, closed when the test ends (an open one leaves its keep-alive
        socket for the garbage collector, whose warning lands in some later test)."""
        client = openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **options)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def async_client(self, api_key: str = "unused") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def metrics(self, key: str | None = None) -> dict[str, float]:
        """The /metrics samples, parsed: ``{'name{labels}': value}``; a server with keys
        shows them only with one."""
        headers = {"authorization": f"Bearer {key}"} if key else {}
        with self.http() as http:
            return parse_metrics(http.get("/metrics", headers=headers).text)

    def wait_for(self, condition: Callable[[dict[str, float]], bool]) -> dict[str, float]:
        """Poll the metrics until ``condition`` holds (failing after 20 s)."""
        deadline = time.monotonic() + 20
        while True:
            samples = self.metrics()
            if condition(samples):
                return samples
            assert time.monotonic() < deadline, f"condition never held; metrics: {samples}"
            time.sleep(0.02)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition to samples; fails on any line that is not valid."""
    import re

    sample = re.compile(
        r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})?'
        r" (-?[0-9.e+]+|\+Inf|NaN)$"
    )
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            continue
        found = sample.match(line)
        assert found, f"not an exposition line: {line!r}"
        samples[found[1] + (found[2] or "")] = float(found[3])
    return samples


CHAT = "/v1/chat/completions"
HELLO = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
# A model whose provider records every call it gets.
RECORDED = {"model": "trouble/ProviderUnavailable", "messages": [{"role": "user", "content": "x"}]}


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error of an answer in OpenAI's error shape (which it asserts)."""
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error
