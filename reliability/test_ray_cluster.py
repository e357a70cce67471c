"""An engine job as shards on a real local Ray cluster (relay-ray: ``ray start --head``
with two worker processes on 127.0.0.1) against the failing server, one worker SIGKILLed
mid-run: every request ends with exactly one result, each answer its own prompt's, and
the server delivered an answer twice only when it was lost in transit or in flight in
the killed worker."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

from relay_core import BatchRequest, RelayClient
from relay_core import errors as relay_errors
from relay_core.real_servers import RayCluster, ray_cluster
from reliability.fault_server import LOST_IN_TRANSIT, FaultServer
from reliability.support import FIGURES, SCALE, compat_catalog

TIMEOUT = 3.0
RETRYABLE_KINDS = {
    name
    for name, cls in vars(relay_errors).items()
    if isinstance(cls, type)
    and issubclass(cls, relay_errors.ProviderError)
    and getattr(cls, "retryable", False)
}


def test_a_ray_job_under_faults_with_a_worker_killed_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    n, concurrency = SCALE.ray_requests, SCALE.ray_concurrency
    requests = [BatchRequest(id=f"q{i:06d}", prompt=f"req-{i:06d}") for i in range(n)]
    server = FaultServer(seed=24, client_timeout=TIMEOUT, latency=(0.0, 0.003))
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(compat_catalog(server.base_url, timeout=TIMEOUT, max_retries=2))
    saved = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # the driver sees loopback too
    killed: dict[str, object] = {}

    def kill_a_worker(cluster: RayCluster) -> None:
        # A third of the way in, SIGKILL a worker in the middle of its shard.
        while server.received < n // 3:
            time.sleep(0.01)
        victims = cluster.task_workers("answer_shard")
        killed["pid"] = victims[0]
        killed["at_attempt"] = server.received
        os.kill(victims[0], signal.SIGKILL)

    try:
        with (
            server,
            ray_cluster(cpus=2) as cluster,
            RelayClient(tmp_path / "ws", catalog) as client,
        ):
            killer = threading.Thread(target=kill_a_worker, args=(cluster,), daemon=True)
            killer.start()
            started = time.monotonic()
            job = client.submit_batch(
                requests,
                job_id="ray",
                model="echo",
                mode="ray",
                concurrency=concurrency,
                runner_options={"address": cluster.address, "shard_requests": max(1, n // 10)},
            )
            seconds = time.monotonic() - started
            killer.join(timeout=5)
            assert "pid" in killed, "the job ended before a worker could be killed"
            results = client.get_results("ray")
            responses = (tmp_path / "ws" / "jobs" / "ray" / "responses.jsonl").read_bytes()
            parts = list((tmp_path / "ws" / "jobs" / "ray" / "ray" / "parts").iterdir())
            server.wait_quiet()
            cluster_start = cluster.started_in
    finally:
        if saved is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        else:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = saved

    assert (job.status, job.n_requests) == ("completed", n)
    # One result per request, in request order, each its own prompt's.
    assert [item.custom_id for item in results] == [r.id for r in requests]
    assert len(responses.splitlines()) == n  # recorded once each, never twice
    failed: Counter[str] = Counter()
    for item, request in zip(results, requests, strict=True):
        if item.response is not None:
            assert item.response.text == request.prompt, f"{request.id} got another's answer"
        else:
            assert item.error is not None
            assert item.error.kind in RETRYABLE_KINDS, item.error
            failed[item.error.kind] += 1
    assert (job.counts.completed, job.counts.failed) == (
        n - sum(failed.values()),
        sum(failed.values()),
    )

    # The server's side: an answer delivered twice was lost in transit, or was in flight
    # in the killed worker (at most its `concurrency` calls).
    tallies = dict(server.tallies)
    assert set(tallies) == {r.prompt for r in requests}
    repeated_by_the_kill = 0
    for prompt, tally in tallies.items():
        # "(client gone)": the answer was going out when its worker was killed.
        gone = [reason for reason in tally.lost if reason.endswith("(client gone)")]
        assert all(reason in LOST_IN_TRANSIT for reason in tally.lost if reason not in gone), (
            prompt,
            tally,
        )
        extra = tally.delivered - 1 - (len(tally.lost) - len(gone))
        if gone or extra > 0 or tally.after_delivery:
            repeated_by_the_kill += 1
    assert repeated_by_the_kill <= concurrency
    totals = server.totals()
    FIGURES.record(
        "ray_cluster",
        requests=n,
        concurrency=concurrency,
        workers=2,
        shards=10,
        attempts=totals["received"],
        faults=totals["faults"],
        delivered=totals["delivered"],
        answered=n - sum(failed.values()),
        failed_retryable=dict(failed),
        worker_killed_at_attempt=killed["at_attempt"],
        resent_because_of_the_kill=repeated_by_the_kill,
        part_files=len(parts),
        lost=0,
        duplicated=0,
        cluster_start_seconds=round(cluster_start, 1),
        job_seconds=round(seconds, 1),
    )
