"""vault: references read with hvac from a tiny Vault on 127.0.0.1 that speaks KV v2's
JSON (GET /v1/MOUNT/data/PATH with the X-Vault-Token header), offline."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import relay_secrets_vault
from relay_core import CredentialError, Hub
from relay_core.testing import KeyedPlugin, hub_for, json_server, secret_shown
from relay_secrets_vault import _store

KEY = "sk-proj-FromVaultKv2Engine0123456789"
TOKEN = "hvs.TestToken0123456789abcdef"


class FakeVault:
    """The secrets it holds, by API path, and the paths asked for."""

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Any]] = {"/v1/secret/data/relay": {"openai": KEY}}
        self.asked: list[str] = []


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVault]:
    state = FakeVault()

    def answer(method: str, path: str, headers: Mapping[str, str]) -> tuple[int, Any]:
        state.asked.append(path)
        if headers.get("x-vault-token") != TOKEN:
            return 403, {"errors": ["permission denied"]}
        data = state.secrets.get(path)
        if data is None:
            return 404, {"errors": []}
        version = {
            "created_time": "2025-01-01T00:00:00Z",
            "deletion_time": "",
            "destroyed": False,
            "version": 3,
        }
        return 200, {
            "request_id": "0f0e",
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": {"data": data, "metadata": version},
            "wrap_info": None,
            "warnings": None,
            "auth": None,
        }

    with json_server(answer) as url:
        monkeypatch.setenv("VAULT_ADDR", url)
        monkeypatch.setenv("VAULT_TOKEN", TOKEN)
        monkeypatch.setattr(_store, "_client", None)
        relay_secrets_vault.resolver.cache_clear()
        try:
            yield state
        finally:
            relay_secrets_vault.resolver.cache_clear()


def test_a_field_of_a_kv2_secret_is_the_key(vault: FakeVault) -> None:
    assert _store.fetch("secret/data/relay#openai") == KEY
    # The path as `vault kv get` takes it works too, and one field needs no #field.
    assert _store.fetch("secret/relay") == KEY
    assert vault.asked == ["/v1/secret/data/relay", "/v1/secret/data/relay"]


def test_errors_name_the_reference_and_field_names_only(
    vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(LookupError, match="no secret at secret/data/gone"):
        _store.fetch("secret/data/gone#openai")
    with pytest.raises(LookupError, match="its fields: 'openai'") as caught:
        _store.fetch("secret/data/relay#anthropic")
    assert KEY not in str(caught.value)
    vault.secrets["/v1/secret/data/two"] = {"a": KEY, "b": KEY}
    with pytest.raises(LookupError, match="name a field with #field"):
        _store.fetch("secret/data/two")
    with pytest.raises(LookupError, match="written vault:MOUNT/data/PATH#field"):
        _store.fetch("secret")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.WrongToken0123456789abcd")
    monkeypatch.setattr(_store, "_client", None)
    with pytest.raises(LookupError, match="Vault refused the read \\(Forbidden\\)"):
        _store.fetch("secret/data/relay#openai")


def _hub(yaml: str) -> Hub:
    return hub_for(yaml, KeyedPlugin(), relay_secrets_vault)


def test_a_catalog_reference_is_cached_and_read_again_on_refresh(vault: FakeVault) -> None:
    rotated = "sk-proj-RotatedInVault0123456789abc"
    with _hub("providers:\n  keyed:\n    api_key: vault:secret/data/relay#openai\n") as hub:
        assert hub.chat("keyed/m", "hi").text == KEY
        assert hub.chat("keyed/m", "again").text == KEY
        assert len(vault.asked) == 1
        vault.secrets["/v1/secret/data/relay"] = {"openai": rotated}
        hub.refresh_credentials()
        assert hub.chat("keyed/m", "hi").text == rotated


def test_a_failure_through_the_hub_shows_neither_key_nor_token(vault: FakeVault) -> None:
    vault.secrets.clear()
    catalog = "providers:\n  keyed:\n    api_key: vault:secret/data/relay#openai\n"
    with _hub(catalog) as hub, pytest.raises(CredentialError) as caught:
        hub.chat("keyed/m", "hi")
    assert "vault:secret/data/relay#openai" in str(caught.value)
    assert secret_shown(KEY, caught.value) == []
    assert secret_shown(TOKEN, caught.value) == []
