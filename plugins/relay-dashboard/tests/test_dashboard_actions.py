"""Cancel and refresh through the API, and who may call them: the token beyond
localhost, the header that keeps other sites out, read-only mode, the Host check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_workspace import make_hub, submit_batch

from relay_dashboard import Settings, create_app

TOKEN = "dash-9f8e7d6c5b4a3210"
ACT = {"x-relay-dashboard": "1"}


@pytest.fixture
async def make_api(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """``make_api(settings, host=...)``: a client on a dashboard over a workspace with one
    provider batch that waits (``waiting``) and one that finishes in 0.2 s (``quick``)."""
    hub = make_hub()
    submit_batch(tmp_path, "waiting")
    submit_batch(tmp_path, "quick", "mock/echo")
    apps: list[Any] = []
    clients: list[httpx.AsyncClient] = []

    def make(settings: Settings | None = None, host: str = "localhost") -> httpx.AsyncClient:
        app = create_app(tmp_path, settings or Settings(), hub=hub)
        apps.append(app)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://{host}:8765"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
    for app in apps:
        await app.state.dashboard.close()
    await hub.aclose()


async def test_cancel_stops_a_provider_batch(make_api: Callable[..., httpx.AsyncClient]) -> None:
    api = make_api()
    response = await api.post("/api/jobs/waiting/cancel", headers=ACT)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert (await api.get("/api/jobs/waiting")).json()["status"] == "cancelled"


async def test_refresh_polls_the_provider_and_retrieves_the_results_when_done(
    make_api: Callable[..., httpx.AsyncClient],
) -> None:
    api = make_api()
    job: dict[str, Any] = {}
    for _ in range(200):  # the mock batch finishes 0.2 s after submission
        response = await api.post("/api/jobs/quick/refresh", headers=ACT)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["has_results"]:
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "completed"
    assert job["counts"]["completed"] == 5
    results = (await api.get("/api/jobs/quick/results")).json()
    assert [item["preview"] for item in results["items"]] == [f"hello {i}" for i in range(5)]


async def test_actions_on_an_unknown_job_are_a_404(
    make_api: Callable[..., httpx.AsyncClient],
) -> None:
    response = await make_api().post("/api/jobs/nope/cancel", headers=ACT)
    assert response.status_code == 404


async def test_an_action_without_the_dashboard_header_is_refused(
    make_api: Callable[..., httpx.AsyncClient],
) -> None:
    # What a form on another site could send: no custom header, no preflight.
    api = make_api()
    response = await api.post("/api/jobs/waiting/cancel")
    assert response.status_code == 403
    assert (await api.get("/api/jobs/waiting")).json()["status"] == "submitted"


async def test_a_read_only_dashboard_refuses_actions(
    make_api: Callable[..., httpx.AsyncClient],
) -> None:
    api = make_api(Settings(read_only=True))
    response = await api.post("/api/jobs/waiting/cancel", headers=ACT)
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]
    page = (await api.get("/jobs/waiting")).text
    assert 'data-action="cancel"' not in page


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-123456", f"Basic {TOKEN}", f"Bearer {TOKEN}x"]
)
async def test_beyond_localhost_actions_need_the_token(
    make_api: Callable[..., httpx.AsyncClient], authorization: str | None
) -> None:
    api = make_api(Settings(host="0.0.0.0", token=TOKEN), host="dash.example")
    headers = dict(ACT)
    if authorization:
        headers["authorization"] = authorization
    response = await api.post("/api/jobs/waiting/cancel", headers=headers)
    assert response.status_code == 401
    assert TOKEN not in response.text
    reader = {"authorization": f"Bearer {TOKEN}"}
    assert (await api.get("/api/jobs/waiting", headers=reader)).json()["status"] == "submitted"


async def test_with_the_token_the_action_goes_through(
    make_api: Callable[..., httpx.AsyncClient],
) -> None:
    api = make_api(Settings(host="0.0.0.0", token=TOKEN), host="dash.example")
    headers = {**ACT, "authorization": f"Bearer {TOKEN}"}
    response = await api.post("/api/jobs/waiting/cancel", headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert TOKEN not in (await api.get("/jobs/waiting", headers=headers)).text


async def test_on_localhost_reads_need_no_token(
    make_api: Callable[..., httpx.AsyncClient],
) -> None:
    api = make_api(Settings(token=TOKEN))
    assert (await api.get("/api/jobs")).status_code == 200


async def test_on_localhost_only_localhost_names_are_answered(
    make_api: Callable[..., httpx.AsyncClient],
) -> None:
    # A hostile page whose DNS name points at 127.0.0.1 sends its own name as Host.
    rebound = make_api(host="attacker.example")
    assert (await rebound.get("/api/jobs")).status_code == 421
    for name in ("localhost", "127.0.0.1", "[::1]"):
        assert (await make_api(host=name).get("/api/jobs")).status_code == 200
