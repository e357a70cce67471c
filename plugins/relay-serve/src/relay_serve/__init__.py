"""relay-serve: Relay as an OpenAI-compatible HTTP server.

This module only registers; it stays light because it is imported whenever plugins load.
The server (``relay_serve._app``) and the backend pool (``relay_serve._pool``) are imported
when first used. In code, :func:`create_app` builds the server over a hub::

    import uvicorn
    from relay_core import Hub
    from relay_serve import ServeSettings, create_app

    hub = Hub.from_yaml("relay.yaml")
    uvicorn.run(create_app(hub, ServeSettings.from_catalog(hub.catalog)), port=8000)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from relay_core.plugin import hookimpl, lazy_exports

if TYPE_CHECKING:
    from relay_core.plugin import Catalog
    from relay_serve._app import create_app
    from relay_serve._settings import ApiKey, ServeSettings

__all__ = ["ApiKey", "ServeSettings", "create_app"]

__version__ = "0.1.0"

_LAZY = {
    "create_app": "relay_serve._app",
    "ApiKey": "relay_serve._settings",
    "ServeSettings": "relay_serve._settings",
}


# Starlette loads with the first use of the server, not with the plugin.
__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


@hookimpl
def relay_register_commands(cli: Any) -> None:
    from relay_serve._cli import commands

    for command in commands():
        cli.add_command(command)


@hookimpl
def relay_register_providers(register: Callable[..., None]) -> None:
    # A pool of OpenAI-compatible backends (llama.cpp, vLLM, Ollama) is a provider like
    # any other: the server, the engine and plain hub calls all reach it as pool/<model>.
    register("pool", "relay_serve._pool:PoolProvider")


# Every setting plugins.serve takes (_settings checks them), here so that `relay
# validate` knows them without loading the server's modules.
_FIELDS = (
    "keys",
    "max_concurrency",
    "max_queue",
    "max_body_bytes",
    "allowed_hosts",
    "cors_origins",
    "header_timeout",
    "body_timeout",
    "max_connections",
    "teams",
    "database",
    "admin_keys",
    "state",
    "on_state_error",
    "state_timeout",
)


def _check(catalog: Catalog) -> None:
    from relay_serve._settings import ServeSettings

    ServeSettings.from_catalog(catalog)


@hookimpl
def relay_register_settings(register: Callable[..., None]) -> None:
    register("serve", fields=_FIELDS, check=_check)
