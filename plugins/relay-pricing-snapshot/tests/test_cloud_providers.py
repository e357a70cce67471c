"""The cloud providers' rows (Bedrock, Vertex, Cohere) pricing real calls: the usage a
call reports, quoted through both registered sources the way the hub quotes it, billed
to the cent; Bedrock's inference profiles; and the models left out staying unknown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import relay_pricing_snapshot
from relay_core import Hub, Usage, hookimpl
from relay_core.pricing import PricingSource, cost_of, quote
from relay_core.testing import hub_for
from relay_pricing_snapshot._openrouter import OpenRouterSource
from relay_pricing_snapshot._snapshot import SNAPSHOT_NAME, SnapshotSource


@pytest.fixture
def sources() -> list[PricingSource]:
    # What the plugin registers; with no OpenRouter cache (each test has an empty cache
    # directory) the snapshot is the source that answers.
    return [OpenRouterSource(), SnapshotSource()]


def _billed(provider: str, model: str, usage: Usage, sources: list[PricingSource]) -> Any:
    quoted = quote(provider, model, sources)
    assert (quoted.tier, quoted.priced_by) == ("snapshot", SNAPSHOT_NAME)
    return quoted, cost_of(usage, quoted)


def test_a_bedrock_claude_call_through_a_us_profile(sources: list[PricingSource]) -> None:
    # Converse reports cache reads and writes apart; relay-bedrock folds them into input.
    usage = Usage(
        input_tokens=10_000,
        output_tokens=2_000,
        cached_input_tokens=4_000,
        cache_write_tokens=1_000,
    )
    quoted, cost = _billed(
        "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", usage, sources
    )
    # 5k fresh at 3.30, 4k read at 0.33, 1k written at 4.125, 2k out at 16.50 (us-east-1,
    # geographic profile: 10% above the global price).
    expected = (5_000 * 3.3 + 4_000 * 0.33 + 1_000 * 4.125 + 2_000 * 16.5) / 1e6
    assert cost.amount == pytest.approx(expected)
    assert (cost.source, cost.as_of) == ("snapshot", "2026-11-23")
    assert quoted.price.source == "https://aws.amazon.com/bedrock/pricing/"
    batch = cost_of(usage, quoted, batch=True)
    assert batch.amount == pytest.approx(expected / 2)
    assert batch.batch_discount_applied


def test_a_bedrock_global_profile_costs_the_global_price(sources: list[PricingSource]) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000)
    _, cost = _billed("bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", usage, sources)
    assert cost.amount == pytest.approx(3.0 + 1.5)


def test_a_bedrock_nova_call(sources: list[PricingSource]) -> None:
    usage = Usage(input_tokens=200_000, output_tokens=50_000)
    _, cost = _billed("bedrock", "amazon.nova-lite-v1:0", usage, sources)
    assert cost.amount == pytest.approx(0.2 * 0.06 + 0.05 * 0.24)
    _, profiled = _billed("bedrock", "us.amazon.nova-lite-v1:0", usage, sources)
    assert profiled.amount == cost.amount


def test_a_vertex_gemini_call_with_thinking_and_a_cache_hit(sources: list[PricingSource]) -> None:
    # Gemini bills thinking tokens as output, and they are inside output_tokens.
    usage = Usage(
        input_tokens=100_000,
        output_tokens=8_000,
        cached_input_tokens=60_000,
        reasoning_tokens=6_000,
    )
    quoted, cost = _billed("vertex", "gemini-2.5-flash", usage, sources)
    assert cost.amount == pytest.approx((40_000 * 0.3 + 60_000 * 0.03 + 8_000 * 2.5) / 1e6)
    assert quoted.price.source == "https://cloud.google.com/vertex-ai/generative-ai/pricing"
    # relay-vertex takes the publisher-qualified name too.
    assert quote("vertex", "google/gemini-2.5-flash", sources).price == quoted.price
    assert cost_of(usage, quoted, batch=True).amount == pytest.approx(cost.amount / 2)


def test_gemini_through_vertexs_openai_endpoint_has_no_batch_price(
    sources: list[PricingSource],
) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=1_000)
    quoted, cost = _billed("vertex-openai", "google/gemini-2.5-pro", usage, sources)
    assert cost.amount == pytest.approx((10_000 * 1.25 + 1_000 * 10.0) / 1e6)
    batch = cost_of(usage, quoted, batch=True)
    assert batch.amount == cost.amount
    assert not batch.batch_discount_applied


def test_a_cohere_call(sources: list[PricingSource]) -> None:
    usage = Usage(input_tokens=4_000_000, output_tokens=1_000_000)
    quoted, cost = _billed("cohere", "command-r7b-12-2024", usage, sources)
    assert cost.amount == pytest.approx(4 * 0.0375 + 0.15)
    assert quoted.price.source == "https://cohere.com/pricing"
    _, r = _billed("cohere", "command-r-08-2024", usage, sources)
    assert r.amount == pytest.approx(4 * 0.15 + 0.6)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        # No price confirmed on the provider's page (see the README).
        ("cohere", "command-a-03-2025"),
        ("cohere", "command-a-reasoning-08-2025"),
        ("bedrock", "mistral.mistral-large-2407-v1:0"),
        ("bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
        ("vertex-openai", "meta/llama-3.3-70b-instruct-maas"),
        ("vertex", "gemini-2.0-flash"),
        # A geography the row does not list, and a deployment name.
        ("bedrock", "eu.amazon.nova-pro-v1:0"),
        ("azure", "my-gpt-4o-deployment"),
        # Names that are right elsewhere are not right here.
        ("vertex", "gemini-2.5-flash-preview"),
        ("cohere", "command-r"),
    ],
)
def test_a_model_left_out_stays_unknown(
    sources: list[PricingSource], provider: str, model: str
) -> None:
    quoted = quote(provider, model, sources)
    assert (quoted.tier, quoted.price, quoted.priced_by) == ("unknown", None, None)
    cost = cost_of(Usage(input_tokens=100, output_tokens=100), quoted)
    assert (cost.source, cost.amount) == ("unknown", None)


# -- through a hub ------------------------------------------------------------------------


class CloudProviders:
    """relay-mock's adapter under the cloud providers' names: the hub prices what the
    catalog names, whatever answers."""

    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        for name in ("bedrock", "vertex", "cohere"):
            register(name, "relay_mock._provider:MockProvider")


CATALOG = """
providers:
  bedrock-claude: {plugin: bedrock}
