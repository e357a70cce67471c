"""Serving the dashboard with uvicorn: :func:`run_dashboard` and its settings."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relay_dashboard._settings import TOKEN_ENV, Settings

if TYPE_CHECKING:
    import uvicorn

    from relay_core import Hub
    from relay_core.plugin import Catalog

__all__ = ["HideTokens", "build_server", "resolve_settings", "run_dashboard"]

_TOKEN_PARAM = re.compile(r"(?i)([?&]token=)[^&\s]*")


class HideTokens(logging.Filter):
    """Blank ``token=...`` out of logged URLs: the page may be opened as
    ``/?token=...`` once, and uvicorn's access log writes every URL it serves."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_PARAM.sub(r"\1***", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        record.msg = _TOKEN_PARAM.sub(r"\1***", str(record.msg))
        return True


def resolve_settings(
    config: str | os.PathLike[str] | Catalog | None = None, **given: Any
) -> Settings:
    """Settings from the given values (``None``: not given), then the catalog's
    ``plugins.dashboard``, then the defaults; the token also from ``$RELAY_DASHBOARD_TOKEN``.
    Checked: :class:`relay_core.ConfigError` says what cannot be served."""
    from relay_core import load_catalog
    from relay_core.plugin import Catalog

    if given.get("token") is None:
        given["token"] = os.environ.get(TOKEN_ENV) or None
    if isinstance(config, (str, os.PathLike)):
        config = load_catalog(Path(config))
    settings = Settings.from_catalog(config or Catalog(), **given)
    return settings.check()


def run_dashboard(
    workspace: str | os.PathLike[str],
    *,
    host: str | None = None,
    port: int | None = None,
    token: str | None = None,
    read_only: bool | None = None,
    refresh: float | None = None,
    config: str | os.PathLike[str] | Catalog | None = None,
    store: str | None = None,
) -> None:
    """Serve the dashboard over ``workspace`` until interrupted (Ctrl-C).

    ``host`` defaults to 127.0.0.1 and ``port`` to 8765; ``token`` (default:
    ``$RELAY_DASHBOARD_TOKEN``) guards the actions, and is required to listen beyond
    localhost, where every page and API read needs it too; ``refresh`` is the page's
    auto-refresh period in seconds (default 30); ``config`` is the catalog (a path or a
    :class:`Catalog`) whose ``plugins.dashboard`` section gives defaults and whose
    providers the actions use; ``store`` is the workspace's store when its records are
    not in the directory's SQLite (``postgresql://...`` with relay-postgres, or
    ``$env.NAME``).
    """
    settings = resolve_settings(
        config, host=host, port=port, token=token, read_only=read_only, refresh=refresh
    )
    build_server(workspace, settings, store=store).run()


def build_server(
    workspace: str | os.PathLike[str],
    settings: Settings,
    *,
    hub: Hub | None = None,
    store: str | None = None,
    **uvicorn_options: Any,
) -> uvicorn.Server:
    """A uvicorn server for the dashboard (not started), its access log kept free of
    tokens; ``uvicorn_options`` go to :class:`uvicorn.Config`."""
    import uvicorn

    from relay_dashboard._app import create_app

    app = create_app(workspace, settings, hub=hub, store=store)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, **uvicorn_options)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, HideTokens) for f in access.filters):
        access.addFilter(HideTokens())
    return uvicorn.Server(config)
