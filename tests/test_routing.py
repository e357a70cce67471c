"""Routing: group strategies, the rule-based router, custom routers through
chat_routed, deadlines, and what the response records about the decision."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from relay_core import (
    Capability,
    ConfigError,
    ImagePart,
    InvalidRequestError,
    Message,
    ModelPrice,
    Provider,
    ProviderUnavailable,
    Request,
    Response,
    Route,
    RoutingContext,
    TextPart,
    Timeout,
    Tool,
    hookimpl,
    parse_catalog,
)
from relay_core.routing import TASKS, Candidate, WeightedRouter, rank

CATALOG = """\
providers:
  scripted: {max_retries: 0}
models:
  small:
    target: scripted/small
    pricing: {input: 0.1, output: 0.4}
  big:
    target: scripted/big
    pricing: {input: 3.0, output: 15.0}
    tags: [code]
  mid:
    target: scripted/mid
    pricing: {input: 1.0, output: 4.0}
  plain:
    target: chatonly/plain
    pricing: {input: 0.01, output: 0.01}
  unpriced: scripted/unpriced
groups:
  cheapest: {strategy: lowest_cost, members: [big, unpriced, mid, small]}
  spread: {strategy: weighted, members: [small, big], weights: {small: 3, big: 1}}
  smart:
    strategy: rules
    members: [small, big, mid, plain]
    budget: cheap
    rules:
      - {when: {tags: [premium]}, use: [big]}
      - {when: {needs: [tools]}, use: [mid]}
      - {when: {max_prompt_tokens: 50}, use: [plain]}
