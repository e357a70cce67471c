"""Generation settings each provider declares: refused before the call where a provider
cannot honour them, a seed left out, and ``stop_sequences`` accepted for ``stop``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from relay_core import (
    ConfigError,
    GenerationConfig,
    Hub,
    InvalidRequestError,
    Provider,
    Request,
    Response,
    UnsupportedSetting,
)
from relay_core.plugin import Capability, hookimpl


class SamplerProvider(Provider):
    """Takes top_k and the penalties, and no seed."""

    name = "sampler"
    capabilities = frozenset({Capability.CHAT})
    generation_settings = frozenset(
        {"temperature", "max_tokens", "top_k", "frequency_penalty", "presence_penalty"}
    )
    received: ClassVar[list[Request]] = []

    async def chat(self, request: Request) -> Response:
        self.received.append(request)
        return Response(content="sampled", model=request.model)


class SamplerPlugin:
    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        register("sampler", SamplerProvider)


@pytest.fixture
def hub(make_hub: Callable[..., Hub]) -> Hub:
    SamplerProvider.received = []
    made = make_hub(
        """
models:
  plain: scripted/m1
  sampling: sampler/s1
groups:
  either:
    strategy: fallback
    members: [plain, sampling]
"""
    )
    made.plugins.register(SamplerPlugin(), name="sampler")
    return made


def test_a_setting_the_provider_cannot_honour_is_refused_before_the_call(
    hub: Hub, scripted: Any
) -> None:
    with pytest.raises(UnsupportedSetting, match="scripted/m1 does not support the 'top_k'"):
        hub.chat("plain", "hi", top_k=40)
    assert scripted.received == []


def test_the_provider_that_declares_it_receives_it(hub: Hub) -> None:
    hub.chat("sampling", "hi", top_k=40, frequency_penalty=0.5)
    assert SamplerProvider.received[-1].config == GenerationConfig(top_k=40, frequency_penalty=0.5)


def test_a_group_skips_a_member_that_cannot_honour_a_setting(hub: Hub, scripted: Any) -> None:
    answer = hub.chat("either", "hi", top_k=40)
    assert answer.text == "sampled"
    assert scripted.received == []


def test_a_seed_is_left_out_for_a_provider_without_seeds(hub: Hub) -> None:
    hub.chat("sampling", "hi", seed=7, temperature=0.5)
    assert SamplerProvider.received[-1].config == GenerationConfig(temperature=0.5)


def test_stop_sequences_is_stop_in_calls_and_catalog_params(
    make_hub: Callable[..., Hub], scripted: Any
) -> None:
    hub = make_hub(
        """
models:
  fast:
    target: scripted/m1
    params: {stop_sequences: [END]}
"""
    )
    hub.chat("fast", "hi")
    assert scripted.received[-1].config.stop == ("END",)
    hub.chat("fast", "hi", stop_sequences="STOP")
    assert scripted.received[-1].config.stop == ("STOP",)


def test_a_setting_and_its_alias_together_are_refused(make_hub: Callable[..., Hub]) -> None:
    with pytest.raises(InvalidRequestError, match="give 'stop' or its alias 'stop_sequences'"):
        make_hub("models: {fast: scripted/m1}").chat("fast", "hi", stop="A", stop_sequences="B")
    with pytest.raises(ConfigError, match=r"relay.yaml:4:.*'stop_sequences'"):
        make_hub(
            """
models:
  fast:
    params: {stop: [A], stop_sequences: [B]}
    target: scripted/m1
"""
        )


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"top_k": 0}, "top_k must be an integer >= 1"),
        ({"frequency_penalty": 2.5}, "frequency_penalty must be a number from -2 to 2"),
        ({"presence_penalty": "high"}, "presence_penalty must be a number"),
        ({"logprobs": 1}, "logprobs must be true or false"),
        ({"top_logprobs": 21}, "top_logprobs must be an integer from 0 to 20"),
    ],
)
def test_values_out_of_range_are_refused_where_written(
    setting: dict[str, Any], message: str
) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        GenerationConfig(**setting)
