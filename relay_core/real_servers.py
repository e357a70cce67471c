"""Real Redis and PostgreSQL servers and a Ray cluster on loopback, started and stopped
by tests.

Relay's tests of shared state talk to the real servers (Debian's ``redis-server`` and
``postgresql`` packages, which ``.ci/run`` installs), never only to a fake::

    from relay_core.real_servers import redis_server

    with redis_server() as redis:
        client = redis_lib.Redis.from_url(redis.url)
        redis.stop()   # an outage, for as long as the test likes
        redis.start()  # back on the same port, empty

Each server runs in a temporary directory of its own, on a free port of 127.0.0.1, with
nothing written to disk that outlives it. A missing binary is an error naming the
package to install, never a skip: a test that cannot run its server has not passed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "PostgresServer",
    "RayCluster",
    "RedisServer",
    "ServerMissing",
    "postgres_server",
    "ray_cluster",
    "redis_server",
]

_START_TIMEOUT = 30.0


class ServerMissing(RuntimeError):
    """The server's program is not installed."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _binary(name: str, package: str, *patterns: str) -> str:
    found = shutil.which(name)
    for pattern in patterns:
        found = found or next(iter(sorted(glob.glob(pattern), reverse=True)), None)
    if found is None:
        raise ServerMissing(
            f"{name} is not installed: install Debian's {package} package "
            f"(`apt-get install {package}`; .ci/run does this on CI)"
        )
    return found


class RedisServer:
    """A ``redis-server`` on ``127.0.0.1:port``; :meth:`stop` and :meth:`start` make an
    outage and end it (the restarted server is empty: no persistence)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._binary = _binary("redis-server", "redis-server")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._process is not None:
            return
        log = (self.directory / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--maxclients", "10000",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()  # the child has its own descriptor; ours would leak (ResourceWarning)
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"redis-server did not start:\n{(self.directory / 'redis.log').read_text()}"
                )
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the server at once (as a crash would), and wait until it is gone."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A running :class:`RedisServer`, stopped when the block ends."""
    with tempfile.TemporaryDirectory(prefix="relay-redis-") as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.stop()


class PostgresServer:
    """A PostgreSQL cluster of its own on ``127.0.0.1:port``, user ``relay`` trusted,
    database ``relay``; :attr:`url` is what ``psycopg.connect`` takes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"postgresql://relay@127.0.0.1:{self.port}/relay"
        patterns = ("/usr/lib/postgresql/*/bin/{}",)
        self._initdb = _binary("initdb", "postgresql", *(p.format("initdb") for p in patterns))
        self._pg_ctl = _binary("pg_ctl", "postgresql", *(p.format("pg_ctl") for p in patterns))
        self._psql = _binary("psql", "postgresql", *(p.format("psql") for p in patterns))
        self._data = directory / "data"
        # PostgreSQL refuses to run as root: as root, run it as Debian's postgres user.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._started = False
        self._options = ""

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            [*self._as, *argv], capture_output=True, text=True, timeout=_START_TIMEOUT * 2
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv[:2])} failed:\n{done.stdout}{done.stderr}")

    def init(self) -> None:
        if self._as:
            shutil.chown(self.directory, "postgres")
        self._run(self._initdb, "-D", str(self._data), "-A", "trust", "-U", "relay", "--no-sync")
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._options = options
        self.start()
        self._run(
            self._psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "relay",
            "-d", "postgres", "-c", "CREATE DATABASE relay",
        )  # fmt: skip

    def start(self) -> None:
        if self._started:
            return
        self._run(
            self._pg_ctl, "-D", str(self._data), "-o", self._options,
            "-l", str(self.directory / "postgres.log"), "-w", "start",
        )  # fmt: skip
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._run(self._pg_ctl, "-D", str(self._data), "-m", "immediate", "-w", "stop")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running :class:`PostgresServer`, stopped and deleted when the block ends."""
    with tempfile.TemporaryDirectory(prefix="relay-postgres-") as directory:
        server = PostgresServer(Path(directory))
        try:
            server.init()
            yield server
        finally:
            server.stop()


