"""``relay dashboard WORKSPACE`` and the ``relay-dashboard`` console script."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from relay_core.plugin import catalog_path
from relay_dashboard._settings import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV

__all__ = ["command", "main"]


@click.command("dashboard")
@click.argument("workspace", type=click.Path(file_okay=False))
@click.option("--host", default=None, help=f"Address to listen on [default: {DEFAULT_HOST}].")
@click.option("--port", type=int, default=None, help=f"Port [default: {DEFAULT_PORT}].")
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    show_envvar=True,
    default=None,
    help="Token the actions require; beyond localhost, needed for every page too.",
)
@click.option("--read-only", is_flag=True, default=None, help="Turn the actions off.")
@click.option(
    "--refresh", type=float, default=None, help="Auto-refresh period in seconds [default: 30]."
)
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Catalog file (its plugins.dashboard section, and the providers actions call).",
)
@click.option(
    "--store",
    default=lambda: os.environ.get("RELAY_WORKSPACE_STORE") or None,
    show_default="$RELAY_WORKSPACE_STORE, else SQLite in the workspace",
    help="Where the job records live when not in the workspace's SQLite: a URL such as "
    "postgresql://user@host/db (relay-postgres), or $env.NAME.",
)
def command(workspace: str, config: str | None, **options: Any) -> None:
    """Serve a web dashboard over the batch jobs in WORKSPACE."""
    from relay_core.plugin import ConfigError
    from relay_dashboard._server import run_dashboard

    try:
        run_dashboard(workspace, config=catalog_path(config), **options)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


def main() -> None:
    """The ``relay-dashboard`` console script."""
    command(prog_name="relay-dashboard")
