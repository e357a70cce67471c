"""The JSON API and the server-rendered pages, through httpx on the ASGI app, over a
workspace that real relay-mock jobs filled (see conftest.fill_workspace)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import pytest
from dashboard_workspace import XSS, make_hub

from relay_core import RelayClient
from relay_dashboard._reader import Summary

ALL_JOBS = {
    "crashed",
    "eval-nightly",
    "labels-flaky",
    "hostile",
    "batch-done",
    "batch-cancelled",
    "batch-waiting",
}


async def ids(api: httpx.AsyncClient, **query: str) -> set[str]:
    response = await api.get("/api/jobs", params=query)
    assert response.status_code == 200, response.text
    return {job["job_id"] for job in response.json()["jobs"]}


async def test_the_jobs_list_has_every_job_newest_first_with_what_the_core_knows(
    api: httpx.AsyncClient, workspace: Path
) -> None:
    body = (await api.get("/api/jobs")).json()
    with RelayClient(workspace, hub=make_hub()) as client:
        expected = client.list_jobs()
    assert [job["job_id"] for job in body["jobs"]] == [job.job_id for job in expected]
    assert {job["job_id"] for job in body["jobs"]} == ALL_JOBS
    flaky = next(job for job in body["jobs"] if job["job_id"] == "labels-flaky")
    assert flaky["counts"] == {"total": 30, "completed": 20, "failed": 10}
    assert flaky["status"] == "completed"
    assert flaky["done"] is True
    assert flaky["cost"]["source"] == "snapshot"
    assert flaky["cost"]["amount"] > 0
    # Engine jobs have no provider batches on record: the default model's provider shows.
    assert flaky["providers"] == ["mock"]
    done = next(job for job in body["jobs"] if job["job_id"] == "batch-done")
    assert done["cost"]["batch_discount_applied"] is True


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "completed"}, {"eval-nightly", "labels-flaky", "hostile", "batch-done"}),
        ({"status": "submitted"}, {"batch-waiting"}),
        ({"status": "interrupted"}, {"crashed"}),
        ({"provider": "slowmock"}, {"batch-cancelled", "batch-waiting"}),
        ({"q": "FLAKY"}, {"labels-flaky"}),
        ({"q": "support bot"}, {"eval-nightly"}),
        ({"q": "provider batch", "status": "cancelled"}, {"batch-cancelled"}),
        ({"status": "", "provider": "", "q": " "}, ALL_JOBS),
    ],
)
async def test_filters_narrow_the_list(
    api: httpx.AsyncClient, query: dict[str, str], expected: set[str]
) -> None:
    assert await ids(api, **query) == expected


async def test_the_date_range_bounds_the_submission_day_inclusively(
    api: httpx.AsyncClient,
) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    day = dt.timedelta(days=1)
    assert await ids(api, since=today.isoformat(), until=today.isoformat()) == ALL_JOBS
    assert await ids(api, since=(today + day).isoformat()) == set()
    assert await ids(api, until=(today - day).isoformat()) == set()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"status": "done"}, "status must be one of"),
        ({"since": "yesterday"}, "since must be a date"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "is after until"),
    ],
)
async def test_a_bad_filter_is_a_400_that_says_what_is_wrong(
    api: httpx.AsyncClient, query: dict[str, str], message: str
) -> None:
    response = await api.get("/api/jobs", params=query)
    assert response.status_code == 400
    assert message in response.json()["error"]
    page = await api.get("/", params=query)
    assert page.status_code == 400
    assert message in page.text


async def test_the_summary_adds_up_the_filtered_jobs(api: httpx.AsyncClient) -> None:
    jobs = (await api.get("/api/jobs")).json()["jobs"]
    summary = (await api.get("/api/summary")).json()
    assert summary["jobs"] == len(jobs) == 7
    assert summary["by_status"] == {"submitted": 1, "running": 1, "completed": 4, "cancelled": 1}
    assert summary["interrupted"] == 1
    assert summary["requests"] == sum(job["counts"]["total"] for job in jobs)
    assert summary["completed"] == sum(job["counts"]["completed"] for job in jobs)
    assert summary["failed"] == sum(job["counts"]["failed"] for job in jobs)
    known = [job["cost"]["amount"] for job in jobs if job["has_results"]]
    assert summary["cost"] == pytest.approx(sum(known))
    assert summary["cost_pending"] == 2  # batch-waiting and crashed have no results yet
    narrowed = (await api.get("/api/summary", params={"status": "cancelled"})).json()
    assert narrowed["jobs"] == 1
    assert narrowed["requests"] == 10


def test_a_summary_never_adds_an_unknown_cost_as_zero() -> None:
    from relay_core import Cost, Job

    def job(amount: float | None) -> Job:
        return Job(
            job_id="j",
            status="completed",
            mode="engine",
            n_requests=1,
            submitted_at=0,
            updated_at=0,
            has_results=True,
            cost=Cost(amount=amount, source="unknown" if amount is None else "snapshot"),
        )

    summary = Summary.of([job(0.5), job(None), job(0.25)])
    assert summary.cost == 0.75
    assert summary.cost_unknown == 1


async def test_one_job_and_the_jobs_that_are_not_there(api: httpx.AsyncClient) -> None:
    job = (await api.get("/api/jobs/crashed")).json()
    assert job["interrupted"] is True
    assert job["status"] == "running"
    missing = await api.get("/api/jobs/no-such-job")
    assert missing.status_code == 404
    assert "no-such-job" in missing.json()["error"]
    # An id no job can have (a path) is a 404 too, never a file read.
    assert (await api.get("/api/jobs/..%2F..%2Fetc/results")).status_code == 404
    page = await api.get("/jobs/no-such-job")
    assert page.status_code == 404
    assert "Job not found" in page.text


async def test_results_are_paged_in_request_order(api: httpx.AsyncClient) -> None:
    first = (await api.get("/api/jobs/eval-nightly/results", params={"limit": 50})).json()
    assert first["total"] == 120
    assert first["next_offset"] == 50
    assert [item["index"] for item in first["items"]] == list(range(50))
    last = (
        await api.get("/api/jobs/eval-nightly/results", params={"offset": 100, "limit": 50})
    ).json()
    assert [item["custom_id"] for item in last["items"]] == [
        f"eval-{i:03d}" for i in range(100, 120)
    ]
    assert last["next_offset"] is None
    item = last["items"][0]
    assert item["state"] == "completed"
    assert item["preview"] == "Question 100 of eval?"
    assert item["output_tokens"] == item["response"]["usage"]["output_tokens"] > 0
    assert item["error"] is None


async def test_results_filtered_by_state_page_through_the_failures_only(
    api: httpx.AsyncClient,
) -> None:
    failed = (
        await api.get("/api/jobs/labels-flaky/results", params={"state": "failed", "limit": 4})
    ).json()
    assert failed["total"] == 10
    assert failed["next_offset"] == 4
    assert [item["custom_id"] for item in failed["items"]] == [
        "label-002",
        "label-005",
        "label-008",
        "label-011",
    ]
    assert {item["error"]["kind"] for item in failed["items"]} == {"ProviderUnavailable"}
    more = (
        await api.get(
            "/api/jobs/labels-flaky/results", params={"state": "failed", "offset": 8, "limit": 4}
        )
    ).json()
    assert [item["custom_id"] for item in more["items"]] == ["label-026", "label-029"]
    completed = (
        await api.get("/api/jobs/labels-flaky/results", params={"state": "completed"})
    ).json()
    assert completed["total"] == 20


async def test_results_of_unfinished_and_cancelled_jobs(api: httpx.AsyncClient) -> None:
    waiting = (await api.get("/api/jobs/batch-waiting/results")).json()
    assert {item["state"] for item in waiting["items"]} == {"pending"}
    cancelled = (await api.get("/api/jobs/batch-cancelled/results")).json()
    assert {item["error"]["kind"] for item in cancelled["items"]} == {"cancelled"}
    crashed = (await api.get("/api/jobs/crashed/results", params={"limit": 500})).json()
    assert crashed["total"] == 400
    assert len(crashed["items"]) == 400


@pytest.mark.parametrize(
    "query",
    [{"limit": "501"}, {"limit": "0"}, {"offset": "-1"}, {"offset": "x"}, {"state": "odd"}],
)
async def test_bad_paging_is_a_400(api: httpx.AsyncClient, query: dict[str, str]) -> None:
    response = await api.get("/api/jobs/eval-nightly/results", params=query)
    assert response.status_code == 400
    assert response.json()["error"]


async def test_the_download_is_the_jobs_results_file(
    api: httpx.AsyncClient, workspace: Path
) -> None:
    response = await api.get("/api/jobs/labels-flaky/results.jsonl")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="labels-flaky.results.jsonl"' in response.headers["content-disposition"]
    lines = [json.loads(line) for line in response.text.splitlines()]
    with RelayClient(workspace, hub=make_hub()) as client:
        expected = [item.custom_id for item in client.iter_results("labels-flaky")]
    assert [line["custom_id"] for line in lines] == expected
    assert sum(1 for line in lines if "error" in line) == 10
    not_yet = await api.get("/api/jobs/batch-waiting/results.jsonl")
    assert not_yet.status_code == 409
    assert "no results yet" in not_yet.json()["error"]


async def test_user_text_is_escaped_in_every_page(api: httpx.AsyncClient) -> None:
    for url in ("/", "/jobs/hostile", "/?q=%3Cscript%3E"):
        page = await api.get(url)
        assert page.status_code == 200
        assert "<script>window.__pwned" not in page.text
        assert "<b>not bold</b>" not in page.text
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in (await api.get("/")).text
    assert (await api.get("/api/jobs/hostile")).json()["description"] == XSS


async def test_pages_forbid_inline_scripts_and_framing(api: httpx.AsyncClient) -> None:
    policy = (await api.get("/")).headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


async def test_the_page_and_its_files_need_nothing_from_the_network(
    api: httpx.AsyncClient,
) -> None:
    page = (await api.get("/jobs/eval-nightly")).text
    assert "http://" not in page
    assert "https://" not in page
    for asset in ("/static/dashboard.js", "/static/dashboard.css"):
        response = await api.get(asset)
        assert response.status_code == 200
        assert "http://" not in response.text
        assert "https://" not in response.text
