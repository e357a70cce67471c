"""What the server does about money on each request: check the caller's budgets before
the upstream call (holding the request's least cost on them meanwhile), then record what
the answer cost in the ledger, the budget counters and the metrics, once per answered
request, and give the hold back.

A stream the client cut is recorded too: at the usage the upstream reported when it
had, else at an estimate (the prompt's estimated tokens in, four characters a token of
what was streamed out), marked ``usage_source: estimated``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from relay_core.plugin import (
    EmbeddingRequest,
    EmbeddingResponse,
    Response,
    Usage,
    estimate_tokens,
    get_logger,
)
from relay_serve._budgets import Accountant, Hold, estimated_cost
from relay_serve._ledger import SpendRow
from relay_serve._tally import StreamTally

if TYPE_CHECKING:
    from relay_core import Hub
    from relay_core.plugin import Request
    from relay_serve._ledger import Ledger
    from relay_serve._metrics import Metrics
    from relay_serve._settings import ApiKey, Budget
    from relay_serve._state import SharedState

__all__ = ["Spending"]

_log = get_logger("relay.serve.spend")


class Spending:
    """Budgets and spend for one server (see the module's text). ``ledger`` None: the
    counters alone, and nothing durable."""

    def __init__(
        self,
        hub: Hub,
        state: SharedState,
        ledger: Ledger | None,
        metrics: Metrics,
        teams: Mapping[str, Sequence[Budget]] = {},
    ) -> None:
        self.ledger = ledger
        self.metrics = metrics
        self.accountant = Accountant(hub, state, ledger, teams)
        # Counter updates under way: awaited on shutdown, never by a request.
        self._counting: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.ledger is not None:
            await self.ledger.start()

    async def aclose(self) -> None:
        if self._counting:
            await asyncio.wait(self._counting)
        if self.ledger is not None:
            await self.ledger.aclose()

    async def check(self, key: ApiKey | None, request: Request | EmbeddingRequest) -> Hold | None:
        """Raise :class:`~relay_serve._budgets.OverBudget` when ``request`` would pass a
        budget of ``key`` or its team; else what it holds on them (None: nothing), to
        hand to :meth:`answered` or :meth:`cut`, or to :meth:`release` if it ends
        without an answer."""
        return await self.accountant.check(key, request)

    def release(self, hold: Hold | None) -> None:
        """Give back what a request that got no answer held (in the background)."""
        if hold is not None:
            self._background(self._unhold(hold))

    def answered(
        self,
        request_id: str,
        label: str,
        key: ApiKey | None,
        response: Response | EmbeddingResponse,
        hold: Hold | None = None,
    ) -> None:
        """Record a complete answer at the cost Relay computed for it, and give back
        ``hold`` once that cost is counted."""
        cost = response.cost
        self.record(
            SpendRow(
                request_id=request_id,
                key=None if key is None else key.name,
                team=None if key is None else key.team,
                alias=label,
                target=f"{response.provider}/{response.model}",
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
                cached_tokens=response.usage.cached_input_tokens,
                dollars=cost.amount,
                cost_source=cost.source,
                priced_by=cost.priced_by,
            ),
            key,
            hold,
        )

    def cut(
        self,
        request_id: str,
        label: str,
        key: ApiKey | None,
        request: Request,
        tally: StreamTally,
        hold: Hold | None = None,
    ) -> None:
        """Record a stream the client left before its end, and give back ``hold``."""
        usage = tally.usage
        source: Any = "reported"
        if usage is None or not usage.input_tokens:
            usage = Usage(input_tokens=estimate_tokens(request), output_tokens=-(-tally.chars // 4))
            source = "estimated"
        quoted = self.accountant.quote(request.model or "")
        cost = estimated_cost(quoted, usage)
        self.record(
            SpendRow(
                request_id=request_id,
                key=None if key is None else key.name,
                team=None if key is None else key.team,
                alias=label,
                target=self.accountant.target(request.model or ""),
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_input_tokens,
                dollars=cost.amount,
                cost_source=cost.source,
                priced_by=cost.priced_by,
                usage_source=source,
                cut=True,
            ),
            key,
            hold,
        )

    def record(self, row: SpendRow, key: ApiKey | None, hold: Hold | None = None) -> None:
        """Keep ``row`` in the ledger and the metrics now (nothing here waits, so a
        cancelled stream's last moments record it too), and add it to the budget
        counters in the background, once per row id, then give back ``hold``."""
        # The ledger first: a counter seeded from it meanwhile then holds this row too.
        if self.ledger is not None:
            try:
                self.ledger.record(row)
            except OSError as error:  # a full disk must not fail an answered request
                _log.error("serve.spend_unrecorded", key=row.key, detail=str(error))
        if row.dollars:
            self.metrics.spent(row.key or "", row.alias, row.dollars)
        if row.dollars and self.accountant.budgeted(key):  # a task costs ~10 us: not for all
            self._background(self._count(row, key, hold))
        elif hold is not None:
            self._background(self._unhold(hold))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._counting.add(task)
        task.add_done_callback(self._counting.discard)

    async def _count(self, row: SpendRow, key: ApiKey | None, hold: Hold | None) -> None:
        try:
            await self.accountant.count(row.id, key, row.dollars, hold)
        except Exception as error:  # the ledger has the row; a later seed counts it
            _log.error("serve.spend_uncounted", key=row.key, detail=str(error))

    async def _unhold(self, hold: Hold) -> None:
        try:
            await self.accountant.unhold(hold)
        except Exception as error:  # the hold lapses by itself
            _log.error("serve.hold_unreleased", detail=str(error))
