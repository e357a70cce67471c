"""Reading the spend ledger: ``relay spend`` on the command line, ``GET /admin/spend``
over HTTP. Both take the same filters: ``key``, ``team``, ``since`` (a UTC date like
``2026-12-01`` or an age like ``7d`` / ``12h``) and ``by`` (model, day, key or team)."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

import click

from relay_core.plugin import ConfigError, RelayError, catalog_path

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from relay_serve._ledger import Group, Ledger

__all__ = ["admin_spend", "parse_since", "spend"]

BY = ("model", "day", "key", "team")
_AGE = re.compile(r"^([0-9]{1,6})([dh])$")
_FILTERS = ("key", "team", "since", "by")


def parse_since(text: str, now: float | None = None) -> float:
    """``2026-12-01`` (midnight UTC) or ``7d`` / ``12h`` before ``now``, as UTC POSIX
    seconds; ValueError saying what is accepted otherwise."""
    age = _AGE.match(text)
    if age:
        unit = 86_400 if age[2] == "d" else 3_600
        return (time.time() if now is None else now) - int(age[1]) * unit
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ValueError(
            f"since must be a UTC date like 2026-12-01 or an age like 7d or 12h, not {text!r}"
        ) from None
    return day.replace(tzinfo=timezone.utc).timestamp()


def summary(rows: Sequence[Mapping[str, Any]], by: str, since: float | None) -> dict[str, Any]:
    """The JSON both readers give: the groups and their total."""
    total: dict[str, Any] = {
        name: sum(row[name] for row in rows)
        for name in (
            "requests",
            "input_tokens",
            "output_tokens",
            "dollars",
            "unpriced_requests",
            "estimated_requests",
        )
    }
    total["dollars"] = round(total["dollars"], 10)
    return {
        "by": by,
        "since": None
        if since is None
        else datetime.fromtimestamp(since, timezone.utc).isoformat(timespec="seconds"),
        "groups": list(rows),
        "total": total,
    }


# ---------------------------------------------------------------------------- relay spend


@click.command()
@click.option(
    "-c", "--config", type=click.Path(dir_okay=False), help="Catalog file (as relay --config)."
)
@click.option("--key", "key", help="Only this key's spend.")
@click.option("--team", help="Only this team's spend.")
@click.option("--since", help="From a UTC date (2026-12-01) or an age (7d, 12h).")
@click.option("--by", type=click.Choice(BY), default="key", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def spend(
    config: str | None,
    key: str | None,
    team: str | None,
    since: str | None,
    by: str,
    as_json: bool,
) -> None:
    """Report what relay serve's clients spent, from its ledger (plugins.serve.database)."""
    try:
        start = None if since is None else parse_since(since)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None
    try:
        found = _report(catalog_path(config), key, team, start, by)
    except RelayError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2 if isinstance(error, ConfigError) else 1)
    if as_json:
        click.echo(json.dumps(found, indent=2))
    else:
        click.echo(_table(found))


def _report(
    path: str | None, key: str | None, team: str | None, since: float | None, by: str
) -> dict[str, Any]:
    from pathlib import Path

    from relay_core import load_catalog
    from relay_core.plugin import Catalog
    from relay_serve._database import Database, database_url
    from relay_serve._ledger import Ledger

    catalog = load_catalog(path) if path else Catalog()
    url = database_url(catalog)
    if not url.startswith(("postgresql://", "postgres://")) and not Path(url).exists():
        raise ConfigError(f"no spend recorded yet: {url} does not exist (relay serve writes it)")
    database = Database.open(url)
    try:
        ledger = Ledger(database)
        rows = ledger.report_now(key=key, team=team, since=since, by=cast("Group", by))
    except Exception as error:
        raise RelayError(f"cannot read the ledger in {database.where}: {error}") from None
    finally:
        database.close()
    return summary(rows, by, since)


def _table(found: Mapping[str, Any]) -> str:
    by = found["by"]
    head = (by, "requests", "input tokens", "output tokens", "dollars")
    lines = [
        (
            "-" if row[by] is None else str(row[by]),
            str(row["requests"]),
            str(row["input_tokens"]),
            str(row["output_tokens"]),
            f"{row['dollars']:.6f}",
        )
        for row in found["groups"]
    ]
    total = found["total"]
    lines.append(
        (
            "total",
            str(total["requests"]),
            str(total["input_tokens"]),
            str(total["output_tokens"]),
            f"{total['dollars']:.6f}",
        )
    )
    widths = [max(len(cells[i]) for cells in (head, *lines)) for i in range(len(head))]

    def row(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        pairs = zip(cells[1:], widths[1:], strict=True)
        rest = "  ".join(cell.rjust(width) for cell, width in pairs)
        return f"{first}  {rest}"

    text = [row(head), *map(row, lines)]
    if total["unpriced_requests"]:
        text.append(f"{total['unpriced_requests']} requests had no known price (not in dollars)")
    if total["estimated_requests"]:
        text.append(f"{total['estimated_requests']} streams cut by their client: tokens estimated")
    if found["since"]:
        text.append(f"since {found['since']}")
    return "\n".join(text)


# ---------------------------------------------------------------------------- /admin/spend


async def admin_spend(
    request: Request,
    ledger: Ledger,
    authorize: Callable[[Request], Awaitable[Response | None]],
) -> Response:
    """``GET /admin/spend?key=&team=&since=&by=``: the report as JSON. ``authorize``
    answers a request that may not read it (its refusal), or None to go on."""
    from starlette.responses import JSONResponse

    from relay_serve._wire import error_body

    refused = await authorize(request)
    if refused is not None:
        return refused
    params = request.query_params
    problem = None
    unknown = sorted(set(params) - set(_FILTERS))
    by = params.get("by", "key")
    since: float | None = None
    if unknown:
        problem = f"unknown parameter {unknown[0]!r}; /admin/spend takes {', '.join(_FILTERS)}"
    elif by not in BY:
        problem = f"by must be one of {', '.join(BY)}, not {by!r}"
    elif "since" in params:
        try:
            since = parse_since(params["since"])
        except ValueError as error:
            problem = str(error)
    if problem is not None:
        return JSONResponse(error_body(problem, "invalid_request_error"), status_code=400)
    rows = await ledger.report(
        key=params.get("key"), team=params.get("team"), since=since, by=cast("Group", by)
    )
    return JSONResponse(summary(rows, by, since))
