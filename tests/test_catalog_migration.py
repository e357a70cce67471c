"""A catalog copied from another gateway's YAML is mended from Relay's errors alone: the
fields it has that Relay keeps elsewhere say where."""

from __future__ import annotations

import pytest

from relay_core import ConfigError, parse_catalog


def test_a_models_credential_says_keys_belong_to_the_provider() -> None:
    text = "models:\n  fast:\n    target: groq/llama-3.3-70b\n    credential: $env.GROQ_API_KEY\n"
    with pytest.raises(ConfigError) as caught:
        parse_catalog(text, path="models.yaml")
    assert "unknown field 'credential'" in str(caught.value)
    assert "providers.NAME.api_key" in str(caught.value)
    assert (caught.value.file, caught.value.line) == ("models.yaml", 4)


def test_a_version_key_says_to_remove_it() -> None:
    with pytest.raises(ConfigError, match=r"unknown field 'version'; .*no version: remove it"):
        parse_catalog("version: 1\nmodels:\n  fast: mock/echo\n", path="models.yaml")


def test_other_unknown_fields_still_get_the_nearest_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'params'"):
        parse_catalog("models:\n  fast: {target: mock/echo, parms: {}}\n", path="models.yaml")
