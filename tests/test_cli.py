"""The ``relay`` command line, run as a user would, with an in-code provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from relay_core import PluginRegistry, hookimpl
from relay_core import cli as cli_module
from relay_core.cli import cli
from relay_core.testing import memory_keyring as in_memory_keyring

CATALOG = """\
providers:
  scripted: {max_retries: 0}
models:
  fast: {target: scripted/one, description: test model}
  plain: chatonly/x
groups:
  both: {strategy: fallback, members: [fast, plain]}
"""


@pytest.fixture
def runner(scripted: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    registry = PluginRegistry(autoload=False)
    registry.register(scripted, name="scripted")
    monkeypatch.setattr(cli_module, "_shared_registry", registry)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relay.yaml").write_text(CATALOG)
    return CliRunner()


def test_validate_ok(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.output == "relay.yaml: ok — 2 models, 1 groups, 1 providers\n"


def test_validate_reports_file_line_column(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text(
        "models:\n  fast:\n    target: scripted/one\n    parms: {}\n"
    )
    result = runner.invoke(cli, ["validate", "typo.yaml"])
    assert result.exit_code == 2
    assert result.output == "typo.yaml:4:5: error: unknown field 'parms'; did you mean 'params'?\n"


def test_validate_reports_a_missing_plugin_where_it_is_used(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "c.yaml").write_text(
        "models:\n  claude:\n    target: anthropic/claude-sonnet-4-5\n"
    )
    result = runner.invoke(cli, ["validate", "c.yaml"])
    assert result.exit_code == 2
    assert result.output == (
        "c.yaml:3:5: error: provider 'anthropic' is not installed; pip install relay-anthropic\n"
    )


def test_validate_resolves_credentials(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "k.yaml").write_text("providers:\n  scripted:\n    api_key: $env.SCRIPTED_KEY\n")
    monkeypatch.delenv("SCRIPTED_KEY", raising=False)
    result = runner.invoke(cli, ["validate", "k.yaml"])
    assert result.exit_code == 2
    assert "k.yaml:3:5: error: credential $env.SCRIPTED_KEY cannot be resolved" in result.output
    assert runner.invoke(cli, ["validate", "--no-credentials", "k.yaml"]).exit_code == 0
    monkeypatch.setenv("SCRIPTED_KEY", "sk-cli-test-secret-999999999")
    ok = runner.invoke(cli, ["validate", "k.yaml"])
    assert ok.exit_code == 0
    assert "sk-cli-test-secret" not in ok.output


@pytest.mark.parametrize(
    "value", ["admin:S3cretPassw0rd!", "https://admin:S3cretPassw0rd!@vault.example/k"]
)
def test_validate_never_echoes_an_inline_credential(
    runner: CliRunner, tmp_path: Path, value: str
) -> None:
    (tmp_path / "inline.yaml").write_text(f'providers:\n  scripted:\n    api_key: "{value}"\n')
    result = runner.invoke(cli, ["validate", "inline.yaml"])
    assert result.exit_code == 2
    assert result.output.startswith("inline.yaml:3:5: error: no resolver for credential scheme")
    assert "S3cret" not in result.output


def test_validate_refuses_a_credential_file_every_user_may_read_when_strict(
    runner: CliRunner, tmp_path: Path
) -> None:
    key = tmp_path / "scripted.key"
    key.write_text("strict-mode-value-for-cli-tests-0006\n")
    key.chmod(0o604)
    (tmp_path / "strict.yaml").write_text(
        "defaults:\n  strict_credential_files: true\n"
        f"providers:\n  scripted:\n    api_key: file:{key}\n"
    )
    result = runner.invoke(cli, ["validate", "strict.yaml"])
    assert result.exit_code == 2
    assert result.output.startswith(f"strict.yaml:5:5: error: credential file:{key} cannot")
    assert f"chmod o-rwx {key}" in result.output
    assert "strict-mode-value" not in result.output
    key.chmod(0o600)
    assert runner.invoke(cli, ["validate", "strict.yaml"]).exit_code == 0


def test_schema_is_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output)["title"] == "Relay catalog"


def test_models_list_and_inspect(runner: CliRunner) -> None:
    listed = runner.invoke(cli, ["models", "list"])
    assert listed.exit_code == 0
    assert listed.output.splitlines() == [
        "fast   scripted/one  (scripted)  test model",
        "plain  chatonly/x  (scripted)",
        "both   [fallback] fast, plain",
    ]
    rows = json.loads(runner.invoke(cli, ["models", "list", "--json"]).output)
    assert rows[0] == {
        "alias": "fast",
        "kind": "model",
        "target": "scripted/one",
        "description": "test model",
        "plugin": "scripted",
        "installed": True,
    }
    inspected = json.loads(runner.invoke(cli, ["models", "inspect", "fast"]).output)
    assert inspected["target"] == "scripted/one"
    assert inspected["capabilities"] == ["chat", "stream", "structured_output", "tools"]
    assert inspected["prompt_caching"] == "none"
    assert inspected["price_source"] == "unknown"
    missing = runner.invoke(cli, ["models", "inspect", "nope"])
    assert missing.exit_code == 2
    assert "unknown model 'nope'" in missing.output


def test_providers_and_plugins(runner: CliRunner) -> None:
    providers = runner.invoke(cli, ["providers"])
    assert providers.exit_code == 0
    assert (
        "scripted  (scripted; no key needed)  chat, stream, structured_output, tools"
        in providers.output
    )
    plugins = runner.invoke(cli, ["plugins", "--json"])
    names = [p["name"] for p in json.loads(plugins.output)]
    assert names == ["relay.builtin", "scripted"]


def test_chat_plain_stream_and_json(runner: CliRunner, scripted: Any) -> None:
    plain = runner.invoke(
        cli, ["chat", "fast", "hello world", "-p", "temperature=0.3", "-s", "Be brief."]
    )
    assert plain.exit_code == 0, plain.output
    assert plain.output == "echo: hello world\n"
    assert scripted.received[-1].config.temperature == 0.3
    assert scripted.received[-1].system == "Be brief."

    streamed = runner.invoke(cli, ["chat", "fast", "one two", "--stream"])
    assert streamed.output == "echo: one two\n"

    as_json = json.loads(runner.invoke(cli, ["chat", "fast", "hi", "--json"]).output)
    assert as_json["content"] == [{"type": "text", "text": "echo: hi"}]
    assert as_json["provider"] == "scripted"

    events = [
        json.loads(line)
        for line in runner.invoke(
            cli, ["chat", "fast", "a b", "--stream", "--json"]
        ).output.splitlines()
    ]
    assert [e["type"] for e in events] == ["text_delta", "text_delta", "text_delta", "usage", "end"]


def test_chat_with_a_toolset_runs_the_tool_loop(
    runner: CliRunner, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay_core import Response, ToolCallPart, Usage, hookimpl
    from relay_core.tools import FunctionToolset

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    class Offers:
        @hookimpl
        def relay_toolsets(self) -> list[Any]:
            return [FunctionToolset("math", add)]

    cli_module._shared_registry.register(Offers(), name="offers")
    ask = Response(
        content=[ToolCallPart("c1", "add", {"a": 2, "b": 40})],
        finish_reason="tool_calls",
        usage=Usage(1, 1),
    )
    scripted.script["one"] = [ask, Response(content="42", usage=Usage(1, 1))]

    result = runner.invoke(cli, ["chat", "fast", "2 + 40?", "--toolset", "math"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "42\n"
    assert result.stderr == '[step 1] math.add({"a": 2, "b": 40}) ok\n'
    assert scripted.received[1].messages[-1].content[0].content == "42"
    unknown = runner.invoke(cli, ["chat", "fast", "hi", "--toolset", "mail"])
    assert unknown.exit_code != 0
    assert "no toolset named 'mail'; the hub has: math" in unknown.output


def test_chat_exit_codes(runner: CliRunner, scripted: Any) -> None:
    from relay_core import AuthenticationError

    missing = runner.invoke(cli, ["chat", "anthropic/claude-sonnet-4-5", "hi"])
    assert missing.exit_code == 2
    assert (
        missing.output
        == "error: provider 'anthropic' is not installed; pip install relay-anthropic\n"
    )

    scripted.script["one"] = [AuthenticationError("invalid x-api-key", provider="scripted")]
    failed = runner.invoke(cli, ["chat", "fast", "hi"])
    assert failed.exit_code == 1
    assert failed.output == "error: authentication failed (scripted/one): invalid x-api-key\n"

    usage = runner.invoke(cli, ["chat", "fast"])
    assert usage.exit_code == 2
    bad_param = runner.invoke(cli, ["chat", "fast", "x", "-p", "novalue"])
    assert bad_param.exit_code == 2


def test_chat_with_unsupported_capability_fails(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["chat", "plain", "x", "--stream"])
    assert result.exit_code == 1
    assert result.output == "error: chatonly/x does not support stream\n"


def test_chat_reads_the_prompt_from_stdin(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["chat", "fast", "-"], input="from a pipe")
    assert result.exit_code == 0
    assert result.output == "echo: from a pipe\n"


def test_a_broken_plugin_does_not_break_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from relay_core import ConfigError

    class Broken(PluginRegistry):
        def load(self) -> None:
            raise ConfigError("plugin 'bad' (from relay-bad) failed to import: boom")

    monkeypatch.setattr(cli_module, "_shared_registry", Broken(autoload=False))
    with pytest.raises(SystemExit) as exited:
        cli_module.main(["--help"])
    assert exited.value.code == 0
    captured = capsys.readouterr()
    assert "warning: plugin 'bad' (from relay-bad) failed to import: boom" in captured.err
    assert "Usage: relay" in captured.out


def test_a_misspelt_provider_is_answered_with_the_name_meant(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["chat", "opneai/gpt-4o", "hi"])
    assert result.exit_code == 2
    assert result.output == "error: provider 'opneai' is not installed; did you mean 'openai'?\n"
    near = runner.invoke(cli, ["chat", "scriptd/one", "hi"])
    assert near.output == "error: provider 'scriptd' is not installed; did you mean 'scripted'?\n"
    unknown = runner.invoke(cli, ["chat", "zqx/one", "hi"])
    assert unknown.exit_code == 2
    assert unknown.output.startswith(
        "error: provider 'zqx' is unknown: no installed plugin provides it "
        "(installed providers: chatonly, scripted)."
    )
    assert "pip install relay-" not in unknown.output


def test_validate_lists_every_field_mistake(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "many.yaml").write_text(
        "models:\n"
        "  a: {target: scripted/one, params: {temperature: hot}}\n"
        "  b: {target: scripted/two, parms: {}}\n"
        "defaults: {timeout: soon}\n"
    )
    result = runner.invoke(cli, ["validate", "many.yaml"])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "many.yaml:2:38: error: models.a.params.temperature: expected float, got str 'hot'",
        "many.yaml:3:29: error: unknown field 'parms'; did you mean 'params'?",
        "many.yaml:4:12: error: defaults.timeout: expected float, got str 'soon'",
    ]


def test_models_list_says_what_to_install(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "providers:\n  local: {plugin: scripted}\n"
        "models:\n  claude: anthropic/claude-sonnet-4-5\n  mine: local/x\n"
    )
    listed = runner.invoke(cli, ["-c", "m.yaml", "models", "list"])
    assert listed.exit_code == 0
    assert listed.output.splitlines() == [
        "claude  anthropic/claude-sonnet-4-5  (not installed: pip install relay-anthropic)",
        "mine    local/x  (scripted)",
    ]
    rows = json.loads(runner.invoke(cli, ["-c", "m.yaml", "models", "list", "--json"]).output)
    assert rows[0]["installed"] is False
    assert rows[0]["install"] == "relay-anthropic"


@pytest.mark.parametrize(
    ("command", "distribution"), [("serve", "relay-serve"), ("dashboard", "relay-dashboard")]
)
def test_a_command_of_a_plugin_not_installed_says_what_to_install(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: str, distribution: str
) -> None:
    monkeypatch.setattr(cli, "commands", dict(cli.commands))
    cli_module._add_plugin_commands()
    result = runner.invoke(cli, [command, "--port", "8000"])
    assert result.exit_code == 2
    assert f"pip install {distribution}" in result.output
    listing = runner.invoke(cli, ["--help"])
    assert f"(not installed: pip install {distribution})" in listing.output


@pytest.fixture
def memory_keyring() -> Iterator[dict[tuple[str, str], str]]:
    with in_memory_keyring() as passwords:
        yield passwords


KEY = "sk-proj-keyring-cli-test-0123456789abcdefABCDEF"


def test_auth_set_stores_the_key_without_echoing_it(
    runner: CliRunner, memory_keyring: Any, tmp_path: Path
) -> None:
    result = runner.invoke(cli, ["auth", "set", "scripted"], input=KEY + "\n")
    assert result.exit_code == 0, result.output
    assert memory_keyring == {("relay", "scripted"): KEY}
    assert KEY not in result.output
    assert "providers.scripted.api_key: keyring:relay/scripted" in result.output
    # The catalog can now name it, and the provider gets it.
    (tmp_path / "k.yaml").write_text(
        "providers:\n  scripted:\n    api_key: keyring:relay/scripted\n"
    )
    validated = runner.invoke(cli, ["validate", "k.yaml"])
    assert validated.exit_code == 0, validated.output
    assert KEY not in validated.output


def test_auth_set_refuses_an_empty_key(runner: CliRunner, memory_keyring: Any) -> None:
    result = runner.invoke(cli, ["auth", "set", "scripted"], input="\n")
    assert result.exit_code == 2
    assert memory_keyring == {}


def test_auth_delete(runner: CliRunner, memory_keyring: Any) -> None:
    memory_keyring[("relay", "scripted")] = KEY
    assert runner.invoke(cli, ["auth", "delete", "scripted"]).exit_code == 0
    assert memory_keyring == {}
    missing = runner.invoke(cli, ["auth", "delete", "scripted"])
    assert missing.exit_code == 1
    assert "no key for keyring:relay/scripted" in missing.output


def test_validate_checks_plugin_settings(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay_core import hookimpl

    class Strict:
        @hookimpl
        def relay_configure(self, catalog: Any) -> None:
            if catalog.plugins.get("strict", {}).get("level") not in (None, 1, 2):
                raise catalog.error("level must be 1 or 2", ("plugins", "strict", "level"))

    cli_module._shared_registry.register(Strict(), name="strict")  # type: ignore[union-attr]
    (tmp_path / "p.yaml").write_text("plugins:\n  strict:\n    level: 7\n")
    result = runner.invoke(cli, ["validate", "p.yaml"])
    assert result.exit_code == 2
    assert result.output == "p.yaml:3:5: error: level must be 1 or 2\n"


def test_catalog_path_is_the_one_every_command_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay_core.cli import catalog_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    assert catalog_path() is None
    (tmp_path / "relay.yaml").write_text("")
    assert catalog_path() == "relay.yaml"
    monkeypatch.setenv("RELAY_CONFIG", "env.yaml")
    assert catalog_path() == "env.yaml"
    seen: list[str | None] = []

    @click.group()
    @click.option("--config")
    def root(config: str | None) -> None:
        pass

    @root.command()
    @click.option("--config", "own")
    def sub(own: str | None) -> None:
        seen.append(catalog_path(own))

    CliRunner().invoke(root, ["--config", "root.yaml", "sub"])
    CliRunner().invoke(root, ["--config", "root.yaml", "sub", "--config", "own.yaml"])
    assert seen == ["root.yaml", "own.yaml"]


# ---------------------------------------------------------------------------- plugin sections


class Guarding:
    """A plugin reading plugins.guardrails, declared the way Relay's own plugins do."""

    @hookimpl
    def relay_register_settings(self, register: Any) -> None:
        register("guardrails", fields=("max_input_tokens", "blocked_patterns"))


