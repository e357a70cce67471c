"""gcp-sm: references read with google-cloud-secret-manager's REST transport from a
tiny Secret Manager on 127.0.0.1 (GET /v1/{name}:access answering the AccessSecretVersion
JSON), with anonymous credentials, offline."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

import relay_secrets_gcp
from relay_core import CredentialError, Hub
from relay_core.testing import KeyedPlugin, hub_for, json_server, secret_shown
from relay_secrets_gcp import _store

KEY = "sk-proj-FromGoogleSecretManager01234"
NAME = "projects/demo-project/secrets/llm/versions/latest"


class FakeManager:
    def __init__(self) -> None:
        self.payloads: dict[str, str] = {NAME: json.dumps({"openai": KEY})}
        self.asked: list[str] = []


@pytest.fixture
def manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeManager]:
    state = FakeManager()

    def answer(method: str, path: str, headers: Mapping[str, str]) -> tuple[int, Any]:
        path = path.partition("?")[0]
        state.asked.append(path)
        name = path.removeprefix("/v1/").removesuffix(":access")
        payload = state.payloads.get(name)
        if payload is None:
            return 404, {
                "error": {
                    "code": 404,
                    "message": f"Secret [{name}] not found.",
                    "status": "NOT_FOUND",
                }
            }
        data = base64.b64encode(payload.encode()).decode()
        return 200, {"name": name.replace("latest", "3"), "payload": {"data": data}}

    with json_server(answer) as url:
        client = secretmanager.SecretManagerServiceClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options={"api_endpoint": url},
        )
        monkeypatch.setattr(_store, "_client", client)
        relay_secrets_gcp.resolver.cache_clear()
        try:
            yield state
        finally:
            relay_secrets_gcp.resolver.cache_clear()


def test_a_field_of_the_latest_version_is_the_key(manager: FakeManager) -> None:
    assert _store.fetch("projects/demo-project/secrets/llm#openai") == KEY
    assert manager.asked == [f"/v1/{NAME}:access"]
    manager.payloads["projects/demo-project/secrets/plain/versions/2"] = KEY
    assert _store.fetch("projects/demo-project/secrets/plain/versions/2") == KEY


def test_errors_name_the_reference_and_the_status_never_a_value(manager: FakeManager) -> None:
    with pytest.raises(
        LookupError, match="answered NotFound for 'projects/demo-project/secrets/gone"
    ):
        _store.fetch("projects/demo-project/secrets/gone#openai")
    with pytest.raises(LookupError, match="its fields: 'openai'") as caught:
        _store.fetch("projects/demo-project/secrets/llm#mistral")
    assert KEY not in str(caught.value)
    with pytest.raises(LookupError, match="written gcp-sm:projects/PROJECT/secrets/NAME"):
        _store.fetch("llm")


def _hub(yaml: str) -> Hub:
    return hub_for(yaml, KeyedPlugin(), relay_secrets_gcp)


def test_a_catalog_reference_is_cached_and_read_again_on_refresh(manager: FakeManager) -> None:
    rotated = "sk-proj-RotatedInSecretManager01234"
    catalog = "providers:\n  keyed:\n    api_key: gcp-sm:projects/demo-project/secrets/llm#openai\n"
    with _hub(catalog) as hub:
        assert hub.chat("keyed/m", "hi").text == KEY
        assert hub.chat("keyed/m", "again").text == KEY
        assert len(manager.asked) == 1
        manager.payloads[NAME] = json.dumps({"openai": rotated})
        hub.refresh_credentials()
        assert hub.chat("keyed/m", "hi").text == rotated


def test_a_failure_through_the_hub_is_a_credential_error_without_the_key(
    manager: FakeManager,
) -> None:
    manager.payloads.clear()
    catalog = "providers:\n  keyed:\n    api_key: gcp-sm:projects/demo-project/secrets/llm#openai\n"
    with _hub(catalog) as hub, pytest.raises(CredentialError) as caught:
        hub.chat("keyed/m", "hi")
    assert "NotFound" in str(caught.value)
    assert caught.value.line == 3
    assert secret_shown(KEY, caught.value) == []
