"""A real PostgreSQL server on loopback for the whole session (started by the tests, a
missing binary is an error), and a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from relay_core.real_servers import PostgresServer, postgres_server

_numbers = itertools.count()


@pytest.fixture(scope="session")
def server() -> Iterator[PostgresServer]:
    with postgres_server() as running:
        yield running


@pytest.fixture
def database(server: PostgresServer) -> str:
    """The URL of a new, empty database on the server: one workspace's records."""
    server.start()  # a test that stopped it may have failed before starting it again
    name = f"ws{next(_numbers)}"
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + f"/{name}"
