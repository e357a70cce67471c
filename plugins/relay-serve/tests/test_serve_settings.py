"""plugins.serve checked with file:line errors, the key tools, rate buckets, and the
``relay serve`` / ``relay serve-key`` commands."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import relay_serve
from relay_core.cli import cli
from relay_core.config import parse_catalog
from relay_core.errors import ConfigError
from relay_serve._auth import Gatekeeper, Unauthorized
from relay_serve._settings import ApiKey, ServeSettings, hash_key, new_key

GOOD_HASH = "sha256:" + "ab" * 32


def settings_of(text: str) -> ServeSettings:
    return ServeSettings.from_catalog(parse_catalog(text, path="relay.yaml"))


def test_a_full_section_is_read() -> None:
    settings = settings_of(
        f"""\
plugins:
  serve:
    max_concurrency: 4
    max_queue: 0
    keys:
      - {{name: ci, hash: "{GOOD_HASH}", requests_per_minute: 60}}
      - {{name: me, hash: "sha256:{"cd" * 32}"}}
"""
    )
    assert settings.max_concurrency == 4
    assert settings.max_queue == 0
    assert [(k.name, k.requests_per_minute) for k in settings.keys] == [("ci", 60), ("me", None)]
    assert not settings.open


def test_no_section_means_an_open_server_with_defaults() -> None:
    settings = settings_of("models: {fast: mock/echo}\n")
    assert settings.open
    assert (settings.max_concurrency, settings.max_queue) == (16, 64)
    assert settings.max_body_bytes == 4 * 1024 * 1024
    assert (settings.allowed_hosts, settings.cors_origins) == ((), ())


def test_the_browser_and_body_settings_are_read() -> None:
    settings = settings_of(
        """\
