"""Real Redis and PostgreSQL servers on loopback, started and stopped by tests.

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
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresServer", "RedisServer", "ServerMissing", "postgres_server", "redis_server"]

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
