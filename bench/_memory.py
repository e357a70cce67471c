"""One engine job of N requests on relay-mock, in a process of its own; prints its peak
RSS in MiB and the wall time as JSON. ``python bench/_memory.py N WORKDIR``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from relay_core import RelayClient, parse_catalog

CATALOG = "models:\n  echo: mock/echo\n"


def _status_mib(field: str) -> float:
    # VmHWM is this process image's own peak: unlike ru_maxrss it does not carry over the
    # peak of the parent that started us (the benchmark, with LiteLLM loaded).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    n, workdir = int(sys.argv[1]), Path(sys.argv[2])
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "requests.jsonl"
    with source.open("w") as out:  # written as a stream: the input never sits in memory
        for i in range(n):
            out.write(json.dumps({"id": f"r{i}", "prompt": f"request number {i}"}) + "\n")
    baseline = _status_mib("VmRSS")
    started = time.perf_counter()
    with RelayClient(workdir / "ws", config=parse_catalog(CATALOG), cache=False) as relay:
        relay.submit_batch(source, job_id="memory", model="echo", mode="engine", concurrency=64)
        answered = sum(1 for item in relay.iter_results("memory") if item.ok)
    elapsed = time.perf_counter() - started
    peak = _status_mib("VmHWM")
    print(
        json.dumps(
            {
                "n": n,
                "answered": answered,
                "seconds": elapsed,
                "peak_rss_mib": peak,
                "rss_before_job_mib": baseline,
            }
        )
    )


if __name__ == "__main__":
    main()
