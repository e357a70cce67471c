"""The CLI's browsing commands: what models exist, what they cost, which to pick.

``relay models compare``, ``relay models recommend``, ``relay catalog list``,
``relay pricing show`` and ``relay pricing refresh``. Prices come from the same place a
call's cost does (:func:`relay_core.pricing.quote` through the hub), so what these print
is what a call is billed at; recommendations use the rule-based router's scoring
(:func:`relay_core.routing.rank`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click

from relay_core.cli import EXIT_FAILURE, _handles_errors, _state, cli, models
from relay_core.errors import PluginNotInstalled, ProviderError, UnknownAlias
from relay_core.pricing import ListingSource, ModelInfo, ModelPrice, RefreshableSource, by_tier
from relay_core.providers import Capability
from relay_core.routing import TASKS, Candidate, rank
from relay_core.serialize import unstructure

__all__: list[str] = []


def _money(value: float | None) -> str:
    """Two decimals, more when a price needs them (0.075, 0.0025), never a float tail."""
    if value is None:
        return "-"
    text = f"{value:.4f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals:0<2}"


def _listed(provider: str | None = None) -> list[tuple[ModelInfo, str, str]]:
    """Every model the installed listing sources know: (info, tier, source name), the
    best tier's row per model."""
    best: dict[str, tuple[ModelInfo, str, str]] = {}
    listing = [s for s in _state().plugins.pricing_sources() if isinstance(s, ListingSource)]
    for source in by_tier(listing):
        for info in source.models(provider):
            best.setdefault(info.target, (info, source.tier, source.name))
    return [best[target] for target in sorted(best)]


def _from_info(info: ModelInfo, tier: str, name: str | None = None) -> Candidate:
    return Candidate(
        alias=name or info.target,
        target=info.target,
        capabilities=info.capabilities | {"chat"},
        price=info.price,
        price_tier=tier if info.price is not None else "unknown",  # type: ignore[arg-type]
        context_window=info.context_window,
    )


def _candidate(hub: Any, name: str) -> Candidate:
    """What Relay knows of an alias or ``provider/model``; from the pricing sources alone
    when the provider's plugin is not installed."""
    try:
        return hub.candidate(name)  # type: ignore[no-any-return]
    except PluginNotInstalled:
        config = hub.catalog.lookup(name)
        for info, tier, _ in _listed(config.provider):
            if info.model == config.model:
                return _from_info(info, tier, name)
        return Candidate(alias=name, target=config.target)


def _price_fields(price: ModelPrice | None) -> dict[str, Any]:
    names = ("input", "output", "cached_input", "batch_discount", "currency", "as_of")
    return {name: getattr(price, name) if price is not None else None for name in names}


def _row(hub: Any, candidate: Candidate) -> dict[str, Any]:
    price = candidate.price
    quoted = None
    if candidate.alias not in hub.catalog.groups:
        quoted = hub.get(candidate.alias).quote()
    discount = price.batch_discount if price is not None else 0.0
    return {
        "model": candidate.alias,
        "target": candidate.target,
        "context_window": candidate.context_window,
        "capabilities": sorted(candidate.capabilities),
        **_price_fields(price),
        "batch_input": price.input * (1 - discount) if price and discount else None,
        "batch_output": price.output * (1 - discount) if price and discount else None,
        "price_tier": candidate.price_tier,
        "priced_by": quoted.priced_by if quoted else None,
        "profile": quoted.profile if quoted else None,
    }


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    rows = [list(row) for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for line in (list(headers), *rows):
        click.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(line, widths, strict=True)).rstrip())


# ---------------------------------------------------------------------------- models