class RayCluster:
    """A one-node Ray cluster on ``127.0.0.1`` (``ray start --head``, CPU only, no
    dashboard) whose ``cpus`` are the worker processes that run tasks at once;
    :attr:`address` is what ``ray.init`` and ``--address`` take.

    One node with several CPUs, not several nodes: on one machine Ray resolves a node's
    address to the host's outward IP unless it runs as a single-node cluster, which is
    what keeps everything on loopback (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``).
    :attr:`env` is the environment a driver of this cluster runs with.
    """

    def __init__(self, directory: Path, cpus: int) -> None:
        self.directory = directory
        self.cpus = cpus
        self.address = ""
        self.client_address = ""  # Ray Client's: ray://127.0.0.1:PORT
        self.env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        self.env.pop("RAY_ADDRESS", None)
        found = shutil.which("ray") or next(iter(glob.glob(_beside_python("ray"))), None)
        if found is None:
            raise ServerMissing(
                "ray is not installed: install Ray from PyPI in this environment "
                "(`pip install relay-ray` brings it)"
            )
        self._ray = found
        self._session: int | None = None
        self.started_in = 0.0

    @property
    def session(self) -> int | None:
        """The session of every process of the cluster (``None``: stopped)."""
        return self._session

    def task_workers(self, task: str) -> list[int]:
        """The pids of the cluster's worker processes running the Ray task ``task`` now
        (their command line reads ``ray::TASK``)."""
        prefix = f"ray::{task}\0".encode()
        found = []
        for pid in _processes_of_session(self._session):
            try:
                if (Path("/proc") / str(pid) / "cmdline").read_bytes().startswith(prefix):
                    found.append(pid)
            except OSError:
                continue  # it ended while we looked
        return found

    def start(self) -> None:
        started = time.monotonic()
        ports = [str(free_port()) for _ in range(4)]
        log = (self.directory / "ray-start.log").open("ab")
        process = subprocess.Popen(
            [
                self._ray, "start", "--head", "--disable-usage-stats",
                "--node-ip-address", "127.0.0.1", "--port", "0",
                "--num-cpus", str(self.cpus), "--num-gpus", "0",
                "--include-dashboard", "false", "--dashboard-port", ports[0],
                "--ray-client-server-port", ports[1],
                "--dashboard-agent-listen-port", ports[2],
                "--metrics-export-port", ports[3],
                "--temp-dir", str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            # Every process of the cluster is in this session: stop() ends exactly them,
            # where `ray stop` would end every Ray cluster of the machine.
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self._session = process.pid
        try:
            code = process.wait(timeout=_START_TIMEOUT * 4)
        except subprocess.TimeoutExpired:
            code = None
        current = self.directory / "ray_current_cluster"
        if code != 0 or not current.exists():
            self.stop()
            raise RuntimeError(
                f"ray start did not start:\n{(self.directory / 'ray-start.log').read_text()}"
            )
        self.address = current.read_text().strip()
        self.client_address = f"ray://127.0.0.1:{ports[1]}"
        self.started_in = time.monotonic() - started

    def stop(self) -> None:
        """Kill every process of the cluster (tasks' workers included) and wait for them."""
        session, self._session = self._session, None
        if session is None:
            return
        # Ray's workers put themselves in process groups of their own, but stay in the
        # session `ray start` began: that is what holds every process of the cluster.
        deadline = time.monotonic() + _START_TIMEOUT
        while (alive := _processes_of_session(session)) and time.monotonic() < deadline:
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)


def _processes_of_session(session: int | None) -> list[int]:
    """The processes of ``session`` still running (a zombie that init has not reaped
    yet is gone for this purpose)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _beside_python(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@contextlib.contextmanager
def ray_cluster(cpus: int = 2) -> Iterator[RayCluster]:
    """A running :class:`RayCluster`, every process of it gone when the block ends."""
    # A short root: Ray's unix sockets live under it, and a socket path has 107 bytes.
    with tempfile.TemporaryDirectory(prefix="relay-ray-", dir="/tmp") as directory:
        cluster = RayCluster(Path(directory), cpus)
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
