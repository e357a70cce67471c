"""relay-ray on a real local Ray cluster: results, limits, cancellation, kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from relay_core import BatchRequest, RelayClient
from relay_core.errors import ConfigError, JobError
from relay_core.real_servers import RayCluster, free_port

RELAY = str(Path(sys.executable).parent / "relay")


def _requests(n: int, model: str = "echo") -> list[BatchRequest]:
    return [BatchRequest(id=f"r{i}", model=model, prompt=f"question {i}") for i in range(n)]


def _texts(client: RelayClient, job_id: str) -> list[tuple[str, str | None]]:
    return [
        (item.custom_id, item.response.text if item.response else item.error.kind)  # type: ignore[union-attr]
        for item in client.iter_results(job_id)
    ]


def _catalog(tmp_path: Path, base_url: str, models: str) -> Path:
    """A catalog over the local arrival server, with ``models`` (YAML lines) as given."""
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(
        f"providers:\n  local:\n    plugin: openai-compat\n    base_url: {base_url}\n"
        "models:\n" + models
    )
    return catalog


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _in_background(
    tmp_path: Path,
    catalog: Path,
    requests: list[BatchRequest],
    options: dict[str, Any],
    **more: Any,
) -> tuple[threading.Thread, dict[str, Any]]:
    """A Ray job submitted from a thread (started): the thread, and where the finished
    job lands (``["job"]``)."""
    finished: dict[str, Any] = {}

    def submit() -> None:
        with RelayClient(tmp_path / "ws", catalog) as client:
            finished["job"] = client.submit_batch(
                requests, job_id="j", mode="ray", runner_options=options, **more
            )

    runner = threading.Thread(target=submit)
    runner.start()
    return runner, finished


def _narrow(tmp_path: Path, arrival_server: Any) -> Path:
    """A catalog whose alias ``narrow`` allows two calls in flight, cluster-wide."""
    return _catalog(
        tmp_path,
        arrival_server.base_url,
        "  narrow:\n    target: local/m\n    limits: {concurrency: 2}\n",
    )


def test_a_job_on_the_cluster_answers_as_the_local_engine(
    cluster: RayCluster, tmp_path: Path, write_catalog: Any
) -> None:
    catalog = write_catalog(tmp_path / "relay.yaml")
    options = {"address": cluster.address, "shard_requests": 7}
    with RelayClient(tmp_path / "ray", catalog) as on_ray:
        job = on_ray.submit_batch(_requests(60), job_id="j", mode="ray", runner_options=options)
        ray_results = _texts(on_ray, "j")
    with RelayClient(tmp_path / "local", catalog) as local:
        expected = local.submit_batch(_requests(60), job_id="j", mode="engine")
        local_results = _texts(local, "j")

    assert job.status == "completed"
    assert job.counts.completed == 60
    assert ray_results == local_results
    assert [custom_id for custom_id, _ in ray_results] == [f"r{i}" for i in range(60)]
    assert job.cost is not None
    assert expected.cost is not None
    assert job.cost.amount == pytest.approx(expected.cost.amount)
    # 60 requests in shards of 7: nine part files, one per shard.
    assert len(list((tmp_path / "ray" / "jobs" / "j" / "ray" / "parts").glob("part-*"))) == 9


def test_four_workers_together_keep_the_aliases_requests_per_minute(
    cluster: RayCluster, arrival_server: Any, tmp_path: Path
) -> None:
    catalog = _catalog(
        tmp_path,
        arrival_server.base_url,
        "  limited:\n    target: local/m\n    limits: {requests_per_minute: 120}\n",
    )
    # Each worker alone would let all 140 through at once (a full bucket of 120 each);
    # together they may send 120 at once and then 2 a second.
    options = {"address": cluster.address, "shard_requests": 35, "workers": 4}
    with RelayClient(tmp_path / "ws", catalog) as client:
        job = client.submit_batch(
            _requests(140, "limited"), job_id="j", mode="ray", runner_options=options
        )
    assert job.counts.completed == 140
    arrivals = sorted(arrival_server.arrivals)
    assert len(arrivals) == 140
    first = arrivals[0]
    # Counted from the first arrival, which may reach the server a second or more after
    # its booking (a worker's first connection, on a loaded machine): two seconds'
    # refill of slack, both ways. The last 20 need ten seconds of refill; without the
    # shared limit all 140 would arrive within one.
    slack = 2.0
    for count, at in enumerate(arrivals, start=1):
        assert count <= 120 + 2 * (at - first + slack), (count, at - first)
    assert arrivals[-1] - first >= 10 - slack


def test_the_aliases_concurrency_holds_across_the_cluster(
    cluster: RayCluster, arrival_server: Any, tmp_path: Path
) -> None:
    arrival_server.delay = 0.2
    catalog = _narrow(tmp_path, arrival_server)
    # Four workers of four calls each; alone, each would hold two calls at once.
    options = {"address": cluster.address, "shard_requests": 6, "workers": 4}
    with RelayClient(tmp_path / "ws", catalog) as client:
        job = client.submit_batch(
            _requests(24, "narrow"), job_id="j", mode="ray", runner_options=options, concurrency=4
        )
    assert job.counts.completed == 24
    assert arrival_server.most_in_flight == 2


def test_part_files_go_to_the_storage_url_given(
    cluster: RayCluster, tmp_path: Path, write_catalog: Any
) -> None:
    catalog = write_catalog(tmp_path / "relay.yaml")
    shared = tmp_path / "shared"
    options = {"address": cluster.address, "shard_requests": 5, "storage": f"file://{shared}"}
    with RelayClient(tmp_path / "ws", catalog) as client:
        job = client.submit_batch(_requests(12), job_id="j", mode="ray", runner_options=options)
        results = _texts(client, "j")
    assert job.counts.completed == 12
    assert results == [(f"r{i}", f"question {i}") for i in range(12)]
    assert len(list(shared.glob("part-*.jsonl"))) == 3
    assert not (tmp_path / "ws" / "jobs" / "j" / "ray" / "parts").exists()


def test_cancelling_stops_the_tasks_and_keeps_what_was_answered(
    cluster: RayCluster, tmp_path: Path, write_catalog: Any
) -> None:
    catalog = write_catalog(tmp_path / "relay.yaml", latency=0.3)
    options = {"address": cluster.address, "shard_requests": 20}
    runner, finished = _in_background(
        tmp_path, catalog, _requests(400, "slow"), options, concurrency=2
    )
    with RelayClient(tmp_path / "ws", catalog) as watcher:
        _wait_for(lambda: (tmp_path / "ws" / "jobs" / "j" / "ray").exists())
        _wait_for(lambda: watcher.get_job("j").counts.completed >= 10)
        watcher.cancel_batch("j")
        runner.join(timeout=60)
        assert not runner.is_alive()
        job = finished["job"]
        results = _texts(watcher, "j")
    assert job.status == "cancelled"
    assert 10 <= job.counts.completed < 400
    assert len(results) == 400
    assert {text for _, text in results[job.counts.completed + 50 :]} <= {"cancelled"}
    _wait_for(lambda: not cluster.task_workers("answer_shard"), timeout=30)


def test_a_worker_killed_mid_shard_costs_only_its_calls_in_flight(
    cluster: RayCluster, tmp_path: Path, write_catalog: Any
) -> None:
    catalog = write_catalog(tmp_path / "relay.yaml", latency=0.2)
    options = {"address": cluster.address, "shard_requests": 60, "workers": 2}
    runner, finished = _in_background(
        tmp_path, catalog, _requests(180, "slow"), options, concurrency=4
    )
    parts = tmp_path / "ws" / "jobs" / "j" / "ray" / "parts"
    _wait_for(lambda: parts.exists() and sum(p.stat().st_size for p in parts.iterdir()) > 2000)
    victim = cluster.task_workers("answer_shard")[0]
    os.kill(victim, signal.SIGKILL)
    runner.join(timeout=120)
    assert not runner.is_alive()
    job = finished["job"]
    assert job.status == "completed"
    assert job.counts.completed == 180
    with RelayClient(tmp_path / "ws", catalog) as client:
        results = _texts(client, "j")
    assert [custom_id for custom_id, _ in results] == [f"r{i}" for i in range(180)]
    assert all(text == f"question {i}" for i, (_, text) in enumerate(results))
    # The killed shard ran again in a new part file, which skipped what the first held.
    attempts = sorted(p.name.split("-")[1] for p in parts.iterdir())
    assert len(attempts) == 4
    lines = [
        json.loads(line)["index"]
        for part in parts.iterdir()
        for line in part.read_bytes().splitlines(keepends=True)
        if line.endswith(b"\n")
    ]
    assert len(lines) - len(set(lines)) <= 4  # at most the 4 calls the worker had in flight


def test_a_worker_killed_holding_the_aliases_concurrency_gives_it_back(
    cluster: RayCluster, arrival_server: Any, tmp_path: Path
) -> None:
    arrival_server.delay = 0.3
    catalog = _narrow(tmp_path, arrival_server)
    # One worker at a time, asking for more than the alias allows: it holds both
    # places whenever it is killed. Its places must come back for the shard's next
    # attempt, or the job waits for them for ever.
    options = {"address": cluster.address, "shard_requests": 30, "workers": 1}
    runner, finished = _in_background(
        tmp_path, catalog, _requests(60, "narrow"), options, concurrency=4
    )
    _wait_for(lambda: len(arrival_server.arrivals) >= 6)
    os.kill(cluster.task_workers("answer_shard")[0], signal.SIGKILL)
    runner.join(timeout=90)
    assert not runner.is_alive(), "the job stopped: the killed worker's places were never freed"
    job = finished["job"]
    assert job.status == "completed"
    assert job.counts.completed == 60
    # Freed once: the next attempts never had more than the alias's two in flight.
    assert arrival_server.most_in_flight == 2


def test_the_driver_killed_and_resumed_gives_one_result_per_request(
    cluster: RayCluster, arrival_server: Any, tmp_path: Path
) -> None:
    arrival_server.delay = 0.1
    catalog = _catalog(tmp_path, arrival_server.base_url, "  m: local/m\n")
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "model": "m", "prompt": f"question {i}"}) + "\n"
            for i in range(200)
        )
    )
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    relay = [RELAY, "--config", str(catalog)]
    workspace = ["-w", str(tmp_path / "ws")]
    driver = subprocess.Popen(
        [*relay, "batch", "submit", str(requests), "--mode", "ray", "--job-id", "j",
         "--address", cluster.address, "--concurrency", "2", *workspace],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    parts = tmp_path / "ws" / "jobs" / "j" / "ray" / "parts"
    _wait_for(lambda: parts.exists() and sum(p.stat().st_size for p in parts.iterdir()) > 3000)
    driver.kill()
    driver.wait()
    resumed = subprocess.run(
        [*relay, "batch", "resume", "j", "--address", cluster.address, *workspace],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    with RelayClient(tmp_path / "ws", catalog) as client:
        job = client.get_job("j")
        results = _texts(client, "j")
    assert job.status == "completed"
    assert job.counts.completed == 200
    assert [custom_id for custom_id, _ in results] == [f"r{i}" for i in range(200)]
    assert all(text == f"echo: question {i}" for i, (_, text) in enumerate(results))
    responses = (tmp_path / "ws" / "jobs" / "j" / "responses.jsonl").read_bytes().splitlines()
    assert len(responses) == 200  # each result recorded once, across both drivers
    # Asked again: only what was in flight when the driver (and its tasks) died, at
    # most four workers' two calls each.
    assert set(arrival_server.prompts) == {f"question {i}" for i in range(200)}
    assert sum(arrival_server.prompts.values()) - 200 <= 8


def test_an_address_nobody_answers_is_a_typed_error(cluster: RayCluster, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    with RelayClient(tmp_path / "ws") as client:
        with pytest.raises(JobError, match=f"no Ray cluster answers at '{address}'"):
            client.submit_batch(
                _requests(3, "mock/echo"), job_id="j", mode="ray",
                runner_options={"address": address},
            )  # fmt: skip
        assert client.get_job("j").status == "running"  # resumable once the cluster is up
        job = client.resume("j", runner_options={"address": cluster.address})
    assert job.counts.completed == 3


def test_the_cli_says_an_unreachable_address_in_one_line(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps({"id": "a", "model": "mock/echo", "prompt": "hi"}))
    done = subprocess.run(
        [RELAY, "batch", "submit", str(requests),
         "--mode", "ray", "--address", f"127.0.0.1:{free_port()}", "-w", str(tmp_path / "ws")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "no Ray cluster answers at" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_option_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with (
        RelayClient(tmp_path / "ws") as client,
        pytest.raises(ConfigError, match=r"unknown relay-ray option.*shards"),
    ):
        client.submit_batch(
            _requests(2, "mock/echo"), job_id="j", mode="ray", runner_options={"shards": 2}
        )


def test_the_local_cluster_leaves_no_process_behind(tmp_path: Path) -> None:
    from relay_core.real_servers import ray_cluster

    def session_of(pid: int) -> int:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[3])

    def members(session: int) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session and fields[0] != "Z":
                found.append(int(stat.parent.name))
        return found

    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys, time, ray\n"
        "ray.init(address=sys.argv[1])\n"
        "@ray.remote\n"
        "def sleepy():\n"
        "    time.sleep(60)\n"
        "ref = sleepy.remote()\n"
        "time.sleep(60)\n"
    )
    with ray_cluster(cpus=1) as cluster:
        session = cluster.session
        assert session is not None
        assert cluster.address.startswith("127.0.0.1:")
        process = subprocess.Popen(
            [sys.executable, str(driver), cluster.address],
            env=cluster.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(lambda: cluster.task_workers("sleepy"), timeout=30)
            # A task's worker is in a process group of its own, in the cluster's session.
            (worker,) = cluster.task_workers("sleepy")
            assert session_of(worker) == session
            assert len(members(session)) >= 4  # gcs_server, raylet, the agents, the worker
        finally:
            process.kill()
            process.wait()
    assert members(session) == []


def test_a_missing_ray_program_is_an_error_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from relay_core import real_servers

    monkeypatch.setattr(real_servers.shutil, "which", lambda name: None)
    monkeypatch.setattr(real_servers, "_beside_python", lambda name: str(tmp_path / name))
    with pytest.raises(real_servers.ServerMissing, match="pip install relay-ray"):
        real_servers.RayCluster(tmp_path, 1)
