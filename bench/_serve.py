"""relay-serve in front of the bench server, against the bench server called directly.

``relay serve --workers N`` runs in processes of its own over a catalog whose alias
``bench`` is the bench server (openai-compat), so the server, relay-serve and the clients
each have their own event loops. The same Chat Completions requests go to both; only the
URL and the model name differ. Used by ``run.py``'s ``serve`` section.

Throughput is sent by N client processes (one ``httpx.AsyncClient`` each) to either
target: relay-serve's N workers each call the upstream with a client of their own, so
the direct side gets as many clients, connections and CPUs for them. (One shared client
in the benchmark's own process capped the direct side at what that one process could
send, which made relay-serve look closer to it than it is.) Sequential calls and
streams go one at a time, from one client, alternating between the targets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

# The gate's defaults (16 calls, 64 waiting) would cap the concurrency-64 run at 16
# upstream calls: set above what the benchmark sends, so it measures the server's own
# overhead rather than its load limit (the reliability suite tests that).
SETTINGS = {"max_concurrency": 256, "max_queue": 256}
WORKERS = 2
# Throughput runs per target and concurrency, alternating; the best counts, since other
# work on the machine can only slow a run down.
ROUNDS = 2
START = [sys.executable, "-c", "from relay_core.cli import main; main()"]


@contextlib.contextmanager
def relay_serve(catalog: str, workers: int = WORKERS) -> Iterator[str]:
    """``relay serve --workers N`` over ``catalog`` on a free loopback port; yields its
    base URL."""
    with tempfile.TemporaryDirectory(prefix="relay-bench-serve-") as tmp:
        path = Path(tmp) / "relay.yaml"
        path.write_text(catalog)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        log = Path(tmp) / "serve.log"
        workers_flag = ["--workers", str(workers)]
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*START, "serve", "--config", str(path), "--port", str(port), *workers_flag],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"relay serve did not start:\n{log.read_text()}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                time.sleep(0.1)
            try:
                yield url
            except BaseException:
                print(f"relay serve's output:\n{log.read_text()}", file=sys.stderr)
                raise
        finally:
            process.terminate()
            process.wait()


class Target:
    """Where a request goes: the bench server directly, or relay-serve in front of it."""

    def __init__(self, name: str, url: str, model: str) -> None:
        self.name = name
        self.url = url + "/chat/completions"
        self.model = model

    def body(self, i: int, *, stream: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": f"Hello {i}"}],
        }
        if stream:
            body["stream"] = True
        return body

    async def call(self, client: httpx.AsyncClient, i: int) -> None:
        answer = await client.post(self.url, json=self.body(i))
        # A benchmark that timed refusals or errors would flatter the server.
        if answer.status_code != 200:
            raise RuntimeError(f"{self.name}: HTTP {answer.status_code}: {answer.text[:200]}")
        answer.json()

    async def stream(self, client: httpx.AsyncClient, i: int) -> tuple[float, float, int]:
        """Seconds to the first content delta, seconds to the end, content deltas."""
        started = time.perf_counter()
        first = None
        deltas = 0
        async with client.stream("POST", self.url, json=self.body(i, stream=True)) as answer:
            if answer.status_code != 200:
                raise RuntimeError(f"{self.name}: HTTP {answer.status_code}")
            async for line in answer.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                for choice in json.loads(line[6:]).get("choices", ()):
                    if choice.get("delta", {}).get("content"):
                        deltas += 1
                        if first is None:
                            first = time.perf_counter() - started
        total = time.perf_counter() - started
        return first if first is not None else total, total, deltas


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def _sequential(
    client: httpx.AsyncClient, targets: list[Target], calls: int
) -> dict[str, Any]:
    # Alternating call by call, so that both see the same machine: other work on the
    # CPUs slows both sides alike rather than whichever ran second.
    times: dict[str, list[float]] = {target.name: [] for target in targets}
    for i in range(max(50, calls // 10) + calls):
        for target in targets:
            started = time.perf_counter()
            await target.call(client, i)
            if i >= max(50, calls // 10):  # warm connections, caches and code paths first
                times[target.name].append(time.perf_counter() - started)
    return {
        name: {
            "p50_us": statistics.median(values) * 1e6,
            "p99_us": _percentile(values, 0.99) * 1e6,
            "mean_us": statistics.fmean(values) * 1e6,
        }
        for name, values in times.items()
    }


def _throughput(target: Target, concurrency: int, n: int, lanes: int) -> tuple[float, int]:
    """Answers per second, and connections lost, from ``lanes`` client processes sending
    ``n`` requests in
    all, ``concurrency`` at once in all; timed from the first lane's start to the last
    one's end, each lane starting once it has opened its connections."""
    here = str(Path(__file__).resolve())
    each = [concurrency // lanes + (i < concurrency % lanes) for i in range(lanes)]
    processes = [
        subprocess.Popen(
            [sys.executable, here, target.name, target.url, target.model, str(c), str(n // lanes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for c in each
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{target.name}: a client process failed to start")
        for process in processes:  # all at once: no lane starts on an idle machine
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        spans = []
        for process in processes:
            out, _ = process.communicate(timeout=600)
            if process.returncode != 0:
                raise RuntimeError(f"{target.name}: a client process failed")
            spans.append(json.loads(out))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    answered = sum(span["requests"] for span in spans)
    seconds = max(span["end"] for span in spans) - min(span["start"] for span in spans)
    return answered / seconds, sum(span["dropped"] for span in spans)


async def _lane(target: Target, concurrency: int, n: int) -> None:
    """One client process of :func:`_throughput`: say ready, wait for go, warm up, send
    ``n`` requests ``concurrency`` at once, print when that started and ended."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=None)
    async with httpx.AsyncClient(
        limits=limits, timeout=60, headers={"authorization": "Bearer x"}
    ) as client:
        gate = asyncio.Semaphore(concurrency)
        dropped = 0

        async def one(i: int) -> None:
            nonlocal dropped
            async with gate:
                try:
                    await target.call(client, i)
                except httpx.TransportError:
                    # A connection reset under load (seen rarely, on relay-serve's side):
                    # counted and reported, not timed as an answer.
                    dropped += 1

        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        # Connections opened after go, not before: a lane waiting for slower ones to
        # start could see its idle connections closed by the server's keep-alive timeout.
        await asyncio.gather(*(one(i) for i in range(concurrency * 2)))
        start = time.time()
        await asyncio.gather(*(one(i) for i in range(n)))
        end = time.time()
    print(json.dumps({"start": start, "end": end, "requests": n - dropped, "dropped": dropped}))


async def _streaming(
    client: httpx.AsyncClient, targets: list[Target], streams: int, chunks: int
) -> dict[str, Any]:
    firsts: dict[str, list[float]] = {target.name: [] for target in targets}
    totals: dict[str, list[float]] = {target.name: [] for target in targets}
    for i in range(streams + 10):
        for target in targets:
            first, total, deltas = await target.stream(client, i)
            if deltas != chunks:
                raise RuntimeError(f"{target.name}: {deltas} deltas, expected {chunks}")
            if i >= 10:
                firsts[target.name].append(first)
                totals[target.name].append(total)
    return {
        name: {
            "ttft_us": statistics.median(firsts[name]) * 1e6,
            "tokens_per_s": chunks / statistics.median(totals[name]),
        }
        for name in firsts
    }


def _load() -> float:
    return os.getloadavg()[0]


def measure(
    base_url: str,
    serve_url: str,
    *,
    calls: int,
    concurrencies: list[int],
    per_concurrency: int,
    streams: int,
    chunks: int,
    workers: int = WORKERS,
) -> dict[str, Any]:
    """Every figure of the section, for both targets (``direct`` and ``relay-serve``),
    each with the machine's load average (1 minute) when it started."""
    direct = Target("direct", base_url, "bench-model")
    served = Target("relay-serve", serve_url + "/v1", "bench")
    targets = [direct, served]

    async def one_at_a_time() -> tuple[dict[str, Any], dict[str, Any]]:
        async with httpx.AsyncClient(timeout=60, headers={"authorization": "Bearer x"}) as client:
            sequential = {"load": _load(), **await _sequential(client, targets, calls)}
            streaming = {"load": _load(), **await _streaming(client, targets, streams, chunks)}
        return sequential, streaming

    sequential, streaming = asyncio.run(one_at_a_time())
    throughput = []
    for concurrency in concurrencies:
        n = max(per_concurrency, concurrency * 10)
        row: dict[str, Any] = {"concurrency": concurrency, "requests": n, "load": _load()}
        best = {target.name: 0.0 for target in targets}
        dropped = {target.name: 0 for target in targets}
        for _ in range(ROUNDS):  # alternating, the best round of each
            for target in targets:
                rate, lost = _throughput(target, concurrency, n, workers)
                best[target.name] = max(best[target.name], rate)
                dropped[target.name] += lost
        for name, rate in best.items():
            row[f"{name}_per_s"] = rate
            row[f"{name}_dropped"] = dropped[name]
        throughput.append(row)
    return {
        "calls": calls,
        "settings": SETTINGS,
        "workers": workers,
        "clients": f"{workers} client processes, one httpx.AsyncClient each",
        "sequential": sequential,
        "throughput": throughput,
        "streaming": streaming,
    }


if __name__ == "__main__":  # a client process of _throughput
    name, url, model, concurrency, n = sys.argv[1:]
    lane = Target(name, "", model)
    lane.url = url
    asyncio.run(_lane(lane, int(concurrency), int(n)))
