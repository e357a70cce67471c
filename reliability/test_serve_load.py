"""relay-serve under load: hundreds of clients at once against a server allowed 8 upstream
calls and 16 waiting. It must shed the rest with a prompt 429 (``Retry-After``, OpenAI's
error shape) instead of falling over: no 5xx, no reset connections, ``/health`` answering
throughout, every client that honours ``Retry-After`` answered in the end, the metrics
agreeing with what the clients saw, and its memory back to its level once the load is
gone, burst after burst.

The server runs as ``relay serve`` in a process of its own, so its RSS is its own
(``/proc/<pid>/status``), in front of relay-mock answering after a fixed latency."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from reliability.support import FIGURES, SCALE, serve_catalog

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the server's RSS from /proc"
)

MAX_CONCURRENCY = 8
MAX_QUEUE = 16
# Long enough that a burst arrives faster than 8 slots can drain it (80 answers a
# second), short enough that the retries drain in seconds.
LATENCY = 0.1
# A client gives up after this many refusals; far more than draining a burst needs.
MAX_ATTEMPTS = 100
# RSS may stay above the warm-up's level after the first big burst: the allocators keep
# the memory hundreds of connections at once needed (about 20 KiB each here) for reuse.
# So the margin is RSS_MARGIN_MIB plus RSS_PER_CLIENT_KIB per client of the burst. A
# second identical burst reuses that memory: growth beyond RSS_GROWTH_MIB from one burst
# to the next is a leak.
RSS_MARGIN_MIB = 16.0
RSS_PER_CLIENT_KIB = 24.0
RSS_GROWTH_MIB = 4.0

CLIENTS_PER_POOL = 16
# Never used (the server is plain HTTP), but httpx makes one per client unless given one.
_TLS = ssl.create_default_context()

START = "from relay_core.cli import main; main()"


# ---------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    """A running ``relay serve`` process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def open_files(self) -> int:
        """How many files (sockets included) the server holds now."""
        return len(list(Path(f"/proc/{self.process.pid}/fd").iterdir()))

    def rss_mib(self, field: str = "VmRSS") -> float:
        """The server's resident memory now (``VmHWM``: its peak so far), in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise AssertionError(f"no {field} in /proc/<pid>/status")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    catalog = serve_catalog(latency=LATENCY, max_concurrency=MAX_CONCURRENCY, max_queue=MAX_QUEUE)
    with _serving(tmp_path, catalog, START) as server:
        yield server


@contextlib.contextmanager
def _serving(tmp_path: Path, catalog_text: str, start: str) -> Iterator[Served]:
    """``relay serve`` on ``catalog_text`` in a process of its own, started by the
    Python code ``start``, until the block ends."""
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(catalog_text)
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", start, "serve", "--config", str(catalog), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Served(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"relay serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"relay serve did not answer /health:\n{log.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------- the load


@dataclass
class Burst:
    """What the clients of one burst saw."""

    first: Counter[str] = field(default_factory=Counter)  # first attempts: "200", "429"
    answered: int = 0  # in the end, after retries
    refusals: int = 0  # 429s over all attempts
    most_attempts: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # anything else, by kind
    health_ok: int = 0
    health_under_load: int = 0  # /health answers showing calls running or queued
    health_failed: Counter[str] = field(default_factory=Counter)
    most_in_flight: int = 0
    most_queued: int = 0


def _refused(status: int, headers: httpx.Headers, body: bytes) -> tuple[str, float]:
    """("429", its Retry-After) for the documented refusal, else what is wrong."""
    if status != 429:
        return f"HTTP {status}", 0.0
    try:
        wait = float(headers["retry-after"])
    except (KeyError, ValueError):
        return "429 without a numeric Retry-After", 0.0
    if wait <= 0:
        return "429 with Retry-After <= 0", 0.0
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return "429 body not OpenAI's error shape", 0.0
    if set(error) != {"message", "type", "param", "code"} or not error["message"]:
        return "429 body not OpenAI's error shape", 0.0
    if (error["type"], error["code"]) != ("server_overloaded", "queue_full"):
        return f"429 {error['type']}/{error['code']}", 0.0
    return "429", wait


async def _attempt(client: httpx.AsyncClient, prompt: str, stream: bool) -> tuple[str, float]:
    """One request: ("200", 0) with the right answer, ("429", its Retry-After), or what
    went wrong."""
    payload = {"model": "slow", "messages": [{"role": "user", "content": prompt}]}
    if not stream:
        answer = await client.post("/v1/chat/completions", json=payload)
        if answer.status_code == 200:
            text = answer.json()["choices"][0]["message"]["content"]
            return ("200", 0.0) if text == prompt else ("wrong answer", 0.0)
        return _refused(answer.status_code, answer.headers, answer.content)
    async with client.stream("POST", "/v1/chat/completions", json={**payload, "stream": True}) as r:
        if r.status_code != 200:
            return _refused(r.status_code, r.headers, await r.aread())
        pieces: list[str] = []
        done = False
        async for line in r.aiter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                for choice in json.loads(line[6:]).get("choices", ()):
                    pieces.append(choice["delta"].get("content") or "")
        if not done:
            return "stream without [DONE]", 0.0
        return ("200", 0.0) if "".join(pieces) == prompt else ("wrong answer", 0.0)


async def _client(
    client: httpx.AsyncClient, prompt: str, stream: bool, rng: random.Random, burst: Burst
) -> None:
    """A well-behaved client: on 429 it waits Retry-After (plus jitter, as a real client
    should, so that the refused do not all come back at the same instant) and retries."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            outcome, wait = await _attempt(client, prompt, stream)
        except httpx.HTTPError as error:  # resets, refused connections, timeouts
            outcome, wait = type(error).__name__, 0.0
        except (ValueError, KeyError, TypeError, IndexError):
            outcome, wait = "malformed answer", 0.0
        if attempt == 1:
            burst.first[outcome] += 1
        burst.most_attempts = max(burst.most_attempts, attempt)
        if outcome == "200":
            burst.answered += 1
            return
        if outcome != "429":
            burst.errors[outcome] += 1
            return
        burst.refusals += 1
        await asyncio.sleep(wait + rng.uniform(0, 1))
    burst.errors["still refused after retries"] += 1


