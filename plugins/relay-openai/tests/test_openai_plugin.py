"""Registration in code, declared capabilities, options, and error classification
(including what OpenAI says differently from the core's defaults)."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core import (
    AuthenticationError,
    Capability,
    ConfigError,
    ContentPolicyError,
    NotFoundError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
)
from relay_core.testing import secret_shown
from relay_openai._adapter import OpenAIProvider
from relay_openai._models import is_reasoning_model

# Declared by the adapters that gain embeddings and exact token counts (issue 22).
NOT_YET: frozenset[Capability] = frozenset()


def test_declared_capabilities_and_settings() -> None:
    assert OpenAIProvider.name == "openai"
    assert OpenAIProvider.capabilities == frozenset(Capability) - NOT_YET - {
        Capability.SERVER_TOOLS
    }
    assert OpenAIProvider.api_key_env == "OPENAI_API_KEY"
    assert OpenAIProvider.default_base_url == "https://api.openai.com/v1"


def test_a_wrong_api_option_is_a_config_error(make_hub: Any) -> None:
    hub = make_hub("providers:\n  openai:\n    options: {api: completions}\n")
    with pytest.raises(ConfigError, match=r"options\.api must be 'chat' or 'responses'"):
        hub.chat("openai/gpt-4.1", "Hi")


@pytest.mark.parametrize(
    ("model", "reasoning"),
    [
        ("o1", True),
        ("o3-mini", True),
        ("o4-mini-2025-04-16", True),
        ("gpt-5", True),
        ("ft:o4-mini:acme::x", True),
        ("gpt-4.1", False),
        ("gpt-4o", False),
        ("omni", False),
    ],
)
def test_reasoning_model_families(model: str, reasoning: bool) -> None:
    assert is_reasoning_model(model) is reasoning


def _error(code: str, message: str, kind: str = "invalid_request_error") -> Any:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            429,
            _error(
                "insufficient_quota",
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
            ),
            QuotaExceeded,
        ),
        (429, _error("rate_limit_exceeded", "Rate limit reached", "tokens"), RateLimitError),
        (404, _error("model_not_found", "The model `gpt-9` does not exist"), NotFoundError),
        (400, _error("content_policy_violation", "Your request was rejected"), ContentPolicyError),
        (
            403,
            _error("unsupported_country_region_territory", "Country not supported"),
            AuthenticationError,
        ),
        (
            503,
            _error("", "The engine is currently overloaded", "server_error"),
            ProviderUnavailable,
        ),
    ],
)
def test_error_classification(
    server: Any, make_hub: Any, waits: list[float], status: int, body: Any, error: type
) -> None:
    server.reply(body, status=status)
    hub = make_hub("providers:\n  openai: {max_retries: 0}\n")
    with pytest.raises(error) as caught:
        hub.chat("openai/gpt-4.1", "Hi")
    assert type(caught.value) is error
    assert caught.value.provider_message == body["error"]["message"]
    assert caught.value.status_code == status


def test_insufficient_quota_is_not_retried(server: Any, make_hub: Any, waits: list[float]) -> None:
    server.reply(_error("insufficient_quota", "You exceeded your current quota."), status=429)
    with pytest.raises(QuotaExceeded) as caught:
        make_hub().chat("openai/gpt-4.1", "Hi")
    assert not caught.value.retryable
    assert waits == []
    assert len(server.requests) == 1


def test_a_key_echoed_by_the_provider_is_masked_everywhere(
    server: Any,
    make_hub: Any,
    fake_key: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.reply(_error("invalid_api_key", f"Incorrect API key provided: {fake_key}."), 401)
    with pytest.raises(AuthenticationError) as caught:
        make_hub().chat("openai/gpt-4.1", "Hi")
    output = (caplog.text, *capsys.readouterr())
    assert secret_shown(fake_key, caught.value, *output) == []
    assert secret_shown("sk-test", caught.value) == []


def test_a_real_organisation_id_in_the_catalog_options_is_accepted() -> None:
    from relay_core import parse_catalog

    catalog = parse_catalog(
        "providers:\n  openai:\n    api_key: $env.OPENAI_API_KEY\n    options:\n"
        "      organization: org-AbCdEfGhIjKlMnOpQrStUvWx\n"
    )
    assert catalog.providers["openai"].options["organization"].startswith("org-")
