"""The catalog (``relay_core.config``), its JSON Schema (``relay_core.schema``) and the
resolution of credential references (``relay_core.credentials``).

What users rely on: the examples load; every mistake is reported at the file, line and
column where it was written (as a compiler does) with a useful hint; no key is ever
echoed back; the schema their editor uses agrees with the loader; a credential that does
not resolve says which reference and where, never a value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import keyring
import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from relay_core.cli import cli
from relay_core.config import (
    Catalog,
    CredentialRef,
    GroupConfig,
    Location,
    ModelConfig,
    load_catalog,
    parse_catalog,
)
from relay_core.credentials import resolve_credential
from relay_core.errors import ConfigError, CredentialError, UnknownAlias
from relay_core.hookspecs import hookimpl
from relay_core.plugins import PluginRegistry
from relay_core.pricing import ModelPrice, PricingProfile
from relay_core.schema import catalog_schema
from relay_core.secrets import Secret
from relay_core.testing import memory_keyring as in_memory_keyring
from relay_core.types import SETTING_ALIASES, GenerationConfig

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SCHEMA_FILE = ROOT / "relay.schema.json"
SCHEMA_COMMENT = "# yaml-language-server: $schema=../relay.schema.json"


def _load(tmp_path: Path, text: str | bytes) -> Catalog:
    path = tmp_path / "relay.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return load_catalog(path)


def _config_error(tmp_path: Path, text: str | bytes) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    return caught.value


# ---------------------------------------------------------------------------- examples


def test_the_examples_exist() -> None:
    assert {path.name for path in EXAMPLES} >= {"relay.yaml", "minimal.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_load_and_point_editors_at_the_schema(path: Path) -> None:
    catalog = load_catalog(path)
    assert catalog.path == str(path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == SCHEMA_COMMENT
    assert (path.parent / "../relay.schema.json").resolve() == SCHEMA_FILE


def test_the_full_example_shows_every_feature() -> None:
    catalog = load_catalog(ROOT / "examples" / "relay.yaml")
    schemes = {p.api_key.scheme for p in catalog.providers.values() if p.api_key}
    assert schemes >= {"env", "keyring", "file"}
    compat = [p for p in catalog.providers.values() if p.plugin == "openai-compat"]
    assert compat
    assert compat[0].base_url is not None
    assert compat[0].base_url.startswith("http://127.0.0.1")
    assert any(p.headers for p in catalog.providers.values())
    assert any(p.options for p in catalog.providers.values())
    models = catalog.models.values()
    assert ModelConfig(target="mock/echo") in models  # the `alias: provider/model` shorthand
    bare = ModelConfig(target="provider/model")
    for feature in (
        "params",
        "pricing",
        "pricing_profile",
        "provider_kwargs",
        "description",
        "tags",
    ):
        assert any(getattr(m, feature) != getattr(bare, feature) for m in models), feature
    assert {g.strategy for g in catalog.groups.values()} == {"fallback", "round_robin"}
    assert any(member in catalog.groups for g in catalog.groups.values() for member in g.members)
    assert catalog.pricing_profiles
    assert catalog.defaults.model is not None


def test_the_minimal_example_uses_only_the_mock_provider() -> None:
    catalog = load_catalog(ROOT / "examples" / "minimal.yaml")
    assert {model.provider for model in catalog.models.values()} == {"mock"}
    assert not catalog.providers


def test_the_design_example_loads() -> None:
    catalog = parse_catalog(
        """\
providers:
  openai:
    api_key: $env.OPENAI_API_KEY
  local-vllm:
    plugin: openai-compat
    base_url: http://127.0.0.1:8000/v1
models:
  fast:
    target: mock/echo
  smart:
    target: openai/gpt-4.1
    params: {temperature: 0.2, max_tokens: 1024}
    pricing_profile: team-discount
  claude:
    target: anthropic/claude-sonnet-4-5
groups:
  resilient: {strategy: fallback, members: [claude, smart]}
pricing_profiles:
  team-discount: {input_multiplier: 0.85, output_multiplier: 0.85}
