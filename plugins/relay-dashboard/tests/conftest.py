"""Fixtures for relay-dashboard's tests: a workspace filled by real relay-mock jobs of
every kind (see dashboard_workspace.fill_workspace), and the dashboard over it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from dashboard_workspace import LiveServer, fill_workspace, make_hub

from relay_dashboard import Settings, create_app


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("relay-jobs")
    fill_workspace(directory)
    return directory


@pytest.fixture
async def api(workspace: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the dashboard app (localhost, actions on, no token)."""
    hub = make_hub()
    app = create_app(workspace, Settings(), hub=hub)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield client
    await app.state.dashboard.close()
    await hub.aclose()


@pytest.fixture(scope="module")
def live(workspace: Path) -> Iterator[LiveServer]:
    hub = make_hub()
    with LiveServer(workspace, Settings(refresh=30), hub) as server:
        yield server
    hub.close()
