"""Routing: which alias answers a call, in which order the others are tried, and why.

A :class:`Router` looks at a request and the candidates (what Relay knows of each alias:
capabilities, price, context window, tags, whether its circuit is open) and returns a
:class:`Route`: the aliases to try in order and the reason. The hub tries them in that
order, moving on after a retryable or unavailable error (never after a bad request), and
records the decision in ``response.metadata["route"]``.

Groups in the catalog are routers built from their strategy (:func:`router_for`);
any object with a ``route`` method is one too, for ``hub.chat_routed(router, ...)``.

The scoring that orders candidates for a task and a budget (:func:`rank`) is the one
``relay models recommend`` prints. Relay has no quality benchmark of its own: "best"
takes the list price as the proxy for capability (it is how providers tier their own
models), and a model whose catalog ``tags`` name the task is preferred for it.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, Protocol, runtime_checkable

from attrs import field, frozen

from relay_core.capabilities import TASKS, Task, required_capabilities
from relay_core.config import GroupConfig, RouteRule
from relay_core.pricing import ModelPrice, _names
from relay_core.tokens import estimate_tokens
from relay_core.types import CostSource, Request

__all__ = [
    "TASKS",
    "Budget",
    "Candidate",
    "Route",
    "Router",
    "RoutingContext",
    "Task",
    "estimate_prompt_tokens",
    "rank",
    "router_for",
]

# The name routing first gave the estimate, kept for plugins that import it from here.
estimate_prompt_tokens = estimate_tokens

Budget = Literal["cheap", "balanced", "best"]


@frozen(kw_only=True)
class Candidate:
    """What a router knows about one alias.

    ``capabilities`` are the names of :class:`relay_core.Capability` the alias can serve
    (its adapter's, narrowed by what a pricing source says of the model), ``price`` is
    what a call is billed at (pricing profile applied) or ``None`` when unknown,
    ``available`` is False while its circuit breaker is open.
    """

    alias: str
    target: str | None = None
    capabilities: frozenset[str] = field(default=frozenset(), converter=_names)
    price: ModelPrice | None = None
    price_tier: CostSource = "unknown"
    context_window: int | None = None
    tags: tuple[str, ...] = ()
    available: bool = True

    def blended_price(self) -> float | None:
        """Price per million tokens for a typical mix of three input tokens per output
        token; ``None`` when unknown."""
        if self.price is None:
            return None
        return 0.75 * self.price.input + 0.25 * self.price.output


class RoutingContext:
    """What the hub tells a router about one call: ``request``, and, worked out on first
    use (a fallback group never pays for them), ``candidates`` (what Relay knows of each
    alias the router may choose), ``needs`` (the capabilities the request uses: ``chat``
    always, ``tools``, ``vision``...; ``embeddings`` alone for an embedding call, whose
    inputs ``request`` holds as one user message each) and ``prompt_tokens`` (an
    estimate of its input)."""

    def __init__(
        self,
        request: Request,
        aliases: Sequence[str],
        describe: Callable[[str], Candidate],
        *,
        needs: frozenset[str] | None = None,
    ) -> None:
        self.request = request
        self.aliases = tuple(aliases)
        self._describe = describe
        if needs is not None:
            self.__dict__["needs"] = needs  # what the cached property would work out

    @functools.cached_property
    def candidates(self) -> tuple[Candidate, ...]:
        return tuple(self._describe(alias) for alias in self.aliases)

    @functools.cached_property
    def needs(self) -> frozenset[str]:
        return frozenset(str(c) for c in required_capabilities(self.request))

    @functools.cached_property
    def prompt_tokens(self) -> int:
        return estimate_tokens(self.request)

    def candidate(self, alias: str) -> Candidate:
        """The :class:`Candidate` of ``alias``; a ``KeyError`` when it is not one of
        :attr:`aliases`."""
        for candidate in self.candidates:
            if candidate.alias == alias:
                return candidate
        raise KeyError(alias)


@frozen(kw_only=True)
class Route:
    """A router's decision: try ``order`` in turn; ``reason`` says why this order."""

    order: tuple[str, ...]
    reason: str
    strategy: str = "custom"
    skipped: tuple[tuple[str, str], ...] = ()
    """Candidates left out, each with why (``("vision-less", "lacks vision")``)."""


@runtime_checkable
class Router(Protocol):
    """Anything that picks the aliases for a call: the extension point of routing.

    ``route`` must be quick and must not do I/O (it runs on every call); it may return
    any aliases the catalog knows, not only ``context.candidates``.
    """

    def route(self, request: Request, context: RoutingContext) -> Route:
        """The aliases to try for ``request``, best first, and the reason."""


# ---------------------------------------------------------------------------- scoring


# How much a tenfold price difference weighs against one point of task fit.
_PRICE_WEIGHT: dict[str, float] = {"cheap": -1.0, "balanced": -0.3, "best": 1.0}


def _fit(candidate: Candidate, task: Task, task_name: str | None) -> tuple[float, list[str]]:
    score, why = 0.0, []
    for capability in sorted(task.prefers):
        if capability in candidate.capabilities:
            score += 1.0
            why.append(f"has {capability}")
    if task.min_context is not None:
        window = candidate.context_window
        if window is None:
            score += 0.5
        elif window >= task.min_context:
            score += 1.0
            why.append(f"{window:,}-token context")
        else:
            why.append(f"context {window:,} < {task.min_context:,}")
    if task_name is not None and task_name in candidate.tags:
        score += 2.0
        why.append(f"tagged {task_name}")
    return score, why


def rank(
    candidates: Iterable[Candidate],
    *,
    task: str | None = None,
    budget: Budget = "balanced",
    needs: Iterable[str] = (),
) -> list[tuple[Candidate, float, str]]:
    """The candidates able to serve ``needs`` (and the task's own needs), best first,
    each with its score and a short explanation. Unknown prices rank after known ones."""
    profile = TASKS[task] if task is not None else Task()
    required = frozenset(needs) | profile.needs
    ranked: list[tuple[tuple[float, float, str], Candidate, float, str]] = []
    for candidate in candidates:
        if not required <= candidate.capabilities:
            continue
        score, why = _fit(candidate, profile, task)
        blended = candidate.blended_price()
        if blended is not None:
            score += _PRICE_WEIGHT[budget] * math.log10(max(blended, 0.01))
            why.append(f"{blended:.2f}/M blended ({candidate.price_tier})")
        else:
            why.append("price unknown")
        known = 0.0 if blended is not None else 1.0
        ranked.append(((known, -score, candidate.alias), candidate, score, ", ".join(why)))
    ranked.sort(key=lambda entry: entry[0])
    return [(candidate, score, why) for _, candidate, score, why in ranked]


# ---------------------------------------------------------------------------- routers


def _capable(
    members: Sequence[str], context: RoutingContext
) -> tuple[list[str], list[tuple[str, str]]]:
    capable, skipped = [], []
    for member in members:
        missing = sorted(context.needs - context.candidate(member).capabilities)
        if missing:
            skipped.append((member, f"lacks {', '.join(missing)}"))
        else:
            capable.append(member)
    return capable, skipped


class FallbackRouter:
    """The members in the order written."""

    strategy = "fallback"

    def __init__(self, members: Sequence[str]) -> None:
        self.members = tuple(members)

    def route(self, request: Request, context: RoutingContext) -> Route:
        return Route(order=self.members, reason="first member", strategy=self.strategy)


class RoundRobinRouter:
    """Each call starts one member further along; the rest follow as fallbacks."""

    strategy = "round_robin"

    def __init__(self, members: Sequence[str]) -> None:
        self.members = tuple(members)
        self._turn = itertools.count()

    def route(self, request: Request, context: RoutingContext) -> Route:
        start = next(self._turn) % len(self.members)
        order = self.members[start:] + self.members[:start]
        return Route(order=order, reason="next in rotation", strategy=self.strategy)


class WeightedRouter:
    """The first member drawn at random in proportion to its weight (default 1); the
    others follow, heaviest first."""

    strategy = "weighted"

    def __init__(
        self,
        members: Sequence[str],
        weights: dict[str, float],
        rng: random.Random | None = None,
    ) -> None:
        self.members = tuple(members)
        self.weights = [weights.get(member, 1.0) for member in self.members]
        self.rng = rng or random.Random()

    def route(self, request: Request, context: RoutingContext) -> Route:
        first = self.rng.choices(range(len(self.members)), weights=self.weights)[0]
        rest = sorted(
            (i for i in range(len(self.members)) if i != first),
            key=lambda i: (-self.weights[i], i),
        )
        share = self.weights[first] / sum(self.weights)
        return Route(
            order=tuple(self.members[i] for i in (first, *rest)),
            reason=f"drawn by weight ({share:.0%} of calls)",
            strategy=self.strategy,
        )


class LowestCostRouter:
    """Cheapest first for this request: its estimated input tokens at the input price
    plus ``max_tokens`` (or 256) at the output price. Unknown prices go last."""

    strategy = "lowest_cost"

    def __init__(self, members: Sequence[str]) -> None:
        self.members = tuple(members)

    def route(self, request: Request, context: RoutingContext) -> Route:
        output = request.config.max_tokens or 256

        def estimate(member: str) -> float:
            price = context.candidate(member).price
            if price is None:
                return math.inf
            return (context.prompt_tokens * price.input + output * price.output) / 1e6

        costs = {member: estimate(member) for member in self.members}
        order = sorted(self.members, key=lambda member: costs[member])
        cheapest = costs[order[0]]
        reason = (
            f"cheapest: about {cheapest:.6f} for this request"
            if math.isfinite(cheapest)
            else "no member has a known price; in the order written"
        )
        return Route(order=tuple(order), reason=reason, strategy=self.strategy)


class RuleRouter:
    """The members of the first rule whose conditions hold, then the other members able
    to serve the request, ranked for the group's task and budget."""

    strategy = "rules"

    def __init__(
        self,
        members: Sequence[str],
        rules: Sequence[RouteRule],
        *,
        budget: Budget = "balanced",
        task: str | None = None,
    ) -> None:
        self.members = tuple(members)
        self.rules = tuple(rules)
        self.budget = budget
        self.task = task

    def route(self, request: Request, context: RoutingContext) -> Route:
        capable, skipped = _capable(self.members, context)
        ranked = [
            candidate.alias
            for candidate, _, _ in rank(
                (context.candidate(m) for m in capable), task=self.task, budget=self.budget
            )
        ]
        # rank() leaves out members lacking what the group's task needs; they can still
        # serve the request, so they come last rather than not at all.
        ranked += [member for member in capable if member not in ranked]
        for index, rule in enumerate(self.rules):
            if self._matches(rule, request, context):
                first = [member for member in rule.use if member in capable]
                order = first + [member for member in ranked if member not in first]
                return Route(
                    order=tuple(order),
                    reason=f"rule {index} matched ({self._describe(rule)})",
                    strategy=self.strategy,
                    skipped=tuple(skipped),
                )
        task = f"task {self.task}, " if self.task else ""
        return Route(
            order=tuple(ranked),
            reason=f"no rule matched; ranked for {task}budget {self.budget}",
            strategy=self.strategy,
            skipped=tuple(skipped),
        )

    @staticmethod
    def _matches(rule: RouteRule, request: Request, context: RoutingContext) -> bool:
        when = rule.when
        if when.min_prompt_tokens is not None and context.prompt_tokens < when.min_prompt_tokens:
            return False
        if when.max_prompt_tokens is not None and context.prompt_tokens > when.max_prompt_tokens:
            return False
        return set(when.needs) <= context.needs and set(when.tags) <= set(request.tags)

    @staticmethod
    def _describe(rule: RouteRule) -> str:
        when, said = rule.when, []
        if when.min_prompt_tokens is not None:
            said.append(f"prompt >= {when.min_prompt_tokens} tokens")
        if when.max_prompt_tokens is not None:
            said.append(f"prompt <= {when.max_prompt_tokens} tokens")
        if when.needs:
            said.append(f"needs {', '.join(when.needs)}")
        if when.tags:
            said.append(f"tags {', '.join(when.tags)}")
        return "; ".join(said) or "always"


def router_for(group: GroupConfig) -> Router:
    """The built-in router of a catalog group's strategy."""
    if group.strategy == "round_robin":
        return RoundRobinRouter(group.members)
    if group.strategy == "weighted":
        return WeightedRouter(group.members, group.weights)
    if group.strategy == "lowest_cost":
        return LowestCostRouter(group.members)
    if group.strategy == "rules":
        return RuleRouter(group.members, group.rules, budget=group.budget, task=group.task)
    return FallbackRouter(group.members)
