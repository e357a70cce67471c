"""Keys handed in code (issue 22, item 2): ``Hub(credentials=...)`` and a catalog built in
code take a Secret or a resolver the application owns, never a bare string; a resolver
is called again after ``hub.refresh_credentials()``; nothing ever shows a key."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from click.testing import CliRunner

import relay_core.cli as cli_module
from relay_core import (
    Catalog,
    CredentialError,
    Hub,
    ProviderConfig,
    Secret,
)
from relay_core.cli import cli
from relay_core.config import CredentialRef, parse_catalog
from relay_core.plugin import CachedSecrets, hookimpl, secret_field
from relay_core.plugins import PluginRegistry
from relay_core.testing import KeyedPlugin, secret_shown

KEY = "sk-proj-Codekey0123456789abcdefXYZ"
ROTATED = "sk-proj-Rotated0123456789abcdefXYZ"


def _hub(catalog: Catalog | None = None, **kwargs: Any) -> Hub:
    plugins = PluginRegistry(autoload=False)
    plugins.register(KeyedPlugin())
    return Hub(catalog, plugins=plugins, **kwargs)


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYED_TEST_API_KEY", raising=False)


def test_a_secret_handed_to_the_hub_is_the_key_sent() -> None:
    with _hub(credentials={"keyed": Secret(KEY)}) as hub:
        assert hub.chat("keyed/m", "hi").text == KEY


def test_keys_in_code_win_over_the_catalogs_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "sk-proj-FromEnvironment0123456789")
    catalog = parse_catalog("providers:\n  keyed:\n    api_key: $env.TEAM_KEY\n")
    with _hub(catalog, credentials={"keyed": Secret(KEY)}) as hub:
        assert hub.chat("keyed/m", "hi").text == KEY


def test_a_catalog_built_in_code_takes_a_secret_or_a_resolver() -> None:
    by_secret = Catalog(providers={"keyed": ProviderConfig(api_key=Secret(KEY))})
    with _hub(by_secret) as hub:
        assert hub.chat("keyed/m", "hi").text == KEY
    by_resolver = Catalog(providers={"keyed": ProviderConfig(api_key=lambda: KEY)})
    with _hub(by_resolver) as hub:
        assert hub.chat("keyed/m", "hi").text == KEY
    # A reference string in code is a reference, as in a file.
    assert ProviderConfig(api_key="$env.TEAM_KEY").api_key == CredentialRef("env", "TEAM_KEY")


def test_a_plain_string_key_in_code_is_refused_without_being_shown() -> None:
    with pytest.raises(CredentialError, match=r"wrap a key in relay_core\.Secret") as caught:
        _hub(credentials={"keyed": KEY})
    assert "credentials['keyed']" in str(caught.value)
    assert secret_shown(KEY, caught.value) == []
    with pytest.raises(CredentialError, match="ProviderConfig") as caught:
        ProviderConfig(api_key=KEY)
    assert secret_shown(KEY, caught.value) == []
    with pytest.raises(CredentialError, match="not int"):
        _hub(credentials={"keyed": 42})


def test_a_misspelt_provider_name_in_credentials_is_an_error() -> None:
    with pytest.raises(CredentialError, match="did you mean 'keyed'"):
        _hub(credentials={"keyd": Secret(KEY)})
    # A provider of this repository's plugins is known before any plugin loads.
    _hub(credentials={"openai": Secret(KEY)})


def test_a_resolver_is_called_again_after_refresh_credentials() -> None:
    keys = iter([KEY, ROTATED])
    calls: list[str] = []

    def resolver() -> str:
        calls.append("called")
        return next(keys)

    with _hub(credentials={"keyed": resolver}) as hub:
        handle = hub.get("keyed/m")
        assert handle.chat("hi").text == KEY
        assert hub.chat("keyed/m", "again").text == KEY
        assert len(calls) == 1  # once per adapter build, not per call
        assert hub.refresh_credentials() == ["keyed"]
        # The handle an application keeps picks up the new key too.
        assert handle.chat("hi").text == ROTATED
        assert hub.chat("keyed/m", "hi").text == ROTATED
        assert hub.refresh_credentials("other") == []


def test_an_async_resolver_works_from_sync_and_async_calls() -> None:
    async def resolver() -> Secret:
        await asyncio.sleep(0)
        return Secret(KEY)

    with _hub(credentials={"keyed": resolver}) as hub:
        assert hub.chat("keyed/m", "hi").text == KEY

    async def main() -> str:
        async with _hub(credentials={"keyed": resolver}) as hub:
            return (await hub.achat("keyed/m", "hi")).text

    assert asyncio.run(main()) == KEY


def test_a_resolver_that_raises_is_a_credential_error_naming_provider_and_resolver() -> None:
    def vault_lookup() -> str:
        raise RuntimeError(f"denied for token {KEY}")

    with _hub(credentials={"keyed": vault_lookup}) as hub, pytest.raises(CredentialError) as caught:
        hub.chat("keyed/m", "hi")
    error = caught.value
    assert "vault_lookup" in str(error)
    assert "'keyed'" in str(error)
    assert "RuntimeError" in str(error)
    assert isinstance(error.__cause__, RuntimeError)  # chained, for the application
    assert secret_shown(KEY, error) == []


def test_a_resolver_returning_nothing_usable_is_refused() -> None:
    with (
        _hub(credentials={"keyed": lambda: ""}) as hub,
        pytest.raises(CredentialError, match="returned an empty string"),
    ):
        hub.chat("keyed/m", "hi")


def test_keys_in_code_never_show_in_reprs_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    catalog = Catalog(providers={"keyed": ProviderConfig(api_key=Secret(KEY))})
    caplog.set_level(logging.DEBUG)
    with _hub(catalog, credentials={"keyed": Secret(ROTATED)}) as hub:
        hub.chat("keyed/m", "hi")
        texts = [repr(hub), repr(catalog), repr(hub.adapters), repr(hub.get("keyed/m").adapter)]
        texts += [repr(hub.adapters.get("keyed").settings), caplog.text]
    for key in (KEY, ROTATED):
        assert secret_shown(key, CredentialError("probe"), *texts) == []


def test_a_literal_key_in_yaml_stays_an_error() -> None:
    with pytest.raises(Exception, match="credentials must be references") as caught:
        parse_catalog(f"providers:\n  keyed:\n    api_key: {KEY}\n")
    assert secret_shown(KEY, caught.value) == []


def test_an_unknown_secret_manager_scheme_names_the_plugin_to_install(tmp_path: Any) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text("providers:\n  keyed:\n    api_key: aws-sm:prod/llm#openai\n")
    catalog = parse_catalog(path.read_text(), path=str(path))
    with _hub(catalog) as hub, pytest.raises(CredentialError) as caught:
        hub.chat("keyed/m", "hi")
    assert "pip install relay-secrets-aws" in str(caught.value)
    assert caught.value.line == 3


def test_a_plugin_resolver_that_fails_its_own_way_is_a_credential_error() -> None:
    class Broken:
        @hookimpl
        def relay_register_credential_resolvers(self, register: Any) -> None:
            def resolve(name: str) -> str:
                raise ConnectionError(f"host said {KEY}")

            register("broken", resolve)

    catalog = parse_catalog("providers:\n  keyed:\n    api_key: broken:prod/x\n")
    with _hub(catalog) as hub:
        hub.plugins.register(Broken())
        with pytest.raises(CredentialError, match="ConnectionError") as caught:
            hub.chat("keyed/m", "hi")
    assert "broken:prod/x" in str(caught.value)
    assert secret_shown(KEY, caught.value) == []


def test_cached_secrets_keep_a_value_for_their_ttl_and_refresh_clears_them() -> None:
    fetched: list[str] = []
    values = iter([KEY, ROTATED])

    def fetch(name: str) -> str:
        fetched.append(name)
        return next(values)

    cached = CachedSecrets(fetch, ttl=3600)

    class Manager:
        @hookimpl
        def relay_register_credential_resolvers(self, register: Any) -> None:
            register("mgr", cached)

    catalog = parse_catalog("providers:\n  keyed:\n    api_key: mgr:prod/openai\n")
    with _hub(catalog) as hub:
        hub.plugins.register(Manager())
        assert hub.chat("keyed/m", "hi").text == KEY
        assert cached("prod/openai") == KEY  # within the TTL: not fetched again
        assert fetched == ["prod/openai"]
        hub.refresh_credentials()
        assert hub.chat("keyed/m", "hi").text == ROTATED
        assert fetched == ["prod/openai", "prod/openai"]
    assert KEY not in repr(cached)
    expired = CachedSecrets(lambda name: KEY, ttl=0)
    assert expired("a") == expired("a") == KEY


def test_secret_field_selects_a_json_field_and_names_only_keys() -> None:
    assert secret_field(KEY, None, "aws-sm:prod") == KEY
    assert secret_field(f'{{"openai": "{KEY}"}}', "openai", "aws-sm:prod#openai") == KEY
    with pytest.raises(LookupError, match="its fields: 'anthropic'") as caught:
        secret_field(f'{{"anthropic": "{KEY}"}}', "openai", "aws-sm:prod#openai")
    assert KEY not in str(caught.value)
    with pytest.raises(LookupError, match="not a JSON object") as caught:
        secret_field(KEY, "openai", "aws-sm:prod#openai")
    assert KEY not in str(caught.value)


def test_relay_validate_names_the_plugin_a_secret_manager_scheme_needs(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a machine without the plugin, whether or not this one has it.
    monkeypatch.setenv("RELAY_BLOCK_PLUGINS", "secrets-vault")
    # The CLI keeps one registry per process (another test's may have loaded the plugin);
    # this one has a provider, so the test needs no provider plugin installed.
    registry = PluginRegistry()
    registry.register(KeyedPlugin())
    monkeypatch.setattr(cli_module, "_shared_registry", registry)
    path = tmp_path / "relay.yaml"
    path.write_text("providers:\n  keyed:\n    api_key: vault:secret/data/relay#openai\n")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code != 0
    assert "relay-secrets-vault" in result.output
    assert "Traceback" not in result.output
