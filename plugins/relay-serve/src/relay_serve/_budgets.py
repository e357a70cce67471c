"""Budgets in dollars per key and per team, checked before the upstream call.

A budget is ``dollars`` per calendar ``day`` or ``month`` (UTC) or in ``total``. What a
key and its team have spent in each budget's current period lives in the shared state
(:mod:`relay_serve._state`: one counter per budget and period, so every worker and
replica sees one figure); a counter the state does not hold (first use, expired, a
restarted Redis) is seeded from the ledger, which holds every answered request.

A request is refused when what was spent, plus the least this request can cost (its
prompt's estimated tokens at the model's input price), would pass a budget. Requests
already in flight are not counted until they are answered, so concurrent requests can
pass a budget by what they cost together.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from attrs import frozen

from relay_core.plugin import (
    Cost,
    EmbeddingRequest,
    Usage,
    cost_of,
    estimate_text_tokens,
    estimate_tokens,
)
from relay_serve._keyfields import parse_budgets
from relay_serve._settings import ApiKey, Budget

if TYPE_CHECKING:
    from relay_core import Hub
    from relay_core.plugin import Catalog, PriceQuote, Request
    from relay_serve._ledger import Ledger
    from relay_serve._state import SharedState

__all__ = ["Accountant", "OverBudget", "parse_teams", "period_start"]

# How long a request's "already counted" mark is kept: longer than any retry of one
# report, far shorter than the life of the counters.
_ONCE_TTL = 86_400.0
# A period's counter outlives the period by this much, then lapses (nobody reads it).
_GRACE = 3_600.0


def period_start(period: str, now: float) -> float | None:
    """The UTC start of the ``day`` or ``month`` holding ``now``; None for ``total``."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    if period == "day":
        return datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc).timestamp()
    if period == "month":
        return datetime(moment.year, moment.month, 1, tzinfo=timezone.utc).timestamp()
    return None


def _period_end(period: str, now: float) -> float | None:
    moment = datetime.fromtimestamp(now, timezone.utc)
    if period == "day":
        return (period_start("day", now) or 0.0) + 86_400.0
    if period == "month":
        days = calendar.monthrange(moment.year, moment.month)[1]
        return (period_start("month", now) or 0.0) + days * 86_400.0
    return None


def _period_name(period: str, now: float) -> str:
    moment = datetime.fromtimestamp(now, timezone.utc)
    if period == "day":
        return moment.strftime("day:%Y-%m-%d")
    if period == "month":
        return moment.strftime("month:%Y-%m")
    return "total"


class OverBudget(Exception):
    """A request refused because it would pass a key's or a team's budget. The message
    names the budget (whose, period, amount) and never the key's value."""


@frozen
class _Line:
    """One budget of one key or team, in the period holding now."""

    kind: str  # "key" or "team"
    name: str
    budget: Budget
    scope: str
    start: float | None
    ttl: float | None


