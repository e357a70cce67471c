"""Local llama.cpp replicas: start them, keep them running, stop them.

:func:`spawned_backends` starts ``replicas`` copies of llama.cpp's ``llama-server`` on one
model, each on a free port of ``host``, waits until every one answers ``GET /health``
with 200 (llama.cpp answers 503 while the model loads), and yields their OpenAI base URLs
for a pool (``relay_serve._pool``). While the block runs, a supervisor thread restarts a
replica that exits, on the same port so its URL stays valid, after a wait that doubles
with each quick exit (0.5 s up to 30 s; reset once a replica has run for a minute). On
leaving the block every replica gets SIGTERM, then SIGKILL after ``grace`` seconds.

Replicas run in their own session: a Ctrl-C in the terminal reaches this process alone,
which then stops them in order, instead of reaching them too and racing the supervisor
to restart them. A parent killed outright (SIGKILL) leaves them running.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from relay_core.plugin import ConfigError, ProviderUnavailable, get_logger

__all__ = ["spawned_backends"]

_log = get_logger("relay.serve")

_FIRST_BACKOFF = 0.5
_MAX_BACKOFF = 30.0
# A replica that ran this long before exiting is restarted after the first backoff again.
_STABLE_AFTER = 60.0
_POLL = 0.1
_TAIL_LINES = 20

_NOT_INSTALLED = (
    "{binary!r} was not found on PATH: llama.cpp's llama-server is not installed. "
    "Install llama.cpp (https://github.com/ggml-org/llama.cpp: a release archive, "
    "`brew install llama.cpp`, or a build with `cmake -B build && cmake --build build "
    "--target llama-server`) and put llama-server on PATH, or pass the path to the "
    "binary. Or start your backends yourself (llama.cpp, vLLM, Ollama) and list their "
    "URLs in RELAYSERVE_BACKENDS=http://127.0.0.1:8081/v1,..."
)


def _free_port(host: str) -> int:
    # Bound and released at once: another process could take it meanwhile, which the
    # readiness wait then reports as a replica that died (address in use).
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _url_host(host: str) -> str:
    """The address clients use for a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class _Replica:
    def __init__(self, index: int, command: list[str], port: int, log_path: Path) -> None:
        self.index = index
        self.command = command
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.backoff = _FIRST_BACKOFF
        self.restart_at: float | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self.restart_at = None

    def tail(self) -> str:
        try:
            data = self.log_path.read_bytes()[-8192:]
        except OSError:
            return ""
        lines = data.decode("utf-8", errors="replace").splitlines()
        return "\n".join(lines[-_TAIL_LINES:])


class _Supervisor:
    def __init__(
        self, executable: str, model_path: str, replicas: int, host: str, args: Sequence[str]
    ) -> None:
        self.host = host
        self._directory = tempfile.TemporaryDirectory(prefix="relay-llama-")
        self.replicas = []
        for index in range(replicas):
            port = _free_port(host)
            command = [executable, "-m", model_path, "--host", host, "--port", str(port), *args]
            log_path = Path(self._directory.name) / f"replica-{index}.log"
            self.replicas.append(_Replica(index, command, port, log_path))
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="relay-llama", daemon=True)

    @property
    def urls(self) -> list[str]:
        return [f"http://{_url_host(self.host)}:{r.port}/v1" for r in self.replicas]

    def start(self, ready_timeout: float) -> None:
        for replica in self.replicas:
            replica.start()
        self._wait_ready(ready_timeout)
        for replica, url in zip(self.replicas, self.urls, strict=True):
            _log.info("serve.replica_ready", replica=replica.index, url=url)
        self._thread.start()

    def _wait_ready(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        waiting = list(self.replicas)
        with httpx.Client(timeout=2.0) as client:
            while waiting:
                for replica in list(waiting):
                    assert replica.process is not None
                    code = replica.process.poll()
                    if code is not None:
                        raise self._failure(replica, f"exited with code {code} before it was ready")
                    health = f"http://{_url_host(self.host)}:{replica.port}/health"
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(health).status_code == 200:
                            waiting.remove(replica)
                if waiting and time.monotonic() > deadline:
                    raise self._failure(waiting[0], f"did not answer /health within {timeout:g} s")
                if waiting:
                    time.sleep(_POLL)

    def _failure(self, replica: _Replica, what: str) -> ProviderUnavailable:
        command = " ".join(replica.command)
        tail = replica.tail() or "(no output)"
        return ProviderUnavailable(
            f"llama-server replica {replica.index} ({command}) {what}; its last output:\n{tail}",
            provider="llama-server",
        )

    def _supervise(self) -> None:
        while not self._stopping.wait(_POLL):
            for replica in self.replicas:
                self._check(replica)

    def _check(self, replica: _Replica) -> None:
        assert replica.process is not None
        now = time.monotonic()
        code = replica.process.poll()
        if code is None:
            if now - replica.started_at > _STABLE_AFTER:
                replica.backoff = _FIRST_BACKOFF
            return
        if replica.restart_at is None:
            _log.warning(
                "serve.replica_exited",
                replica=replica.index,
                port=replica.port,
                exit_code=code,
                restart_in=replica.backoff,
                output=replica.tail(),
            )
            replica.restart_at = now + replica.backoff
            replica.backoff = min(replica.backoff * 2, _MAX_BACKOFF)
        elif now >= replica.restart_at:
            try:
                replica.start()
            except OSError as error:  # the binary vanished, or no more processes
                _log.error("serve.replica_restart_failed", replica=replica.index, error=str(error))
                replica.restart_at = now + replica.backoff
                replica.backoff = min(replica.backoff * 2, _MAX_BACKOFF)
                return
            _log.info("serve.replica_restarted", replica=replica.index, port=replica.port)

    def stop(self, grace: float) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        running = [
            r.process for r in self.replicas if r.process is not None and r.process.poll() is None
        ]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # Reap replicas that had exited on their own too (no zombies, no warnings).
        for replica in self.replicas:
            if replica.process is not None:
                replica.process.wait()
        self._directory.cleanup()


@contextlib.contextmanager
def spawned_backends(
    model_path: str,
    replicas: int,
    *,
    binary: str = "llama-server",
    host: str = "127.0.0.1",
    args: Sequence[str] = (),
    ready_timeout: float = 300.0,
    grace: float = 10.0,
) -> Iterator[list[str]]:
    """Run ``replicas`` llama.cpp servers on ``model_path`` and yield their base URLs
    (``http://127.0.0.1:PORT/v1``), restarting any that exits, until the block ends.

    ``binary`` is looked up on PATH (or is a path); ``args`` go to every replica after
    ``-m PATH --host HOST --port PORT`` (``["-c", "8192", "-ngl", "99"]``). Raises
    :class:`ConfigError` when the binary is not installed, and
    :class:`ProviderUnavailable` with the replica's last output when one exits before it
    answers ``/health`` or does not answer within ``ready_timeout`` seconds. Every
    replica is stopped on leaving: SIGTERM, then SIGKILL after ``grace`` seconds.
    """
    if type(replicas) is not int or replicas < 1:
        raise ConfigError(f"replicas must be a whole number >= 1, not {replicas!r}")
    executable = shutil.which(binary)
    if executable is None:
        raise ConfigError(_NOT_INSTALLED.format(binary=binary))
    supervisor = _Supervisor(executable, model_path, replicas, host, args)
    try:
        supervisor.start(ready_timeout)
        yield supervisor.urls
    finally:
        supervisor.stop(grace)
