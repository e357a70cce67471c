"""``relay serve --workers N``: what each worker process builds for itself.

uvicorn's supervisor starts its workers with multiprocessing's *spawn*: a fresh
interpreter that gets the server's configuration pickled, and imports the application
and the HTTP protocol by name. Neither can come from the parent as objects: a
:class:`~relay_core.Hub` holds connections that belong to one event loop, and the
guarded protocol is a class made in a closure (it keeps its own count of connections),
which does not pickle. So the parent hands over only what they are built from, in the
environment (inherited by spawned processes), and each worker loads the catalog and
builds its own hub, application and guarded protocol: ``app`` (a factory) and
``protocol`` below, named in ``uvicorn.Config`` as ``relay_serve._worker:app`` and
``relay_serve._worker:protocol``.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from relay_core.plugin import Catalog
    from relay_serve._settings import ServeSettings

__all__ = ["APP", "ENV", "PROTOCOL", "app", "hand_over"]

ENV = "RELAYSERVE_WORKER"
APP = "relay_serve._worker:app"
PROTOCOL = "relay_serve._worker:protocol"


def hand_over(catalog: str | None, host: str, http: str = "auto") -> None:
    """Say what the workers are to build: the catalog file (None: an empty catalog),
    the address the server is bound to, and the HTTP parser (as ``guarded_protocol``)."""
    path = os.path.abspath(catalog) if catalog else None  # a worker's cwd may differ
    os.environ[ENV] = json.dumps({"catalog": path, "host": host, "http": http})


@functools.cache
def _spec() -> dict[str, Any]:
    given = os.environ.get(ENV)
    if given is None:
        raise RuntimeError(f"{ENV} is not set: relay_serve._worker is for `relay serve --workers`")
    spec: dict[str, Any] = json.loads(given)
    return spec


@functools.cache
def _loaded() -> tuple[Catalog, ServeSettings]:
    from relay_core import load_catalog
    from relay_core.plugin import Catalog
    from relay_serve._settings import ServeSettings

    path = _spec()["catalog"]
    catalog = load_catalog(path) if path else Catalog()
    return catalog, ServeSettings.from_catalog(catalog)


def app() -> Any:
    """This worker's application, over a hub of its own."""
    from relay_core import Hub
    from relay_serve._app import create_app
    from relay_serve._cli import fold_logs
    from relay_serve._logfold import RepeatFilter

    catalog, settings = _loaded()
    fold = RepeatFilter()
    fold_logs(fold)  # uvicorn configured this process's logging before building the app
    atexit.register(fold.flush)
    return create_app(Hub(catalog), settings, host=_spec()["host"])


def _protocol() -> type[asyncio.Protocol]:
    from relay_serve._connections import capacity, guarded_protocol

    _, settings = _loaded()
    # The parent raised the open-file limit as far as needed; workers inherit it.
    return guarded_protocol(settings, capacity(settings).connections, _spec()["http"])


def __getattr__(name: str) -> Any:
    # Built on first lookup, which is uvicorn's, in the worker: the class must not
    # exist in the parent (where it would be pickled) nor at import.
    if name == "protocol":
        made = _protocol()
        globals()["protocol"] = made
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
