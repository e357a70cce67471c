"""The shipped snapshot: every row valid and sourced, the coverage promised per provider
plugin, exact aliases only, lazy loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay_core import Capability, ModelPrice
from relay_core.pricing import ListingSource, PricingSource
from relay_pricing_snapshot._snapshot import SNAPSHOT_NAME, SnapshotSource, load_rows

NAME, ROWS = load_rows()
CAPABILITIES = {str(c) for c in Capability}

# What the README promises: the models of each provider plugin the snapshot prices.
COVERED = {
    "openai": {
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4o",
        "gpt-4o-mini",
        "o3",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "text-embedding-ada-002",
    },
    "anthropic": {
        "claude-opus-4-5",
        "claude-opus-4-1",
        "claude-opus-4-0",
        "claude-sonnet-4-5",
        "claude-sonnet-4-0",
        "claude-3-7-sonnet-latest",
        "claude-haiku-4-5",
        "claude-3-5-haiku-latest",
    },
    "gemini": {
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-2.0-flash",
        "gemini-embedding-001",
    },
    "mistral": {
        "mistral-large-latest",
        "mistral-medium-latest",
        "mistral-small-latest",
        "codestral-latest",
        "ministral-8b-latest",
        "mistral-embed",
    },
    "deepseek": {"deepseek-chat", "deepseek-reasoner"},
    "groq": {"llama-3.3-70b-versatile", "llama-3.1-8b-instant"},
    "bedrock": {
        "anthropic.claude-opus-4-5-20251101-v1:0",
        "global.anthropic.claude-opus-4-5-20251101-v1:0",
        "anthropic.claude-opus-4-1-20250805-v1:0",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "amazon.nova-pro-v1:0",
        "amazon.nova-lite-v1:0",
        "amazon.nova-micro-v1:0",
        "meta.llama3-3-70b-instruct-v1:0",
    },
    "vertex": {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"},
    "vertex-openai": {
        "google/gemini-2.5-pro",
        "google/gemini-2.5-flash",
        "google/gemini-2.5-flash-lite",
    },
    "cohere": {"command-r-08-2024", "command-r7b-12-2024"},
}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['provider']}/{r['model']}")
def test_every_row_is_a_valid_sourced_price(row: dict[str, object]) -> None:
    price = SnapshotSource().price(str(row["provider"]), str(row["model"]))
    assert isinstance(price, ModelPrice)
    assert str(price.source).startswith("https://")
    assert price.as_of is not None
    assert len(price.as_of) == 10
    assert price.as_of[4] == price.as_of[7] == "-"
    assert price.input > 0
    if price.cached_input is not None:
        assert price.cached_input <= price.input
    capabilities = set(row["capabilities"])  # type: ignore[call-overload]
    assert capabilities <= CAPABILITIES
    if "embeddings" in capabilities:
        # Embedding models bill the input only; they do not chat.
        assert price.output == 0
        assert "chat" not in capabilities
    else:
        assert price.output > 0
        assert {"chat", "stream"} <= capabilities
    for key in ("context_window", "max_output_tokens"):
        assert row[key] is None or (isinstance(row[key], int) and row[key] > 0)  # type: ignore[operator]


def test_the_snapshot_covers_the_provider_plugins_models() -> None:
    listed: dict[str, set[str]] = {}
    for info in SnapshotSource().models():
        listed.setdefault(info.provider, set()).add(info.model)
    assert listed == COVERED


def test_an_embedding_model_is_priced_per_input_token() -> None:
    from relay_core import Usage
    from relay_core.pricing import compute_cost

    price = SnapshotSource().price("openai", "text-embedding-3-small")
    cost = compute_cost(Usage(input_tokens=1_000_000), price, "snapshot")
    assert cost.amount == pytest.approx(0.02)
    half = compute_cost(Usage(input_tokens=1_000_000), price, "snapshot", batch=True)
    assert half.amount == pytest.approx(0.01)


def test_models_lists_one_provider_with_limits_and_capabilities() -> None:
    gemini = {info.model: info for info in SnapshotSource().models("gemini")}
    assert set(gemini) == COVERED["gemini"]
    pro = gemini["gemini-2.5-pro"]
    assert pro.target == "gemini/gemini-2.5-pro"
    assert pro.context_window == 1_048_576
    assert "thinking" in pro.capabilities
    assert pro.price is not None
    assert pro.price.batch_discount == 0.5


def test_the_name_sources_are_known_by_is_the_data_files() -> None:
    assert NAME == SNAPSHOT_NAME == SnapshotSource().name


def test_a_source_satisfies_the_listing_protocol() -> None:
    source = SnapshotSource()
    assert isinstance(source, PricingSource)
    assert isinstance(source, ListingSource)
    assert source.tier == "snapshot"


def test_dated_ids_reach_a_row_only_through_its_aliases() -> None:
    source = SnapshotSource()
    assert source.price("openai", "gpt-4.1-2025-04-14") == source.price("openai", "gpt-4.1")
    assert source.price("anthropic", "claude-sonnet-4-5-20250929") == source.price(
        "anthropic", "claude-sonnet-4-5"
    )
    # Near misses are unknown models, never somebody else's price.
    assert source.price("openai", "gpt-4.1-2099-01-01") is None
    assert source.price("openai", "gpt-4.1-mini-preview") is None
    assert source.price("openai", "GPT-4.1") is None


def test_an_unknown_model_or_provider_has_no_price() -> None:
    source = SnapshotSource()
    assert source.price("openai", "gpt-99") is None
    assert source.price("mock", "echo") is None
    assert source.price("gemini", "gpt-4.1") is None


def test_aliases_are_unique_across_rows() -> None:
    seen: set[tuple[object, object]] = set()
    for row in ROWS:
        profiles = [f"{geo}.{row['model']}" for geo in row.get("inference_profiles", [])]
        for model in (row["model"], *row["aliases"], *profiles):
            assert (row["provider"], model) not in seen
            seen.add((row["provider"], model))


def test_a_bedrock_inference_profile_resolves_to_its_base_row() -> None:
    source = SnapshotSource()
    base = source.price("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert base is not None
    assert (base.input, base.output) == (3.3, 16.5)
    for geography in ("us", "eu", "jp", "au"):
        profile = f"{geography}.anthropic.claude-sonnet-4-5-20250929-v1:0"
        assert source.price("bedrock", profile) is base
    nova = source.price("bedrock", "amazon.nova-pro-v1:0")
    assert nova is not None
    assert source.price("bedrock", "us.amazon.nova-pro-v1:0") is nova


def test_a_global_profile_has_its_own_price_where_bedrock_bills_it_apart() -> None:
    source = SnapshotSource()
    geographic = source.price("bedrock", "us.anthropic.claude-haiku-4-5-20251001-v1:0")
    worldwide = source.price("bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0")
    assert geographic is not None
    assert worldwide is not None
    # Claude 4.5 on Bedrock: geographic and in-region calls cost 10% more than global.
    assert (worldwide.input, worldwide.output, worldwide.cached_input) == (1.0, 5.0, 0.1)
    assert geographic.input == pytest.approx(worldwide.input * 1.1)
    assert geographic.output == pytest.approx(worldwide.output * 1.1)
    # Claude Sonnet 4 predates the split: its global profile is the base row's price.
    sonnet_4 = source.price("bedrock", "anthropic.claude-sonnet-4-20250514-v1:0")
    assert source.price("bedrock", "global.anthropic.claude-sonnet-4-20250514-v1:0") is sonnet_4


def test_a_profile_a_row_does_not_declare_is_unknown() -> None:
    source = SnapshotSource()
    # Bedrock bills a profile at its source region's price: EU Nova costs more than US.
    assert source.price("bedrock", "eu.amazon.nova-pro-v1:0") is None
    assert source.price("bedrock", "apac.anthropic.claude-sonnet-4-5-20250929-v1:0") is None
    assert source.price("bedrock", "global.amazon.nova-pro-v1:0") is None
    assert source.price("bedrock", "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0") is None
    assert source.price("bedrock", "us.us.amazon.nova-pro-v1:0") is None
    assert source.price("bedrock", "us.global.anthropic.claude-haiku-4-5-20251001-v1:0") is None
    # Profiles are Bedrock ids: the same geography means nothing to other providers.
    assert source.price("vertex", "us.gemini-2.5-flash") is None
    assert source.price("bedrock", "anthropic.claude-sonnet-4-5") is None


def test_the_file_is_read_on_first_use_once(tmp_path: Path) -> None:
    data = tmp_path / "prices.json"
    rows = [
        {
            "provider": "acme",
            "model": "m1",
            "input": 1,
            "output": 2,
            "aliases": ["m1-2026"],
            "source": "https://acme.example/pricing",
            "as_of": "2026-11-01",
        },
    ]
    data.write_text(json.dumps({"name": "test", "models": rows}))
    source = SnapshotSource(path=data)
    data.unlink()  # nothing was read when the source was built...
    with pytest.raises(FileNotFoundError):
        source.price("acme", "m1")
    data.write_text(json.dumps({"name": "test", "models": rows}))
    assert source.price("acme", "m1-2026") == ModelPrice(
        input=1.0, output=2.0, source="https://acme.example/pricing", as_of="2026-11-01"
    )
    data.unlink()  # ...and once indexed, it is not read again.
    assert source.price("acme", "m1") is not None


def test_a_bad_row_is_named(tmp_path: Path) -> None:
    data = tmp_path / "prices.json"
    rows = [
        {
            "provider": "acme",
            "model": "m1",
            "input": 1,
            "output": 2,
            "cached_input": -1,
            "source": "https://acme.example",
            "as_of": "2026-11-01",
        }
    ]
    data.write_text(json.dumps({"name": "test", "models": rows}))
    with pytest.raises(ValueError, match=r"prices.json row 1: cached_input must be"):
        SnapshotSource(path=data).price("acme", "m1")


@pytest.mark.parametrize("profiles", ["us", ["us.east"], [""], [7], 7])
def test_a_bad_inference_profile_list_is_named(tmp_path: Path, profiles: object) -> None:
    data = tmp_path / "prices.json"
    row = {
        "provider": "acme",
        "model": "m1",
        "input": 1,
        "output": 2,
        "inference_profiles": profiles,
        "source": "https://acme.example",
        "as_of": "2026-11-01",
    }
    data.write_text(json.dumps({"name": "test", "models": [row]}))
    with pytest.raises(ValueError, match=r"prices.json row 1: inference_profiles must be"):
        SnapshotSource(path=data).price("acme", "m1")


def test_a_profile_colliding_with_another_row_is_named(tmp_path: Path) -> None:
    data = tmp_path / "prices.json"
    common = {"input": 1, "output": 2, "source": "https://acme.example", "as_of": "2026-11-01"}
    rows = [
        {"provider": "acme", "model": "m1", "inference_profiles": ["global"], **common},
        {"provider": "acme", "model": "global.m1", **common},
    ]
    data.write_text(json.dumps({"name": "test", "models": rows}))
    with pytest.raises(ValueError, match=r"row 2: acme/global.m1 is listed twice"):
        SnapshotSource(path=data).price("acme", "m1")


CLAUDE_ROWS = [r for r in ROWS if "claude" in r["model"]]


@pytest.mark.parametrize("row", CLAUDE_ROWS, ids=lambda r: f"{r['provider']}/{r['model']}")
def test_claude_rows_price_cache_writes_and_reads_as_anthropic_bills_them(
    row: dict[str, object],
) -> None:
    # Anthropic (and Bedrock) bill a 5-minute cache write at 1.25 times the input price
    # and a cache read at 0.1 times; a row without them would price caching as input.
    assert row["cache_write"] == pytest.approx(1.25 * float(row["input"]))  # type: ignore[arg-type]
    assert row["cached_input"] == pytest.approx(0.1 * float(row["input"]))  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", ["openai", "gemini", "vertex"])
def test_automatic_caching_providers_have_a_cached_input_price(provider: str) -> None:
    # Embedding models take no prompt to cache.
    rows = [r for r in ROWS if r["provider"] == provider and "chat" in r["capabilities"]]
    assert rows
    for row in rows:
        assert row["cached_input"] is not None, row["model"]
        assert row["cached_input"] < row["input"], row["model"]