""",
        path="relay.yaml",
    )
    assert catalog.providers["openai"].api_key == CredentialRef("env", "OPENAI_API_KEY")
    assert catalog.providers["local-vllm"].plugin == "openai-compat"
    smart = catalog.models["smart"]
    assert (smart.provider, smart.model) == ("openai", "gpt-4.1")
    assert smart.params == GenerationConfig(temperature=0.2, max_tokens=1024)
    assert catalog.groups["resilient"] == GroupConfig(
        strategy="fallback", members=("claude", "smart")
    )
    assert catalog.pricing_profiles["team-discount"] == PricingProfile(
        input_multiplier=0.85, output_multiplier=0.85
    )
    assert catalog.defaults.timeout == 60.0
    assert catalog.defaults.max_retries == 3


def test_values_are_typed() -> None:
    catalog = parse_catalog(
        "models:\n"
        "  m:\n"
        "    target: p/m\n"
        "    params: {stop: [END], temperature: 1}\n"
        "    pricing: {input: 1, output: 2.5}\n"
        "    tags: [a, b]\n"
    )
    model = catalog.models["m"]
    assert model.params.stop == ("END",)
    assert model.params.temperature == 1.0
    assert isinstance(model.params.temperature, float)
    assert model.pricing == ModelPrice(input=1.0, output=2.5)
    assert model.tags == ("a", "b")


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_an_empty_file_is_an_empty_catalog(tmp_path: Path, text: str) -> None:
    catalog = _load(tmp_path, text)
    assert catalog == Catalog()
    assert catalog.aliases() == []


# ---------------------------------------------------------------------------- mistakes

SK_PROJ = "sk-proj-AbCdEf_123-XyZ987654321abcdefGHIJ"

# (text, (line, column), what the message says). Line and column are 1-based and point
# where an editor would underline: the key of a wrong entry, the offending list item.
MISTAKES: dict[str, tuple[str | bytes, tuple[int, int], str]] = {
    "bad YAML syntax": (
        "models:\n  fast: mock/echo\n  smart: a: b\n",
        (3, 11),
        "invalid YAML: mapping values are not allowed",
    ),
    "tab in indentation": (
        "models:\n  fast: mock/echo\n\tsmart: x\n",
        (3, 1),
        "invalid YAML",
    ),
    "two documents": ("models: {}\n---\ngroups: {}\n", (2, 1), "invalid YAML"),
    "duplicate key at top level": (
        "models:\n  fast: mock/echo\nmodels:\n  smart: mock/x\n",
        (3, 1),
        "duplicate key 'models'",
    ),
    "duplicate key nested": (
        "models:\n  fast: mock/echo\n  fast: mock/other\n",
        (3, 3),
        "duplicate key 'fast'",
    ),
    "unknown field at top level": (
        "modles:\n  fast: mock/echo\n",
        (1, 1),
        "unknown field 'modles'; did you mean 'models'?",
    ),
    "unknown field in a model": (
        "models:\n  fast:\n    target: mock/echo\n    parms: {temperature: 0.2}\n",
        (4, 5),
        "unknown field 'parms'; did you mean 'params'?",
    ),
    "a provider's timeout of 0": (
        "providers:\n  mock:\n    timeout: 0\n",
        (3, 5),
        "providers.mock: timeout must be greater than 0, not 0",
    ),
    "negative retries by default": (
        "defaults:\n  max_retries: -1\n",
        (2, 3),
        "defaults: max_retries must be 0 or more, not -1",
    ),
    "a rate limit below 0": (
        "models:\n  a:\n    target: mock/echo\n    limits: {requests_per_minute: -5}\n",
        (4, 14),
        "models.a.limits: requests_per_minute must be greater than 0, not -5",
    ),
    "a generation setting beside the target": (
        "models:\n  fast:\n    target: mock/echo\n    temperature: 0.2\n",
        (4, 5),
        "unknown field 'temperature'; a generation setting goes under params: params.temperature",
    ),
    "a misspelt generation setting beside the target": (
        "models:\n  fast:\n    target: mock/echo\n    max_token: 64\n",
        (4, 5),
        "unknown field 'max_token'; a generation setting goes under params: params.max_tokens",
    ),
    "unknown field in params": (
        "models:\n  fast:\n    target: mock/echo\n    params: {temprature: 0.2}\n",
        (4, 14),
        "unknown field 'temprature'; did you mean 'temperature'?",
    ),
    "unknown field in a provider": (
        "providers:\n  openai:\n    api-key: $env.OPENAI_API_KEY\n",
        (3, 5),
        "unknown field 'api-key'; did you mean 'api_key'?",
    ),
    "unknown field with no close match": (
        "defaults:\n  log_format: json\n",
        (2, 3),
        "unknown field 'log_format'; expected one of model, timeout, max_retries",
    ),
    "a number as a field name": (
        "models: {}\n1: x\n",
        (2, 1),
        "unknown field 1",
    ),
    "string for float": (
        "models:\n  fast:\n    target: mock/echo\n    params:\n      temperature: hot\n",
        (5, 7),
        "models.fast.params.temperature: expected float, got str 'hot'",
    ),
    "quoted number for float": (
        "defaults:\n  timeout: '60'\n",
        (2, 3),
        "defaults.timeout: expected float, got str '60'",
    ),
    "bool for int": (
        "defaults:\n  max_retries: yes\n",
        (2, 3),
        "defaults.max_retries: expected int, got bool True",
    ),
    "float for int": (
        "models:\n  fast:\n    target: mock/echo\n    params: {max_tokens: 1.5}\n",
        (4, 14),
        "expected int, got float 1.5",
    ),
    "int for str": (
        "models:\n  fast:\n    target: 42\n",
        (3, 5),
        "models.fast.target: expected str, got int 42",
    ),
    "int for str in a list": (
        "models:\n  a: mock/a\ngroups:\n  g:\n    strategy: fallback\n    members: [a, 42]\n",
        (6, 18),
        "groups.g.members.1: expected str, got int 42",
    ),
    "string for a list (tags)": (
        "models:\n  a:\n    target: mock/a\n    tags: fast\n",
        (4, 5),
        "models.a.tags: expected a list, got str 'fast'",
    ),
    "string for a list (members)": (
        "models:\n  a: mock/a\ngroups:\n  g: {strategy: fallback, members: a}\n",
        (4, 27),
        "groups.g.members: expected a list, got str 'a'",
    ),
    "string for a list (stop)": (
        "models:\n  a:\n    target: mock/a\n    params: {stop: END}\n",
        (4, 14),
        "models.a.params.stop: expected a list, got str 'END'",
    ),
    "list for a mapping": (
        "models: [fast, smart]\n",
        (1, 1),
        "models: expected a mapping, got list",
    ),
    "scalar for a section": (
        "models: {}\ndefaults: 3\n",
        (2, 1),
        "defaults: expected a mapping, got int",
    ),
    "scalar for a provider": (
        "providers:\n  openai: yes\n",
        (2, 3),
        "providers.openai: expected a mapping, got bool",
    ),
    "invalid strategy": (
        "models:\n  a: mock/a\ngroups:\n  g:\n    strategy: random\n    members: [a]\n",
        (5, 5),
        "groups.g.strategy: 'random' is not one of 'fallback', 'round_robin'",
    ),
    "invalid reasoning": (
        "models:\n  a:\n    target: mock/a\n    params:\n      reasoning: extreme\n",
        (5, 7),
        "reasoning must be one of minimal, low, medium, high or a token budget >= 0, not 'extreme'",
    ),
    "negative reasoning budget": (
        "models:\n  a:\n    target: mock/a\n    params:\n      reasoning: -1\n",
        (5, 7),
        "a token budget >= 0, not -1",
    ),
    "model without target": (
        "models:\n  a:\n    params: {temperature: 0.1}\n",
        (2, 3),
        "missing required field 'target'",
    ),
    "group without members": (
        "models:\n  a: mock/a\ngroups:\n  g:\n    strategy: fallback\n",
        (4, 3),
        "missing required field 'members'",
    ),
    "group without strategy": (
        "models:\n  a: mock/a\ngroups:\n  g:\n    members: [a]\n",
        (4, 3),
        "missing required field 'strategy'",
    ),
    "group with an empty member list": (
        "models:\n  a: mock/a\ngroups:\n  g:\n    strategy: fallback\n    members: []\n",
        (6, 5),
        "group 'g' has no members",
    ),
    "target without a slash": (
        "models:\n  a:\n    target: gpt-4.1\n",
        (3, 5),
        "model 'a': target 'gpt-4.1' must be 'provider/model'",
    ),
    "shorthand without a slash": (
        "models:\n  other: mock/x\n  a: gpt-4.1\n",
        (3, 3),
        "model 'a': target 'gpt-4.1' must be 'provider/model'",
    ),
    "target without a model": (
        "models:\n  a: openai/\n",
        (2, 3),
        "target 'openai/' must be 'provider/model'",
    ),
    "target without a provider": (
        "models:\n  a: /gpt-4.1\n",
        (2, 3),
        "target '/gpt-4.1' must be 'provider/model'",
    ),
    "unknown pricing_profile": (
        "pricing_profiles:\n  team: {multiplier: 0.9}\n"
        "models:\n  a:\n    target: mock/a\n    pricing_profile: teem\n",
        (6, 5),
        "model 'a': unknown pricing_profile 'teem'",
    ),
    "group member naming an unknown alias": (
        "models:\n  a: mock/a\ngroups:\n  g:\n    strategy: fallback\n    members: [a, b]\n",
        (6, 18),
        "group 'g': unknown model 'b'",
    ),
    "group cycle": (
        "groups:\n  g1:\n    strategy: fallback\n    members: [g2]\n"
        "  g2:\n    strategy: round_robin\n    members: [g1]\n",
        (2, 3),
        "groups refer to each other in a cycle: g1 -> g2 -> g1",
    ),
    "group containing itself": (
        "models:\n  a: mock/a\ngroups:\n  g:\n    strategy: fallback\n    members: [a, g]\n",
        (4, 3),
        "cycle: g -> g",
    ),
    "model alias containing a slash": (
        "models:\n  team/fast: mock/a\n",
        (2, 3),
        "alias 'team/fast' must not contain '/'",
    ),
    "group alias containing a slash": (
        "groups:\n  team/any: {strategy: fallback, members: [mock/a]}\n",
        (2, 3),
        "alias 'team/any' must not contain '/'",
    ),
    "a name that is both model and group": (
        "models:\n  a: mock/a\ngroups:\n  a:\n    strategy: fallback\n    members: [mock/b]\n",
        (4, 3),
        "'a' is both a model and a group",
    ),
    "defaults.model unknown": (
        "models:\n  a: mock/a\ndefaults:\n  model: b\n",
        (4, 3),
        "unknown model 'b'",
    ),
    "api_key not written as a reference": (
        "providers:\n  openai:\n    api_key: OPENAI_API_KEY\n",
        (3, 5),
        "credentials must be references ($env.NAME, keyring:SERVICE/USER or file:PATH)",
    ),
    "api_key not a string": (
        "providers:\n  openai:\n    api_key: 12345\n",
        (3, 5),
        "expected a credential reference, got int",
    ),
    "a header value that looks like a key": (
        f"providers:\n  openai:\n    headers:\n      X-Api-Key: {SK_PROJ}\n",
        (4, 7),
        "header 'X-Api-Key' holds what looks like a key; put it in api_key",
    ),
    "a bearer token in a header": (
        "providers:\n  x:\n    headers: {Authorization: Bearer Xq7fT2mZ9pL4vR8nK3wB6yH1cJ5}\n",
        (3, 15),
        "header 'Authorization' holds what looks like a key",
    ),
    "a list at top level": ("- fast\n- smart\n", (1, 1), "the catalog must be a mapping"),
    "a scalar at top level": ("fast\n", (1, 1), "the catalog must be a mapping"),
    "not UTF-8": ("models:\n  caf\xe9: mock/a\n".encode("latin-1"), (2, 6), "not UTF-8"),
    "a tab indenting a line": (
        "models:\n\tfast: mock/echo\n",
        (2, 1),
        "invalid YAML: a tab character; YAML indents with spaces",
    ),
    "a tab after spaces": (
        "models:\n  fast:\n  \t target: mock/echo\n",
        (3, 3),
        "a tab character; YAML indents with spaces",
    ),
    "an entry left null by an indentation slip": (
        "models:\n  fast:\n  target: mock/echo\n",
        (2, 3),
        "'fast' is empty (null): is the next line indented under it?",
    ),
    "a provider left null by an indentation slip": (
        "providers:\n  openai:\n  api_key: $env.OPENAI_API_KEY\n",
        (2, 3),
        "'openai' is empty (null): is the next line indented under it?",
    ),
    "an entry with nothing after it at the end": (
        "models:\n  fast: mock/echo\n  slow:\n",
        (3, 3),
        "'slow' is empty (null): give it a value",
    ),
    "optional that is not a flag": (
        "plugins:\n  audit:\n    optional: maybe\n",
        (3, 5),
        "plugins.audit.optional must be true or false, not 'maybe'",
    ),
}


@pytest.mark.parametrize(("text", "at", "message"), MISTAKES.values(), ids=list(MISTAKES))
def test_mistakes_point_at_file_line_and_column(
    tmp_path: Path, text: str | bytes, at: tuple[int, int], message: str
) -> None:
    error = _config_error(tmp_path, text)
    path = str(tmp_path / "relay.yaml")
    line, column = at
    assert (error.file, error.line, error.column) == (path, line, column)
    assert message in error.reason
    assert str(error) == f"{path}:{line}:{column}: {error.reason}"


def test_unknown_alias_in_a_group_lists_the_known_ones(tmp_path: Path) -> None:
    text = (
        "models:\n  fast: mock/a\n  smart: mock/b\n"
        "groups:\n  g: {strategy: fallback, members: [fats]}\n"
    )
    error = _config_error(tmp_path, text)
    assert "known aliases: fast, g, smart" in error.reason


def test_every_field_mistake_is_listed_in_file_order(tmp_path: Path) -> None:
    text = (
        "models:\n"
        "  a:\n"
        "    target: mock/a\n"
        "    params: {temperature: hot}\n"  # line 4
        "  b:\n"
        "    targte: mock/b\n"  # line 6
        "defaults:\n"
        "  max_retries: many\n"  # line 8
    )
    error = _config_error(tmp_path, text)
    found = [(e.line, e.column) for e in (error, *error.also)]
    assert found == [(4, 14), (5, 3), (6, 5), (8, 3)]
    assert "missing required field 'target'" in error.also[0].reason
    assert "did you mean 'target'?" in error.also[1].reason


def test_every_cross_reference_mistake_is_listed_in_file_order(tmp_path: Path) -> None:
    text = (
        "models:\n"
        "  fast: {target: mock/echo}\n"
        "groups:\n"
        "  g:\n"
        "    strategy: fallback\n"
        "    members: [fast, nope]\n"  # line 6
        "  loop_a: {strategy: fallback, members: [loop_b]}\n"  # line 7
        "  loop_b: {strategy: fallback, members: [loop_a]}\n"
        "  w: {strategy: fallback, members: [fast], weights: {zz: 2}}\n"  # line 9
        "defaults:\n"
        "  model: missing\n"  # line 11
    )
    error = _config_error(tmp_path, text)
    found = [(e.line, e.reason) for e in (error, *error.also)]
    assert [line for line, _ in found] == [6, 7, 9, 9, 11]
    assert "group 'g': unknown model 'nope'" in found[0][1]
    # A cycle is one mistake, reported once, not once for each of its groups.
    assert found[1][1] == "groups refer to each other in a cycle: loop_a -> loop_b -> loop_a"
    assert "weights apply to strategy 'weighted'" in found[2][1]
    assert "weights names 'zz'" in found[3][1]
    assert "unknown model 'missing'" in found[4][1]


def test_a_self_referencing_yaml_alias_is_a_config_error(tmp_path: Path) -> None:
    error = _config_error(tmp_path, "models: &loop\n  fast: *loop\n")
    assert error.file == str(tmp_path / "relay.yaml")
    assert "invalid YAML" in error.reason


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_an_unreadable_file_is_a_config_error_naming_it(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "relay.yaml"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    assert caught.value.file == str(path)
    assert "cannot read catalog" in caught.value.reason
    assert str(caught.value).startswith(f"{path}: ")


# ---------------------------------------------------------------------------- inline keys

INLINE_KEYS = {
    "openai": "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
    "openai project": SK_PROJ,
    "anthropic": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEf",
    "openrouter": "sk-or-v1-0123456789abcdef0123456789abcdef",
    "google": "AIzaSyA-1234567890abcdefghijklmnopqrstu",
    "groq": "gsk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "random token": "Xq7fT2mZ9pL4vR8nK3wB6yH1cJ5dG0sA",
    "hex token": "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a",
}


def _assert_not_echoed(error: ConfigError, key: str) -> None:
    for each in (error, *error.also):
        for text in (str(each), repr(each), each.reason, each.message, *map(str, each.args)):
            assert key not in text


@pytest.mark.parametrize("key", INLINE_KEYS.values(), ids=list(INLINE_KEYS))
@pytest.mark.parametrize("quote", ["", '"'])
def test_an_inline_api_key_is_rejected_and_not_echoed(tmp_path: Path, key: str, quote: str) -> None:
    error = _config_error(tmp_path, f"providers:\n  openai:\n    api_key: {quote}{key}{quote}\n")
    assert (error.line, error.column) == (3, 5)
    assert "credentials must be references" in error.reason
    _assert_not_echoed(error, key)


@pytest.mark.parametrize("key", INLINE_KEYS.values(), ids=list(INLINE_KEYS))
def test_a_key_in_a_header_is_rejected_and_not_echoed(tmp_path: Path, key: str) -> None:
    error = _config_error(tmp_path, f"providers:\n  openai:\n    headers: {{X-Key: {key}}}\n")
    assert (error.line, error.column) == (3, 15)
    assert "looks like a key" in error.reason
    _assert_not_echoed(error, key)


@pytest.mark.parametrize("key", INLINE_KEYS.values(), ids=list(INLINE_KEYS))
@pytest.mark.parametrize(
    "template",
    [
        "defaults:\n  timeout: {key}\n",
        "models:\n  a:\n    target: mock/a\n    tags: {key}\n",
        "groups:\n  g: {{strategy: {key}, members: [mock/a]}}\n",
    ],
    ids=["scalar", "list", "literal"],
)
def test_a_key_in_the_wrong_field_is_not_echoed(tmp_path: Path, key: str, template: str) -> None:
    error = _config_error(tmp_path, template.format(key=key))
    _assert_not_echoed(error, key)


def test_ordinary_header_values_are_accepted() -> None:
    catalog = parse_catalog(
        "providers:\n  anthropic:\n    headers:\n"
        "      anthropic-beta: interleaved-thinking-2025-05-14\n"
        "      X-Request-Source: relay-eval-pipeline\n"
    )
    assert catalog.providers["anthropic"].headers["anthropic-beta"].startswith("interleaved")


# ---------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("text", "scheme", "name"),
    [
        ("$env.OPENAI_API_KEY", "env", "OPENAI_API_KEY"),
        ("$env._private2", "env", "_private2"),
        ("keyring:relay/openai", "keyring", "relay/openai"),
        ("file:~/.config/relay/openai.key", "file", "~/.config/relay/openai.key"),
        ("file:/etc/relay/key", "file", "/etc/relay/key"),
        ("vault:team/openai", "vault", "team/openai"),
        ("my-scheme_2:a:b", "my-scheme_2", "a:b"),
    ],
)
def test_credential_ref_parse(text: str, scheme: str, name: str) -> None:
    ref = CredentialRef.parse(text)
    assert ref == CredentialRef(scheme, name)
    assert str(ref) == text
    assert CredentialRef.parse(f"  {text} ") == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        "OPENAI_API_KEY",
        "$env.",
        "$env.1ABC",
        "$env.MY-KEY",
        "$ENV.OPENAI_API_KEY",
        "env.OPENAI_API_KEY",
        "Keyring:relay/openai",
        "vault:",
        ":rest",
        *INLINE_KEYS.values(),
    ],
)
def test_credential_ref_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be references") as caught:
        CredentialRef.parse(text)
    if text in INLINE_KEYS.values():
        assert text not in str(caught.value)


# ---------------------------------------------------------------------------- lookup


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog(ROOT / "examples" / "relay.yaml")


def test_lookup_alias_group_and_bare_target(catalog: Catalog) -> None:
    assert catalog.lookup("smart") is catalog.models["smart"]
    assert catalog.lookup("resilient") is catalog.groups["resilient"]
    bare = catalog.lookup("openai/gpt-4.1-mini")
    assert bare == ModelConfig(target="openai/gpt-4.1-mini")
    assert (bare.provider, bare.model) == ("openai", "gpt-4.1-mini")
    assert Catalog().lookup("mock/echo") == ModelConfig(target="mock/echo")


def test_a_target_with_slashes_in_the_model_name(catalog: Catalog) -> None:
    local = catalog.lookup("local")
    assert isinstance(local, ModelConfig)
    assert (local.provider, local.model) == ("local-vllm", "meta-llama/Llama-3.1-8B-Instruct")


@pytest.mark.parametrize("name", ["nope", "smrt", "openai/", "/gpt-4.1", ""])
def test_lookup_of_an_unknown_alias(catalog: Catalog, name: str) -> None:
    with pytest.raises(UnknownAlias) as caught:
        catalog.lookup(name)
    error = caught.value
    assert isinstance(error, ConfigError)
    assert error.alias == name
    assert f"unknown model {name!r}" in str(error)
    assert f"known aliases: {', '.join(catalog.aliases())}" in str(error)
    assert "smart" in catalog.aliases()
    assert "resilient" in catalog.aliases()


def test_where_points_at_a_node_or_its_nearest_parent(catalog: Catalog) -> None:
    text = (ROOT / "examples" / "relay.yaml").read_text(encoding="utf-8").splitlines()
    where = catalog.where(("models", "smart", "params", "temperature"))
    assert where.file == str(ROOT / "examples" / "relay.yaml")
    assert where.line is not None
    assert where.column is not None
    assert text[where.line - 1][where.column - 1 :].startswith("temperature:")
    parent = catalog.where(("models", "smart", "no-such-field"))
    assert parent.line is not None
    assert parent.column is not None
    assert text[parent.line - 1][parent.column - 1 :].startswith("smart:")


# ---------------------------------------------------------------------------- schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return catalog_schema()


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema)


def test_the_schema_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_validate_against_the_schema(
    validator: Draft202012Validator, path: Path
) -> None:
    validator.validate(yaml.safe_load(path.read_text(encoding="utf-8")))


INVALID_DOCUMENTS = {
    "unknown top-level field": "modles: {fast: mock/echo}\n",
    "unknown model field": "models:\n  fast: {target: mock/echo, parms: {}}\n",
    "unknown params field": "models:\n  fast: {target: mock/echo, params: {temprature: 1}}\n",
    "wrong type": "models:\n  fast: {target: mock/echo, params: {temperature: hot}}\n",
    "a setting and its alias": (
        "models:\n  fast: {target: mock/echo, params: {stop: [A], stop_sequences: [B]}}\n"
    ),
    "bool for int": "defaults: {max_retries: true}\n",
    "bad strategy": "models: {a: mock/a}\ngroups:\n  g: {strategy: random, members: [a]}\n",
    "bad reasoning": "models:\n  a: {target: m/a, params: {reasoning: extreme}}\n",
    "shorthand without slash": "models:\n  fast: gpt4\n",
    "model without target": "models:\n  fast: {description: x}\n",
    "group without members": "models: {a: mock/a}\ngroups:\n  g: {strategy: fallback}\n",
    "inline key": f"providers:\n  openai: {{api_key: {SK_PROJ}}}\n",
    "string for a list": "models:\n  a: {target: m/a, tags: fast}\n",
    "list for a mapping": "models: [fast]\n",
}


def test_the_schema_takes_a_settings_other_name(validator: Draft202012Validator) -> None:
    text = "models:\n  fast: {target: mock/echo, params: {stop_sequences: [END]}}\n"
    validator.validate(yaml.safe_load(text))
    assert parse_catalog(text).models["fast"].params.stop == ("END",)


@pytest.mark.parametrize("text", INVALID_DOCUMENTS.values(), ids=list(INVALID_DOCUMENTS))
def test_the_schema_rejects_what_the_loader_rejects(
    validator: Draft202012Validator, text: str
) -> None:
    assert not validator.is_valid(yaml.safe_load(text))
    with pytest.raises(ConfigError):
        parse_catalog(text)


def _catalog_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    pending: list[Any] = [Catalog]
    while pending:
        tp = pending.pop()
        if attrs.has(tp):
            if tp.__name__ in found:
                continue
            found[tp.__name__] = tp
            pending.extend(f.type for f in attrs.fields(attrs.resolve_types(tp)))
        else:
            pending.extend(getattr(tp, "__args__", ()))
    return found


def _object_schema(schema: dict[str, Any], name: str) -> dict[str, Any]:
    body = schema if name == "Catalog" else schema["$defs"][name]
    if "anyOf" in body:  # ModelConfig: the shorthand string or the mapping
        (body,) = [option for option in body["anyOf"] if option.get("type") == "object"]
    return body


def test_every_catalog_field_is_in_the_schema(schema: dict[str, Any]) -> None:
    classes = _catalog_classes()
    assert {
        "ProviderConfig",
        "ModelConfig",
        "GroupConfig",
        "Defaults",
        "PricingProfile",
        "ModelPrice",
        "GenerationConfig",
    } <= set(classes)
    for name, cls in classes.items():
        if cls is CredentialRef:  # written as one string, not as a mapping
            continue
        body = _object_schema(schema, name)
        fields = [f for f in attrs.fields(cls) if not f.metadata.get("internal")]
        aliases = set(SETTING_ALIASES) if cls is GenerationConfig else set()
        assert set(body["properties"]) == {f.name for f in fields} | aliases, name
        required = {f.name for f in fields if f.default is attrs.NOTHING}
        assert set(body.get("required", ())) == required, name
        assert body["additionalProperties"] is False, name


def test_every_field_of_the_schema_has_a_description(schema: dict[str, Any]) -> None:
    # Editors show a field's description on hover, and the schema reference page is
    # made of them: a field added without metadata=_doc(...) would show neither.
    bodies = {name: _object_schema(schema, name) for name in ["Catalog", *schema["$defs"]]}
    missing = [
        f"{name}.{field}"
        for name, body in bodies.items()
        for field, prop in body["properties"].items()
        if not prop.get("description")
    ]
    assert missing == []


def test_relay_schema_writes_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schema: dict[str, Any]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["schema", "-o", "out.json"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8")) == schema
    printed = runner.invoke(cli, ["schema"])
    assert printed.exit_code == 0, printed.output
    assert printed.output == (tmp_path / "out.json").read_text(encoding="utf-8")


def test_the_committed_schema_file_is_up_to_date(schema: dict[str, Any]) -> None:
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == schema, (
        "relay.schema.json is out of date with the catalog classes; regenerate it by "
        "running `relay schema -o relay.schema.json` in the repository root"
    )


# ---------------------------------------------------------------------------- credentials

WHERE = Location("relay.yaml", 7, 14)


@pytest.fixture
def registry() -> PluginRegistry:
    return PluginRegistry(autoload=False)


def _credential_error(registry: PluginRegistry, text: str) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        resolve_credential(CredentialRef.parse(text), registry, where=WHERE)
    error = caught.value
    assert isinstance(error, ConfigError)
    assert (error.file, error.line, error.column) == ("relay.yaml", 7, 14)
    assert str(error).startswith("relay.yaml:7:14: ")
    return error


def test_env_reference_resolves_to_a_secret(
    registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = "env-value-for-relay-tests-0001"
    monkeypatch.setenv("RELAY_TEST_CONFIG_KEY", value)
    secret = resolve_credential(CredentialRef.parse("$env.RELAY_TEST_CONFIG_KEY"), registry)
    assert isinstance(secret, Secret)
    assert secret.reveal() == value
    assert secret.source == "$env.RELAY_TEST_CONFIG_KEY"
    assert value not in repr(secret)
    assert value not in str(secret)
    assert "$env.RELAY_TEST_CONFIG_KEY" in repr(secret)


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_env_reference_missing(
    registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("RELAY_TEST_MISSING_KEY", raising=False)
    else:
        monkeypatch.setenv("RELAY_TEST_MISSING_KEY", value)
    error = _credential_error(registry, "$env.RELAY_TEST_MISSING_KEY")
    assert "$env.RELAY_TEST_MISSING_KEY" in error.reason
    assert "environment variable RELAY_TEST_MISSING_KEY is not set" in error.reason


def test_file_reference_reads_the_stripped_file(registry: PluginRegistry, tmp_path: Path) -> None:
    key_file = tmp_path / "openai.key"
    key_file.write_text("  file-value-for-relay-tests-0002\n\n", encoding="utf-8")
    secret = resolve_credential(CredentialRef("file", str(key_file)), registry)
    assert secret.reveal() == "file-value-for-relay-tests-0002"
    assert secret.source == f"file:{key_file}"


def test_file_reference_expands_home(
    registry: PluginRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "relay.key").write_text("home-value-for-relay-tests-0003\n", encoding="utf-8")
    secret = resolve_credential(CredentialRef.parse("file:~/relay.key"), registry)
    assert secret.reveal() == "home-value-for-relay-tests-0003"


def test_file_reference_missing_or_empty(registry: PluginRegistry, tmp_path: Path) -> None:
    missing = tmp_path / "missing.key"
    error = _credential_error(registry, f"file:{missing}")
    assert f"file:{missing}" in error.reason
    assert f"cannot read {missing}" in error.reason
    empty = tmp_path / "empty.key"
    empty.write_text("\n", encoding="utf-8")
    assert "is empty" in _credential_error(registry, f"file:{empty}").reason


# Each line is distinct, so that any one of them in a message is found.
KEY_FILE_LINES = [f"kfline{n}-Zx{n * 7919}qW-secret-material" for n in range(1, 5)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            "-----BEGIN PRIVATE KEY-----\n"
            + "\n".join(KEY_FILE_LINES)
            + "\n-----END PRIVATE KEY-----\n",
            "holds 6 non-empty lines, not one secret",
        ),
        ("\n".join(KEY_FILE_LINES) + "\n", "holds 4 non-empty lines"),
        (("y" * 80 + "\n") * 300 + "\n".join(KEY_FILE_LINES), "larger than 16 KiB"),
        (b"\xff\xfe" + "\n".join(KEY_FILE_LINES).encode("utf-16-le"), "is not UTF-8 text"),
    ],
    ids=["pem", "lines", "large", "not-utf8"],
)
def test_a_file_that_is_not_one_secret_is_refused_by_path_never_content(
    registry: PluginRegistry, tmp_path: Path, content: str | bytes, reason: str
) -> None:
    key_file = tmp_path / "mistaken.key"
    if isinstance(content, bytes):
        key_file.write_bytes(content)
    else:
        key_file.write_text(content, encoding="utf-8")
    error = _credential_error(registry, f"file:{key_file}")
    assert reason in error.reason
    assert str(key_file) in error.reason
    shown = f"{error}\n{error!r}\n{error.reason}"
    for line in KEY_FILE_LINES:
        assert line not in shown
        assert line[:12] not in shown


def test_a_device_is_not_read_past_the_size_of_a_secret(registry: PluginRegistry) -> None:
    # /dev/zero never ends: reading it whole would never return.
    error = _credential_error(registry, "file:/dev/zero")
    assert "larger than 16 KiB" in error.reason


def test_an_environment_value_of_several_lines_is_refused_without_its_content(
    registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_TEST_PEM", "\n".join(KEY_FILE_LINES))
    error = _credential_error(registry, "$env.RELAY_TEST_PEM")
    assert "$env.RELAY_TEST_PEM holds several lines" in error.reason
    assert not any(line in str(error) for line in KEY_FILE_LINES)


@pytest.mark.parametrize(("mode", "refused"), [(0o600, False), (0o640, False), (0o644, True)])
def test_strict_credential_files_refuse_a_file_every_user_may_read(
    registry: PluginRegistry, tmp_path: Path, mode: int, refused: bool
) -> None:
    key_file = tmp_path / "openai.key"
    key_file.write_text("mode-checked-value-for-relay-tests-0004\n", encoding="utf-8")
    key_file.chmod(mode)
    reference = CredentialRef("file", str(key_file))
    # Off by default: Docker and Kubernetes mount secrets readable by every user.
    assert resolve_credential(reference, registry).reveal().startswith("mode-checked")
    if refused:
        with pytest.raises(CredentialError) as caught:
            resolve_credential(reference, registry, private_files=True)
        assert f"{key_file} is readable or writable by every user (mode 644)" in str(caught.value)
        assert f"chmod o-rwx {key_file}" in str(caught.value)
        assert "mode-checked" not in str(caught.value)
    else:
        assert resolve_credential(reference, registry, private_files=True).reveal()


def test_strict_credential_files_is_a_catalog_default() -> None:
    assert not parse_catalog("").defaults.strict_credential_files
    text = "defaults:\n  strict_credential_files: true\n"
    assert parse_catalog(text).defaults.strict_credential_files


Passwords = dict[tuple[str, str], str]


@pytest.fixture
def memory_keyring() -> Iterator[Passwords]:
    with in_memory_keyring() as passwords:
        yield passwords


def test_keyring_reference(registry: PluginRegistry, memory_keyring: Passwords) -> None:
    keyring.set_password("relay", "openai", "keyring-value-for-relay-tests-0004")
    secret = resolve_credential(CredentialRef.parse("keyring:relay/openai"), registry)
    assert secret.reveal() == "keyring-value-for-relay-tests-0004"
    assert secret.source == "keyring:relay/openai"
    assert "keyring-value-for-relay-tests-0004" not in repr(secret)


def test_keyring_reference_missing(registry: PluginRegistry, memory_keyring: Passwords) -> None:
    error = _credential_error(registry, "keyring:relay/anthropic")
    assert "keyring:relay/anthropic" in error.reason
    assert "no password for service 'relay', user 'anthropic'" in error.reason


@pytest.mark.parametrize("text", ["keyring:relay", "keyring:relay/", "keyring:/openai"])
def test_keyring_reference_malformed(
    registry: PluginRegistry, memory_keyring: Passwords, text: str
) -> None:
    memory_keyring[("relay", "")] = "should-never-be-read-0005"
    memory_keyring[("", "openai")] = "should-never-be-read-0005"
    error = _credential_error(registry, text)
    assert "keyring:SERVICE/USER" in error.reason


def test_unknown_scheme_lists_the_installed_ones(registry: PluginRegistry) -> None:
    error = _credential_error(registry, "vault:team/openai")
    assert "no resolver for credential scheme 'vault'" in error.reason
    assert "installed schemes: env, file, keyring" in error.reason


def test_an_unknown_scheme_never_shows_what_follows_it(registry: PluginRegistry) -> None:
    # An inline password reads as a reference of scheme "admin": the rest is the secret.
    error = _credential_error(registry, "admin:S3cretPassw0rd!")
    assert "no resolver for credential scheme 'admin'" in error.reason
    assert "S3cret" not in str(error)


class VaultPlugin:
    """An in-code plugin adding the ``vault:`` scheme."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets

    @hookimpl
    def relay_register_credential_resolvers(
        self, register: Callable[[str, Callable[[str], str]], None]
    ) -> None:
        register("vault", self.secrets.__getitem__)  # KeyError is a LookupError