class Listening:
    """A plugin whose settings only its own command reads: declared with a check."""

    @hookimpl
    def relay_register_settings(self, register: Any) -> None:
        def check(catalog: Any) -> None:
            port = catalog.plugins["dashboard"].get("port", 8765)
            if not isinstance(port, int):
                raise catalog.error("port must be a number", ("plugins", "dashboard", "port"))

        register("dashboard", fields=("host", "port"), check=check)


@pytest.fixture
def sections(runner: CliRunner) -> CliRunner:
    registry = cli_module._shared_registry
    assert registry is not None
    registry.register(Guarding(), name="guarding")
    registry.register(Listening(), name="listening")
    return runner


def test_validate_refuses_a_misspelt_plugin_section(sections: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("plugins:\n  guardrail:\n    max_input_tokens: 5\n")
    result = sections.invoke(cli, ["validate", "p.yaml"])
    assert result.exit_code == 2
    assert result.output == (
        "p.yaml:2:3: error: no installed plugin reads plugins.guardrail; "
        "did you mean 'guardrails'?\n"
    )


def test_validate_names_the_plugin_to_install_for_a_known_section(
    sections: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text("plugins:\n  redact:\n    mode: mask\n  auidt: {}\n")
    result = sections.invoke(cli, ["validate", "p.yaml"])
    assert result.exit_code == 2
    assert result.output == (
        "p.yaml:2:3: error: plugins.redact configures the relay-redact plugin, which is not "
        "installed: pip install relay-redact (or add optional: true to go on without it)\n"
        "p.yaml:4:3: error: no installed plugin reads plugins.auidt; did you mean 'audit'? "
        "(pip install relay-audit)\n"
    )


def test_an_optional_section_without_its_plugin_is_a_warning(
    sections: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text("plugins:\n  redact:\n    optional: true\n    mode: mask\n")
    result = sections.invoke(cli, ["validate", "p.yaml"])
    assert result.exit_code == 0, result.output
    assert "p.yaml:2:3: warning: plugins.redact configures the relay-redact plugin" in result.output
    assert "ok — 0 models, 0 groups, 0 providers, 1 warning" in result.output
    assert sections.invoke(cli, ["validate", "--strict", "p.yaml"]).exit_code == 2


def test_validate_lists_every_unknown_field_of_a_plugin_section(
    sections: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(
        "plugins:\n  dashboard:\n    prot: 8000\n  guardrails:\n    max_input_token: 5\n"
    )
    result = sections.invoke(cli, ["validate", "p.yaml"])
    assert result.exit_code == 2
    assert result.output == (
        "p.yaml:3:5: error: plugins.dashboard: unknown field 'prot'; did you mean 'port'?\n"
        "p.yaml:5:5: error: plugins.guardrails: unknown field 'max_input_token'; "
        "did you mean 'max_input_tokens'?\n"
    )


def test_validate_runs_a_section_check(sections: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("plugins:\n  dashboard:\n    port: eighty\n")
    result = sections.invoke(cli, ["validate", "p.yaml"])
    assert result.exit_code == 2
    assert result.output == "p.yaml:3:5: error: port must be a number\n"


def test_a_hub_from_a_file_refuses_a_section_no_plugin_reads(tmp_path: Path) -> None:
    from relay_core import ConfigError, Hub
    from relay_core.testing import hub_for

    registry = PluginRegistry(autoload=False)
    registry.register(Guarding(), name="guarding")
    path = tmp_path / "relay.yaml"
    path.write_text("models:\n  fast: mock/echo\nplugins:\n  guardrail: {max_input_tokens: 5}\n")
    with pytest.raises(ConfigError, match="did you mean 'guardrails'") as caught:
        Hub.from_yaml(path, plugins=registry)
    assert (caught.value.line, caught.value.column) == (4, 3)
    # Built from a catalog in code, the first call refuses it: nothing runs unguarded.
    hub = hub_for(path.read_text(), Guarding())
    with pytest.raises(ConfigError, match="did you mean 'guardrails'"):
        hub.chat("fast", "hi")


# ---------------------------------------------------------------------------- credentials


class Keyed:
    """A provider whose key comes from an environment variable by default."""

    @hookimpl
    def relay_register_providers(self, register: Any) -> None:
        from relay_core import Provider

        register("keyed", Provider, defaults={"api_key_env": "KEYED_TEST_KEY"})


def test_validate_warns_of_an_unset_key_variable(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_module._shared_registry.register(Keyed(), name="keyed")  # type: ignore[union-attr]
    monkeypatch.delenv("KEYED_TEST_KEY", raising=False)
    (tmp_path / "k.yaml").write_text("models:\n  a: keyed/one\n  b: scripted/one\n")
    result = runner.invoke(cli, ["validate", "k.yaml"])
    assert result.exit_code == 0, result.output
    # scripted needs no key: only keyed is named.
    assert result.output == (
        "k.yaml:2:3: warning: provider 'keyed' needs an API key and KEYED_TEST_KEY is not "
        "set: set it, or give providers.keyed.api_key as a reference\n"
        "k.yaml: ok — 2 models, 0 groups, 0 providers, 1 warning\n"
    )
    strict = runner.invoke(cli, ["validate", "--strict", "k.yaml"])
    assert strict.exit_code == 2
    assert "k.yaml:2:3: error: provider 'keyed' needs an API key" in strict.output
    monkeypatch.setenv("KEYED_TEST_KEY", "set-for-the-test")
    assert runner.invoke(cli, ["validate", "--strict", "k.yaml"]).output == (
        "k.yaml: ok — 2 models, 0 groups, 0 providers\n"
    )


def test_validate_lists_every_bad_credential_reference(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCRIPTED_KEY", raising=False)
    monkeypatch.delenv("OTHER_KEY", raising=False)
    (tmp_path / "k.yaml").write_text(
        "providers:\n"
        "  scripted:\n    api_key: $env.SCRIPTED_KEY\n"
        "  second:\n    plugin: scripted\n    api_key: file:/nonexistent/relay.key\n"
        "  third:\n    plugin: scripted\n    api_key: $env.OTHER_KEY\n"
    )
    result = runner.invoke(cli, ["validate", "k.yaml"])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert [line.split(": error:")[0] for line in lines] == [
        "k.yaml:3:5",
        "k.yaml:6:5",
        "k.yaml:9:5",
    ]
    assert "$env.SCRIPTED_KEY" in lines[0]
    assert "file:/nonexistent/relay.key" in lines[1]
    assert "$env.OTHER_KEY" in lines[2]


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """The keyring library as on a headless Linux: no backend at all."""
    import keyring
    import keyring.backends.fail

    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def test_validate_without_a_keyring_says_what_to_do(
    runner: CliRunner, tmp_path: Path, no_keyring: None
) -> None:
    (tmp_path / "k.yaml").write_text("providers:\n  scripted:\n    api_key: keyring:relay/openai\n")
    result = runner.invoke(cli, ["validate", "k.yaml"])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.startswith(
        "k.yaml:3:5: error: credential keyring:relay/openai cannot be resolved: no system "
        "keyring is available here"
    )
    assert "keyrings.alt" in result.output


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["auth", "set", "scripted"], "the key cannot be stored"),
        (["auth", "delete", "scripted"], "no key can be deleted"),
    ],
)
def test_auth_without_a_keyring_says_what_to_do(
    runner: CliRunner, no_keyring: None, argv: list[str], says: str
) -> None:
    result = runner.invoke(cli, argv, input=KEY + "\n")
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert result.output.startswith(f"error: no system keyring is available here, so {says}")
    assert "keyrings.alt" in result.output
    assert KEY not in result.output