"""

WEATHER = Tool(name="weather", description="Weather", parameters={"type": "object"})


def test_lowest_cost_tries_the_cheapest_first_and_unknown_prices_last(
    make_hub: Any, scripted: Any
) -> None:
    hub = make_hub(CATALOG)
    response = hub.chat("cheapest", "hi")
    route = response.metadata["route"]
    assert (route["member"], route["strategy"]) == ("small", "lowest_cost")
    assert route["reason"].startswith("cheapest: about")
    scripted.script["small"] = [ProviderUnavailable("down", provider="scripted")]
    again = hub.chat("cheapest", "hi").metadata["route"]
    assert again["member"] == "mid"
    assert again["failed"] == [{"member": "small", "error": "ProviderUnavailable"}]
    order = [r.model for r in scripted.received]
    assert order == ["small", "small", "mid"]


def test_lowest_cost_counts_the_profile_discount(make_hub: Any) -> None:
    catalog = (
        CATALOG.replace(
            "    pricing: {input: 1.0, output: 4.0}\n",
            "    pricing: {input: 1.0, output: 4.0}\n    pricing_profile: deal\n",
        )
        + "pricing_profiles:\n  deal: {discount: 0.99}\n"
    )
    assert make_hub(catalog).chat("cheapest", "hi").metadata["route"]["member"] == "mid"


def test_weighted_draws_in_proportion_to_the_weights() -> None:
    router = WeightedRouter(["a", "b"], {"a": 3.0, "b": 1.0}, rng=random.Random(7))
    request = Request.from_prompt("x")
    context = RoutingContext(request, ["a", "b"], lambda alias: Candidate(alias=alias))
    firsts = Counter(router.route(request, context).order[0] for _ in range(4000))
    assert firsts["a"] / 4000 == pytest.approx(0.75, abs=0.03)
    assert router.route(request, context).reason.startswith("drawn by weight")


def test_weighted_group_answers_from_a_member_and_falls_back(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    scripted.script["small"] = [ProviderUnavailable("down", provider="scripted")] * 50
    members = [hub.chat("spread", "x").metadata["route"]["member"] for _ in range(20)]
    # Whatever was drawn first, every call is answered by a member that still works.
    assert set(members) == {"big"}


def test_rules_route_by_tags_capabilities_and_prompt_length(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    premium = hub.chat("smart", "hello", tags=["premium"]).metadata["route"]
    assert (premium["member"], premium["reason"]) == ("big", "rule 0 matched (tags premium)")
    tools = hub.chat("smart", "weather in Paris?", tools=[WEATHER]).metadata["route"]
    assert tools["member"] == "mid"
    assert tools["reason"] == "rule 1 matched (needs tools)"
    # chatonly cannot serve tools: left out, and the response says why.
    assert tools["skipped"] == [{"member": "plain", "reason": "lacks tools"}]
    short = hub.chat("smart", "hi").metadata["route"]
    assert (short["member"], short["reason"]) == ("plain", "rule 2 matched (prompt <= 50 tokens)")


def test_rules_without_a_match_rank_by_budget(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    long_prompt = "word " * 400
    route = hub.chat("smart", long_prompt).metadata["route"]
    assert route["reason"] == "no rule matched; ranked for budget cheap"
    assert route["member"] == "plain"  # the cheapest capable member


def test_rules_fall_back_along_the_ranking(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    scripted.script["mid"] = [ProviderUnavailable("down", provider="scripted")]
    route = hub.chat("smart", "weather?", tools=[WEATHER]).metadata["route"]
    # After the rule's member: the cheapest capable one.
    assert route["member"] == "small"
    assert route["failed"] == [{"member": "mid", "error": "ProviderUnavailable"}]
    assert "answered after 1 member(s) failed" in route["reason"]


def test_a_request_no_member_can_serve_names_the_missing_capability(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    image = Message("user", [TextPart("What is this?"), ImagePart(url="https://e.com/cat.png")])
    with pytest.raises(Exception, match="lacks vision") as caught:
        hub.chat("smart", image)
    assert type(caught.value).__name__ == "UnsupportedCapability"


class ByTopic:
    """A custom router: requests tagged 'legal' go to the big model, the rest to the
    cheapest model that can serve them."""

    def route(self, request: Request, context: RoutingContext) -> Route:
        if "legal" in request.tags:
            return Route(order=("big", "mid"), reason="legal questions need the big model")
        ranked = rank(context.candidates, budget="cheap", needs=context.needs)
        return Route(order=tuple(c.alias for c, _, _ in ranked), reason="cheapest able")


def test_chat_routed_uses_a_custom_router_and_records_why(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    legal = hub.chat_routed(ByTopic(), "Is this contract valid?", tags=["legal"])
    assert legal.metadata["alias"] == "big"
    assert legal.metadata["route"] == {
        "group": "ByTopic",
        "strategy": "custom",
        "member": "big",
        "reason": "legal questions need the big model",
        "failed": [],
        "skipped": [],
    }
    scripted.script["big"] = [ProviderUnavailable("down", provider="scripted")]
    assert hub.chat_routed(ByTopic(), "x", tags=["legal"]).metadata["alias"] == "mid"
    cheap = hub.chat_routed(ByTopic(), "weather?", tools=[WEATHER])
    assert cheap.metadata["route"]["member"] == "small"  # plain is cheaper but lacks tools


async def test_achat_routed_sees_the_candidates(make_hub: Any) -> None:
    seen: list[RoutingContext] = []

    class Spy:
        def route(self, request: Request, context: RoutingContext) -> Route:
            seen.append(context)
            return Route(order=("mid",), reason="spy")

    hub = make_hub(CATALOG)
    await hub.achat_routed(Spy(), "x", aliases=["mid", "plain"])
    context = seen[0]
    assert [c.alias for c in context.candidates] == ["mid", "plain"]
    mid = context.candidate("mid")
    assert mid.price == ModelPrice(input=1.0, output=4.0)
    assert mid.price_tier == "user_override"
    assert {"chat", "tools"} <= mid.capabilities
    assert context.candidate("plain").capabilities == {"chat"}
    assert context.needs == {"chat"}


def test_a_bad_request_is_not_sent_to_the_next_member(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    scripted.script["small"] = [InvalidRequestError("bad", provider="scripted")]
    with pytest.raises(InvalidRequestError):
        hub.chat("cheapest", "x")
    assert [r.model for r in scripted.received] == ["small"]


class Slow(Provider):
    name = "slow"
    capabilities = frozenset({Capability.CHAT})

    async def chat(self, request: Request) -> Response:
        await asyncio.sleep(10)
        return Response(content="late")


class SlowPlugin:
    @hookimpl
    def relay_register_providers(self, register: Any) -> None:
        register("slow", Slow)


def test_a_deadline_bounds_the_whole_call(make_hub: Any) -> None:
    hub = make_hub("models:\n  slow: slow/m\n")
    hub.plugins.register(SlowPlugin())
    with pytest.raises(Timeout, match=r"deadline of 0\.05s passed"):
        hub.chat("slow", "x", deadline=0.05)


def test_a_spent_deadline_stops_a_group_from_trying_more_members(
    make_hub: Any, scripted: Any
) -> None:
    hub = make_hub(
        "models:\n  slow: slow/m\n  fast: scripted/one\n"
        "groups:\n  g: {strategy: fallback, members: [slow, fast]}\n"
        "defaults:\n  deadline: 0.05\n"
    )
    hub.plugins.register(SlowPlugin())
    with pytest.raises(Timeout, match="deadline"):
        hub.chat("g", "x")
    assert scripted.received == []


def test_the_ranking_explains_itself() -> None:
    candidates = [
        Candidate(alias="a", capabilities={"chat", "tools"}, price=ModelPrice(input=5, output=20)),
        Candidate(alias="b", capabilities={"chat"}, price=ModelPrice(input=0.1, output=0.2)),
        Candidate(alias="c", capabilities={"chat", "tools"}, tags=("code",)),
    ]
    cheap = rank(candidates, budget="cheap")
    assert [c.alias for c, _, _ in cheap] == ["b", "a", "c"]  # unknown price last
    best = rank(candidates, budget="best", task="code")
    assert next(c.alias for c, _, _ in best) == "a"
    assert "has tools" in best[0][2]
    assert "blended (unknown)" in best[0][2]
    assert [c.alias for c, _, _ in rank(candidates, needs={"tools"})] == ["a", "c"]
    assert "agents" in TASKS
    assert rank(candidates, task="agents")[-1][0].alias == "c"


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ("{strategy: weighted, members: [a], weights: {b: 1}}", "weights names 'b'"),
        ("{strategy: weighted, members: [a], weights: {a: 0}}", "must be above 0"),
        ("{strategy: fallback, members: [a], weights: {a: 1}}", "apply to strategy 'weighted'"),
        ("{strategy: rules, members: [a], rules: [{use: [b]}]}", "uses 'b', which is not"),
        (
            "{strategy: rules, members: [a], rules: [{use: [a], when: {needs: [telepathy]}}]}",
            "unknown capability 'telepathy'",
        ),
        ("{strategy: rules, members: [a], task: knitting}", "unknown task 'knitting'"),
        ("{strategy: random, members: [a]}", "is not one of"),
    ],
)
def test_bad_groups_are_config_errors(group: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_catalog(f"models:\n  a: mock/a\ngroups:\n  g: {group}\n")
    assert caught.value.line == 4
