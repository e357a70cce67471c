"""Budgets in dollars per key and per team, checked before the upstream call.

A budget is ``dollars`` per calendar ``day`` or ``month`` (UTC) or in ``total``. What a
key and its team have spent in each budget's current period lives in the shared state
(:mod:`relay_serve._state`: one counter per budget and period, so every worker and
replica sees one figure); a counter the state does not hold (first use, expired, a
restarted Redis) is seeded from the ledger, which holds every answered request.

A request is refused when what was spent, plus the least this request can cost (its
prompt's estimated tokens at the model's input price), would pass a budget. That least
cost is then held on the budget's counter until the answer's cost is counted (or the
request fails), in the same atomic step as the check: requests in flight count against
the budget too, so a client sending a thousand at once gets as many through as their
least costs fit, not a thousand. They can still pass it by what their answers cost
beyond that least, which nobody knows before the answer.
"""

from __future__ import annotations

import calendar
import uuid
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

__all__ = ["Accountant", "Hold", "OverBudget", "parse_teams", "period_start"]

# How long a request's "already counted" mark is kept: longer than any retry of one
# report, far shorter than the life of the counters.
_ONCE_TTL = 86_400.0
# A period's counter outlives the period by this much, then lapses (nobody reads it).
_GRACE = 3_600.0
# A request's hold on its budgets lapses after this long, should its worker die before
# giving it back: longer than any answer takes.
_HOLD_TTL = 3_600.0


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


@frozen
class Hold:
    """A request's least cost, held on its budgets' counters (``scopes``) until its
    cost is counted, by ``holder``: the server's own id for the request, since a
    client's X-Request-ID may repeat."""

    holder: str
    scopes: tuple[str, ...]


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

    async def check(self, key: ApiKey | None, request: Request | EmbeddingRequest) -> Hold | None:
        """Raise :class:`OverBudget` when ``request`` would pass a budget of ``key`` or
        of its team, counting what requests in flight hold; else hold its least cost on
        each budget's counter. The hold (None: nothing held) goes to :meth:`count` with
        the request's cost, or to :meth:`unhold` if it ends without one."""
        if not self.budgeted(key):
            return None
        lines = self._lines(key, self._clock())
        totals = await self.state.totals([line.scope for line in lines])
        spent: list[float] = []
        minimum: float | None = None
        for line, total in zip(lines, totals, strict=True):
            if total is None:
                total = await self._seed(line)
            spent.append(total)
            if total >= line.budget.dollars:
                raise OverBudget(_refusal(line, total))
            if minimum is None:
                minimum = self.minimum_cost(request)
            if total + minimum > line.budget.dollars:
                raise OverBudget(_refusal(line, total, minimum))
        if not minimum:  # unpriced: nothing to hold
            return None
        hold = Hold(uuid.uuid4().hex, tuple(line.scope for line in lines))
        limits = {line.scope: line.budget.dollars for line in lines}
        refused = await self.state.reserve(limits, hold.holder, minimum, _HOLD_TTL)
        if refused is not None:
            position, held = refused
            raise OverBudget(_refusal(lines[position], spent[position], minimum, held))
        return hold

    async def unhold(self, hold: Hold) -> None:
        """Give back what :meth:`check` held."""
        await self.state.unreserve(hold.scopes, hold.holder)

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

    async def count(
        self, once: str, key: ApiKey | None, dollars: float | None, hold: Hold | None = None
    ) -> None:
        """Add ``dollars`` to every budget counter of ``key`` and its team, once per
        ``once`` (the ledger row's id), whichever worker reports it; then give back the
        request's ``hold``. Counted before given back: for a moment the request counts
        twice, never not at all."""
        if dollars:
            lines = self._lines(key, self._clock())
            if lines:
                amounts = {line.scope: dollars for line in lines}
                await self.state.add_once(once, amounts, _ONCE_TTL)
        if hold is not None:
            await self.unhold(hold)


def estimated_cost(quoted: PriceQuote | None, usage: Usage) -> Cost:
    """What ``usage`` costs at ``quoted`` (unknown without a price)."""
    if quoted is None:
        return Cost.unknown()
    return cost_of(usage, quoted)


def _refusal(line: _Line, spent: float, minimum: float | None = None, held: float = 0.0) -> str:
    period = {"day": "daily", "month": "monthly", "total": "total"}[line.budget.period]
    whose = f"key {line.name!r}" if line.kind == "key" else f"team {line.name!r}"
    left = max(line.budget.dollars - spent - held, 0.0)
    head = f"The {period} budget of {whose} (${line.budget.dollars:g}) has ${left:.4f} left"
    if held:
        head += f" after the requests in flight (${held:.4f} held)"
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
