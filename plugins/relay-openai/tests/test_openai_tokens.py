"""Exact token counts for OpenAI models with tiktoken, on encodings the tests build (a
real encoding's file is a download, and tests never reach the network)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
import tiktoken

from relay_core import Hub, Message, Request, Tool, ToolResultPart
from relay_openai import tokens

Make = Callable[..., Hub]


def byte_encoding(name: str) -> tiktoken.Encoding:
    """An encoding of one token per byte: counts a test can work out by hand."""
    return tiktoken.Encoding(
        name=name,
        pat_str=r"\S+|\s+",
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={"<|endoftext|>": 256},
    )


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No encoding held, and tiktoken's download fails as it does on a machine offline."""

    def no_network(name: str) -> tiktoken.Encoding:
        raise ConnectionError(f"no network to fetch {name}")

    monkeypatch.setattr(tokens, "_encodings", {})
    monkeypatch.setattr(tiktoken, "get_encoding", no_network)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1-2025-04-14", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("ft:gpt-4o:acme::abc", "o200k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("llama-3.3-70b", None),
    ],
)
def test_the_encoding_follows_the_model_family(model: str, encoding: str | None) -> None:
    assert tokens.encoding_for(model) == encoding


def test_a_chat_counts_the_text_and_openais_framing() -> None:
    request = Request(
        messages=[Message.user("hello"), Message.assistant("hi"), Message.user("<|endoftext|>")],
        system="be brief",
    )
    # 3 priming the answer; per message 3 + the role's tokens + the text's (one a byte
    # here); a special token's text counts as text.
    expected = 3 + (3 + 6 + 8) + (3 + 4 + 5) + (3 + 9 + 2) + (3 + 4 + 13)
    assert tokens.chat_tokens(request, byte_encoding("o200k_base")) == expected


def test_a_tool_result_counts_as_its_text() -> None:
    request = Request(messages=[Message("tool", [ToolResultPart("call_1", '{"t": 21}')])])
    assert tokens.chat_tokens(request, byte_encoding("o200k_base")) == 3 + 3 + 4 + 9


def test_what_the_formula_does_not_cover_is_left_to_the_estimate() -> None:
    encoding = byte_encoding("o200k_base")
    with_tools = Request(messages=[Message.user("hi")], tools=[Tool("lookup")])
    assert tokens.chat_tokens(with_tools, encoding) is None


def test_the_hub_counts_exactly_with_a_registered_encoding(make_hub: Make) -> None:
    tokens.register_encoding(byte_encoding("o200k_base"))
    count = make_hub().count_tokens("openai/gpt-4o", "hello")
    assert (count.tokens, count.exact, count.method) == (3 + 3 + 4 + 5, True, "tokenizer")
    assert (count.provider, count.model) == ("openai", "gpt-4o")


def test_an_encoding_tiktoken_cannot_download_falls_back_to_the_estimate(
    make_hub: Make,
) -> None:
    count = make_hub().count_tokens("openai/gpt-4o", "hello")
    assert (count.exact, count.method) == (False, "estimate")
    assert "tiktoken cannot load o200k_base (ConnectionError" in count.reason
    assert "TIKTOKEN_CACHE_DIR" in count.reason


def test_without_tiktoken_the_estimate_says_what_to_install(
    make_hub: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # import tiktoken raises
    count = make_hub().count_tokens("openai/gpt-4.1", "hello")
    assert count.exact is False
    assert "pip install 'relay-openai[tokens]'" in count.reason


def test_a_model_of_no_known_family_is_estimated(make_hub: Make) -> None:
    count = make_hub().count_tokens("openai/my-own-model", "hello")
    assert count.exact is False
    assert "no known OpenAI family" in count.reason


def test_an_encoding_once_loaded_is_kept_and_counts_without_io(
    make_hub: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []

    def fetch(name: str) -> tiktoken.Encoding:
        loads.append(name)
        return byte_encoding(name)

    monkeypatch.setattr(tiktoken, "get_encoding", fetch)
    hub = make_hub()
    assert hub.count_tokens("openai/gpt-4-turbo", "hello").exact is True
    assert hub.count_tokens("openai/gpt-4-turbo", "hello again").exact is True
    assert loads == ["cl100k_base"]
    # What a guardrail (a sync hook) gets: the count, with no I/O.
    handle = hub.get("openai/gpt-4-turbo")
    concrete = handle.prepare(Request(messages=[Message.user("hello")]))
    assert handle.count_locally(concrete).exact is True
