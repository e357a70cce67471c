"""hub.count_tokens: the provider's count where it has one, its tokenizer, else the
core's estimate, flagged as one (and the estimate routing and batches share)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from relay_core import (
    Capability,
    Hub,
    InvalidRequestError,
    Message,
    Provider,
    RateLimitError,
    Request,
    TokenCount,
    Tool,
    UnsupportedCapability,
    estimate_tokens,
    hookimpl,
)
from relay_core.routing import estimate_prompt_tokens
from relay_core.testing import hub_for


class Counting(Provider):
    """Counts through an "endpoint": the request's characters, after scripted failures."""

    name = "counting"
    capabilities = frozenset({Capability.CHAT, Capability.TOKEN_COUNT, Capability.TOOLS})
    failures: list[Exception]
    seen: list[Request]

    async def count_tokens(self, request: Request) -> int:
        self.seen.append(request)
        if self.failures:
            raise self.failures.pop(0)
        return sum(len(m.text) for m in request.messages)


class Tokenizing(Provider):
    """Counts in process, as relay-openai does with tiktoken."""

    name = "tokenizing"
    capabilities = frozenset({Capability.CHAT, Capability.TOKEN_COUNT})

    def count_tokens_locally(self, request: Request) -> int | None:
        return 7

    async def count_tokens(self, request: Request) -> int:
        raise AssertionError("the hub uses the local count first")


class MissingTokenizer(Provider):
    """Declares counting, but its tokenizer (an optional extra) is not installed."""

    name = "missing"
    capabilities = frozenset({Capability.CHAT, Capability.TOKEN_COUNT})

    async def count_tokens(self, request: Request) -> int:
        raise UnsupportedCapability(
            "missing", "token counts without its tokenizer (pip install x[tokens])"
        )


class Inheriting(Tokenizing):
    """Inherits a tokenizer but not the capability (relay-openai-compat's servers)."""

    name = "inheriting"
    capabilities = frozenset({Capability.CHAT})


class ChatOnly(Provider):
    name = "chatonly"
    capabilities = frozenset({Capability.CHAT})


class Plugin:
    def __init__(self) -> None:
        self.failures: list[Exception] = []
        self.seen: list[Request] = []

    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        plugin = self

        class Bound(Counting):
            failures = plugin.failures
            seen = plugin.seen

        register("counting", Bound)
        register("tokenizing", Tokenizing)
        register("missing", MissingTokenizer)
        register("chatonly", ChatOnly)
        register("inheriting", Inheriting)


CATALOG = """
models:
  exact: {target: counting/c-1, params: {temperature: 0.2}}
  local: tokenizing/t-1
  nokit: missing/m-1
  plain: chatonly/p-1
  other: inheriting/llama-3
groups:
  first: {strategy: fallback, members: [plain, exact]}
"""


@pytest.fixture
def plugin() -> Plugin:
    return Plugin()


@pytest.fixture
def hub(plugin: Plugin, waits: list[float]) -> Iterator[Hub]:
    with hub_for(CATALOG, plugin) as made:
        yield made


def test_a_provider_count_is_exact_and_sent_as_the_provider_model(hub: Hub, plugin: Plugin) -> None:
    count = hub.count_tokens("exact", "hello", system="be brief")
    assert count == TokenCount(
        tokens=5, exact=True, method="provider", model="c-1", provider="counting"
    )
    # The adapter sees the request it would for a chat: its own model name, the
    # catalog's params merged in.
    (seen,) = plugin.seen
    assert seen.model == "c-1"
    assert seen.system == "be brief"
    assert seen.config.temperature == 0.2


def test_a_rate_limited_count_is_retried(hub: Hub, plugin: Plugin, waits: list[float]) -> None:
    plugin.failures.append(RateLimitError("slow down", provider="counting", retry_after=2))
    assert hub.count_tokens("exact", "hello").tokens == 5
    assert len(plugin.seen) == 2
    assert waits == [2]


def test_a_tokenizer_count_needs_no_endpoint(hub: Hub) -> None:
    count = hub.get("local").count_tokens("hello")
    assert (count.tokens, count.exact, count.method) == (7, True, "tokenizer")


def test_without_a_count_the_estimate_says_it_is_one(hub: Hub) -> None:
    count = hub.count_tokens("plain", "x" * 400)
    assert count.exact is False
    assert count.method == "estimate"
    assert count.tokens == estimate_tokens(Request(messages=[Message.user("x" * 400)]))
    assert count.reason == "chatonly cannot count tokens"


def test_a_missing_tokenizer_falls_back_to_the_estimate_and_says_what_to_install(
    hub: Hub,
) -> None:
    count = hub.count_tokens("nokit", "hello")
    assert count.exact is False
    assert count.method == "estimate"
    assert "pip install x[tokens]" in count.reason


async def test_async_count_and_a_group_counts_for_its_first_member(hub: Hub) -> None:
    count = await hub.acount_tokens("first", "hello")
    assert count.provider == "chatonly"
    assert count.exact is False


def test_counting_a_request_the_model_cannot_serve_is_refused(hub: Hub) -> None:
    with pytest.raises(UnsupportedCapability, match="tools"):
        hub.count_tokens("plain", "hi", tools=[Tool("lookup")])


def test_an_empty_prompt_is_refused(hub: Hub) -> None:
    with pytest.raises(InvalidRequestError, match="at least one message"):
        hub.count_tokens("exact")


def test_the_estimate_counts_tools_and_is_the_one_routing_uses() -> None:
    bare = Request(messages=[Message.user("hi")])
    tool = Tool("lookup", "finds a customer by id", {"type": "object", "properties": {}})
    with_tool = Request(messages=[Message.user("hi")], tools=[tool])
    assert estimate_tokens(with_tool) > estimate_tokens(bare) + 10
    assert estimate_prompt_tokens is estimate_tokens


def test_a_tokenizer_without_the_capability_is_not_used(hub: Hub) -> None:
    count = hub.count_tokens("other", "hello")
    assert count.method == "estimate"
    handle = hub.get("other")
    concrete = handle.prepare(Request(messages=[Message.user("hello")]))
    assert handle.count_locally(concrete).exact is False
