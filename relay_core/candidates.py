"""What routers know of each name of a hub's catalog: capabilities, price, context
window, tags, and whether its circuit is open (:class:`~relay_core.routing.Candidate`)."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from relay_core.adapters import Adapters
from relay_core.pipeline import GroupTarget, ModelTarget
from relay_core.pipeline.layers import Breakers
from relay_core.pricing import ListingSource, ModelInfo, by_tier
from relay_core.routing import Candidate

__all__ = ["Candidates"]


class Candidates:
    """The candidates of one hub, each described once; ``resolve`` gives the handle of a
    name, ``breakers`` say whose circuit is open now."""

    def __init__(
        self,
        adapters: Adapters,
        resolve: Callable[[str], ModelTarget | GroupTarget],
        breakers: Breakers,
    ) -> None:
        self.adapters = adapters
        self.resolve = resolve
        self.breakers = breakers
        self._described: dict[str, Candidate] = {}
        self._listings: dict[tuple[int, str], dict[str, ModelInfo]] = {}

    def of(self, alias: str) -> Candidate:
        target = self.resolve(alias)
        known = self._described.get(alias)
        if known is None:
            known = self._described[alias] = self._describe(target)
        if target.router is None:
            breaker = self.breakers.of(target)
            if breaker is not None and breaker.state == "open":
                return attrs.evolve(known, available=False)
        return known

    def _describe(self, target: ModelTarget | GroupTarget) -> Candidate:
        if target.router is not None:
            members = [self.of(member) for member in target.members]
            return Candidate(
                alias=target.alias,
                capabilities=frozenset[str]().union(*(m.capabilities for m in members)),
            )
        plugins = self.adapters.plugins
        entry = plugins.provider(self.adapters.catalog.plugin_of(target.provider_name))
        capabilities = {str(c) for c in entry.load().capabilities}
        info = self.model_info(target.provider_name, target.model)
        if info is not None and info.capabilities:
            capabilities &= set(info.capabilities) | {"chat", "stream", "batch"}
        quoted = target.quote()
        return Candidate(
            alias=target.alias,
            target=target.config.target,
            capabilities=frozenset(capabilities),
            price=quoted.effective(),
            price_tier=quoted.tier,
            context_window=info.context_window if info is not None else None,
            tags=target.config.tags,
        )

    def model_info(self, provider: str, model: str) -> ModelInfo | None:
        """What the installed pricing sources that list models know of ``provider/model``
        (the best tier first), or ``None``."""
        name = self.adapters.pricing_name(provider)
        sources = [
            s for s in self.adapters.plugins.pricing_sources() if isinstance(s, ListingSource)
        ]
        for source in by_tier(sources):
            index = self._listings.get((id(source), name))
            if index is None:
                index = {info.model: info for info in source.models(name)}
                self._listings[(id(source), name)] = index
            if model in index:
                return index[model]
        return None
