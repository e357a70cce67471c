"""Relay's benchmarks: each figure beside a baseline measured in the same run.

``nox -s bench`` runs this in an environment that also has the openai SDK and LiteLLM;
``python bench/run.py --quick`` is the short form. Every client talks to
``bench/server.py`` on 127.0.0.1, which answers at once, so what is measured is each
client's own overhead. Results: a table on stdout, ``docs/benchmarks.json`` (raw),
``docs/benchmarks.md`` and ``docs/bench-*.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
PY = sys.executable
MESSAGES = [{"role": "user", "content": "Hello"}]
STREAM_CHUNKS = 100
# LiteLLM fetches its model price map from the network at import unless told not to;
# offline that would time the network's failure, not LiteLLM.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@contextlib.contextmanager
def bench_server(latency: float = 0.0) -> Iterator[str]:
    process = subprocess.Popen(
        [PY, str(HERE / "server.py"), "--latency", str(latency), "--chunks", str(STREAM_CHUNKS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait()


def catalog_text(base_url: str, extra_models: int = 0) -> str:
    models = "".join(f"  m{i}: bench/model-{i}\n" for i in range(extra_models))
    return (
        "providers:\n"
        f"  bench: {{plugin: openai-compat, base_url: '{base_url}', max_retries: 0}}\n"
        "models:\n"
        "  bench: bench/bench-model\n" + models
    )


# ---------------------------------------------------------------------------- cold start


def cold_start(repeats: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    catalog = workdir / "relay.yaml"
    catalog.write_text(catalog_text("http://127.0.0.1:9/v1", extra_models=49))
    relay = shutil.which("relay", path=str(Path(PY).parent)) or "relay"
    commands: dict[str, list[str]] = {
        "python -c pass": [PY, "-c", "pass"],
        "import relay_core": [PY, "-c", "import relay_core"],
        "Hub.from_yaml (50 models)": [
            PY,
            "-c",
            f"from relay_core import Hub; Hub.from_yaml({str(catalog)!r})",
        ],
        "relay --help": [relay, "--help"],
    }
    if have("openai"):
        commands["import openai"] = [PY, "-c", "import openai"]
    if have("litellm"):
        commands["import litellm"] = [PY, "-c", "import litellm"]
    results: dict[str, Any] = {}
    for name, command in commands.items():
        subprocess.run(command, check=True, capture_output=True)  # warm the file cache
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append((time.perf_counter() - started) * 1000)
        results[name] = {"median_ms": statistics.median(times), "min_ms": min(times)}
    shutil.rmtree(workdir)
    return results


# ---------------------------------------------------------------------------- per call


def sync_clients(base_url: str) -> dict[str, Callable[[], Any]]:
    import httpx

    from relay_core import Hub, parse_catalog

    clients: dict[str, Callable[[], Any]] = {}
    raw = httpx.Client(base_url=base_url, headers={"authorization": "Bearer x"})
    payload = {"model": "bench-model", "messages": MESSAGES}
    clients["raw httpx"] = lambda: raw.post("/chat/completions", json=payload).json()
    if have("openai"):
        import openai

        sdk = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
        clients["openai SDK"] = lambda: sdk.chat.completions.create(
            model="bench-model",
            messages=MESSAGES,  # type: ignore[arg-type]
        )
    if have("litellm"):
        import litellm

        clients["LiteLLM"] = lambda: litellm.completion(
            model="openai/bench-model", messages=MESSAGES, api_base=base_url, api_key="x"
        )
    hub = Hub(parse_catalog(catalog_text(base_url)))
    clients["Relay hub.chat"] = lambda: hub.chat("bench", "Hello")
    handle = hub.get("bench")
    clients["Relay handle.chat"] = lambda: handle.chat("Hello")
    bare = provider_only_hub(base_url)
    clients[f"Relay hub.chat, {PROVIDER_ONLY}"] = lambda: bare.chat("bench", "Hello")
    return clients


# The hubs above load every installed plugin; this one only the provider's, so that the
# two side by side show what the installed but unconfigured plugins cost a call.
PROVIDER_ONLY = "provider plugin only"


def provider_only_hub(base_url: str) -> Any:
    import relay_openai_compat
    from relay_core import Hub, parse_catalog

    hub = Hub(parse_catalog(catalog_text(base_url)), autoload=False)
    hub.plugins.register(relay_openai_compat, name="openai-compat")
    return hub


def async_clients(base_url: str) -> dict[str, Callable[[], Any]]:
    import httpx

    from relay_core import Hub, parse_catalog

    clients: dict[str, Callable[[], Any]] = {}
    payload = {"model": "bench-model", "messages": MESSAGES}
    holder: dict[str, Any] = {}

    async def raw() -> Any:
        if "raw" not in holder:
            holder["raw"] = httpx.AsyncClient(base_url=base_url, headers={"authorization": "x"})
        return (await holder["raw"].post("/chat/completions", json=payload)).json()

    clients["raw httpx"] = raw
    from relay_core._transport import AiohttpTransport

    async def raw_aiohttp() -> Any:
        # What Relay's own requests go through: httpx over its aiohttp transport.
        if "aiohttp" not in holder:
            holder["aiohttp"] = httpx.AsyncClient(
                base_url=base_url,
                headers={"authorization": "x"},
                transport=AiohttpTransport(ssl_context=httpx.create_ssl_context()),
            )
        return (await holder["aiohttp"].post("/chat/completions", json=payload)).json()

    clients["raw httpx (aiohttp transport)"] = raw_aiohttp
    if have("openai"):
        import openai

        async def sdk() -> Any:
            if "sdk" not in holder:
                holder["sdk"] = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
            return await holder["sdk"].chat.completions.create(
                model="bench-model", messages=MESSAGES
            )

        clients["openai SDK"] = sdk
    if have("litellm"):
        import litellm

        async def lite() -> Any:
            return await litellm.acompletion(
                model="openai/bench-model", messages=MESSAGES, api_base=base_url, api_key="x"
            )

        clients["LiteLLM"] = lite
    hub = Hub(parse_catalog(catalog_text(base_url)))

    async def relay() -> Any:
        return await hub.achat("bench", "Hello")

    clients["Relay hub.achat"] = relay
    bare = provider_only_hub(base_url)

    async def relay_bare() -> Any:
        return await bare.achat("bench", "Hello")

    clients[f"Relay hub.achat, {PROVIDER_ONLY}"] = relay_bare
    return clients


ROUNDS = 3
# Calls in flight per relay-ray worker (the local engine gets workers times as many).
RAY_CONCURRENCY = 16


def per_call(base_url: str, calls: int) -> dict[str, Any]:
    """Each client's time per call: the clients take turns, ``ROUNDS`` rounds of
    ``calls / ROUNDS`` calls each, and each keeps its best round, so a slow patch of
    the machine does not land on one client alone."""
    results: dict[str, Any] = {"sync": {}, "async": {}}
    per_round = max(1, calls // ROUNDS)
    sync = sync_clients(base_url)
    best: dict[str, float] = {}
    for call in sync.values():
        for _ in range(max(20, calls // 10)):
            call()
    for _ in range(ROUNDS):
        for name, call in sync.items():
            started = time.perf_counter()
            for _ in range(per_round):
                call()
            elapsed = (time.perf_counter() - started) / per_round * 1e6
            best[name] = min(best.get(name, elapsed), elapsed)
    results["sync"] = {name: {"us_per_call": us} for name, us in best.items()}

    async def measure_all() -> dict[str, float]:
        clients = async_clients(base_url)
        fastest: dict[str, float] = {}
        for call in clients.values():
            for _ in range(max(20, calls // 10)):
                await call()
        for _ in range(ROUNDS):
            for name, call in clients.items():
                started = time.perf_counter()
                for _ in range(per_round):
                    await call()
                elapsed = (time.perf_counter() - started) / per_round * 1e6
                fastest[name] = min(fastest.get(name, elapsed), elapsed)
        return fastest

    results["async"] = {
        name: {"us_per_call": us} for name, us in asyncio.run(measure_all()).items()
    }
    return results


# ---------------------------------------------------------------------------- streaming


def _chunk_texts(payload: bytes) -> Iterator[str]:
    for choice in json.loads(payload).get("choices", ()):
        text = choice.get("delta", {}).get("content")
        if text:
            yield text


def sync_streams(base_url: str) -> dict[str, Callable[[], Iterator[str]]]:
    import httpx

    from relay_core import Hub, TextDelta, parse_catalog

    raw = httpx.Client(base_url=base_url, headers={"authorization": "Bearer x"})
    payload = {"model": "bench-model", "messages": MESSAGES, "stream": True}

    def raw_stream() -> Iterator[str]:
        with raw.stream("POST", "/chat/completions", json=payload) as answer:
            for line in answer.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    yield from _chunk_texts(line[6:].encode())

    clients: dict[str, Callable[[], Iterator[str]]] = {"raw httpx SSE": raw_stream}
    if have("openai"):
        import openai

        sdk = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)

        def sdk_stream() -> Iterator[str]:
            for chunk in sdk.chat.completions.create(
                model="bench-model",
                messages=MESSAGES,
                stream=True,  # type: ignore[arg-type]
            ):
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

        clients["openai SDK"] = sdk_stream
    if have("litellm"):
        import litellm

        def lite_stream() -> Iterator[str]:
            for chunk in litellm.completion(
                model="openai/bench-model",
                messages=MESSAGES,
                api_base=base_url,
                api_key="x",
                stream=True,
            ):
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

        clients["LiteLLM"] = lite_stream
    hub = Hub(parse_catalog(catalog_text(base_url)))

    def relay_stream() -> Iterator[str]:
        for event in hub.stream("bench", "Hello"):
            if isinstance(event, TextDelta) and event.text:
                yield event.text

    clients["Relay hub.stream"] = relay_stream
    return clients


def async_streams(base_url: str) -> dict[str, Callable[[], AsyncIterator[str]]]:
    """The async clients' streams; each makes its client on the loop that runs it."""
    import httpx

    from relay_core import Hub, TextDelta, parse_catalog

    payload = {"model": "bench-model", "messages": MESSAGES, "stream": True}
    holder: dict[str, Any] = {}

    async def raw_stream() -> AsyncIterator[str]:
        if "raw" not in holder:
            holder["raw"] = httpx.AsyncClient(base_url=base_url, headers={"authorization": "x"})
        async with holder["raw"].stream("POST", "/chat/completions", json=payload) as answer:
            async for line in answer.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for text in _chunk_texts(line[6:].encode()):
                        yield text

    clients: dict[str, Callable[[], AsyncIterator[str]]] = {"raw httpx SSE": raw_stream}
    if have("openai"):
        import openai

        async def sdk_stream() -> AsyncIterator[str]:
            if "sdk" not in holder:
                holder["sdk"] = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
            chunks = await holder["sdk"].chat.completions.create(
                model="bench-model", messages=MESSAGES, stream=True
            )
            async for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

        clients["openai SDK"] = sdk_stream
    hub = Hub(parse_catalog(catalog_text(base_url)))

    async def relay_stream() -> AsyncIterator[str]:
        async for event in hub.astream("bench", "Hello"):
            if isinstance(event, TextDelta) and event.text:
                yield event.text

    clients["Relay hub.astream"] = relay_stream
    return clients


