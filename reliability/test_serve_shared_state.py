"""relay-serve as two replicas of two workers each (``relay serve --workers 2`` twice)
sharing one key's limits through a real Redis (``plugins.serve.state``).

- **limits**: hundreds (full: thousands) of clients at once, spread over both, for one
  key allowed N requests a minute: N answered, the rest refused with 429
  ``rate_limit_exceeded`` (within ±1%; exactly N is what atomic scripts give).
- **kill**: a worker SIGKILLed while it answers requests of a key with
  ``max_concurrent``: the other workers keep serving, and the key's count of requests in
  flight in Redis comes back to the true number within the lease's ttl (the dead
  worker's leases lapse; the others' are renewed past it).
- **outage** (one worker per process): Redis killed mid-run: ``on_state_error: closed`` answers 503
  ``state_unavailable``, ``open`` admits under each process's own limit and logs it once;
  Redis back: both recover within about a second and count one shared limit again.

The processes run relay-mock; ``dripping`` streams its answer a piece a second, long
enough to hold a stream (and its lease) while a worker is killed mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from relay_core.real_servers import RedisServer, free_port, redis_server
from relay_serve._quota import LEASE_TTL
from relay_serve._settings import hash_key
from reliability.support import FIGURES, SCALE

KEY = "sk-relay-SHAREDstateKEY0123456789abcdef"
AUTH = {"authorization": f"Bearer {KEY}"}
FAST = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
HOLD_SECONDS = 60.0
# A stream of 60 pieces, one a second: under way for as long as the test needs.
DRIPPING = {
    "model": "dripping",
    "stream": True,
    "messages": [{"role": "user", "content": " ".join(["drip"] * int(HOLD_SECONDS))}],
}
CONCURRENT = "relay:serve:concurrent:key:shared"

START = "from relay_core.cli import main; main()"


def catalog(
    state: str,
    *,
    rpm: int | None = None,
    max_concurrent: int | None = None,
    on_state_error: str = "closed",
) -> str:
    """relay-mock behind one key, its limits counted in ``state``."""
    limit = f", requests_per_minute: {rpm}" if rpm else ""
    limit += f", max_concurrent: {max_concurrent}" if max_concurrent else ""
    return (
        "providers:\n"
        "  mock:\n"
        "    max_retries: 0\n"
        f"    timeout: {HOLD_SECONDS * 2}\n"
        "    options:\n"
        "      faults: {dripping: {kind: drip, seconds: 1}}\n"
        "models:\n"
        "  echo: mock/echo\n"
        "  dripping: mock/dripping\n"
        "plugins:\n"
        "  serve:\n"
        f"    state: {state}\n"
        f"    on_state_error: {on_state_error}\n"
        "    max_concurrency: 256\n"
        "    max_queue: 4096\n"
        "    keys:\n"
        f'      - {{name: shared, hash: "{hash_key(KEY)}"{limit}}}\n'
    )


@dataclass
class Process:
    """One running ``relay serve``."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@contextlib.contextmanager