plugins:
  serve:
    max_body_bytes: 1000
    allowed_hosts: [relay.internal, "*", "[::1]", 10.0.0.7]
    cors_origins: [https://app.example.com, "http://localhost:3000"]
"""
    )
    assert settings.max_body_bytes == 1000
    assert settings.allowed_hosts == ("relay.internal", "*", "[::1]", "10.0.0.7")
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")


def test_relay_validate_knows_every_setting(tmp_path: Path) -> None:
    from relay_serve._settings import FIELDS

    catalog = tmp_path / "relay.yaml"
    catalog.write_text(
        "plugins:\n  serve:\n    max_body_bytes: 1000\n    allowed_hosts: [relay.internal]\n"
        "    cors_origins: [https://app.example.com]\n"
    )
    seen: dict[str, tuple[str, ...]] = {}
    relay_serve.relay_register_settings(lambda name, fields, check: seen.update({name: fields}))
    assert seen == {"serve": FIELDS}
    result = CliRunner().invoke(cli, ["validate", str(catalog)])
    assert result.exit_code == 0, result.output
    catalog.write_text("plugins:\n  serve:\n    cors_origins: [https://app.example.com/path]\n")
    result = CliRunner().invoke(cli, ["validate", str(catalog)])
    assert result.exit_code == 2
    assert f"{catalog}:3:" in result.output
    assert "is not an origin" in result.output


@pytest.mark.parametrize(
    ("section", "line", "words"),
    [
        ("    max_concurrency: 0\n", 3, "max_concurrency must be a whole number >= 1"),
        ("    max_queue: -1\n", 3, "max_queue must be a whole number >= 0"),
        ("    max_queue: true\n", 3, "max_queue"),
        ("    workers: 3\n", 3, "unknown setting 'workers'"),
        ("    max_body_bytes: 0\n", 3, "max_body_bytes must be a whole number >= 1"),
        ("    max_body_bytes: 4MB\n", 3, "max_body_bytes must be a whole number"),
        ("    allowed_hosts: relay.internal\n", 3, "allowed_hosts must be a list"),
        ("    allowed_hosts:\n      - 3\n", 4, "allowed_hosts[0] must be a string"),
        (
            "    allowed_hosts:\n      - ok.example\n      - relay.internal:8000\n",
            5,
            "allowed_hosts[1]: 'relay.internal:8000' is not a host name",
        ),
        ("    allowed_hosts: [https://relay.internal]\n", 3, "is not a host name"),
        ("    allowed_hosts: [Relay.Internal]\n", 3, "lowercase"),
        ("    cors_origins: ['*']\n", 3, "cors_origins[0]: '*' is not an origin"),
        ("    cors_origins: [app.example.com]\n", 3, "is not an origin"),
        ("    cors_origins: ['https://app.example.com/']\n", 3, "is not an origin"),
        ("    keys: {name: ci}\n", 3, "keys must be a list"),
        ("    keys:\n      - {hash: x}\n", 4, "name must be a non-empty string"),
        ("    keys:\n      - name: ci\n        hash: nothex\n", 5, "hash must be 'sha256:'"),
        (
            f'    keys:\n      - {{name: ci, hash: "{GOOD_HASH}", rpm: 3}}\n',
            4,
            "unknown field 'rpm'",
        ),
        (
            f'    keys:\n      - name: ci\n        hash: "{GOOD_HASH}"\n'
            "        requests_per_minute: 0\n",
            6,
            "requests_per_minute must be a whole number >= 1",
        ),
        (
            f'    keys:\n      - {{name: ci, hash: "{GOOD_HASH}"}}\n'
            f'      - {{name: ci, hash: "sha256:{"cd" * 32}"}}\n',
            5,
            "used twice",
        ),
    ],
)
def test_mistakes_point_at_their_line(section: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_of("plugins:\n  serve:\n" + section)
    assert caught.value.file == "relay.yaml"
    assert caught.value.line == line
    assert words in caught.value.reason


def test_a_raw_key_where_the_hash_belongs_is_refused_without_being_repeated() -> None:
    key = new_key()
    with pytest.raises(ConfigError) as caught:
        settings_of(f"plugins:\n  serve:\n    keys:\n      - {{name: ci, hash: {key}}}\n")
    assert key not in str(caught.value)
    assert key[9:] not in str(caught.value)


def test_new_keys_are_random_and_hash_to_the_catalog_form() -> None:
    first, second = new_key(), new_key()
    assert first != second
    assert len(first) > 40
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", hash_key(first))
    assert hash_key(first) != hash_key(second)


def test_the_gatekeeper_lets_in_the_right_key_only() -> None:
    gate = Gatekeeper([ApiKey.from_key("ci", "k-one"), ApiKey.from_key("me", "k-two")])
    assert asyncio.run(gate.admit("Bearer k-two")).name == "me"  # type: ignore[union-attr]
    assert asyncio.run(gate.admit("bearer  k-one")).name == "ci"  # type: ignore[union-attr]
    for header in (None, "", "Bearer", "Bearer k-three", "Token k-one", "k-one"):
        with pytest.raises(Unauthorized):
            asyncio.run(gate.admit(header))


def test_an_open_gatekeeper_lets_everyone_in() -> None:
    assert asyncio.run(Gatekeeper([]).admit(None)) is None


# ---------------------------------------------------------------------------- commands


@pytest.fixture(autouse=True)
def _commands() -> None:
    # What `relay` does at start-up through the hook, without loading other plugins.
    relay_serve.relay_register_commands(cli)


def test_serve_key_prints_a_key_and_its_catalog_entry(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve-key", "--name", "ci", "--requests-per-minute", "30"])
    assert result.exit_code == 0, result.output
    key = re.search(r"^key: (\S+)$", result.output, re.M)
    entry = re.search(r"^  - (\{.*\})$", result.output, re.M)
    assert key
    assert entry
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(f"plugins:\n  serve:\n    keys:\n      - {entry[1]}\n")
    settings = ServeSettings.from_catalog(parse_catalog(catalog.read_text()))
    gate = Gatekeeper(settings.keys)
    assert asyncio.run(gate.admit(f"Bearer {key[1]}")) == ApiKey.from_key("ci", key[1], 30)


def test_serve_refuses_an_open_server_beyond_loopback() -> None:
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "without API keys" in result.output
    assert "--allow-open" in result.output


def test_serve_reports_catalog_mistakes_with_their_line(tmp_path: Path) -> None:
    catalog = tmp_path / "relay.yaml"
    catalog.write_text("plugins:\n  serve:\n    max_queue: lots\n")
    result = CliRunner().invoke(cli, ["serve", "--config", str(catalog)])
    assert result.exit_code == 2
    assert f"{catalog}:3:" in result.output
    assert "max_queue" in result.output


def test_spawn_without_llama_server_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no llama-server
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    result = CliRunner().invoke(cli, ["serve", "--spawn", "llama-cpp", "--model", str(model)])
    assert result.exit_code == 2
    assert "llama-server" in result.output
    assert "not found" in result.output


def test_spawn_needs_a_model() -> None:
    result = CliRunner().invoke(cli, ["serve", "--spawn", "llama-cpp"])
    assert result.exit_code == 2
    assert "--model" in result.output


def test_the_plugin_module_loads_no_server_code() -> None:
    # It is imported whenever plugins load (relay --help): Starlette waits for a server.
    import subprocess
    import sys

    check = "import sys, relay_serve; print(sorted({'starlette', 'uvicorn'} & set(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
