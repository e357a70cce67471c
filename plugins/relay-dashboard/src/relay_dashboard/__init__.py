"""relay-dashboard: a web page over a Relay batch workspace.

This module registers the ``relay dashboard`` command and re-exports the Python API;
it stays light because it is imported whenever plugins load: Starlette, uvicorn and
the app are imported on first use (PEP 562), never here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relay_core import hookimpl

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    module_name = _MODULE_OF.get(name)
    if module_name is None:
        raise AttributeError(f"module 'relay_dashboard' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # Everything defined here too: pluggy finds the hook implementations through dir().
    return sorted({*globals(), *__all__})


@hookimpl
def relay_register_commands(cli: Any) -> None:
    from relay_dashboard._cli import command

    cli.add_command(command)