def test_a_plugin_adds_a_credential_scheme(registry: PluginRegistry) -> None:
    registry.register(
        VaultPlugin({"team/openai": "vault-value-for-relay-tests-0006"}), name="vault"
    )
    assert registry.credential_schemes() == ["env", "file", "keyring", "vault"]
    secret = resolve_credential(CredentialRef.parse("vault:team/openai"), registry, where=WHERE)
    assert secret.reveal() == "vault-value-for-relay-tests-0006"
    assert secret.source == "vault:team/openai"
    error = _credential_error(registry, "vault:team/other")
    assert "credential vault:team/other cannot be resolved" in error.reason


def test_a_plugin_may_replace_a_builtin_scheme(
    registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELAY_TEST_REPLACED", raising=False)

    class FixedEnv:
        @hookimpl
        def relay_register_credential_resolvers(
            self, register: Callable[[str, Callable[[str], str]], None]
        ) -> None:
            register("env", lambda name: f"fixed-{name}-0007")

    registry.register(FixedEnv(), name="fixed-env")
    secret = resolve_credential(CredentialRef.parse("$env.RELAY_TEST_REPLACED"), registry)
    assert secret.reveal() == "fixed-RELAY_TEST_REPLACED-0007"


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (
            "providers:\n  mock:\n    options:\n      token: sk-proj-abcdefghijklmnopqrstuvwx\n",
            4,
            7,
        ),
        (
            "models:\n  a:\n    target: mock/echo\n    provider_kwargs:\n"
            "      extra_headers: [ok, sk-ant-abcdefghijklmnopqrstuvwxyz]\n",
            5,
            27,
        ),
    ],
)
def test_keys_pasted_into_free_form_sections_are_rejected(
    text: str, line: int, column: int
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_catalog(text, path="relay.yaml")
    assert (caught.value.line, caught.value.column) == (line, column)
    assert "looks like an API key" in caught.value.reason
    assert "sk-" not in str(caught.value)


def test_the_schema_checks_the_target_of_the_mapping_form_too() -> None:
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"models": {"a": {"target": "gpt4"}}}, catalog_schema())


