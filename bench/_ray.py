"""One engine job run by relay-ray on a cluster (or by the local engine), in a driver
process of its own; prints JSON: requests, seconds, the driver's peak RSS.

    python bench/_ray.py N MODE ADDRESS WORKERS CONCURRENCY BASE_URL WORKDIR

``MODE`` is ``ray`` (``WORKERS`` shards at once on the cluster at ``ADDRESS``, each
``CONCURRENCY`` calls at a time) or ``engine`` (this process, ``WORKERS * CONCURRENCY``
calls at a time: the same calls in flight, without the cluster). The catalog is written
to a file because a cluster's workers build their hubs from the file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from relay_core import RelayClient


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    n, mode, address, workers, concurrency, base_url, workdir = sys.argv[1:8]
    root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    catalog = root / "relay.yaml"
    catalog.write_text(
        "providers:\n"
        f"  bench: {{plugin: openai-compat, base_url: '{base_url}', max_retries: 0}}\n"
        "models:\n"
        "  bench: bench/bench-model\n"
    )
    source = root / "requests.jsonl"
    with source.open("w") as out:  # a stream: the input never sits in memory
        for i in range(int(n)):
            out.write(json.dumps({"id": f"r{i}", "prompt": f"request {i}"}) + "\n")
    options = {"address": address, "workers": int(workers)} if mode == "ray" else None
    total_concurrency = int(concurrency) * (1 if mode == "ray" else int(workers))
    started = time.perf_counter()
    with RelayClient(root / "ws", config=catalog, cache=False) as relay:
        job = relay.submit_batch(
            source,
            job_id="bench",
            model="bench",
            mode=mode,
            concurrency=total_concurrency,
            runner_options=options,
        )
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "requests": int(n),
                "completed": job.counts.completed,
                "seconds": elapsed,
                "driver_peak_rss_mib": _peak_mib(),
            }
        )
    )


if __name__ == "__main__":
    main()
