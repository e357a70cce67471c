"""relay-dashboard over a workspace whose records are in PostgreSQL (``--store``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from click.testing import CliRunner

from relay_core import BatchRequest, RelayClient, parse_catalog
from relay_dashboard import Settings, create_app
from relay_dashboard._cli import command

CATALOG = "models:\n  fast: mock/echo\n"


def test_the_dashboard_lists_the_jobs_of_a_postgresql_workspace(
    tmp_path: Path, database: str
) -> None:
    requests = [BatchRequest(id=f"q{i}", prompt=f"question {i}") for i in range(3)]
    with RelayClient(tmp_path / "ws", config=parse_catalog(CATALOG), store=database) as relay:
        relay.submit_batch(requests, job_id="d1", model="fast", mode="engine")

    async def read() -> tuple[list[str], int]:
        app = create_app(tmp_path / "ws", Settings(), store=database)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as web:
                jobs = (await web.get("/api/jobs")).json()
                page = await web.get("/api/jobs/d1/results")
        finally:
            await app.state.dashboard.close()
        return [job["job_id"] for job in jobs["jobs"]], page.status_code

    assert asyncio.run(read()) == (["d1"], 200)


def test_the_dashboard_command_says_which_plugin_an_unknown_store_needs(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    result = CliRunner().invoke(command, [str(tmp_path / "ws"), "--store", "mysql://db/x"])
    assert result.exit_code == 2
    assert "no workspace store handles mysql:// URLs" in result.output
