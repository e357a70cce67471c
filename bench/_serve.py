"""relay-serve in front of the bench server, against the bench server called directly.

``relay serve`` runs in a process of its own over a catalog whose alias ``bench`` is the
bench server (openai-compat), so the server, relay-serve and the client each have their
own event loop. One ``httpx.AsyncClient`` then sends the same Chat Completions requests
to both; only the URL and the model name differ. Used by ``run.py``'s ``serve`` section.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
SETTINGS = {"max_concurrency": 64, "max_queue": 64}
# Throughput runs per target and concurrency, alternating; the best counts, since other
# work on the machine can only slow a run down.
ROUNDS = 2
START = [sys.executable, "-c", "from relay_core.cli import main; main()"]


@contextlib.contextmanager
def relay_serve(catalog: str) -> Iterator[str]:
    """``relay serve`` over ``catalog`` on a free loopback port; yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="relay-bench-serve-") as tmp:
        path = Path(tmp) / "relay.yaml"
        path.write_text(catalog)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        log = Path(tmp) / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*START, "serve", "--config", str(path), "--port", str(port)],
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
            yield url
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


async def _throughput(client: httpx.AsyncClient, target: Target, concurrency: int, n: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await target.call(client, i)

    await asyncio.gather(*(one(i) for i in range(concurrency * 2)))  # open the connections
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


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


def measure(
    base_url: str,
    serve_url: str,
    *,
    calls: int,
    concurrencies: list[int],
    per_concurrency: int,
    streams: int,
    chunks: int,
) -> dict[str, Any]:
    """Every figure of the section, for both targets (``direct`` and ``relay-serve``)."""
    direct = Target("direct", base_url, "bench-model")
    served = Target("relay-serve", serve_url + "/v1", "bench")
    targets = [direct, served]

    async def run() -> dict[str, Any]:
        limits = httpx.Limits(max_connections=max(concurrencies), max_keepalive_connections=None)
        async with httpx.AsyncClient(
            limits=limits, timeout=60, headers={"authorization": "Bearer x"}
        ) as client:
            sequential = await _sequential(client, targets, calls)
            throughput = []
            for concurrency in concurrencies:
                n = max(per_concurrency, concurrency * 10)
                row: dict[str, Any] = {"concurrency": concurrency, "requests": n}
                best = {target.name: 0.0 for target in targets}
                for _ in range(ROUNDS):  # alternating, the best round of each
                    for target in targets:
                        rate = await _throughput(client, target, concurrency, n)
                        best[target.name] = max(best[target.name], rate)
                for name, rate in best.items():
                    row[f"{name}_per_s"] = rate
                throughput.append(row)
            streaming = await _streaming(client, targets, streams, chunks)
        return {"sequential": sequential, "throughput": throughput, "streaming": streaming}

    return {"calls": calls, "settings": SETTINGS, **asyncio.run(run())}