STREAM_WARMUP = 10


def _stream_figures(firsts: list[float], totals: list[float]) -> dict[str, float]:
    return {
        "ttft_us": statistics.median(firsts) * 1e6,
        "tokens_per_s": STREAM_CHUNKS / statistics.median(totals),
    }


def streaming(base_url: str, streams: int) -> dict[str, Any]:
    """Time to the first token and tokens per second of each client's stream, sync and
    async. The clients take turns stream by stream, so a slow patch of the machine
    lands on all of them alike."""
    results: dict[str, Any] = {}
    sync = sync_streams(base_url)
    firsts: dict[str, list[float]] = {name: [] for name in sync}
    totals: dict[str, list[float]] = {name: [] for name in sync}
    for attempt in range(streams + STREAM_WARMUP):
        for name, stream in sync.items():
            started = time.perf_counter()
            first = None
            count = 0
            for _ in stream():
                if first is None:
                    first = time.perf_counter() - started
                count += 1
            total = time.perf_counter() - started
            assert count == STREAM_CHUNKS, (name, count)
            if attempt >= STREAM_WARMUP:  # the first few warm connections and caches
                firsts[name].append(first or total)
                totals[name].append(total)
    results["sync"] = {name: _stream_figures(firsts[name], totals[name]) for name in sync}

    async def measure_all() -> dict[str, Any]:
        clients = async_streams(base_url)
        firsts: dict[str, list[float]] = {name: [] for name in clients}
        totals: dict[str, list[float]] = {name: [] for name in clients}
        for attempt in range(streams + STREAM_WARMUP):
            for name, stream in clients.items():
                started = time.perf_counter()
                first = None
                count = 0
                async for _ in stream():
                    if first is None:
                        first = time.perf_counter() - started
                    count += 1
                total = time.perf_counter() - started
                assert count == STREAM_CHUNKS, (name, count)
                if attempt >= STREAM_WARMUP:
                    firsts[name].append(first or total)
                    totals[name].append(total)
        return {name: _stream_figures(firsts[name], totals[name]) for name in clients}

    results["async"] = asyncio.run(measure_all())
    return results