@models.command("compare")
@click.argument("names", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_handles_errors
def models_compare(names: tuple[str, ...], as_json: bool) -> None:
    """Compare aliases or provider/model names side by side.

    Prices are per million tokens, as a call is billed (pricing profile applied), with
    where they come from: user_override, live_api, snapshot, estimated or unknown.
    """
    hub = _state().hub()
    rows = [_row(hub, _candidate(hub, name)) for name in names]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _table(
        ["model", "context", "capabilities", "input", "output", "cached", "batch in/out", "price"],
        (
            [
                row["model"],
                f"{row['context_window']:,}" if row["context_window"] else "-",
                ",".join(c for c in row["capabilities"] if c not in ("chat", "stream")) or "-",
                _money(row["input"]),
                _money(row["output"]),
                _money(row["cached_input"]),
                f"{_money(row['batch_input'])}/{_money(row['batch_output'])}"
                if row["batch_input"] is not None
                else "-",
                _provenance(row),
            ]
            for row in rows
        ),
    )


def _provenance(row: dict[str, Any]) -> str:
    said = [row["price_tier"]]
    if row.get("as_of"):
        said.append(row["as_of"])
    if row.get("profile"):
        said.append(f"profile {row['profile']}")
    return ", ".join(said)


@models.command("recommend")
@click.option(
    "--task",
    type=click.Choice(sorted(TASKS)),
    default=None,
    help="What the model is for; tasks need or prefer capabilities and context.",
)
@click.option(
    "--budget",
    type=click.Choice(["cheap", "balanced", "best"]),
    default="balanced",
    show_default=True,
    help="cheap favours low prices; best takes a higher list price as more capable.",
)
@click.option("--needs", default="", help="Capabilities required, comma-separated.")
@click.option(
    "--catalog-only", is_flag=True, help="Only the catalog's aliases, not every known model."
)
@click.option("-n", "--top", default=5, show_default=True, help="How many to show.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_handles_errors
def models_recommend(
    task: str | None, budget: str, needs: str, catalog_only: bool, top: int, as_json: bool
) -> None:
    """Rank models for a task, a budget and the capabilities you need, with the same
    scoring as a group with strategy: rules."""
    wanted = {need.strip() for need in needs.split(",") if need.strip()}
    unknown = wanted - {str(c) for c in Capability}
    if unknown:
        raise click.BadParameter(
            f"unknown capability {', '.join(sorted(unknown))}; expected some of "
            f"{', '.join(str(c) for c in Capability)}",
            param_hint="--needs",
        )
    hub = _state().hub()
    candidates: dict[str, Candidate] = {}
    for alias in sorted(hub.catalog.models):
        candidate = _candidate(hub, alias)
        candidates[candidate.target or alias] = candidate
    if not catalog_only:
        for info, tier, _ in _listed():
            candidates.setdefault(info.target, _from_info(info, tier))
    ranked = rank(candidates.values(), task=task, budget=budget, needs=wanted)[:top]  # type: ignore[arg-type]
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"model": c.alias, "target": c.target, "score": round(s, 3), "why": why}
                    for c, s, why in ranked
                ],
                indent=2,
            )
        )
        return
    if not ranked:
        click.echo("no known model has all of: " + ", ".join(sorted(wanted | {"chat"})))
        raise SystemExit(EXIT_FAILURE)
    _table(
        ["model", "score", "why"],
        ([c.alias, f"{s:.2f}", why] for c, s, why in ranked),
    )


# ---------------------------------------------------------------------------- catalog


@cli.group("catalog")
def catalog_group() -> None:
    """The models the installed pricing sources know."""