models:
  haiku: {target: bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0}
  batch-claude: {target: bedrock-claude/anthropic.claude-haiku-4-5-20251001-v1:0}
  flash: {target: vertex/gemini-2.5-flash-lite}
  command: {target: cohere/command-r-08-2024}
  command-a: {target: cohere/command-a-03-2025}
"""


@pytest.fixture
def hub() -> Iterator[Hub]:
    with hub_for(CATALOG, relay_pricing_snapshot, CloudProviders()) as made:
        yield made


@pytest.mark.parametrize(
    ("alias", "prices"),
    [
        ("haiku", (1.1, 5.5)),
        ("batch-claude", (1.1, 5.5)),
        ("flash", (0.1, 0.4)),
        ("command", (0.15, 0.6)),
    ],
)
def test_the_hub_prices_each_cloud_provider(
    hub: Hub, alias: str, prices: tuple[float, float]
) -> None:
    answer = hub.chat(alias, "one two three four five")
    assert (answer.cost.source, answer.cost.priced_by) == ("snapshot", SNAPSHOT_NAME)
    input_price, output_price = prices
    usage = answer.usage
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert answer.cost.amount == pytest.approx(
        (usage.input_tokens * input_price + usage.output_tokens * output_price) / 1e6
    )


def test_the_hub_leaves_an_unconfirmed_model_unknown(hub: Hub) -> None:
    answer = hub.chat("command-a", "hello")
    assert (answer.cost.source, answer.cost.amount) == ("unknown", None)
