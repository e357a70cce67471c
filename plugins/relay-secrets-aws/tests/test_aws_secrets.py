"""aws-sm: references read through botocore's Secrets Manager client, offline: the
client's answers are stubbed at botocore's documented seam (botocore.stub.Stubber),
which also checks each request against the service model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

import relay_secrets_aws
from relay_core import CredentialError, Hub
from relay_core.testing import KeyedPlugin, hub_for, secret_shown
from relay_secrets_aws import _store

KEY = "sk-proj-FromSecretsManager0123456789"
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/llm-AbCdEf"


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    session = botocore.session.get_session()
    client = session.create_client(
        "secretsmanager",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    monkeypatch.setattr(_store, "_clients", {None: client, "eu-west-1": client})
    relay_secrets_aws.resolver.cache_clear()
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
    relay_secrets_aws.resolver.cache_clear()


def _answer(secret: str) -> dict[str, Any]:
    return {
        "ARN": ARN,
        "Name": "prod/llm",
        "VersionId": "a1b2c3d4-0000-4000-8000-00000000abcd",
        "SecretString": secret,
    }


def test_a_field_of_a_json_secret_is_the_key(stubbed: Stubber) -> None:
    stubbed.add_response(
        "get_secret_value",
        _answer(json.dumps({"openai": KEY, "anthropic": "other"})),
        {"SecretId": "prod/llm"},
    )
    assert _store.fetch("prod/llm#openai") == KEY


def test_a_plain_secret_is_the_key_whole_and_an_arn_is_accepted(stubbed: Stubber) -> None:
    stubbed.add_response("get_secret_value", _answer(KEY), {"SecretId": ARN})
    assert _store.fetch(ARN) == KEY
    assert _store._region_of(ARN) == "eu-west-1"


def test_a_missing_secret_or_field_is_a_lookup_error_without_values(stubbed: Stubber) -> None:
    stubbed.add_client_error(
        "get_secret_value",
        service_error_code="ResourceNotFoundException",
        service_message="Secrets Manager can't find the specified secret.",
        http_status_code=400,
    )
    with pytest.raises(LookupError, match="ResourceNotFoundException for 'prod/gone'"):
        _store.fetch("prod/gone")
    stubbed.add_response("get_secret_value", _answer(json.dumps({"anthropic": KEY})))
    with pytest.raises(LookupError, match="its fields: 'anthropic'") as caught:
        _store.fetch("prod/llm#openai")
    assert KEY not in str(caught.value)


def _hub(yaml: str) -> Hub:
    return hub_for(yaml, KeyedPlugin(), relay_secrets_aws)


def test_a_catalog_reference_is_read_once_per_ttl_and_again_on_refresh(stubbed: Stubber) -> None:
    rotated = "sk-proj-RotatedInSecretsManager0123"
    stubbed.add_response("get_secret_value", _answer(json.dumps({"openai": KEY})))
    stubbed.add_response("get_secret_value", _answer(json.dumps({"openai": rotated})))
    with _hub("providers:\n  keyed:\n    api_key: aws-sm:prod/llm#openai\n") as hub:
        assert hub.chat("keyed/m", "hi").text == KEY
        assert hub.chat("keyed/m", "again").text == KEY  # no second request: cached
        hub.refresh_credentials()
        assert hub.chat("keyed/m", "hi").text == rotated


def test_an_error_through_the_hub_names_the_reference_and_never_the_value(
    stubbed: Stubber,
) -> None:
    stubbed.add_client_error("get_secret_value", service_error_code="AccessDeniedException")
    catalog = "providers:\n  keyed:\n    api_key: aws-sm:prod/llm#openai\n"
    with _hub(catalog) as hub, pytest.raises(CredentialError) as caught:
        hub.chat("keyed/m", "hi")
    error = caught.value
    assert "aws-sm:prod/llm#openai" in str(error)
    assert "AccessDeniedException" in str(error)
    assert error.line == 3
    assert secret_shown(KEY, error) == []


def test_missing_botocore_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from relay_core.plugin import PluginNotInstalled

    monkeypatch.setitem(sys.modules, "botocore.session", None)
    with pytest.raises(PluginNotInstalled, match="pip install botocore"):
        _store.fetch("prod/llm")