def serve_processes(
    n: int, tmp_path: Path, catalog_text: str, *, workers: int = 1
) -> Iterator[list[Process]]:
    """``n`` ``relay serve --workers W`` processes over one catalog, each on a port of
    its own, until the block ends."""
    path = tmp_path / f"relay-{free_port()}.yaml"
    path.write_text(catalog_text)
    started: list[Process] = []
    try:
        for _ in range(n):
            port = free_port()
            log = tmp_path / f"serve-{port}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        START,
                        "serve",
                        "--config",
                        str(path),
                        "--port",
                        f"{port}",
                        "--workers",
                        f"{workers}",
                    ],
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            started.append(Process(process, f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + 60
        for each in started:  # they start side by side; wait for each in turn
            while True:
                if each.process.poll() is not None:
                    pytest.fail(f"relay serve exited:\n{each.log.read_text()}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{each.url}/health", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(f"relay serve did not answer /health:\n{each.log.read_text()}")
                time.sleep(0.1)
        yield started
    finally:
        for each in started:
            if each.process.poll() is None:
                each.process.terminate()
        for each in started:
            try:
                each.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                each.kill()


def inside_one_window(seconds: float) -> None:
    """Wait for the next minute unless ``seconds`` are left in this one, so that what
    the test counts falls in one fixed window."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.1)


def outcome(answer: httpx.Response) -> str:
    """ "200", "429" for the documented rate-limit refusal, or what else came back."""
    if answer.status_code == 429:
        error = answer.json()["error"]
        headers_ok = int(answer.headers["retry-after"]) >= 1 and (
            answer.headers.get("x-ratelimit-remaining-requests") == "0"
        )
        if error["code"] == "rate_limit_exceeded" and headers_ok:
            return "429"
        return f"429 {error['code']}"
    return str(answer.status_code)


async def fire(urls: list[str], clients: int) -> Counter[str]:
    """``clients`` requests at once, spread over ``urls`` in turn."""
    seen: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    pools = [httpx.AsyncClient(base_url=url, limits=limits, timeout=60) for url in urls]

    async def one(i: int) -> None:
        try:
            answer = await pools[i % len(pools)].post(
                "/v1/chat/completions", json=FAST, headers=AUTH
            )
            seen[outcome(answer)] += 1
        except httpx.HTTPError as error:
            seen[type(error).__name__] += 1

    try:
        await asyncio.gather(*(one(i) for i in range(clients)))
    finally:
        for pool in pools:
            await pool.aclose()
    return seen


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def held(server: RedisServer) -> int:
    """The key's leases not lapsed, by Redis's clock."""
    with redis.Redis.from_url(server.url) as client:
        seconds, micros = client.time()
        return int(client.zcount(CONCURRENT, seconds + micros / 1e6, "+inf"))


# ---------------------------------------------------------------------------- limits


def test_processes_share_one_keys_requests_per_minute(
    shared_redis: RedisServer, tmp_path: Path
) -> None:
    clients, rpm = SCALE.shared_clients, SCALE.shared_rpm
    text = catalog(shared_redis.url, rpm=rpm)
    with serve_processes(2, tmp_path, text, workers=2) as processes:
        urls = [p.url for p in processes]
        # The whole burst must fall in one minute's window (it takes a few seconds).
        inside_one_window(40 if SCALE.name == "full" else 20)
        with redis.Redis.from_url(shared_redis.url) as client:
            client.flushall()
        started = time.monotonic()
        seen = asyncio.run(fire(urls, clients))
        took = time.monotonic() - started
        logs = "".join(p.log.read_text() for p in processes)
    FIGURES.record(
        "serve_shared",
        processes="2 × 2 workers",
        clients_at_once=clients,
        requests_per_minute=rpm,
        outcomes=dict(seen),
        burst_seconds=round(took, 2),
    )
    assert set(seen) <= {"200", "429"}, (seen, logs[-3000:])
    assert abs(seen["200"] - rpm) <= max(1, rpm // 100), seen
    assert seen["200"] + seen["429"] == clients


# ---------------------------------------------------------------------------- kill


async def stream_until_cut(client: httpx.AsyncClient) -> None:
    """Read a dripping stream until it ends, is cut, or the test cancels it."""
    url = "/v1/chat/completions"
    async with client.stream("POST", url, json=DRIPPING, headers=AUTH) as answer:
        assert answer.status_code == 200
        async for _ in answer.aiter_lines():
            pass


def worker_holding_requests(process: Process) -> int:
    """The pid of one of ``process``'s workers that is answering a request now."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        health = httpx.get(f"{process.url}/health", headers=AUTH, timeout=5).json()
        if health["in_flight"]:
            return int(health["worker_pid"])
    pytest.fail("no worker of the process reported a request in flight")


def test_a_killed_worker_gives_back_its_places_within_the_lease_ttl(
    shared_redis: RedisServer, tmp_path: Path
) -> None:
    with redis.Redis.from_url(shared_redis.url) as client:
        client.flushall()
    text = catalog(shared_redis.url, max_concurrent=8)
    with serve_processes(2, tmp_path, text, workers=2) as processes:
        doomed, survivor = processes

        async def hold_and_kill() -> dict[str, float]:
            limits = httpx.Limits(max_connections=None)
            async with (
                httpx.AsyncClient(base_url=doomed.url, timeout=60, limits=limits) as a,
                httpx.AsyncClient(base_url=survivor.url, timeout=60, limits=limits) as b,
            ):
                # Streams under way: 4 on the doomed process's workers, 3 on the other's.
                holding = [
                    asyncio.ensure_future(stream_until_cut(c)) for c in (a, a, a, a, b, b, b)
                ]
                deadline = time.monotonic() + 10
                while held(shared_redis) < 7:
                    assert time.monotonic() < deadline, held(shared_redis)
                    await asyncio.sleep(0.05)
                before = held(shared_redis)
                last = await b.post("/v1/chat/completions", json=FAST, headers=AUTH)
                # One place left: this takes it and ends at once.
                assert last.status_code == 200, last.text
                pid = await asyncio.to_thread(worker_holding_requests, doomed)
                os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
                await asyncio.sleep(1.5)  # its clients see their streams cut
                alive = sum(not task.done() for task in holding)
                while held(shared_redis) > alive:
                    assert time.monotonic() - killed < LEASE_TTL * 3, held(shared_redis)
                    await asyncio.sleep(0.1)
                back = time.monotonic() - killed
                # The others' leases outlive their ttl: renewed while answering.
                await asyncio.sleep(max(0.0, LEASE_TTL + 1.0 - back))
                after_ttl = held(shared_redis)
                answers = [
                    (await c.post("/v1/chat/completions", json=FAST, headers=AUTH)).status_code
                    for c in (a, b, a, b, a, b)
                ]
                for task in holding:
                    task.cancel()
                await asyncio.gather(*holding, return_exceptions=True)
                return {
                    "held_before_kill": before,
                    "held_by_the_killed_worker": before - alive,
                    "seconds_until_count_true": round(back, 2),
                    "held_after_ttl": after_ttl,
                    "still_answering": alive,
                    "answers_after_kill": answers.count(200),
                }

        figures = asyncio.run(hold_and_kill())
        deadline = time.monotonic() + 5
        while held(shared_redis) and time.monotonic() < deadline:
            time.sleep(0.1)
        figures["held_after_clients_left"] = held(shared_redis)
    FIGURES.record(
        "serve_shared", lease_ttl_s=LEASE_TTL, **{f"kill_{k}": v for k, v in figures.items()}
    )
    assert figures["held_before_kill"] == 7
    assert figures["held_by_the_killed_worker"] >= 1
    assert figures["seconds_until_count_true"] <= LEASE_TTL + 1.0
    assert figures["held_after_ttl"] == figures["still_answering"]
    # The other workers, and the killed one's replacement, keep answering.
    assert figures["answers_after_kill"] == 6
    assert figures["held_after_clients_left"] == 0


# ---------------------------------------------------------------------------- outage


def test_redis_stopped_mid_run_does_what_the_catalog_says(tmp_path: Path) -> None:
    rpm = 20
    server = RedisServer(tmp_path)
    server.start()
    try:
        closed_text = catalog(server.url, rpm=rpm, on_state_error="closed")
        open_text = catalog(server.url, rpm=rpm, on_state_error="open")
        with (
            serve_processes(1, tmp_path, closed_text) as (closed,),
            serve_processes(1, tmp_path, open_text) as (opened,),
            httpx.Client(timeout=30) as http,
        ):

            def post(process: Process) -> int:
                url = f"{process.url}/v1/chat/completions"
                return http.post(url, json=FAST, headers=AUTH).status_code

            inside_one_window(15)
            assert (post(closed), post(opened)) == (200, 200)
            server.stop()
            down_closed = Counter(post(closed) for _ in range(10))
            # The open process counts alone from zero now: rpm answers, then 429s.
            down_open = Counter(post(opened) for _ in range(rpm + 5))
            server.start()
            restarted = time.monotonic()
            while post(closed) != 200:
                assert time.monotonic() - restarted < 5, "closed never recovered"
                time.sleep(0.05)
            recovered = time.monotonic() - restarted
            time.sleep(1.1)  # the open process's next probe is due
            # Both count one limit in Redis again: rpm answers between them.
            inside_one_window(10)
            with redis.Redis.from_url(server.url) as client:
                client.flushall()
            shared = Counter(post(p) for _ in range(rpm) for p in (closed, opened))
            logs = [p.log.read_text() for p in (closed, opened)]
    finally:
        server.stop()
    FIGURES.record(
        "serve_shared",
        outage_closed_answers=dict(down_closed),
        outage_open_answers=dict(down_open),
        outage_recovery_s=round(recovered, 2),
        after_recovery_answers=dict(shared),
    )
    assert down_closed == Counter({503: 10})
    assert down_open == Counter({200: rpm, 429: 5})
    assert recovered < 2.0
    for log in logs:
        assert log.count("serve.state_unavailable") == 1, log[-2000:]
        assert log.count("serve.state_recovered") == 1, log[-2000:]
    assert shared[200] == rpm, shared
