"""relay_core.sampling: the settings a model refuses in some mode are dropped, once
warned, and nothing else of the request changes."""

from __future__ import annotations

import logging

import pytest

from relay_core import GenerationConfig, Request, UnsupportedSetting
from relay_core.providers import BASIC_SETTINGS
from relay_core.sampling import SamplingLimits, honoured, within_limits

LIMITS = SamplingLimits(
    reason="thinking is on",
    ranges={"temperature": (1.0, 1.0), "top_p": (0.95, 1.0), "seed": None},
    kwargs=frozenset({"top_k"}),
)


def _request(model: str, **config: object) -> Request:
    return Request.from_prompt(
        "Hi",
        model=model,
        config=GenerationConfig(max_tokens=10, **config),  # type: ignore[arg-type]
        provider_kwargs={"top_k": 3, "metadata": {"a": 1}},
    )


def test_refused_settings_are_dropped_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="relay")
    request = _request("sampling-core-a", temperature=0.2, top_p=0.99, seed=4)
    kept = within_limits(request, LIMITS, provider="acme")
    assert kept.config == GenerationConfig(max_tokens=10, top_p=0.99)
    assert kept.provider_kwargs == {"metadata": {"a": 1}}
    assert kept.messages == request.messages
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.name == "relay.sampling"
    for word in ("acme", "sampling-core-a", "temperature", "seed", "top_k", "thinking is on"):
        assert word in record.getMessage()
    assert "top_p" not in record.getMessage()
    within_limits(request, LIMITS, provider="acme")
    assert len(caplog.records) == 1


def test_accepted_settings_and_no_limits_leave_the_request_as_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="relay")
    request = Request.from_prompt("Hi", model="m", config=GenerationConfig(temperature=1.0))
    assert within_limits(request, LIMITS, provider="acme") is request
    refused = _request("m", temperature=0.0)
    assert within_limits(refused, None, provider="acme") is refused
    assert caplog.records == []


def test_limits_name_only_generation_settings() -> None:
    with pytest.raises(ValueError, match="top_n"):
        SamplingLimits(reason="x", ranges={"top_n": None})


# ---------------------------------------------------------------------------- honoured


def test_a_setting_the_provider_lacks_is_refused_naming_what_it_takes() -> None:
    request = Request.from_prompt("hi", model="m", config=GenerationConfig(top_k=5))
    with pytest.raises(UnsupportedSetting) as caught:
        honoured(request, BASIC_SETTINGS, provider="acme")
    assert caught.value.setting == "top_k"
    assert "acme/m does not support the 'top_k' setting" in str(caught.value)
    assert "(it takes max_tokens, seed, stop, temperature, top_p)" in str(caught.value)


def test_a_seed_the_provider_lacks_is_left_out_and_the_rest_kept() -> None:
    config = GenerationConfig(seed=7, temperature=0.5, reasoning="low")
    request = Request.from_prompt("hi", model="m", config=config)
    sent = honoured(request, frozenset({"temperature"}), provider="acme")
    assert sent.config == GenerationConfig(temperature=0.5, reasoning="low")


def test_a_request_within_the_settings_is_passed_as_it_is() -> None:
    request = Request.from_prompt("hi", model="m", config=GenerationConfig(seed=7))
    assert honoured(request, BASIC_SETTINGS, provider="acme") is request


def test_neutral_values_are_left_out_where_the_setting_is_lacking() -> None:
    # What OpenAI-style clients send unasked asks for what every provider does anyway.
    neutral = GenerationConfig(frequency_penalty=0, presence_penalty=0.0, logprobs=False)
    request = Request.from_prompt("hi", model="m", config=neutral)
    assert honoured(request, BASIC_SETTINGS, provider="acme").config == GenerationConfig()
    penalised = Request.from_prompt("hi", model="m", config=GenerationConfig(presence_penalty=0.5))
    with pytest.raises(UnsupportedSetting, match="'presence_penalty'"):
        honoured(penalised, BASIC_SETTINGS, provider="acme")
