"""``relay serve`` and ``relay serve-key``: added to the ``relay`` command by the plugin."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from relay_core.plugin import ConfigError, RelayError, catalog_path

if TYPE_CHECKING:
    from relay_serve._settings import ServeSettings

__all__ = ["commands"]

_LOOPBACK_NAMES = ("localhost",)


def commands() -> list[click.Command]:
    """The click commands this plugin adds to ``relay``."""
    from relay_serve._keys_cli import keys
    from relay_serve._spend_report import spend

    return [serve, serve_key, keys, spend]


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fail(error: RelayError) -> None:
    # ConfigErrors render as file:line:column: like the rest of relay; exit 2 = bad usage.
    click.echo(f"error: {error}", err=True)
    sys.exit(2 if isinstance(error, ConfigError) else 1)


@click.command()
@click.option(
    "-c", "--config", type=click.Path(dir_okay=False), help="Catalog file (as relay --config)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--spawn",
    type=click.Choice(["llama-cpp"]),
    help="Start local backends and serve them as pool/<model>.",
)
@click.option("--model", "model_path", type=click.Path(), help="Model file for --spawn.")
@click.option(
    "--replicas", default=1, show_default=True, type=click.IntRange(1), help="For --spawn."
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Worker processes answering on the one port.",
)
@click.option(
    "--allow-open",
    is_flag=True,
    help="Serve without API keys on an address other than loopback.",
)
def serve(
    config: str | None,
    host: str,
    port: int,
    spawn: str | None,
    model_path: str | None,
    replicas: int,
    workers: int,
    allow_open: bool,
) -> None:
    """Serve the catalog's models over OpenAI's HTTP API (/v1/chat/completions)."""
    if spawn and not model_path:
        raise click.UsageError("--spawn llama-cpp needs --model PATH")
    if model_path and not spawn:
        raise click.UsageError("--model is for --spawn llama-cpp")
    try:
        _serve(
            catalog_path(config),
            host,
            port,
            model_path if spawn else None,
            replicas,
            allow_open,
            workers,
        )
    except RelayError as error:
        _fail(error)


def _serve(
    path: str | None,
    host: str,
    port: int,
    model_path: str | None,
    replicas: int,
    allow_open: bool,
    workers: int = 1,
) -> None:
    from relay_core import Hub, load_catalog
    from relay_core.plugin import Catalog
    from relay_serve._app import create_app
    from relay_serve._settings import ServeSettings

    catalog = load_catalog(path) if path else Catalog()
    settings = ServeSettings.from_catalog(catalog)
    if settings.open and not _is_loopback(host) and not allow_open:
        raise click.UsageError(
            f"refusing to serve {host} without API keys: anyone who can reach it could spend "
            "your providers' credit. Add keys under plugins.serve.keys (`relay serve-key` "
            "makes one) or pass --allow-open."
        )
    with contextlib.ExitStack() as stack:
        if model_path is not None:
            from relay_serve._spawn import spawned_backends

            urls = stack.enter_context(spawned_backends(model_path, replicas))
            # Read by the pool provider when the hub first builds it.
            os.environ["RELAYSERVE_BACKENDS"] = ",".join(urls)
            click.echo(f"backends: {', '.join(urls)} (as pool/<model>)", err=True)
        keys = "open" if settings.open else f"{len(settings.keys)} keys"
        if settings.database is not None:
            keys += " and a key store"
        if workers > 1:
            if not settings.shared_state:
                click.echo(
                    f"warning: {workers} workers without plugins.serve.state: each worker "
                    "keeps its own rate limits and concurrency counts, so a key may get "
                    f"up to {workers} times its limits",
                    err=True,
                )
            click.echo(
                f"relay serve: http://{host}:{port}/v1 ({keys}, {workers} workers)", err=True
            )
            _run_workers(path, host, port, settings, workers)
            return
        app = create_app(Hub(catalog), settings, host=host)
        click.echo(f"relay serve: http://{host}:{port}/v1 ({keys})", err=True)
        _run(app, host, port, settings)


def _run(app: Any, host: str, port: int, settings: ServeSettings) -> None:
    """Serve ``app`` with uvicorn until interrupted, with relay-serve's guards: request
    deadlines, a bound on connections, repeated log lines folded."""
    import uvicorn

    from relay_serve._connections import capacity, guarded_protocol
    from relay_serve._logfold import RepeatFilter

    room = capacity(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        ws="none",
        http=guarded_protocol(settings, room.connections),
        backlog=room.backlog,
    )
    fold = RepeatFilter()
    fold_logs(fold)  # after Config: creating it installs uvicorn's handlers
    try:
        uvicorn.Server(config).run()
    finally:
        fold.flush()


def _run_workers(
    path: str | None, host: str, port: int, settings: ServeSettings, workers: int
) -> None:
    """Serve with ``workers`` processes on one listening socket, under uvicorn's
    supervisor: it replaces a worker that dies, and stops them all on Ctrl-C or
    SIGTERM. Each worker builds its own hub and guards (``relay_serve._worker``)."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from relay_serve._connections import capacity
    from relay_serve._worker import APP, PROTOCOL, hand_over

    room = capacity(settings)  # raises this process's file limit, which workers inherit
    hand_over(path, host)
    config = uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        ws="none",
        http=PROTOCOL,
        backlog=room.backlog,
    )
    # The supervisor's own lines (a worker died and was replaced, workers stopped) are
    # info, which log_level hides in the workers; the operator wants them.
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes):
        raise SystemExit("error: a worker could not start (see above)")


def fold_logs(fold: logging.Filter) -> None:
    """Pass every line the server writes through ``fold``: uvicorn's, Relay's, and the
    rest (asyncio's), which would otherwise go to logging's last-resort handler."""
    for name in ("uvicorn", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(fold)
    relay = logging.getLogger("relay")
    if relay.handlers:  # `relay -v` configured them; root must not print them twice
        for handler in relay.handlers:
            handler.addFilter(fold)
        relay.propagate = False
    rest = logging.StreamHandler()
    rest.setLevel(logging.WARNING)
    rest.addFilter(fold)
    logging.getLogger().addHandler(rest)


@click.command("serve-key")
@click.option("--name", default="client", show_default=True, help="The key's name in logs.")
@click.option(
    "--requests-per-minute", "rpm", type=click.IntRange(1), help="Its rate limit (default: none)."
)
def serve_key(name: str, rpm: int | None) -> None:
    """Print a new API key for relay serve, and the catalog entry holding its hash.

    The key is shown once: give it to the client, put the entry under
    plugins.serve.keys. The catalog never holds the key itself.
    """
    from relay_serve._settings import hash_key, new_key

    key = new_key()
    entry: dict[str, Any] = {"name": name, "hash": hash_key(key)}
    if rpm is not None:
        entry["requests_per_minute"] = rpm
    fields = ", ".join(f"{k}: {_yaml_scalar(v)}" for k, v in entry.items())
    click.echo(f"key: {key}")
    click.echo("catalog entry, under plugins.serve.keys:")
    click.echo(f"  - {{{fields}}}")


def _yaml_scalar(value: Any) -> str:
    import json

    return str(value) if isinstance(value, int) else json.dumps(value)