def test_opaque_ids_are_allowed_in_options() -> None:
    catalog = parse_catalog(
        "providers:\n  openai:\n    options:\n"
        "      organization: org-AbCdEfGhIjKlMnOpQrStUvWx\n"
        "      project: proj_AbCdEfGhIjKlMnOpQrStUvWx\n"
    )
    assert catalog.providers["openai"].options["project"] == "proj_AbCdEfGhIjKlMnOpQrStUvWx"


def test_a_catalog_of_nested_aliases_is_refused_at_the_entry_that_expands() -> None:
    # "Billion laughs": 12 short lines that stand for 5**11 values.
    lines = ['l0: &l0 ["lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 5) + "]" for i in range(1, 12)]
    with pytest.raises(ConfigError, match="aliases are expanded") as caught:
        parse_catalog("\n".join(lines) + "\n")
    assert (caught.value.line or 0) > 1  # at the entry that expands, not the first anchor


def test_a_catalog_may_share_blocks_through_aliases() -> None:
    catalog = parse_catalog(
        "models:\n"
        "  a: {target: mock/echo, params: &params {temperature: 0.2, max_tokens: 64}}\n"
        "  b: {target: mock/echo, params: *params}\n"
    )
    assert catalog.models["a"].params == catalog.models["b"].params


def test_plugins_keep_their_settings_in_the_catalog_and_point_errors_at_them() -> None:
    catalog = parse_catalog("plugins:\n  serve:\n    port: 8080\n    keys: [{name: ci}]\n")
    assert catalog.plugins == {"serve": {"port": 8080, "keys": [{"name": "ci"}]}}
    error = catalog.error("serve: a key needs a hash", ("plugins", "serve", "keys", 0))
    assert (error.line, error.column) == (4, 12)
    with pytest.raises(ConfigError, match="plugins"):
        parse_catalog("plugins:\n  serve: 5\n")


def test_optional_is_taken_out_of_a_plugin_section() -> None:
    """``optional`` is the catalog's word about a section; its plugin never sees it."""
    catalog = parse_catalog("plugins:\n  audit: {optional: true, sinks: []}\n  otel: {}\n")
    assert catalog.plugins == {"audit": {"sinks": []}, "otel": {}}
    assert catalog.optional_plugins == {"audit"}


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """The keyring library as on a headless Linux: no backend at all."""
    import keyring.backends.fail

    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def test_a_keyring_reference_without_a_keyring_says_what_to_do(
    registry: PluginRegistry, no_keyring: None
) -> None:
    error = _credential_error(registry, "keyring:relay/openai")
    assert "keyring:relay/openai" in error.reason
    assert "no system keyring is available" in error.reason
    assert "keyrings.alt" in error.reason
    assert "$env.NAME or file:PATH" in error.reason


def test_a_call_without_a_keyring_raises_a_credential_error(
    make_hub: Callable[..., Any], no_keyring: None
) -> None:
    hub = make_hub("providers:\n  scripted:\n    api_key: keyring:relay/scripted\n")
    with pytest.raises(CredentialError, match="no system keyring is available") as caught:
        hub.chat("scripted/one", "hi")
    assert (caught.value.line, caught.value.column) == (3, 5)


def test_a_catalog_too_large_is_refused_by_size_before_it_is_parsed(tmp_path: Path) -> None:
    import time

    entry = "  model-{n:07d}: {{target: openai/gpt-4o, description: a model among many}}\n"
    body = "".join(entry.format(n=n) for n in range(10_000))
    path = tmp_path / "huge.yaml"
    with path.open("w", encoding="utf-8") as out:
        out.write("models:\n")
        while out.tell() < 50 * 1024 * 1024:
            out.write(body)
        out.truncate(50 * 1024 * 1024)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    took = time.perf_counter() - started
    assert took < 0.5, f"refusing a 50 MB catalog took {took:.2f} s"
    assert caught.value.file == str(path)
    assert "the catalog is too large: 50.0 MiB, more than the 4 MiB" in caught.value.reason
    assert "alias" not in caught.value.reason
    text = path.read_text(encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"too large: 50\.0 MiB"):
        parse_catalog(text, path="huge.yaml")
    assert time.perf_counter() - started < 0.5


def test_a_catalog_of_thousands_of_models_is_within_the_size_limit() -> None:
    entry = "  model-{n:05d}: {{target: openai/gpt-4o, description: a model among many}}\n"
    text = "models:\n" + "".join(entry.format(n=n) for n in range(5_000))
    assert len(parse_catalog(text).models) == 5_000
