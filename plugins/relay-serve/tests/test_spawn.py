"""Local llama.cpp replicas, with a fake ``llama-server`` (``_backends.llama_main``) first
on PATH: start, readiness, restart after a crash, shutdown with no process left over,
and the error when llama.cpp is not installed."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import httpx
import pytest

import relay_serve
from relay_core import ConfigError, ProviderUnavailable
from relay_core.testing import hub_for
from relay_serve._spawn import spawned_backends

TESTS = Path(__file__).parent


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A model file, with the fake llama-server first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "llama-server"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "from _backends import llama_main\n"
        "llama_main()\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    path = tmp_path / "qwen.gguf"
    path.write_bytes(b"GGUF")
    return str(path)


def health(url: str) -> httpx.Response:
    return httpx.get(url.removesuffix("/v1") + "/health", timeout=5)


def pid_of(url: str) -> int:
    answer = health(url)
    assert answer.status_code == 200
    pid: int = answer.json()["pid"]
    return pid


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_replicas_start_on_free_ports_and_are_ready_when_yielded(model: str) -> None:
    with spawned_backends(model, 2) as urls:
        assert len(urls) == 2
        assert len(set(urls)) == 2
        assert all(url.startswith("http://127.0.0.1:") and url.endswith("/v1") for url in urls)
        # The fake answers 503 while it "loads": ready means every one answers 200 now.
        pids = [pid_of(url) for url in urls]

        hub = hub_for(json.dumps({"providers": {"pool": {"options": {"backends": urls}}}}))
        hub.plugins.register(relay_serve)
        with hub:
            answers = [hub.chat("pool/qwen", f"q{i}").text for i in range(4)]
        assert answers[0] == "qwen.gguf says: q0"

    assert all(gone(pid) for pid in pids)


def test_a_replica_that_crashes_is_restarted_on_its_port(
    model: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay.serve")
    with spawned_backends(model, 1) as urls:
        first = pid_of(urls[0])
        with pytest.raises(httpx.HTTPError):
            httpx.post(urls[0].removesuffix("/v1") + "/crash", json={}, timeout=5)

        second = None
        deadline = time.monotonic() + 30
        while second is None and time.monotonic() < deadline:
            try:
                if health(urls[0]).status_code == 200:
                    second = pid_of(urls[0])
            except httpx.HTTPError:
                time.sleep(0.1)
        assert second is not None, "the replica was not restarted"
        assert second != first

    assert gone(first)
    assert gone(second)
    logged = caplog.text
    assert "serve.replica_exited" in logged
    assert "crashing on purpose" in logged  # the replica's last output is logged
    assert "serve.replica_restarted" in logged


def test_a_replica_that_ignores_sigterm_is_killed_after_the_grace_period(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LLAMA_IGNORE_SIGTERM", "1")
    with spawned_backends(model, 2, grace=0.3) as urls:
        pids = [pid_of(url) for url in urls]

    assert all(gone(pid) for pid in pids)


def test_a_replica_that_dies_before_it_is_ready_reports_its_output(
    model: str, tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing.gguf")

    with pytest.raises(ProviderUnavailable) as caught, spawned_backends(missing, 1):
        pytest.fail("a replica that cannot load its model is not ready")

    message = str(caught.value)
    assert "exited with code 1 before it was ready" in message
    assert f"error: failed to load model '{missing}'" in message


def test_a_replica_not_ready_in_time_is_an_error_and_is_stopped(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LLAMA_LOADING", "600")

    with (
        pytest.raises(ProviderUnavailable) as caught,
        spawned_backends(model, 1, ready_timeout=0.5),
    ):
        pytest.fail("a replica still loading is not ready")

    message = str(caught.value)
    assert "did not answer /health within 0.5 s" in message
    pid = int(message.split("fake llama-server ")[1].split()[0])  # from its output
    assert gone(pid)


def test_without_llama_server_the_error_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(ConfigError) as caught, spawned_backends("model.gguf", 1):
        pytest.fail("nothing to start")

    message = str(caught.value)
    assert "llama.cpp's llama-server is not installed" in message
    assert "https://github.com/ggml-org/llama.cpp" in message
    assert "RELAYSERVE_BACKENDS" in message


def test_replicas_must_be_at_least_one() -> None:
    with (
        pytest.raises(ConfigError, match="replicas must be a whole number >= 1"),
        spawned_backends("model.gguf", 0),
    ):
        pytest.fail("nothing to start")
