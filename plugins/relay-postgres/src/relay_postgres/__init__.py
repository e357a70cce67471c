"""relay-postgres: batch workspaces whose records (jobs, chunks, requests, leases) live
in PostgreSQL, for a team whose machines share the workspace directory.

``RelayClient("/shared/jobs", store="postgresql://relay@db/relay")``, or
``relay batch ... --store $env.RELAY_DB`` (``$RELAY_WORKSPACE_STORE``). This module is
imported whenever plugins load, so it only registers: psycopg loads with the first
workspace opened on PostgreSQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relay_core.plugin import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from relay_postgres._store import PostgresStore

__all__ = ["SCHEMES", "open_store"]

SCHEMES = ("postgresql", "postgres")


def open_store(url: str, *, read_only: bool) -> PostgresStore:
    """The workspace store of the PostgreSQL database ``url`` names."""
    from relay_postgres._store import PostgresStore

    return PostgresStore(url, read_only=read_only)


@hookimpl
def relay_register_workspace_stores(register: Callable[[str, Callable[..., Any]], None]) -> None:
    for scheme in SCHEMES:
        register(scheme, open_store)
