"""``pool``: one provider in front of several OpenAI-compatible backends.

``pool/<model>`` reaches whichever backend of the pool (llama.cpp's ``llama-server``,
vLLM, Ollama) should answer soonest. The wire mapping is relay-openai-compat's: the pool
holds one :class:`~relay_openai_compat.chat.OpenAICompatProvider` per backend, and
its own job is only to choose one per call and to keep track of which backends work.

- **Choosing** (:meth:`PoolProvider._choose`): the healthy backend with the smallest
  expected completion time; see :class:`Backend.expected`.
- **Failing**: a transport error, a timeout or a 5xx counts against the backend and is
  raised as the retryable error it is, so the hub retries; the retry prefers a backend
  this request has not failed on yet. ``max_failures`` consecutive failed calls or probes
  take a backend out of rotation.
- **Probing**: a background task on the running loop sends ``GET <backend>/models`` to
  every backend each ``health_interval`` seconds (every OpenAI-compatible server answers
  it, llama.cpp included, which answers 503 there while its model loads). A failed
  probe counts like a failed call; a backend out of rotation returns on its first
  successful probe. The task starts with the first call and stops on :meth:`aclose`.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from relay_core.plugin import (
    Capability,
    ConfigError,
    EndEvent,
    Provider,
    ProviderError,
    ProviderSettings,
    ProviderUnavailable,
    Request,
    Response,
    StreamEvent,
    Timeout,
    Usage,
    closing_stream,
    get_logger,
    redact_url,
)

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient, HttpPool
    from relay_openai_compat.chat import OpenAICompatProvider

__all__ = ["Backend", "BackendState", "PoolOptions", "PoolProvider"]

ENV_VAR = "RELAYSERVE_BACKENDS"
# Weight of the newest latency sample in a backend's moving average: recent enough to
# follow a backend that slows down, smooth enough that one slow answer is not a verdict.
EWMA_ALPHA = 0.3
# relay-openai-compat's options, passed through to every backend's adapter (it checks them).
_COMPAT_OPTIONS = ("max_tokens_field", "structured_output", "stream_usage", "strict_tools")

_log = get_logger("relay.serve")


def _is_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _backend_url(value: Any, where: str) -> str:
    """A backend's base URL, checked; one without a path gets ``/v1``, where llama.cpp,
    vLLM and Ollama all serve the OpenAI API."""
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a URL such as http://127.0.0.1:8081/v1, not {value!r}")
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{where}: {value!r} is not an http(s) URL such as http://127.0.0.1:8081/v1"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{where}: {value!r} must be a base URL, without ?query or #fragment")
    return url if parts.path else f"{url}/v1"


@attrs.frozen(kw_only=True)
class PoolOptions:
    """The catalog's ``providers.<name>.options`` for a pool, checked.

    ``backends`` falls back on the ``RELAYSERVE_BACKENDS`` environment variable (base URLs
    separated by commas) when the catalog gives none. ``compat`` holds relay-openai-compat's
    own options, handed to every backend's adapter.
    """

    backends: tuple[str, ...]
    health_interval: float = 5.0
    max_failures: int = 3
    compat: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def parse(cls, settings: ProviderSettings) -> PoolOptions:
        where = f"providers.{settings.name}.options"
        values = dict(settings.options)
        known = ("backends", "health_interval", "max_failures", *_COMPAT_OPTIONS)
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"{where}: unknown option {key!r}; a pool takes {', '.join(known)}"
                )
        interval = values.get("health_interval", 5.0)
        if not _is_seconds(interval):
            raise ConfigError(f"{where}.health_interval must be seconds > 0, not {interval!r}")
        failures = values.get("max_failures", 3)
        if type(failures) is not int or failures < 1:
            raise ConfigError(f"{where}.max_failures must be a whole number >= 1, not {failures!r}")
        return cls(
            backends=cls._backends(values.get("backends"), f"{where}.backends"),
            health_interval=float(interval),
            max_failures=failures,
            compat={key: values[key] for key in _COMPAT_OPTIONS if key in values},
        )

    @staticmethod
    def _backends(value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            pieces = [p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip()]
            if not pieces:
                raise ConfigError(
                    f"a pool needs backends: list their base URLs in {where} "
                    f"(e.g. [http://127.0.0.1:8081/v1, http://127.0.0.1:8082/v1]) or set "
                    f"{ENV_VAR}=http://127.0.0.1:8081,http://127.0.0.1:8082"
                )
            urls = [_backend_url(piece, ENV_VAR) for piece in pieces]
            where = ENV_VAR
        elif isinstance(value, list) and value:
            urls = [_backend_url(item, f"{where}[{i}]") for i, item in enumerate(value)]
        else:
            raise ConfigError(f"{where} must be a non-empty list of base URLs, not {value!r}")
        duplicates = sorted({url for url in urls if urls.count(url) > 1})
        if duplicates:
            raise ConfigError(f"{where} names {', '.join(duplicates)} more than once")
        return tuple(urls)


@attrs.frozen(kw_only=True)
class BackendState:
    """A backend as :meth:`PoolProvider.snapshot` reports it.

    ``ewma`` is the moving average of observed latency in seconds (per output token for
    answers that report usage, else per call), ``None`` before the first answer;
    ``failures`` counts consecutive failed calls and probes; ``served`` counts answers.
    """

    url: str
    healthy: bool
    in_flight: int
    ewma: float | None
    failures: int
    last_error: str | None
    served: int


class Backend:
    """One backend's adapter and the pool's running view of it."""

    def __init__(self, url: str, adapter: OpenAICompatProvider, http: HttpClient) -> None:
        self.url = url
        # What /health, /metrics, logs and answers' metadata show: a backend URL may
        # carry a password (http://admin:secret@host/v1).
        self.shown = redact_url(url)
        self.adapter = adapter
        self.http = http
        self.healthy = True
        self.in_flight = 0
        self.ewma: float | None = None
        self.failures = 0
        self.last_error: str | None = None
        self.served = 0

    def expected(self, unknown: float) -> float:
        """The time this backend would take to finish one more call: ``ewma ×
        (in_flight + 1)``.

        A backend that answers one call at a time (llama.cpp with one slot) finishes a new
        call after the ``in_flight`` ones queued before it and then the new one, each
        taking about ``ewma``. A server that batches concurrent calls (vLLM, llama.cpp
        with several slots) finishes sooner than that, but its latency grows with its
        load too, and the product still ranks backends the right way round: a fast one
        is loaded until its queue makes it as slow as an idle slow one, and no further.
        The expectation stays in the EWMA's unit (seconds per output token, or per
        call); only the ranking matters. ``unknown`` stands in for a backend that has not
        answered yet: the best average seen, so that it is tried but not flooded.
        """
        return (self.ewma if self.ewma is not None else unknown) * (self.in_flight + 1)

    def state(self) -> BackendState:
        return BackendState(
            url=self.shown,
            healthy=self.healthy,
            in_flight=self.in_flight,
            ewma=self.ewma,
            failures=self.failures,
            last_error=self.last_error,
            served=self.served,
        )


def _counts_against(error: ProviderError) -> bool:
    """Whether a failure says something about the backend rather than the request: it
    was unreachable, too slow, or failed inside (5xx). A 4xx is the request's own fault;
    a 429 is a busy backend, retried elsewhere but not taken out of rotation."""
    return isinstance(error, (ProviderUnavailable, Timeout))


class PoolProvider(Provider):
    """OpenAI-compatible backends behind one name, each call sent to the one that should
    answer soonest. See the module's docstring and :class:`PoolOptions`."""

    name = "pool"
    capabilities = frozenset(
        {Capability.CHAT, Capability.STREAM, Capability.TOOLS, Capability.STRUCTURED_OUTPUT}
    )

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        from relay_core.plugin import HttpClient, HttpPool
        from relay_openai_compat.chat import OpenAICompatProvider

        self.options = PoolOptions.parse(settings)
        super().__init__(settings, http)
        # The pool's own connection pool: the hub's is out of an adapter's reach, and
        # each backend needs a client with its own base URL.
        self._http_pool: HttpPool = HttpPool()
        self.backends: list[Backend] = []
        for url in self.options.backends:
            backend_settings = attrs.evolve(settings, base_url=url, options=self.options.compat)
            client = HttpClient(
                self._http_pool,
                backend_settings,
                base_url=url,
                rules=OpenAICompatProvider.error_rules,
            )
            adapter = OpenAICompatProvider(backend_settings, client)
            self.backends.append(Backend(url, adapter, client))
        # Backends each in-flight request has failed on, so its retry goes elsewhere;
        # keyed by id() (requests are not hashable) and dropped with the request.
        self._failed_on: dict[int, set[str]] = {}
        self._watcher: asyncio.Task[None] | None = None

    # -- state --------------------------------------------------------------------------

    def snapshot(self) -> list[BackendState]:
        """Every backend's current state, in the order the options list them: what a
        server's ``/health`` and ``/metrics`` report."""
        return [backend.state() for backend in self.backends]

    def _choose(self, request: Request) -> Backend:
        self._watch()
        healthy = [b for b in self.backends if b.healthy]
        if not healthy:
            problems = "; ".join(f"{b.shown}: {b.last_error or 'failed'}" for b in self.backends)
            raise ProviderUnavailable(
                f"no healthy backend in the pool ({problems})",
                provider=self.settings.name,
                model=request.model,
            )
        failed_on = self._failed_on.get(id(request), set())
        candidates = [b for b in healthy if b.url not in failed_on] or healthy
        known = [b.ewma for b in self.backends if b.ewma is not None]
        unknown = min(known, default=0.0)
        # Ties (equal expectations, often all zero at first) go to the least loaded, then
        # to the least observed, so that every backend gets measured early on.
        return min(candidates, key=lambda b: (b.expected(unknown), b.in_flight, b.served))

    def _succeeded(self, backend: Backend, request: Request, started: float, usage: Usage) -> None:
        elapsed = time.perf_counter() - started
        sample = elapsed / usage.output_tokens if usage.output_tokens > 0 else elapsed
        backend.ewma = (
            sample
            if backend.ewma is None
            else EWMA_ALPHA * sample + (1 - EWMA_ALPHA) * backend.ewma
        )
        backend.served += 1
        backend.failures = 0
        self._failed_on.pop(id(request), None)

    def _failed(self, backend: Backend, request: Request, error: ProviderError) -> None:
        if error.retryable:
            key = id(request)
            if key not in self._failed_on:
                weakref.finalize(request, self._failed_on.pop, key, None)
                self._failed_on[key] = set()
            self._failed_on[key].add(backend.url)
        if _counts_against(error):
            self._count_failure(backend, str(error), "call")

    def _count_failure(self, backend: Backend, problem: str, what: str) -> None:
        backend.failures += 1
        backend.last_error = problem
        if backend.healthy and backend.failures >= self.options.max_failures:
            backend.healthy = False
            _log.warning(
                "pool.backend_removed",
                pool=self.settings.name,
                backend=backend.shown,
                failures=backend.failures,
                last=what,
                error=problem,
            )

    def _stamped(self, response: Response, backend: Backend) -> Response:
        return attrs.evolve(response, metadata={**response.metadata, "backend": backend.shown})

    # -- calls --------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        backend = self._choose(request)
        backend.in_flight += 1
        started = time.perf_counter()
        try:
            response = await backend.adapter.chat(request)
        except ProviderError as error:
            self._failed(backend, request, error)
            raise
        finally:
            backend.in_flight -= 1
        self._succeeded(backend, request, started, response.usage)
        return self._stamped(response, backend)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        backend = self._choose(request)
        backend.in_flight += 1
        started = time.perf_counter()
        events = backend.adapter.stream(request)
        try:
            async with closing_stream(events):
                async for event in events:
                    if isinstance(event, EndEvent):
                        self._succeeded(backend, request, started, event.response.usage)
                        event = EndEvent(self._stamped(event.response, backend))
                    yield event
        except ProviderError as error:
            self._failed(backend, request, error)
            raise
        finally:
            backend.in_flight -= 1

    # -- health -------------------------------------------------------------------------

    def _watch(self) -> None:
        """Start the probing task on the running loop, unless it already runs there."""
        loop = asyncio.get_running_loop()
        watcher = self._watcher
        if watcher is not None and not watcher.done():
            if watcher.get_loop() is loop:
                return
            # The hub moved to another loop (sync calls, then async ones): follow it.
            if not watcher.get_loop().is_closed():
                watcher.get_loop().call_soon_threadsafe(watcher.cancel)
        self._watcher = loop.create_task(self._probe_forever(), name="relay-pool-health")

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.gather(*(self._probe(backend) for backend in self.backends))
            await asyncio.sleep(self.options.health_interval)

    async def _probe(self, backend: Backend) -> None:
        # A probe that takes longer than the interval has failed: the next is due.
        limit = max(1.0, self.options.health_interval)
        try:
            await asyncio.wait_for(backend.http.request("GET", "/models"), limit)
        except ProviderError as error:
            self._count_failure(backend, f"health probe: {error}", "probe")
            return
        except asyncio.TimeoutError:
            self._count_failure(backend, f"health probe: no answer within {limit:g} s", "probe")
            return
        except Exception as error:  # one odd answer must not end the probing
            self._count_failure(backend, f"health probe: {type(error).__name__}: {error}", "probe")
            return
        backend.failures = 0
        if not backend.healthy:
            backend.healthy = True
            _log.info("pool.backend_returned", pool=self.settings.name, backend=backend.shown)

    async def aclose(self) -> None:
        """Stop probing and close the pool's connections (of the running loop)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None and not watcher.done():
            if watcher.get_loop() is asyncio.get_running_loop():
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            elif not watcher.get_loop().is_closed():
                watcher.get_loop().call_soon_threadsafe(watcher.cancel)
        for backend in self.backends:
            await backend.adapter.aclose()
        await self._http_pool.aclose()