class Accountant:
    """Budgets and spend for one server: :meth:`check` before the upstream call,
    :meth:`spent` after the answer. ``teams`` are the budgets of each team by name;
    ``ledger`` seeds counters the state does not hold (None: they start at 0)."""

    def __init__(
        self,
        hub: Hub,
        state: SharedState,
        ledger: Ledger | None,
        teams: Mapping[str, Sequence[Budget]],
        clock: Any = None,
    ) -> None:
        import time

        self.hub = hub
        self.state = state
        self.ledger = ledger
        self.teams = {name: tuple(budgets) for name, budgets in teams.items()}
        self._clock = clock or time.time
        # Quotes of catalog aliases only: clients' provider/model names are unbounded.
        self._quotes: dict[str, PriceQuote | None] = {}

    # -- before the call ----------------------------------------------------------------

    def _lines(self, key: ApiKey | None, now: float) -> list[_Line]:
        if key is None:
            return []
        owners: list[tuple[str, str, Sequence[Budget]]] = [("key", key.name, key.limits.budgets)]
        if key.team is not None:
            owners.append(("team", key.team, self.teams.get(key.team, ())))
        lines = []
        for kind, name, budgets in owners:
            for budget in budgets:
                end = _period_end(budget.period, now)
                lines.append(
                    _Line(
                        kind,
                        name,
                        budget,
                        f"spend:{kind}:{name}:{_period_name(budget.period, now)}",
                        period_start(budget.period, now),
                        None if end is None else end - now + _GRACE,
                    )
                )
        return lines

    def budgeted(self, key: ApiKey | None) -> bool:
        """Whether ``key`` or its team has a budget."""
        if key is None:
            return False
        return bool(key.limits.budgets) or (key.team is not None and bool(self.teams.get(key.team)))

    async def check(self, key: ApiKey | None, request: Request | EmbeddingRequest) -> None:
        """Raise :class:`OverBudget` when ``request`` would pass a budget of ``key`` or
        of its team."""
        if not self.budgeted(key):
            return
        lines = self._lines(key, self._clock())
        totals = await self.state.totals([line.scope for line in lines])
        minimum: float | None = None
        for line, total in zip(lines, totals, strict=True):
            if total is None:
                total = await self._seed(line)
            if total >= line.budget.dollars:
                raise OverBudget(_refusal(line, total))
            if minimum is None:
                minimum = self.minimum_cost(request)
            if total + minimum > line.budget.dollars:
                raise OverBudget(_refusal(line, total, minimum))

    async def _seed(self, line: _Line) -> float:
        value = 0.0
        if self.ledger is not None:
            value = await self.ledger.spent(
                key=line.name if line.kind == "key" else None,
                team=line.name if line.kind == "team" else None,
                since=line.start,
            )
        await self.state.seed(line.scope, value, line.ttl)
        return value

    def minimum_cost(self, request: Request | EmbeddingRequest) -> float:
        """The least ``request`` can cost: its prompt's estimated tokens at the input
        price of its model (of a group's cheapest member); 0 when no price is known."""
        quoted = self.quote(request.model or "")
        if quoted is None:
            return 0.0
        if isinstance(request, EmbeddingRequest):
            tokens = sum(estimate_text_tokens(text) for text in request.inputs)
        else:
            tokens = estimate_tokens(request)
        amount = cost_of(Usage(input_tokens=tokens), quoted).amount
        return amount or 0.0

    def quote(self, model: str) -> PriceQuote | None:
        """The price ``model`` is billed at; for a group, its cheapest member's."""
        if model in self._quotes:
            return self._quotes[model]
        try:
            handle = self.hub.resolve(model)
        except Exception:  # unknown names are refused later, by the hub, with its message
            return None
        found: PriceQuote | None
        if hasattr(handle, "quote"):
            found = handle.quote()
        else:  # a group: what its cheapest member costs
            prices = [
                (price.input, quoted)
                for quoted in map(self.quote, handle.members)
                if quoted is not None and (price := quoted.effective()) is not None
            ]
            found = min(prices, key=lambda pair: pair[0])[1] if prices else None
        if model in self.hub.catalog.models or model in self.hub.catalog.groups:
            self._quotes[model] = found
        return found

    def target(self, model: str) -> str:
        """``provider/model`` of ``model`` (an alias), as far as it is known without
        the answer: a group's name stays as it is."""
        try:
            handle = self.hub.resolve(model)
        except Exception:
            return model
        provider, name = getattr(handle, "provider_name", None), getattr(handle, "model", None)
        return f"{provider}/{name}" if provider and name else model

    # -- after the answer ---------------------------------------------------------------

    async def count(self, once: str, key: ApiKey | None, dollars: float | None) -> None:
        """Add ``dollars`` to every budget counter of ``key`` and its team, once per
        ``once`` (the ledger row's id), whichever worker reports it."""
        if not dollars:
            return
        lines = self._lines(key, self._clock())
        if lines:
            await self.state.add_once(once, {line.scope: dollars for line in lines}, _ONCE_TTL)


def estimated_cost(quoted: PriceQuote | None, usage: Usage) -> Cost:
    """What ``usage`` costs at ``quoted`` (unknown without a price)."""
    if quoted is None:
        return Cost.unknown()
    return cost_of(usage, quoted)


def _refusal(line: _Line, spent: float, minimum: float | None = None) -> str:
    period = {"day": "daily", "month": "monthly", "total": "total"}[line.budget.period]
    whose = f"key {line.name!r}" if line.kind == "key" else f"team {line.name!r}"
    head = (
        f"The {period} budget of {whose} (${line.budget.dollars:g}) "
        f"has ${max(line.budget.dollars - spent, 0.0):.4f} left"
    )
    if minimum is None:
        return f"{head}: it is spent. Ask the server's operator to raise it."
    return (
        f"{head}, and this request costs at least ${minimum:.4f}. Send a shorter prompt, "
        "use a cheaper model, or ask the server's operator to raise the budget."
    )


def parse_teams(
    catalog: Catalog, entries: object, at: tuple[str | int, ...]
) -> dict[str, tuple[Budget, ...]]:
    """``plugins.serve.teams``: each team's ``budget``, one or a list, checked."""
    if not isinstance(entries, Mapping):
        raise catalog.error("plugins.serve.teams must map team names to {budget: ...}", at)
    teams: dict[str, tuple[Budget, ...]] = {}
    for name, entry in entries.items():
        where = (*at, name)
        label = f"plugins.serve.teams.{name}"
        if not isinstance(name, str) or not name.strip():
            raise catalog.error("plugins.serve.teams: a team's name must be a string", at)
        if not isinstance(entry, Mapping) or set(entry) - {"budget"}:
            raise catalog.error(f"{label} takes one setting, budget (like 500/month)", where)
        try:
            teams[name] = parse_budgets(entry.get("budget", []))
        except ValueError as error:
            raise catalog.error(f"{label}: {error}", (*where, "budget")) from None
    return teams
