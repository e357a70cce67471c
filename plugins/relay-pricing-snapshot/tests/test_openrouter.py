"""The OpenRouter source: the wire format read exactly (per-token strings to
per-million, unknown never 0), the name mapping, the cache (TTL, corrupt, missing,
atomic), and refresh's errors."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from relay_core import MalformedResponse, ModelPrice, ProviderError, ProviderUnavailable
from relay_core.errors import RateLimitError
from relay_core.pricing import ListingSource, RefreshableSource
from relay_pricing_snapshot._convert import per_million, relay_targets, to_model_info
from relay_pricing_snapshot._openrouter import DEFAULT_URL, OpenRouterSource, cache_dir


class Clock:
    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def refreshed(cassette: Any, clock: Clock) -> OpenRouterSource:
    """A source whose cache was just filled from the recorded model list."""
    source = OpenRouterSource(clock=clock)
    with cassette("openrouter_models"):
        assert source.refresh() == f"fetched 12 models from {DEFAULT_URL}"
    return source


# -- the wire format ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_token", "expected"),
    [
        ("0.000003", 3.0),
        ("0.0000025", 2.5),
        ("0.00000015", 0.15),
        ("0.000000075", 0.075),
        ("0.0000000833", 0.0833),
        ("0", 0.0),
        (0, 0.0),
        ("0.000002", 2.0),
    ],
)
def test_per_token_strings_become_exact_per_million_prices(per_token: Any, expected: float) -> None:
    assert per_million(per_token) == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize("unknown", ["-1", "-0.5", None, "", "n/a", "NaN", True, [], {}])
def test_an_unknown_price_is_none_never_zero(unknown: Any) -> None:
    assert per_million(unknown) is None


def test_anthropic_version_dots_become_dashes_and_other_prefixes_map_as_they_are() -> None:
    assert relay_targets("anthropic/claude-sonnet-4.5") == [
        ("openrouter", "anthropic/claude-sonnet-4.5"),
        ("anthropic", "claude-sonnet-4-5"),
    ]
    assert relay_targets("anthropic/claude-3.7-sonnet")[1] == ("anthropic", "claude-3-7-sonnet")
    assert relay_targets("openai/gpt-4.1")[1] == ("openai", "gpt-4.1")  # dots stay for OpenAI
    assert relay_targets("google/gemini-2.5-pro")[1] == ("gemini", "gemini-2.5-pro")
    assert relay_targets("mistralai/mistral-medium-3.1")[1] == ("mistral", "mistral-medium-3.1")


def test_other_authors_and_variants_are_openrouter_models_only() -> None:
    assert relay_targets("meta-llama/llama-3.3-70b-instruct") == [
        ("openrouter", "meta-llama/llama-3.3-70b-instruct")
    ]
    assert relay_targets("anthropic/claude-3.7-sonnet:thinking") == [
        ("openrouter", "anthropic/claude-3.7-sonnet:thinking")
    ]
    assert relay_targets("openrouter/auto") == [("openrouter", "openrouter/auto")]


def test_a_zero_sub_price_of_a_paid_model_means_not_priced_separately() -> None:
    entry = {
        "id": "openai/o3",
        "pricing": {
            "prompt": "0.000002",
            "completion": "0.000008",
            "internal_reasoning": "0",
            "input_cache_read": "0",
        },
    }
    openrouter, openai = to_model_info(entry, as_of="2026-11-23")
    assert openrouter.price is not None
    assert openrouter.price.reasoning is None  # billed as output, not free
    assert openrouter.price.cached_input is None  # billed as input, not free
    assert openrouter.price.batch_discount == 0.0
    assert openai.price is not None
    assert openai.price.batch_discount == 0.5


# -- through a refresh from the cassette --------------------------------------------------


def test_refresh_writes_a_cache_the_prices_come_from(
    refreshed: OpenRouterSource, cache_dir: Path, clock: Clock
) -> None:
    document = json.loads((cache_dir / "openrouter-models.json").read_text())
    assert document["fetched_at"] == clock.now
    assert document["url"] == DEFAULT_URL
    assert len(document["data"]) == 12
    assert refreshed.price("openai", "gpt-4.1") == ModelPrice(
        input=2.0,
        output=8.0,
        cached_input=0.5,
        batch_discount=0.5,
        source=DEFAULT_URL,
        as_of="2026-11-18",
    )
    assert [p.name for p in (cache_dir).iterdir()] == ["openrouter-models.json"]


def test_cache_and_reasoning_prices_are_carried(refreshed: OpenRouterSource) -> None:
    flash = refreshed.price("gemini", "gemini-2.5-flash")
    assert flash is not None
    assert (flash.input, flash.output) == pytest.approx((0.30, 2.50))
    assert flash.cached_input == pytest.approx(0.03)
    assert flash.cache_write == pytest.approx(0.0833)
    assert flash.reasoning == pytest.approx(2.50)
    sonnet = refreshed.price("anthropic", "claude-sonnet-4-5")
    assert sonnet is not None
    assert (sonnet.input, sonnet.output, sonnet.cached_input, sonnet.cache_write) == (
        pytest.approx(3.0),
        pytest.approx(15.0),
        pytest.approx(0.3),
        pytest.approx(3.75),
    )


def test_openrouter_gets_every_id_exactly(refreshed: OpenRouterSource) -> None:
    listed = {info.model for info in refreshed.models("openrouter")}
    assert len(listed) == 12
    assert "anthropic/claude-sonnet-4.5" in listed
    assert refreshed.price("openrouter", "anthropic/claude-sonnet-4.5") is not None
    assert refreshed.price("openrouter", "anthropic/claude-sonnet-4-5") is None
    assert refreshed.price("anthropic", "claude-sonnet-4.5") is None


def test_free_models_cost_zero_and_unknown_prices_are_none(refreshed: OpenRouterSource) -> None:
    free = refreshed.price("openrouter", "meta-llama/llama-3.3-70b-instruct:free")
    assert free is not None
    assert (free.input, free.output) == (0.0, 0.0)
    assert refreshed.price("openrouter", "openrouter/auto") is None  # "-1"
    auto = next(i for i in refreshed.models("openrouter") if i.model == "openrouter/auto")
    assert auto.price is None
    assert auto.context_window == 2_000_000


def test_models_carry_limits_and_capabilities(refreshed: OpenRouterSource) -> None:
    infos = {i.target: i for i in refreshed.models()}
    sonnet = infos["anthropic/claude-sonnet-4-5"]
    assert sonnet.context_window == 1_000_000
    assert sonnet.max_output_tokens == 64_000
    assert sonnet.capabilities == {"chat", "stream", "tools", "thinking", "vision", "documents"}
    llama = infos["openrouter/meta-llama/llama-3.3-70b-instruct"]
    assert llama.capabilities == {"chat", "stream", "tools", "structured_output"}
    assert {i.provider for i in refreshed.models()} == {
        "openrouter",
        "openai",
        "anthropic",
        "gemini",
        "mistral",
    }


def test_the_source_satisfies_the_listing_and_refreshable_protocols() -> None:
    source = OpenRouterSource()
    assert isinstance(source, ListingSource)
    assert isinstance(source, RefreshableSource)
    assert (source.name, source.tier) == ("OpenRouter models API", "live_api")


# -- the cache ----------------------------------------------------------------------------


def test_a_stale_cache_is_not_used_and_says_so_once(
    refreshed: OpenRouterSource, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    clock.now += 86_400 + 1
    with caplog.at_level(logging.WARNING, logger="relay.pricing"):
        assert refreshed.price("openai", "gpt-4.1") is None
        assert refreshed.price("openai", "gpt-4o-mini") is None
        assert list(refreshed.models()) == []
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "relay pricing refresh" in warnings[0]


def test_the_ttl_comes_from_the_environment(
    refreshed: OpenRouterSource, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.now += 600
    assert refreshed.price("openai", "gpt-4.1") is not None
    monkeypatch.setenv("RELAY_PRICING_TTL", "300")
    assert refreshed.price("openai", "gpt-4.1") is None
    monkeypatch.setenv("RELAY_PRICING_TTL", "3600")
    assert refreshed.price("openai", "gpt-4.1") is not None


def test_a_bad_ttl_falls_back_to_a_day_with_a_warning(
    refreshed: OpenRouterSource,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("RELAY_PRICING_TTL", "soon")
    clock.now += 3600
    with caplog.at_level(logging.WARNING, logger="relay.pricing"):
        assert refreshed.price("openai", "gpt-4.1") is not None
    assert "RELAY_PRICING_TTL='soon'" in caplog.text


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"format": 1}',
        b'{"format": 1, "fetched_at": "yesterday", "data": []}',
        b'{"format": 2, "fetched_at": 1, "data": []}',
        b"\xff\xfe",
    ],
)
def test_a_corrupt_cache_is_a_miss_with_a_warning(
    content: bytes, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir.mkdir()
    (cache_dir / "openrouter-models.json").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="relay.pricing"):
        assert OpenRouterSource().price("openai", "gpt-4.1") is None
        assert list(OpenRouterSource().models()) == []
    assert len(caplog.records) == 1
    assert "unreadable" in caplog.text


def test_a_missing_cache_is_a_quiet_miss(caplog: pytest.LogCaptureFixture) -> None:
    # Live prices are opt-in: never having refreshed is said once, below warning level.
    with caplog.at_level(logging.INFO, logger="relay.pricing"):
        assert OpenRouterSource().price("openai", "gpt-4.1") is None
        assert OpenRouterSource().price("openai", "gpt-4o") is None
    said = [r for r in caplog.records if "no OpenRouter price cache" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO]


def test_a_rewritten_cache_is_read_again(
    refreshed: OpenRouterSource, cache_dir: Path, clock: Clock
) -> None:
    path = cache_dir / "openrouter-models.json"
    document = json.loads(path.read_text())
    document["data"] = [
        {"id": "openai/gpt-4.1", "pricing": {"prompt": "0.0000018", "completion": "0.0000072"}}
    ]
    path.write_text(json.dumps(document))
    os.utime(path, ns=(1, 1))  # a new stamp even on a coarse clock
    clock.now += 1.0  # the source looks at the file again after a second
    price = refreshed.price("openai", "gpt-4.1")
    assert price is not None
    assert price.input == pytest.approx(1.8)
    assert refreshed.price("openai", "gpt-4o-mini") is None


def test_prices_come_without_a_look_at_the_file_per_call(
    refreshed: OpenRouterSource, cache_dir: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # price() runs on every call of a hub: a stat each time cost as much as the call's
    # whole pricing did. Within a second the file is not looked at again.
    looks: list[Path] = []
    real_stat = Path.stat

    def counted(self: Path, **kwargs: Any) -> Any:
        if self.name == "openrouter-models.json":
            looks.append(self)
        return real_stat(self, **kwargs)

    monkeypatch.setattr(Path, "stat", counted)
    assert refreshed.price("openai", "gpt-4.1") is not None
    for _ in range(100):
        refreshed.price("openai", "gpt-4.1")
    assert len(looks) <= 1
    (cache_dir / "openrouter-models.json").unlink()
    clock.now += 0.5
    assert refreshed.price("openai", "gpt-4.1") is not None  # still within the second
    clock.now += 0.5
    assert refreshed.price("openai", "gpt-4.1") is None  # looked again: gone


def test_a_refresh_is_seen_at_once_by_its_source(
    refreshed: OpenRouterSource, cassette: Any, cache_dir: Path
) -> None:
    assert refreshed.price("openai", "gpt-4.1") is not None
    with cassette("openrouter_models"):
        refreshed.refresh()
    # Without a new look after its own refresh, the source would still hold the old file.
    (cache_dir / "openrouter-models.json").write_text("{}")
    assert refreshed.price("openai", "gpt-4.1") is None


def test_the_cache_directory_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RELAY_PRICING_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "relay"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "relay"


# -- failed refreshes ---------------------------------------------------------------------


def _cache_bytes(cache_dir: Path) -> bytes:
    return (cache_dir / "openrouter-models.json").read_bytes()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (503, b'{"error": {"message": "overloaded"}}', ProviderUnavailable),
        (500, b"oops", ProviderUnavailable),
        (429, b'{"error": {"message": "slow down"}}', RateLimitError),
        (404, b'{"error": {"message": "no such route"}}', ProviderError),
        (200, b"<html>maintenance</html>", MalformedResponse),
        (200, b'{"models": []}', MalformedResponse),
        (200, b'{"data": []}', MalformedResponse),
        (200, b'{"data": [{"name": "no id"}]}', MalformedResponse),
        (200, b'{"data": [{"id": "a/b", "pricing": "free"}]}', MalformedResponse),
    ],
)
def test_a_failed_refresh_raises_and_keeps_the_old_cache(
    refreshed: OpenRouterSource,
    cache_dir: Path,
    answers: Any,
    status: int,
    body: bytes,
    error: type[Exception],
) -> None:
    before = _cache_bytes(cache_dir)
    answers.status, answers.body = status, body
    with pytest.raises(error) as raised:
        refreshed.refresh()
    assert answers.requests == 1
    assert isinstance(raised.value, ProviderError)
    assert raised.value.provider == "openrouter"
    assert answers.url in str(raised.value)
    assert _cache_bytes(cache_dir) == before
    assert refreshed.price("openai", "gpt-4.1") is not None
    assert [p.name for p in cache_dir.iterdir()] == ["openrouter-models.json"]


def test_an_unreachable_server_is_provider_unavailable(
    refreshed: OpenRouterSource, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("RELAY_OPENROUTER_MODELS_URL", f"http://127.0.0.1:{port}/api/v1/models")
    before = _cache_bytes(cache_dir)
    with pytest.raises(ProviderUnavailable, match="cannot reach"):
        refreshed.refresh()
    assert _cache_bytes(cache_dir) == before


def test_refresh_from_another_url(answers: Any, cache_dir: Path) -> None:
    answers.body = json.dumps(
        {
            "data": [
                {"id": "acme/small", "pricing": {"prompt": "0.0000001", "completion": "0.0000004"}}
            ]
        }
    ).encode()
    source = OpenRouterSource()
    assert source.refresh() == f"fetched 1 models from {answers.url}"
    price = source.price("openrouter", "acme/small")
    assert price is not None
    assert (price.input, price.output) == pytest.approx((0.1, 0.4))