# ---------------------------------------------------------------------------- engine


def engine_clients(concurrency: int) -> int:
    """How many httpx clients Relay's pool gives one provider carrying ``concurrency``
    calls at once: the honest baseline uses as many."""
    from relay_core.http import _CALLS_PER_SHARD, _MAX_SHARDS

    return min(_MAX_SHARDS, -(-concurrency // _CALLS_PER_SHARD))


def raw_concurrent(base_url: str, concurrency: int, n: int) -> float:
    """Requests per second of a hand-written asyncio loop: ``concurrency`` workers
    sending the same requests over as many ``httpx.AsyncClient`` s as the engine uses
    (worker ``w`` on client ``w % clients``), with no job around them. One shared
    client would be no baseline: past 64 calls at once httpcore's pool spends its time
    matching requests to connections (encode/httpcore#1035)."""
    import httpx

    clients = engine_clients(concurrency)

    async def run() -> float:
        per_client = -(-concurrency // clients)
        limits = httpx.Limits(max_connections=per_client)
        pool = [httpx.AsyncClient(base_url=base_url, limits=limits) for _ in range(clients)]
        todo = iter(range(n))

        async def worker(client: httpx.AsyncClient) -> None:
            for i in todo:
                payload = {
                    "model": "bench-model",
                    "messages": [{"role": "user", "content": f"request {i}"}],
                }
                (await client.post("/chat/completions", json=payload)).json()

        try:
            started = time.perf_counter()
            await asyncio.gather(*(worker(pool[w % clients]) for w in range(concurrency)))
            return n / (time.perf_counter() - started)
        finally:
            for client in pool:
                await client.aclose()

    return asyncio.run(run())


def engine(base_url: str, latency: float, concurrencies: list[int], per_worker: int) -> Any:
    """The engine's requests per second beside the raw loop's, at each concurrency: the
    two take turns for ``ROUNDS`` rounds and each keeps its best, as in :func:`per_call`;
    then a rerun of the same requests, answered from the workspace's cache."""
    from relay_core import RelayClient, parse_catalog

    results: dict[str, Any] = {"latency_s": latency, "runs": []}
    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-engine-"))
    config = parse_catalog(catalog_text(base_url))
    for concurrency in concurrencies:
        n = max(100, concurrency * per_worker)
        requests = [{"id": f"r{i}", "prompt": f"request {i}"} for i in range(n)]
        elapsed = float("inf")
        raw = 0.0
        for turn in range(ROUNDS):
            with RelayClient(workdir / f"ws-{concurrency}-{turn}", config=config) as relay:
                started = time.perf_counter()
                relay.submit_batch(
                    requests, job_id="first", model="bench", mode="engine", concurrency=concurrency
                )
                elapsed = min(elapsed, time.perf_counter() - started)
                if turn == 0:
                    started = time.perf_counter()
                    relay.submit_batch(
                        requests,
                        job_id="rerun",
                        model="bench",
                        mode="engine",
                        concurrency=concurrency,
                    )
                    cached = time.perf_counter() - started
                    stats = relay.last_engine_stats
            raw = max(raw, raw_concurrent(base_url, concurrency, n))
        bound = concurrency / latency
        results["runs"].append(
            {
                "concurrency": concurrency,
                "requests": n,
                "seconds": elapsed,
                "requests_per_s": n / elapsed,
                "bound_per_s": bound,
                "of_bound": n / elapsed / bound,
                "raw_clients": engine_clients(concurrency),
                "raw_httpx_per_s": raw,
                "of_raw_httpx": n / elapsed / raw,
                "cached_rerun_seconds": cached,
                "cached_rerun_calls": stats.called if stats else None,
            }
        )
    shutil.rmtree(workdir)
    return results


def memory(sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        workdir = Path(tempfile.mkdtemp(prefix="relay-bench-memory-"))
        out = subprocess.run(
            [PY, str(HERE / "_memory.py"), str(n), str(workdir)],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        shutil.rmtree(workdir)
    return rows


# ---------------------------------------------------------------------------- relay-ray


def _ray_job(cluster: Any, base_url: str, n: int, mode: str, workers: int) -> dict[str, Any]:
    """One job of ``n`` requests in a driver process of its own (``bench/_ray.py``), with
    the peak RSS of each worker process while it answers a shard, sampled as the job
    runs (workers end with their driver)."""
    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-ray-"))
    args = [str(n), mode, cluster.address, str(workers), str(RAY_CONCURRENCY), base_url]
    peaks: dict[int, float] = {}
    try:
        with subprocess.Popen(
            [PY, str(HERE / "_ray.py"), *args, str(workdir)],
            stdout=subprocess.PIPE,
            text=True,
            env=cluster.env,
        ) as driver:
            while driver.poll() is None:
                for pid in cluster.task_workers("answer_shard"):
                    peak = _peak_mib(pid)
                    if peak is not None:
                        peaks[pid] = max(peaks.get(pid, 0.0), peak)
                time.sleep(0.2)
            assert driver.stdout is not None
            output = driver.stdout.read()
        if driver.returncode:
            raise RuntimeError(f"the {mode} job's driver failed ({driver.returncode})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["worker_peaks_mib"] = sorted(peaks.values())
    return result


def _peak_mib(pid: int) -> float | None:
    """The peak RSS (MiB) of process ``pid`` (``None`` once it has ended)."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def ray_cluster_bench(base_url: str, n: int, sizes: list[int]) -> dict[str, Any]:
    """relay-ray against the instant bench server: requests per second with 1, 2 and 4
    workers beside the local engine with as many calls in flight (the same catalog,
    the same requests, no cluster), then :func:`ray_memory`."""
    from relay_core.real_servers import ray_cluster

    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "requests": n,
        "concurrency_per_worker": RAY_CONCURRENCY,
        "load_before": os.getloadavg()[0],
        "runs": [],
    }
    with ray_cluster(cpus=4) as cluster:
        results["cluster_start_seconds"] = cluster.started_in
        for workers in (1, 2, 4):
            best = {"ray": 0.0, "engine": 0.0}
            for _ in range(ROUNDS):
                for mode in best:
                    run = _ray_job(cluster, base_url, n, mode, workers)
                    assert run["completed"] == n, run
                    best[mode] = max(best[mode], n / run["seconds"])
            results["runs"].append(
                {
                    "workers": workers,
                    "ray_per_s": best["ray"],
                    "engine_per_s": best["engine"],
                    "of_engine": best["ray"] / best["engine"],
                    "load": os.getloadavg()[0],
                }
            )
    results["memory"] = ray_memory(base_url, sizes)
    return results


def ray_memory(base_url: str, sizes: list[int]) -> list[dict[str, Any]]:
    """Each relay-ray worker's peak memory, and the driver's, as the job grows (a fresh
    two-CPU cluster per size, so a peak is that job's)."""
    from relay_core.real_servers import ray_cluster

    rows = []
    for size in sizes:
        with ray_cluster(cpus=2) as cluster:
            run = _ray_job(cluster, base_url, size, "ray", 2)
        peaks = run["worker_peaks_mib"]
        rows.append(
            {
                "requests": size,
                "seconds": run["seconds"],
                "worker_peak_rss_mib": max(peaks) if peaks else None,
                "workers_seen": len(peaks),
                "driver_peak_rss_mib": run["driver_peak_rss_mib"],
            }
        )
    return rows


# ---------------------------------------------------------------------------- relay-serve


def serve(base_url: str, calls: int, per_concurrency: int, streams: int) -> dict[str, Any]:
    """relay-serve (``--workers 2``, in processes of its own) in front of the bench
    server, against the bench server called directly: sequential latency, throughput at
    concurrency 32 and 128, and streaming (``bench/_serve.py``)."""
    from importlib.metadata import PackageNotFoundError, version

    import _serve

    settings = "".join(f"    {name}: {value}\n" for name, value in _serve.SETTINGS.items())
    catalog = catalog_text(base_url) + "plugins:\n  serve:\n" + settings
    with _serve.relay_serve(catalog) as serve_url:
        results = _serve.measure(
            base_url,
            serve_url,
            calls=calls,
            concurrencies=[32, 128],
            per_concurrency=per_concurrency,
            streams=streams,
            chunks=STREAM_CHUNKS,
        )
    found = {}
    for name in ("relay-serve", "uvicorn", "starlette"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return {"date": datetime.date.today().isoformat(), "versions": found, **results}


# ---------------------------------------------------------------------------- report


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("relay-core", "httpx", "openai", "litellm"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


# Written by hand after reading a run; kept here so that a rerun does not drop them.
NOTES = """\
- One full run (`nox -s bench`) on 2026-12-06, on a 2-core machine with nothing else
  running (load average 1.0 when it started; the bench server, the clients and the
  job share the two cores). Ratios within one table are the figures to read; absolute
  times move with the machine.
- Per call, async: `hub.achat` takes the time of a bare `httpx.AsyncClient` call (1.00x)
  and 0.57x the openai SDK's. Relay sends through httpx over aiohttp, which is 0.68x
  httpx's own transport. Against a bare client over that same transport, the pipeline,
  the adapter's wire mapping and the default-on plugins add 1.47x.
- Per call, sync: `hub.chat` is 1.69x a bare sync `httpx.Client` and 0.71x the SDK. The
  sync API runs the async call on the hub's loop thread, and the hop costs one wake-up
  each way; the rest is the async call above.
- Plugins: a hub with every plugin installed and none configured costs 0.95x (sync) and
  1.11x (async) a hub with only the provider's plugin. Two plugins are on as soon as
  they are installed, which is their design: relay-redact (a fast path skips prose no
  detector could match) and relay-otel (spans are skipped while no OpenTelemetry
  provider is set). Their layers are therefore in the chain, while the others'
  (guardrails, audit, cache, breakers) are not.
- Streaming, async: the first token comes 1.16x after raw httpx SSE's, and tokens flow at
  0.60x its rate. Sync: 1.67x and 0.63x. Relay's SSE parser is incremental and no slower
  than httpx's `iter_lines`, and the pipeline passes each event through one generator,
  however many layers there are. The remaining cost per event is the adapter's:
  relay-openai-compat decodes each chunk's JSON, re-encodes it when it normalises
  usage, and relay-openai decodes it again. Each event is then assembled twice, once by
  relay-openai's parser and once by the compat adapter's. For `hub.stream`, add the
  hand-over from the loop thread.
- The engine's baseline is a hand-written asyncio loop over as many httpx clients as
  Relay's pool gives the engine (one per 16 calls in flight, so 4 at concurrency 64 and
  16 at 256). One shared `httpx.AsyncClient` would be no baseline: httpcore's pool
  matches requests to connections in quadratic time and collapses at 64 calls and more
  (encode/httpcore#1035). The engine reaches 1.31x that loop at concurrency 64 and 1.40x
  at 256, because it sends through aiohttp. At 16 it reaches 0.84x: there the job's own
  bookkeeping (the workspace, the cache key, results written as they come) shows.
- Peak RSS stays flat as jobs grow: 38 to 40 MiB from 10,000 to 1,000,000 requests. The
  engine holds at most twice its concurrency in requests, each worker writes its answer
  before taking another, and inputs and outputs are streamed JSONL.
- relay-serve adds about 0.8 ms per call against an instant upstream (two HTTP hops
  instead of one), and streams at about a third of the direct rate (below). A real
  provider's latency dwarfs the first; the second is the core's per-chunk stream path."""


def ratio(value: float, baseline: float | None) -> str:
    return f"{value / baseline:.2f}×" if baseline else "—"


def report(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['date']} on {results['machine']} with "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items())
        + f". Mode: `{results['mode']}`. Reproduce with `nox -s bench` "
        "(`nox -s bench -- --quick` for the short form); raw numbers in `benchmarks.json`.",
        "",
        "Every client talks to `bench/server.py` on 127.0.0.1, which answers at once, so the"
        " figures are each client's own overhead. A ratio below 1 means Relay is faster.",
        "",
        "## Cold start (median of fresh processes)",
        "",
        "| command | median ms | Relay ÷ LiteLLM | Relay ÷ openai |",
        "|---|---:|---:|---:|",
    ]
    cold = results["cold_start"]
    lite = cold.get("import litellm", {}).get("median_ms")
    sdk = cold.get("import openai", {}).get("median_ms")
    for name, row in cold.items():
        relayish = name not in ("import litellm", "import openai", "python -c pass")
        lines.append(
            f"| `{name}` | {row['median_ms']:.0f} | "
            + (
                f"{ratio(row['median_ms'], lite)} | {ratio(row['median_ms'], sdk)} |"
                if relayish
                else "| |"
            )
        )
    for kind in ("sync", "async"):
        rows = results["per_call"][kind]
        base = rows["raw httpx"]["us_per_call"]
        sdk_us = rows.get("openai SDK", {}).get("us_per_call")
        lite_us = rows.get("LiteLLM", {}).get("us_per_call")
        lines += [
            "",
            f"## Per-call time, {kind} ({results['calls']} sequential calls per client, "
            f"taking turns in {ROUNDS} rounds; each client's best round)",
            "",
            "| client | µs per call | ÷ raw httpx | Relay ÷ this |",
            "|---|---:|---:|---:|",
        ]
        relay_us = next(v["us_per_call"] for k, v in rows.items() if k.startswith("Relay"))
        for name, row in rows.items():
            us = row["us_per_call"]
            vs = "" if name.startswith("Relay") else ratio(relay_us, us)
            lines.append(f"| {name} | {us:.0f} | {ratio(us, base)} | {vs} |")
        bare = next((v for k, v in rows.items() if k.endswith(PROVIDER_ONLY)), None)
        if bare is not None:
            lines += [
                "",
                "Every installed plugin loaded, none configured, against the provider's plugin "
                f"alone: {ratio(relay_us, bare['us_per_call'])} the time per call.",
            ]
        del sdk_us, lite_us
    stream = results["streaming"]
    if "sync" not in stream:  # a benchmarks.json from before the async streams
        stream = {"sync": stream}
    for kind, rows in stream.items():
        base = rows["raw httpx SSE"]
        lines += [
            "",
            f"## Streaming, {kind} ({STREAM_CHUNKS} chunks per answer, clients taking turns; "
            "medians)",
            "",
            "| client | time to first token µs | ÷ raw | tokens/s | ÷ raw |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, row in rows.items():
            lines.append(
                f"| {name} | {row['ttft_us']:.0f} | {ratio(row['ttft_us'], base['ttft_us'])} | "
                f"{row['tokens_per_s']:.0f} | {ratio(row['tokens_per_s'], base['tokens_per_s'])} |"
            )
    eng = results["engine"]
    lines += [
        "",
        f"## The engine (server latency {eng['latency_s'] * 1000:.0f} ms per answer; best of "
        f"{ROUNDS} alternating rounds each)",
        "",
        "The bound is what concurrency and latency allow: concurrency ÷ latency. The raw"
        " httpx column is a hand-written asyncio loop sending the same requests at the same"
        " concurrency, with no job around them, over as many `httpx.AsyncClient` s as"
        " Relay's pool gives the engine (one per 16 calls in flight): what the HTTP stack"
        " itself allows.",
        "",
        "| concurrency | requests | Relay req/s | of bound | raw clients | raw httpx req/s "
        "| Relay ÷ raw | cached rerun s | calls in rerun |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in eng["runs"]:
        lines.append(
            f"| {run['concurrency']} | {run['requests']} | {run['requests_per_s']:.0f} | "
            f"{run['of_bound']:.0%} | {run.get('raw_clients', 1)} | "
            f"{run['raw_httpx_per_s']:.0f} | {run['of_raw_httpx']:.2f} | "
            f"{run['cached_rerun_seconds']:.2f} | {run['cached_rerun_calls']} |"
        )
    lines += [
        "",
        "## Memory: one engine job on relay-mock, in a fresh process",
        "",
        "| requests | peak RSS MiB | RSS before the job MiB | seconds | requests/s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in results["memory"]:
        lines.append(
            f"| {row['n']:,} | {row['peak_rss_mib']:.0f} | {row['rss_before_job_mib']:.0f} | "
            f"{row['seconds']:.1f} | {row['n'] / row['seconds']:.0f} |"
        )
    lines += ["", "## What the figures say", "", NOTES]
    lines += ["", *serve_report(results.get("serve"))]
    lines += ["", *ray_report(results.get("ray"))]
    lines += [
        "",
        "![per-call time](bench-per-call.png)",
        "![engine throughput](bench-engine.png)",
        "![memory](bench-memory.png)",
        "",
    ]
    return "\n".join(lines)


# relay-serve's targets (issue 23): its throughput ÷ direct at least, its added p50 and
# p99 at concurrency 1 in µs at most, its streamed tokens/s ÷ direct at least.
NAMES = ("direct", "relay-serve")
SERVE_NOTES = """\
Where relay-serve's time goes (cProfile and per-process CPU of one worker, 2026-12-06):
about 70% of a call is the hub's call to the upstream (httpx over aiohttp: building the
request, reading the answer; the redact, audit and pricing layers are a few per cent);
the rest is the server's: parsing the request into a Relay request, the browser guard,
the key's admission, and writing the answer, now one write per response (head and body
joined) and one per burst of stream frames (a 100-chunk stream took 105 sends, now 2).
A streamed chunk still costs about 20 µs in the core: seven async-generator layers, two
stream assemblers and the SSE decoder, which the direct client does not have. On two
shared CPUs the throughput and median targets are out of reach: every request through
relay-serve costs an HTTP server's parse and answer plus an HTTP client's call, about
twice the direct side's whole client, on the same CPUs as the clients and the bench
server; extra workers help only while a CPU is idle. A real provider's latency hides all
of this: a worker spends a millisecond or two of CPU on a call that waits hundreds."""
SERVE_TARGETS = {"throughput": 0.8, "p50_added_us": 500, "p99_added_us": 2000, "stream": 0.7}


def ray_report(ray: dict[str, Any] | None) -> list[str]:
    lines = ["## relay-ray: engine jobs on a local Ray cluster", ""]
    if ray is None:
        return [*lines, "Not measured in this run (`python bench/run.py --only ray`)."]
    lines += [
        f"Measured {ray['date']}: a job of {ray['requests']:,} requests against the bench "
        "server (which answers at once), run by relay-ray on a one-node cluster started on "
        f"127.0.0.1 with 4 CPUs (`ray start --head`, {ray['cluster_start_seconds']:.1f} s to "
        f"start), each worker {ray['concurrency_per_worker']} calls at a time; beside it the "
        "same job in the local engine with as many calls in flight (workers times "
        f"{ray['concurrency_per_worker']}), in a driver process of its own each time. Best "
        f"of {ROUNDS} runs, alternating. The machine has 2 CPUs, shared by the bench server, "
        "the driver and the workers: past 2 workers they only take turns. Load average "
        f"(1 minute) before the runs: {ray['load_before']:.2f}.",
        "",
        "| workers | relay-ray requests/s | local engine requests/s | ratio | load |",
        "|---|---|---|---|---|",
    ]
    for run in ray["runs"]:
        lines.append(
            f"| {run['workers']} | {run['ray_per_s']:,.0f} | {run['engine_per_s']:,.0f} | "
            f"{run['of_engine']:.2f}x | {run['load']:.2f} |"
        )
    lines += [
        "",
        "One worker pays what the cluster adds to each request: the result goes to a part "
        "file and is read back by the driver before it reaches the job's own file. Two "
        "workers answer on both CPUs where the local engine answers on one, and pass it; "
        "four share the same two CPUs with the bench server and the driver. On a real "
        "cluster each worker brings its own CPU, and a provider's latency, not this "
        "overhead, bounds a worker: see the engine section for what concurrency buys there.",
        "",
        "Memory as the job grows: a fresh two-CPU cluster per size, 2 workers; the peak RSS "
        "of each task worker process (Ray's own runtime included), sampled every 0.2 s "
        "while the job runs, and the driver's.",
        "",
        "| requests | seconds | worker peak RSS (MiB) | driver peak RSS (MiB) |",
        "|---|---|---|---|",
    ]
    for row in ray["memory"]:
        worker = row["worker_peak_rss_mib"]
        shown = "not seen" if worker is None else f"{worker:.0f}"
        lines.append(
            f"| {row['requests']:,} | {row['seconds']:.1f} | {shown} | "
            f"{row['driver_peak_rss_mib']:.0f} |"
        )
    return lines


def serve_report(serve: dict[str, Any] | None) -> list[str]:
    lines = ["## relay-serve in front of the bench server", ""]
    if serve is None:
        return [*lines, "Not measured in this run (`python bench/run.py --only serve`)."]
    workers = serve.get("workers", 1)
    clients = serve.get("clients", "one shared httpx.AsyncClient in the benchmark's process")
    lines += [
        f"Measured {serve['date']} with "
        + ", ".join(f"{k} {v}" for k, v in serve["versions"].items())
        + f". `relay serve --workers {workers}` runs in processes of its own over a catalog "
        "whose alias `bench` is the bench server (openai-compat, no retries; "
        + ", ".join(f"`{k}: {v}`" for k, v in serve["settings"].items())
        + f" so the gate does not limit the runs). Throughput is sent by {clients}, to "
        "relay-serve and to the bench server directly; sequential calls and streams by one "
        "client, alternating. Everything shares two CPUs with whatever else the machine "
        "runs (its load average, 1 minute, is given with each figure), and the bench "
        "server answers at once: the figures are what relay-serve adds, which a real "
        "provider's hundreds of milliseconds would dwarf. A ratio above 1 means slower "
        "through relay-serve (throughput: below 1 means fewer requests/s).",
        "",
        *_serve_tables(serve),
        "",
        SERVE_NOTES,
    ]
    previous = serve.get("previous")
    if previous is not None:
        lines += [
            "",
            f"### Before: the run of {previous['date']} ({previous.get('workers', 1)} "
            "worker; " + previous.get("clients", "one shared client for both sides") + ")",
            "",
            *_serve_tables(previous),
        ]
    return lines


def _serve_tables(serve: dict[str, Any]) -> list[str]:
    seq = serve["sequential"]
    load = f" (load {seq['load']:.1f})" if "load" in seq else ""
    lines = [
        f"Sequential calls ({serve['calls']}, alternating between the two){load}:",
        "",
        "| | p50 µs | p99 µs | mean µs |",
        "|---|---:|---:|---:|",
    ]
    for name in ("direct", "relay-serve"):
        row = seq[name]
        lines.append(
            f"| {name} | {row['p50_us']:.0f} | {row['p99_us']:.0f} | {row['mean_us']:.0f} |"
        )
    lines.append(
        "| relay-serve ÷ direct | "
        + " | ".join(
            ratio(seq["relay-serve"][k], seq["direct"][k]) for k in ("p50_us", "p99_us", "mean_us")
        )
        + " |"
    )
    added = {k: seq["relay-serve"][k] - seq["direct"][k] for k in ("p50_us", "p99_us")}
    lines += [
        "",
        f"relay-serve adds {added['p50_us']:.0f} µs at the median (target < "
        f"{SERVE_TARGETS['p50_added_us']}) and {added['p99_us']:.0f} µs at p99 (target < "
        f"{SERVE_TARGETS['p99_added_us']}): the hop to it, and its own hub's call to the "
        "upstream.",
        "",
        f"Throughput (the better of two alternating runs each; target ≥ "
        f"{SERVE_TARGETS['throughput']}× direct):",
        "",
        "| concurrency | requests | load | direct req/s | relay-serve req/s "
        "| relay-serve ÷ direct |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in serve["throughput"]:
        lines.append(
            f"| {row['concurrency']} | {row['requests']} | "
            + (f"{row['load']:.1f}" if "load" in row else "—")
            + f" | {row['direct_per_s']:.0f} | {row['relay-serve_per_s']:.0f} | "
            f"{ratio(row['relay-serve_per_s'], row['direct_per_s'])} |"
        )
    lost = sum(row.get(f"{name}_dropped", 0) for row in serve["throughput"] for name in NAMES)
    if lost:
        lines += [
            "",
            "Connections reset during these runs (not counted as answers): "
            + ", ".join(
                f"{name} {sum(row.get(f'{name}_dropped', 0) for row in serve['throughput'])}"
                for name in NAMES
            )
            + ".",
        ]
    stream = serve["streaming"]
    load = f", load {stream['load']:.1f}" if "load" in stream else ""
    lines += [
        "",
        f"Streaming ({STREAM_CHUNKS} chunks per answer, median{load}; target ≥ "
        f"{SERVE_TARGETS['stream']}× direct tokens/s):",
        "",
        "| | time to first token µs | tokens/s |",
        "|---|---:|---:|",
    ]
    for name in ("direct", "relay-serve"):
        row = stream[name]
        lines.append(f"| {name} | {row['ttft_us']:.0f} | {row['tokens_per_s']:.0f} |")
    lines.append(
        "| relay-serve ÷ direct | "
        f"{ratio(stream['relay-serve']['ttft_us'], stream['direct']['ttft_us'])} | "
        f"{ratio(stream['relay-serve']['tokens_per_s'], stream['direct']['tokens_per_s'])} |"
    )
    return lines


def plots(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, kind in zip(axes, ("sync", "async"), strict=True):
        for name, row in results["per_call"][kind].items():
            calls = [0, 1000, 10_000]
            axis.plot(calls, [c * row["us_per_call"] / 1e6 for c in calls], label=name)
        axis.set_title(f"{kind}: time for N calls")
        axis.set_xlabel("calls")
        axis.set_ylabel("seconds")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(DOCS / "bench-per-call.png", dpi=100)

    runs = results["engine"]["runs"]
    figure, axis = plt.subplots(figsize=(5, 4))
    xs = [r["concurrency"] for r in runs]
    axis.plot(xs, [r["requests_per_s"] for r in runs], "o-", label="Relay engine")
    axis.plot(xs, [r["raw_httpx_per_s"] for r in runs], "s-", label="raw httpx loop, same clients")
    axis.plot(xs, [r["bound_per_s"] for r in runs], "--", label="bound (concurrency ÷ latency)")
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("concurrency")
    axis.set_ylabel("requests/s")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(DOCS / "bench-engine.png", dpi=100)

    rows = results["memory"]
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot([r["n"] for r in rows], [r["peak_rss_mib"] for r in rows], "o-", label="peak RSS")
    axis.set_xscale("log")
    axis.set_ylim(bottom=0)
    axis.set_xlabel("requests in the job")
    axis.set_ylabel("MiB")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(DOCS / "bench-memory.png", dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller jobs")
    parser.add_argument(
        "--only",
        choices=["per_call", "streaming", "engine", "serve", "ray"],
        help="run one section and merge it into the existing docs/benchmarks.json",
    )
    args = parser.parse_args()
    quick = args.quick
    calls = 300 if quick else 2000
    if args.only:
        # The other sections keep their figures (and their date in the page's header);
        # the section run now carries its own date.
        results = json.loads((DOCS / "benchmarks.json").read_text())
    else:
        results = {
            "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
            "versions": versions(),
            "mode": "quick" if quick else "full",
            "calls": calls,
        }
        results["cold_start"] = cold_start(5 if quick else 20)
        with bench_server() as base_url:
            results["per_call"] = per_call(base_url, calls)
            results["streaming"] = streaming(base_url, 30 if quick else 200)
        with bench_server(latency=0.02) as base_url:
            results["engine"] = engine(base_url, 0.02, [1, 16, 64, 256], 10 if quick else 40)
        sizes = [10_000, 30_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
        results["memory"] = memory(sizes)
    if args.only == "per_call":
        with bench_server() as base_url:
            results["per_call"] = per_call(base_url, calls)
    if args.only == "streaming":
        with bench_server() as base_url:
            results["streaming"] = streaming(base_url, 30 if quick else 200)
    if args.only == "engine":
        with bench_server(latency=0.02) as base_url:
            results["engine"] = engine(base_url, 0.02, [1, 16, 64, 256], 10 if quick else 40)
    if args.only in (None, "serve") and have("relay_serve"):
        with bench_server() as base_url:
            before = results.get("serve")
            results["serve"] = serve(base_url, calls, 1000 if quick else 4000, 30 if quick else 200)
            results["serve"]["mode"] = "quick" if quick else "full"
            if before is not None:
                # Shown beside the new figures: those from before relay-serve's workers
                # and the fixed baseline, as long as they are kept.
                results["serve"]["previous"] = before.get("previous", before)
    if args.only in (None, "ray") and have("relay_ray"):
        with bench_server() as base_url:
            sizes = [2_000, 8_000] if quick else [5_000, 20_000, 80_000]
            results["ray"] = ray_cluster_bench(base_url, 2_000 if quick else 20_000, sizes)
            results["ray"]["mode"] = "quick" if quick else "full"
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results)
    (DOCS / "benchmarks.md").write_text(text)
    if have("matplotlib") and not args.only:
        plots(results)
    print(text)


if __name__ == "__main__":
    main()
