"""relay-dashboard: a web page over a Relay batch workspace.

This module registers the ``relay dashboard`` command and re-exports the Python API;
it stays light because it is imported whenever plugins load: Starlette, uvicorn and
the app are imported on first use (PEP 562), never here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relay_core.plugin import hookimpl, lazy_exports

if TYPE_CHECKING:
    from collections.abc import Callable

    from relay_core.plugin import Catalog
    from relay_dashboard._app import create_app
    from relay_dashboard._server import run_dashboard
    from relay_dashboard._settings import Settings

__all__ = ["Settings", "create_app", "run_dashboard"]

__version__ = "0.1.0"

_MODULE_OF = {
    "Settings": "relay_dashboard._settings",
    "create_app": "relay_dashboard._app",
    "run_dashboard": "relay_dashboard._server",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULE_OF)


@hookimpl
def relay_register_commands(cli: Any) -> None:
    from relay_dashboard._cli import command

    cli.add_command(command)


def _check(catalog: Catalog) -> None:
    from relay_dashboard._settings import Settings

    Settings.from_catalog(catalog)


@hookimpl
def relay_register_settings(register: Callable[..., None]) -> None:
    # token is refused by the check with its own reason (keep it out of the catalog).
    register(
        "dashboard",
        fields=("host", "port", "refresh", "page_size", "read_only", "token"),
        check=_check,
    )
