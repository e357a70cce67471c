"""max_input_tokens counts with the estimate by default, and with the provider's own
tokenizer under ``token_count: exact`` (never a count endpoint: a network call before
every call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import pytest

from relay_core import (
    Capability,
    ConfigError,
    GuardrailViolation,
    Hub,
    Provider,
    Request,
    Response,
    hookimpl,
)
from relay_core.testing import hub_for
from relay_guardrails import Guardrails

MakeHub = Callable[..., Hub]


class Tokenizing(Provider):
    """Counts in process (as relay-openai does with tiktoken): every word is 100 tokens."""

    name = "tokenizing"
    capabilities = frozenset({Capability.CHAT, Capability.TOKEN_COUNT})
    endpoint_calls: ClassVar[list[Request]] = []

    def count_tokens_locally(self, request: Request) -> int | None:
        return 100 * sum(len(m.text.split()) for m in request.messages)

    async def count_tokens(self, request: Request) -> int:
        self.endpoint_calls.append(request)
        return 1

    async def chat(self, request: Request) -> Response:
        return Response(content="ok", model=request.model)


class Plugin:
    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        register("tokenizing", Tokenizing)


CATALOG = """
models:
  local: tokenizing/t-1
  echo: mock/echo
plugins:
  guardrails:
    max_input_tokens: 150
"""


def hub_with(make_hub: MakeHub, extra: str = "") -> Hub:
    return make_hub(CATALOG + extra, Plugin())


def test_the_estimate_is_the_default(make_hub: MakeHub) -> None:
    # Three short words: about 6 tokens estimated, though the tokenizer says 300.
    assert hub_with(make_hub).chat("local", "one two three").text == "ok"


def test_exact_counts_with_the_providers_tokenizer(make_hub: MakeHub) -> None:
    hub = hub_with(make_hub, "    token_count: exact\n")
    assert hub.chat("local", "one").text == "ok"
    with pytest.raises(GuardrailViolation, match="the input is 300 tokens, more than") as caught:
        hub.chat("local", "one two three")
    assert caught.value.rule == "max_input_tokens"
    assert Tokenizing.endpoint_calls == []  # never the network before a call


def test_exact_falls_back_to_the_estimate_where_there_is_no_tokenizer(
    make_hub: MakeHub,
) -> None:
    hub = hub_with(make_hub, "    token_count: exact\n")
    with pytest.raises(GuardrailViolation, match="the input is about 2"):
        hub.chat("echo", "x" * 1000)


def test_an_unknown_counting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="token_count must be estimate or exact"):
        Guardrails.from_mapping({"token_count": "precise"})


def test_settings_in_code_take_it_too() -> None:
    guardrails = Guardrails.from_mapping({"max_input_tokens": 150, "token_count": "exact"})
    with hub_for(CATALOG.split("plugins:")[0], Plugin()) as hub:
        hub.plugins.register(guardrails)
        with pytest.raises(GuardrailViolation, match="300 tokens"):
            hub.chat("local", "one two three")