def _client_pool(url: str) -> httpx.AsyncClient:
    """Connections for a few clients: no cap on their number, so that the server, not
    httpx, does the queueing; and a new connection for every request.

    Reusing idle connections would test the client rather than the server: a client
    process this loaded reads answers late, so it may send on a connection the server is
    closing after its 5 s keep-alive, and get a reset the server had no part in.
    """
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=60, verify=_TLS)


async def _watch_health(url: str, burst: Burst, stop: asyncio.Event) -> None:
    async with _client_pool(url) as client:
        while not stop.is_set():
            try:
                answer = await client.get("/health")
            except httpx.HTTPError as error:
                burst.health_failed[f"{type(error).__name__}: {error}"] += 1
            else:
                if answer.status_code != 200:
                    burst.health_failed[f"HTTP {answer.status_code}"] += 1
                else:
                    state = answer.json()
                    burst.health_ok += 1
                    burst.health_under_load += bool(state["in_flight"] or state["queue_depth"])
                    burst.most_in_flight = max(burst.most_in_flight, state["in_flight"])
                    burst.most_queued = max(burst.most_queued, state["queue_depth"])
            await asyncio.sleep(0.05)


async def _burst(url: str, name: str, requests: int, streams: int) -> Burst:
    """``requests`` clients at once (the first ``streams`` of them streaming), each
    retrying until answered, while ``/health`` is polled."""
    burst = Burst()
    rng = random.Random(name)
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        # Clients in groups of CLIENTS_PER_POOL, each group with a connection pool of its
        # own: one pool for hundreds of requests would stall this process's event loop
        # (httpcore's pool does work quadratic in the requests waiting on it).
        pools = [
            await stack.enter_async_context(_client_pool(url))
            for _ in range(0, requests, CLIENTS_PER_POOL)
        ]
        watcher = asyncio.create_task(_watch_health(url, burst, stop))
        await asyncio.gather(
            *(
                _client(
                    pools[i // CLIENTS_PER_POOL],
                    f"{name} client {i} says hello",
                    i < streams,
                    rng,
                    burst,
                )
                for i in range(requests)
            )
        )
        stop.set()
        await watcher
    return burst


def _metrics(url: str) -> dict[str, float]:
    """``/metrics`` as ``{"name{labels}": value}``."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _total(samples: dict[str, float], prefix: str, *labels: str) -> float:
    return sum(
        value
        for name, value in samples.items()
        if name.startswith(prefix + "{") and all(label in name for label in labels)
    )


# ---------------------------------------------------------------------------- the test


def test_serve_sheds_load_and_recovers(served: Served) -> None:
    requests, streams = SCALE.serve_requests, SCALE.serve_streams

    # Warm-up: every path once (answers, streams, refusals, retries), so that the baseline
    # holds what the server keeps for good (imports, the hub's clients, caches).
    warm = asyncio.run(_burst(served.url, "warm-up", 64, 8))
    assert warm.errors == Counter(), warm.errors
    assert warm.answered == 64
    baseline = served.rss_mib()

    bursts = []
    rss_after = []
    rss_peak = []
    for number in (1, 2):
        burst = asyncio.run(_burst(served.url, f"burst {number}", requests, streams))
        bursts.append(burst)
        state = httpx.get(f"{served.url}/health", timeout=10).json()
        assert (state["in_flight"], state["queue_depth"]) == (0, 0), state
        rss_after.append(served.rss_mib())
        rss_peak.append(served.rss_mib("VmHWM"))

        # Answered or refused as documented, never anything else.
        assert burst.errors == Counter(), burst.errors
        assert sum(burst.first.values()) == requests
        assert set(burst.first) <= {"200", "429"}
        # The queue is bounded, so most of a burst hundreds strong is refused at once...
        assert burst.first["429"] >= requests // 4, burst.first
        # ...and every refused client that waited as told got its answer in the end.
        assert burst.answered == requests
        # /health answered all along, also while calls ran and waited.
        assert burst.health_failed == Counter(), burst.health_failed
        assert burst.health_under_load >= 1
        assert burst.most_in_flight <= MAX_CONCURRENCY
        assert burst.most_queued <= MAX_QUEUE

    margin = RSS_MARGIN_MIB + RSS_PER_CLIENT_KIB * requests / 1024
    samples = _metrics(served.url)
    refused = warm.refusals + sum(burst.refusals for burst in bursts)
    answered = warm.answered + sum(burst.answered for burst in bursts)
    assert _total(samples, "relay_serve_rejected_total", 'reason="queue_full"') == refused
    chat = ('route="/v1/chat/completions"',)
    assert _total(samples, "relay_serve_requests_total", *chat, 'status="429"') == refused
    assert _total(samples, "relay_serve_requests_total", *chat, 'status="200"') == answered
    assert _total(samples, "relay_serve_requests_total") == refused + answered  # no other status
    assert samples["relay_serve_in_flight"] == 0
    assert samples["relay_serve_queue_depth"] == 0
    assert _total(samples, "relay_serve_cancelled_total") == 0

    FIGURES.record(
        "serve",
        clients_per_burst=requests,
        streaming_clients=streams,
        max_concurrency=MAX_CONCURRENCY,
        max_queue=MAX_QUEUE,
        upstream_latency_s=LATENCY,
        answered_first_attempt=[burst.first["200"] for burst in bursts],
        shed_429=[burst.first["429"] for burst in bursts],
        refusals_including_retries=[burst.refusals for burst in bursts],
        most_attempts=[burst.most_attempts for burst in bursts],
        answered_in_the_end=[burst.answered for burst in bursts],
        errors=sum((burst.errors for burst in bursts), Counter()),
        health_checks_ok=[burst.health_ok for burst in bursts],
        health_checks_under_load=[burst.health_under_load for burst in bursts],
        most_in_flight=max(burst.most_in_flight for burst in bursts),
        most_queued=max(burst.most_queued for burst in bursts),
        rss_baseline_mib=round(baseline, 1),
        rss_peak_mib=[round(rss, 1) for rss in rss_peak],
        rss_after_mib=[round(rss, 1) for rss in rss_after],
        rss_margin_mib=round(margin, 1),
        rss_growth_margin_mib=RSS_GROWTH_MIB,
        metrics_rejected=refused,
    )
    # Memory: back within a margin of the warm-up's level, and no growth burst over burst.
    assert rss_after[0] <= baseline + margin, (baseline, margin, rss_after)
    assert rss_after[1] <= rss_after[0] + RSS_GROWTH_MIB, (baseline, rss_after)


# ---------------------------------------------------------------------------- slowloris

# The server may open this many files, so that the attack outnumbers them at CI size.
SLOW_FILE_LIMIT = 256
HEADER_TIMEOUT = 2.0
# Connections the attacker keeps open, each sending its request a header at a time; the
# one closed is opened again at once.
SLOW_ATTACKERS = {"ci": 400, "full": 2000}[SCALE.name]
SLOW_SECONDS = 8.0
SLOW_DRIP = 0.5  # seconds between one attacker's header lines
# What an ordinary client may wait, meanwhile, for /health or an answer.
ANSWER_WITHIN = 2.0
# And for its connection: while the attack keeps the accept queue full the kernel drops
# SYNs, which the client's kernel resends after 1, 3 and 7 seconds, before the server can
# do anything about it. Seen in CI: a first connection refused twice (over 2 s).
CONNECT_WITHIN = 8.0
# The server's whole output over the attack: a line per dropped connection would be
# thousands.
LOG_AT_MOST = 16 * 1024
SLOW_START = (
    "import resource; "
    "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({SLOW_FILE_LIMIT}, hard)); " + START
)


@dataclass
class _Slowloris:
    """Half-open connections, each sending a request line then a header every
    SLOW_DRIP seconds, never the blank line that ends the headers; one the server
    closes is opened again at once."""

    url: str
    opened: int = 0  # connections established
    lifetimes: list[float] = field(default_factory=list)  # established to closed by the server
    open: dict[socket.socket, float] = field(default_factory=dict)  # established: when
    connecting: set[socket.socket] = field(default_factory=set)

    def run(self, until: float, connections: int) -> None:
        import selectors

        host, port = self.url.removeprefix("http://").split(":")
        selector = selectors.DefaultSelector()
        next_drip = time.monotonic()
        while time.monotonic() < until:
            while len(self.open) + len(self.connecting) < connections:
                sock = socket.socket()
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sock.connect((host, int(port)))
                self.connecting.add(sock)
                # Writable once connected: a full accept queue may hold it a while.
                selector.register(sock, selectors.EVENT_WRITE)
            if time.monotonic() >= next_drip:
                next_drip += SLOW_DRIP
                for sock in list(self.open):
                    with contextlib.suppress(OSError):
                        sock.send(b"X-Slow: 1\r\n")
            for key, _ in selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock in self.connecting:
                    self.connecting.discard(sock)
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        selector.unregister(sock)
                        sock.close()
                        continue
                    self.open[sock] = time.monotonic()
                    self.opened += 1
                    selector.modify(sock, selectors.EVENT_READ)
                    with contextlib.suppress(OSError):
                        sock.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                else:
                    self._check(selector, sock)
        # Stop sending: the server must close what is left within its timeout.
        for sock in self.connecting:
            selector.unregister(sock)
            sock.close()
        deadline = time.monotonic() + HEADER_TIMEOUT + 2
        while self.open and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                self._check(selector, sock)
        for sock in self.open:
            sock.close()
        selector.close()

    def _check(self, selector: Any, sock: socket.socket) -> None:
        try:
            closed = sock.recv(4096) == b""
        except BlockingIOError:
            closed = False
        except OSError:  # reset: the server aborted it
            closed = True
        if closed:
            self.lifetimes.append(time.monotonic() - self.open.pop(sock))
            selector.unregister(sock)
            sock.close()


def _own_file_limit() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_serve_survives_slowloris(tmp_path: Path) -> None:
    catalog = serve_catalog(latency=0.0, max_concurrency=8, max_queue=16) + (
        f"    header_timeout: {HEADER_TIMEOUT}\n    body_timeout: {HEADER_TIMEOUT}\n"
    )
    # This process holds the attack's sockets and the clients': stay within its limit.
    attackers = min(SLOW_ATTACKERS, _own_file_limit() - 128)
    assert attackers > SLOW_FILE_LIMIT, "ulimit -n too low for this test to mean anything"
    with _serving(tmp_path, catalog, SLOW_START) as served:
        log_before = served.log.stat().st_size
        files_before = served.open_files()
        attack = _Slowloris(served.url)
        until = time.monotonic() + SLOW_SECONDS
        attacker = threading.Thread(target=attack.run, args=(until, attackers))
        attacker.start()
        health: list[float] = []
        answers: list[float] = []
        failures: Counter[str] = Counter()
        time.sleep(1.0)  # the attack at full strength first
        payload = {"model": "slow", "messages": [{"role": "user", "content": "still there?"}]}
        timeout = httpx.Timeout(ANSWER_WITHIN, connect=CONNECT_WITHIN)
        with httpx.Client(base_url=served.url, timeout=timeout) as client:
            while time.monotonic() < until - 0.5:
                for path, took in (("/health", health), ("/v1/chat/completions", answers)):
                    started = time.monotonic()
                    try:
                        if path == "/health":
                            answer = client.get(path)
                        else:
                            answer = client.post(path, json=payload)
                    except httpx.HTTPError as error:
                        failures[f"{path}: {type(error).__name__}"] += 1
                        continue
                    if answer.status_code != 200:
                        failures[f"{path}: HTTP {answer.status_code}"] += 1
                        continue
                    took.append(time.monotonic() - started)
                time.sleep(0.2)
        attacker.join()  # which waits for the server to close what is left
        assert served.process.poll() is None, served.log.read_text()[-4000:]
        # What the attacker closed last, or the kernel held in its queue until then,
        # the server closes at the latest when its header timeout runs out.
        settle_by = time.monotonic() + HEADER_TIMEOUT + 2.0
        while (files_after := served.open_files()) > files_before + 2:
            if time.monotonic() > settle_by:
                break
            time.sleep(0.1)
        log_size = served.log.stat().st_size - log_before
        log_tail = served.log.read_text()[-2000:]
    FIGURES.record(
        "serve",
        slowloris_connections_held=attackers,
        slowloris_server_file_limit=SLOW_FILE_LIMIT,
        slowloris_connections_opened=attack.opened,
        slowloris_server_files_before_after=[files_before, files_after],
        slowloris_longest_held_s=round(max(attack.lifetimes, default=0.0), 2),
        slowloris_health_checks_ok=len(health),
        slowloris_slowest_health_s=round(max(health, default=0.0), 3),
        slowloris_answers_ok=len(answers),
        slowloris_slowest_answer_s=round(max(answers, default=0.0), 3),
        slowloris_failures=failures,
        slowloris_log_bytes=log_size,
    )
    # Health checks and ordinary clients answered all along, promptly.
    assert failures == Counter(), failures
    assert len(health) >= 5, health
    assert len(answers) >= 5, answers
    # The attack's connections were closed by the server, none held past its header
    # timeout. The attacker's clock starts when its side is connected; with the accept
    # queue full, the server's kernel may take a second more (a SYN-ACK resent) before
    # the server can accept it and start its own.
    # Counted on the server's side: a connection the client sees as open may never have
    # left the kernel's full accept queue, and takes none of the server's files.
    assert files_after <= files_before + 2, (files_before, files_after)
    # A connection can also wait in that full queue for SYN-ACKs resent after 1 and 3
    # seconds before the server ever sees it (seen: 5 of 39,000 held 6.9 s): so nearly
    # all, not every one, are closed within the timeout; a server that did not enforce
    # it would hold them all.
    assert attack.lifetimes
    held_long = [t for t in attack.lifetimes if t >= HEADER_TIMEOUT + 2.0]
    assert len(held_long) * 100 <= len(attack.lifetimes), sorted(attack.lifetimes)[-5:]
    # And the log stayed a few lines long.
    assert log_size <= LOG_AT_MOST, (log_size, log_tail)