@catalog_group.command("list")
@click.option("-p", "--provider", help="Only this provider's models.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_handles_errors
def catalog_list(provider: str | None, as_json: bool) -> None:
    """Browse every model the pricing sources know, with list prices per million tokens
    (before any pricing profile) and where each price comes from."""
    rows: list[dict[str, Any]] = []
    for info, tier, name in _listed(provider):
        rows.append(
            {
                "model": info.target,
                "context_window": info.context_window,
                "capabilities": sorted(info.capabilities),
                **_price_fields(info.price),
                "tier": tier,
                "source": name,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        where = f" of provider {provider!r}" if provider else ""
        click.echo(
            f"no models{where} known: install relay-pricing-snapshot, or run "
            "`relay pricing refresh` for live prices"
        )
        return
    _table(
        ["model", "context", "input", "output", "cached", "batch", "from"],
        (
            [
                row["model"],
                f"{row['context_window']:,}" if row["context_window"] else "-",
                _money(row["input"]),
                _money(row["output"]),
                _money(row["cached_input"]),
                f"-{row['batch_discount']:.0%}" if row["batch_discount"] else "-",
                f"{row['tier']}, {row['as_of']}" if row["as_of"] else row["tier"],
            ]
            for row in rows
        ),
    )


# ---------------------------------------------------------------------------- pricing


@cli.group("pricing")
def pricing_group() -> None:
    """What calls cost, and where the prices come from."""


@pricing_group.command("show")
@click.argument("alias")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_handles_errors
def pricing_show(alias: str, as_json: bool) -> None:
    """The price an alias (or provider/model) is billed at, its provenance, the pricing
    profile applied, and the batch price."""
    hub = _state().hub()
    if alias in hub.catalog.groups:
        raise UnknownAlias(alias, known=sorted(hub.catalog.models))
    quoted = hub.get(alias).quote()
    effective = quoted.effective()
    batch = _batch(effective) if effective is not None and effective.batch_discount > 0 else None
    report = {
        "alias": alias,
        "target": hub.get(alias).config.target,
        "tier": quoted.tier,
        "priced_by": quoted.priced_by,
        "list_price": unstructure(quoted.price) if quoted.price else None,
        "profile": quoted.profile,
        "profile_settings": unstructure(quoted.pricing_profile) if quoted.pricing_profile else None,
        "billed_price": unstructure(effective) if effective else None,
        "batch_price": batch,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{alias} -> {report['target']}")
    if quoted.price is None:
        click.echo("price: unknown (costs are reported as None, never guessed)")
        click.echo(
            "  set pricing: in the catalog, install relay-pricing-snapshot, "
            "or run `relay pricing refresh`"
        )
        return
    click.echo(f"price from: {quoted.tier} ({quoted.priced_by})")
    if quoted.price.source or quoted.price.as_of:
        click.echo(f"  read at: {quoted.price.source or '-'} on {quoted.price.as_of or '-'}")
    _price_lines("list price", quoted.price)
    if quoted.profile and effective is not None:
        settings = {
            k: v for k, v in (report["profile_settings"] or {}).items() if v not in (None, 1.0)
        }
        click.echo(f"profile {quoted.profile}: {json.dumps(settings)}")
        _price_lines("billed price", effective)
    if batch is not None:
        click.echo(
            f"batch price: input {_money(batch['input'])}, output {_money(batch['output'])} "
            f"per million ({batch['discount']:.0%} off)"
        )


def _price_lines(label: str, price: ModelPrice) -> None:
    parts = [f"input {_money(price.input)}", f"output {_money(price.output)}"]
    for name in ("cached_input", "cache_write", "reasoning"):
        value = getattr(price, name)
        if value is not None:
            parts.append(f"{name.replace('_', ' ')} {_money(value)}")
    click.echo(f"{label}: {', '.join(parts)} {price.currency} per million tokens")


def _batch(price: ModelPrice) -> dict[str, float]:
    keep = 1 - price.batch_discount
    return {
        "input": price.input * keep,
        "output": price.output * keep,
        "discount": price.batch_discount,
    }


@pricing_group.command("refresh")
@_handles_errors
def pricing_refresh() -> None:
    """Fetch live prices now, for every installed source that fetches them."""
    sources = [s for s in _state().plugins.pricing_sources() if isinstance(s, RefreshableSource)]
    if not sources:
        click.echo(
            "no installed pricing source fetches live prices (pip install relay-pricing-snapshot)"
        )
        return
    failed = False
    for source in sources:
        try:
            click.echo(f"{source.name}: {source.refresh()}")
        except ProviderError as error:
            failed = True
            click.echo(f"{source.name}: failed: {error}", err=True)
    if failed:
        raise SystemExit(EXIT_FAILURE)
