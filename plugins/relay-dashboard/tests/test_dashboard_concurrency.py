"""The dashboard reads a workspace while a job writes to it, and neither stops the other."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
from dashboard_workspace import make_hub, submit_one

from relay_core import BatchRequest, Job, RelayClient
from relay_dashboard import Settings, create_app

N = 300
CATALOG_FAULT = {"mock": {"fault": {"kind": "latency", "seconds": 0.004}}}


async def test_the_api_answers_throughout_a_running_engine_job_which_completes(
    tmp_path: Path,
) -> None:
    submit_one(tmp_path)  # the workspace exists before the dashboard opens it
    app = create_app(tmp_path, Settings())
    finished: list[Job] = []
    failures: list[BaseException] = []

    def run_job() -> None:
        try:
            with RelayClient(tmp_path, hub=make_hub(), cache=False) as client:
                requests = [
                    BatchRequest(id=f"r{i:04d}", prompt=f"p {i}", provider_args=CATALOG_FAULT)
                    for i in range(N)
                ]
                finished.append(
                    client.submit_batch(
                        requests, job_id="busy", model="mock/echo", mode="engine", concurrency=4
                    )
                )
        except BaseException as error:
            failures.append(error)

    writer = threading.Thread(target=run_job)
    statuses: list[int] = []
    seen_running: list[dict[str, Any]] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as api:
        writer.start()
        while writer.is_alive():
            for url in ("/api/jobs", "/api/summary", "/api/jobs/busy/results?limit=100", "/"):
                response = await api.get(url)
                statuses.append(response.status_code)
                if url == "/api/jobs" and response.status_code == 200:
                    busy = [j for j in response.json()["jobs"] if j["job_id"] == "busy"]
                    if busy and busy[0]["status"] == "running":
                        seen_running.append(busy[0])
        writer.join()
        final = (await api.get("/api/jobs/busy")).json()
    await app.state.dashboard.close()

    assert failures == []
    assert finished[0].status == "completed"
    assert finished[0].counts.completed == N
    assert final["counts"]["completed"] == N
    # A missing job (before the writer created it) is a 404; nothing else may fail.
    assert set(statuses) <= {200, 404}
    assert statuses.count(200) >= 4
    # The reads overlapped the job: they saw it running, with progress that only grew.
    assert seen_running
    progress = [job["counts"]["completed"] for job in seen_running]
    assert progress == sorted(progress)
