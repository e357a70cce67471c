"""A workspace the disk will not let the dashboard use: a page (or a JSON error) that
says so, never a 500. Read-only is a directory's mode, so the checks run in a child
process that drops root's override of file modes (setpriv), as a user would be."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dashboard_workspace import submit_batch

_CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys
    import httpx
    from relay_core.plugin import ConfigError
    from relay_dashboard import create_app

    def lock(root):
        for path, dirs, files in os.walk(root):
            for name in files:
                os.chmod(os.path.join(path, name), 0o444)
            os.chmod(path, 0o555)

    async def main(workspace, when):
        if when == "before":
            lock(workspace)
        try:
            app = create_app(workspace)
        except ConfigError as error:
            print(json.dumps({"start": str(error)}))
            return
        if when == "after":
            lock(workspace)
        seen = {}
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as api:
            for method, path in [("GET", "/"), ("GET", "/api/jobs"), ("GET", "/jobs/w"),
                                 ("POST", "/api/jobs/w/cancel")]:
                response = await api.request(method, path, headers={"x-relay-dashboard": "1"})
                seen[method + " " + path] = [response.status_code, response.text]
        await app.state.dashboard.close()
        print(json.dumps(seen))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def _dashboard_child(workspace: Path, when: str) -> dict[str, object]:
    command = [sys.executable, "-c", _CHILD, str(workspace), when]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("running as root, and setpriv (util-linux) is needed to drop root's rights")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    finally:
        for path in (workspace, *workspace.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_an_action_on_a_workspace_turned_read_only_says_so(tmp_path: Path) -> None:
    submit_batch(tmp_path, "w")
    seen = _dashboard_child(tmp_path, "after")
    status, body = seen["POST /api/jobs/w/cancel"]  # type: ignore[misc]
    assert status == 503, body
    assert json.loads(body)["error"].startswith(f"cannot write to the workspace {tmp_path}:")
    assert "read-only" in body
    for page in ("GET /", "GET /api/jobs", "GET /jobs/w"):
        assert seen[page][0] in (200, 503), (page, seen[page])  # type: ignore[index]


def test_a_workspace_the_dashboard_cannot_read_is_refused_at_start_saying_why(
    tmp_path: Path,
) -> None:
    submit_batch(tmp_path, "w")
    seen = _dashboard_child(tmp_path, "before")
    message = str(seen["start"])
    assert message.startswith(f"cannot read the workspace {tmp_path}:"), message
    assert "-shm" in message
    assert "not an SQLite database" not in message
