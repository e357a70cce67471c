"""``relay keys create|list|revoke|rotate``: client keys in the server's key store (the
catalog's ``plugins.serve.database``; by default ``relay-serve.db`` beside the catalog).
A running server sees a change within a second, on every replica."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from relay_core.plugin import RelayError, catalog_path

if TYPE_CHECKING:
    from relay_serve._keystore import KeyRecord, KeyStore, NewKey

__all__ = ["keys"]

F = TypeVar("F", bound=Callable[..., Any])


def _config_option(command: F) -> F:
    return click.option(
        "-c",
        "--config",
        type=click.Path(dir_okay=False),
        help="Catalog file (as relay --config); its plugins.serve.database is used.",
    )(command)


@click.group()
def keys() -> None:
    """Client keys of relay serve, kept hashed in its database (secrets shown once)."""


@contextmanager
def _store(config: str | None) -> Iterator[KeyStore]:
    """The key store of the catalog's server; every failure an ``error:`` line."""
    import sqlite3

    from relay_core import load_catalog
    from relay_core.plugin import Catalog
    from relay_serve._keyfields import FieldError
    from relay_serve._keystore import KeyStoreError, open_store
    from relay_serve._settings import ServeSettings, default_database

    store: KeyStore | None = None
    try:
        path = catalog_path(config)
        catalog = load_catalog(path) if path else Catalog()
        settings = ServeSettings.from_catalog(catalog)
        store = open_store(settings.database or default_database(catalog))
        yield store
    except (RelayError, KeyStoreError, FieldError) as error:
        _fail(str(error), 2)
    except sqlite3.Error as error:
        _fail(f"the key store: {error}", 1)
    except Exception as error:
        psycopg = sys.modules.get("psycopg")
        if psycopg is not None and isinstance(error, psycopg.Error):
            _fail(f"the key store: {type(error).__name__}", 1)
        raise
    finally:
        if store is not None:
            store.close()


def _fail(message: str, status: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


def _fields(**given: Any) -> Any:
    from relay_serve._keyfields import FieldError, read_fields

    try:
        return read_fields({name: value for name, value in given.items() if value is not None})
    except FieldError as error:
        _fail(f"--{error.field.replace('_', '-')}: {error}", 2)


@keys.command()
@click.argument("name")
@click.option("--team", help="The team it belongs to (whose budgets it also spends).")
@click.option("--models", help="Models it may call: aliases or provider/model, fnmatch, a,b.")
@click.option("--rpm", type=click.IntRange(1), help="Requests per minute.")
@click.option("--tpm", type=click.IntRange(1), help="Tokens per minute.")
@click.option("--max-concurrent", type=click.IntRange(1), help="Requests at once.")
@click.option("--budget", multiple=True, help="Dollars: 50/month, 5/day, 100 (total).")
@click.option("--expires", help="2027-01-01, 2027-01-01T12:00:00Z, or 30d / 12h from now.")
@_config_option
def create(
    name: str,
    team: str | None,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    max_concurrent: int | None,
    budget: tuple[str, ...],
    expires: str | None,
    config: str | None,
) -> None:
    """Make a key NAME and print its secret (once: only its hash is kept)."""
    fields = _fields(
        team=team,
        models=models,
        requests_per_minute=rpm,
        tokens_per_minute=tpm,
        max_concurrent=max_concurrent,
        budget=list(budget) or None,
        expires=expires,
    )
    with _store(config) as store:
        _show_new(store.create(name, fields), store)


@keys.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@click.option("--revoked", is_flag=True, help="Revoked keys too.")
@_config_option
def list_(as_json: bool, revoked: bool, config: str | None) -> None:
    """The keys: name, id, team, limits, expiry (never a secret or a hash)."""
    with _store(config) as store:
        records = store.list(revoked=revoked)
    if as_json:
        click.echo(json.dumps([record.as_json() for record in records], indent=2))
        return
    if not records:
        click.echo(f"no keys in {store.database.where}", err=True)
        return
    rows: list[tuple[str, ...]] = [("NAME", "ID", "TEAM", "MODELS", "LIMITS", "EXPIRES", "REVOKED")]
    rows += [_row(record) for record in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@keys.command()
@click.argument("name")
@_config_option
def revoke(name: str, config: str | None) -> None:
    """Revoke key NAME: refused by every server within a second."""
    with _store(config) as store:
        count = store.revoke(name)
    click.echo(f"revoked {name}" + (f" ({count} keys)" if count > 1 else ""))


@keys.command()
@click.argument("name")
@click.option("--grace", help="Keep the old secret working this long (1h, 30m); default: none.")
@_config_option
def rotate(name: str, grace: str | None, config: str | None) -> None:
    """Give key NAME a new secret (printed once); the old one is revoked."""
    from relay_serve._keyfields import FieldError, parse_duration

    try:
        seconds = parse_duration(grace) if grace is not None else 0.0
    except FieldError as error:
        _fail(f"--grace: {error}", 2)
    with _store(config) as store:
        _show_new(store.rotate(name, seconds), store)
    if seconds:
        click.echo(f"the old secret works for {grace} more", err=True)


def _show_new(made: NewKey, store: KeyStore) -> None:
    click.echo(f"key: {made.secret}")
    click.echo(
        f"{made.record.name} ({made.record.id}) in {store.database.where}; the key is shown "
        "this once: give it to the client, only its hash is kept",
        err=True,
    )


def _row(record: KeyRecord) -> tuple[str, ...]:
    data = record.as_json()
    limits = [
        f"{label}={data[field]}"
        for field, label in (
            ("requests_per_minute", "rpm"),
            ("tokens_per_minute", "tpm"),
            ("max_concurrent", "concurrent"),
        )
        if data[field] is not None
    ]
    limits += [f"${b['dollars']:g}/{b['period']}" for b in data["budgets"]]
    return (
        record.name,
        record.id,
        record.team or "-",
        ",".join(record.limits.models) or "*",
        " ".join(limits) or "-",
        data["expires_at"] or "never",
        data["revoked_at"] or "-",
    )
