"""Plugin discovery: in-code registration, entry points, allow and block lists, clashes,
lazy adapters, and a plugin built and pip-installed elsewhere."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from relay_core import (
    ConfigError,
    PluginBlocked,
    PluginBroken,
    PluginNotInstalled,
    PluginRegistry,
    PluginWarning,
    ProviderConflict,
    hookimpl,
)
from relay_core.plugins import distribution_for


class Registers:
    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def relay_register_providers(self, register: Any) -> None:
        for name in self.names:
            register(
                name, "tests.missing_module:Adapter", defaults={"base_url": f"https://{name}.test"}
            )


def test_in_code_registration_runs_registration_hooks_at_once() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(Registers("alpha", "beta"), name="mine")
    providers = registry.providers()
    assert set(providers) == {"alpha", "beta"}
    assert providers["alpha"].plugin == "mine"
    assert providers["alpha"].defaults == {"base_url": "https://alpha.test"}


def test_a_provider_registered_twice_names_both_plugins() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(Registers("alpha"), name="first")
    with pytest.raises(
        ProviderConflict, match="'alpha' is registered by both 'first' and 'second'"
    ) as caught:
        registry.register(Registers("gamma", "alpha"), name="second")
    assert isinstance(caught.value, ConfigError)
    assert caught.value.plugins == ("first", "second")
    # Refused as a whole: nothing of the second plugin stays behind.
    assert set(registry.providers()) == {"alpha"}
    assert registry.provider("alpha").plugin == "first"
    assert "second" not in {info.name for info in registry.plugins()}


def test_unknown_provider_names_the_distribution() -> None:
    registry = PluginRegistry(autoload=False)
    with pytest.raises(PluginNotInstalled) as caught:
        registry.provider("groq")
    assert caught.value.distribution == "relay-openai-compat"
    assert distribution_for("acme") is None


def test_a_misspelt_provider_suggests_the_name_not_a_package() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(Registers("scripted"), name="mine")
    with pytest.raises(PluginNotInstalled) as caught:
        registry.provider("opneai")
    assert str(caught.value) == "provider 'opneai' is not installed; did you mean 'openai'?"
    assert caught.value.distribution is None
    assert caught.value.suggestions == ("openai",)
    # Installed names count as much as the known ones.
    with pytest.raises(PluginNotInstalled, match="did you mean 'scripted'"):
        registry.provider("scripted2")


def test_an_unknown_provider_lists_the_installed_ones_and_how_plugins_are_found() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(Registers("scripted", "local"), name="mine")
    with pytest.raises(PluginNotInstalled) as caught:
        registry.provider("zqx")
    message = str(caught.value)
    assert "pip install relay-" not in message
    assert message.startswith("provider 'zqx' is unknown: no installed plugin provides it")
    assert "installed providers: local, scripted" in message
    assert "'relay' entry point" in message
    assert caught.value.distribution is None


def test_an_adapter_that_cannot_be_imported_is_a_clear_error() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(Registers("alpha"), name="mine")
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "plugin 'mine' registered provider 'alpha' as 'tests.missing_module:Adapter'"
        ),
    ):
        registry.provider("alpha").load()


class Typo:
    @hookimpl
    def relay_register_provider(self, register: Any) -> None:  # missing "s"
        register("typo", "tests.missing_module:Adapter")


class WrongArgument:
    @hookimpl
    def relay_register_providers(self, registr: Any) -> None:
        registr("wrong", "tests.missing_module:Adapter")


def test_a_typo_in_a_hook_name_of_an_in_code_plugin_is_refused_at_once() -> None:
    registry = PluginRegistry(autoload=False)
    with pytest.raises(ConfigError) as caught:
        registry.register(Typo(), name="typo")
    assert str(caught.value) == (
        "plugin 'typo' is broken: it implements 'relay_register_provider', which is not a "
        "Relay hook; did you mean 'relay_register_providers'?"
    )
    with pytest.raises(ConfigError, match="its 'relay_register_providers' takes 'registr'"):
        registry.register(WrongArgument(), name="wrong")
    registry.load()  # nothing half-registered is left for pluggy to choke on
    assert {info.name for info in registry.plugins()} == {"relay.builtin"}


def test_builtin_credential_schemes_are_registered() -> None:
    assert PluginRegistry(autoload=False).credential_schemes() == ["env", "file", "keyring"]


def test_plugins_lists_hooks() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(Registers("alpha"), name="mine")
    infos = {info.name: info for info in registry.plugins()}
    assert infos["mine"].hooks == ("relay_register_providers",)
    assert infos["relay.builtin"].hooks == ("relay_register_credential_resolvers",)


# ---------------------------------------------------------------------------- installed plugins

PLUGIN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "relay-acme"
version = "1.2.3"
dependencies = []

[project.entry-points.relay]
acme = "relay_acme"

[tool.setuptools]
packages = ["relay_acme"]
"""

PLUGIN_INIT = '''\
"""Registration only: importing this must stay cheap."""
from relay_core import hookimpl


@hookimpl
def relay_register_providers(register):
    register("acme", "relay_acme._adapter:AcmeProvider")


@hookimpl
def relay_register_commands(cli):
    import click

    @cli.command("acme-hello")
    def hello():
        """Say hello from the acme plugin."""
        click.echo("hello from acme")
'''

PLUGIN_ADAPTER = """\
from relay_core import Capability, Provider, Response, Usage


class AcmeProvider(Provider):
    name = "acme"
    capabilities = frozenset({Capability.CHAT})

    async def chat(self, request):
        return Response(content="acme says " + request.messages[-1].text.upper(),
                        model=request.model, usage=Usage(1, 3))
"""


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the acme plugin in a temporary directory and pip-install it into a target
    directory that the subprocesses below put on their path."""
    source = tmp_path_factory.mktemp("relay-acme")
    (source / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    package = source / "relay_acme"
    package.mkdir()
    (package / "__init__.py").write_text(PLUGIN_INIT)
    (package / "_adapter.py").write_text(PLUGIN_ADAPTER)
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return target


def _run(target: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    environment.update(PYTHONPATH=str(target), **env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )


def test_an_installed_plugin_adds_cli_commands(installed_plugin: Path) -> None:
    result = _run(
        installed_plugin,
        """
        from relay_core.cli import main
        main(["acme-hello"])
    """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from acme\n"
    listing = _run(installed_plugin, "from relay_core.cli import main; main(['plugins'])")
    assert (
        "acme  (relay-acme 1.2.3)  relay_register_commands, relay_register_providers"
        in listing.stdout
    )


def test_allow_and_block_lists(installed_plugin: Path) -> None:
    code = """
        from relay_core import PluginRegistry
        print(sorted(PluginRegistry().providers()))
    """
    assert "acme" in _run(installed_plugin, code).stdout
    assert _run(installed_plugin, code, RELAY_PLUGINS="").stdout.strip() == "[]"
    assert _run(installed_plugin, code, RELAY_PLUGINS="acme").stdout.strip() == "['acme']"
    assert "acme" not in _run(installed_plugin, code, RELAY_BLOCK_PLUGINS="acme").stdout


def test_a_broken_plugin_is_reported_after_the_others_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    (tmp_path / "relay_good_plugin.py").write_text(
        textwrap.dedent(
            """
            from relay_core import hookimpl

            @hookimpl
            def relay_register_providers(register):
                register("good", "relay_good_plugin:Adapter")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = importlib.metadata.EntryPoint("broken", "relay_missing_plugin_module", "relay")
    good = importlib.metadata.EntryPoint("good", "relay_good_plugin", "relay")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [broken, good])
    registry = PluginRegistry()

    with pytest.warns(PluginWarning, match=r"plugin 'broken' is broken .* failed: Module"):
        registry.load()
    # The plugin after the broken one in entry point order is there all the same.
    assert "good" in registry.providers()
    with pytest.raises(PluginBroken, match="plugin 'broken' is broken and was not loaded"):
        registry.provider("broken")
    infos = {info.name: info for info in registry.plugins()}
    assert infos["broken"].status == "broken"
    assert "No module named 'relay_missing_plugin_module'" in (infos["broken"].reason or "")


GOOD_PLUGIN = """
from relay_core import Capability, Provider, Response, Usage, hookimpl


class GoodProvider(Provider):
    name = "good"
    capabilities = frozenset({Capability.CHAT})

    async def chat(self, request):
        return Response(content="good says " + request.messages[-1].text,
                        model=request.model, usage=Usage(1, 1))


@hookimpl
def relay_register_providers(register):
    register("good", "relay_fine_plugin:GoodProvider")
"""

TYPO_PLUGIN = """
from relay_core import hookimpl


@hookimpl
def relay_register_provider(register):
    register("typo", "relay_typo_plugin:Nothing")
"""

WRONG_ARGUMENT_PLUGIN = """
from relay_core import hookimpl


@hookimpl
def relay_register_providers(registr):
    registr("wrong", "relay_wrong_plugin:Nothing")
"""


@pytest.fixture
def broken_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry points for a good plugin between one with a misspelt hook and one whose hook
    takes an argument the spec does not pass."""
    import importlib.metadata

    modules = {
        "relay_typo_plugin": TYPO_PLUGIN,
        "relay_fine_plugin": GOOD_PLUGIN,
        "relay_wrong_plugin": WRONG_ARGUMENT_PLUGIN,
    }
    for module, text in modules.items():
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [
        importlib.metadata.EntryPoint("typo", "relay_typo_plugin", "relay"),
        importlib.metadata.EntryPoint("good", "relay_fine_plugin", "relay"),
        importlib.metadata.EntryPoint("wrong", "relay_wrong_plugin", "relay"),
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: found)


@pytest.mark.usefixtures("broken_entry_points")
def test_a_plugin_with_a_misspelt_hook_is_left_out_and_the_others_work() -> None:
    from relay_core import Hub

    hub = Hub()
    with pytest.warns(PluginWarning) as warned:
        hub.plugins.load()
    with hub:
        assert hub.chat("good/x", "hi").text == "good says hi"
    messages = [str(w.message) for w in warned]
    assert len(messages) == 2
    assert messages[0].startswith(
        "relay plugin 'typo' is broken and was not loaded: it implements "
        "'relay_register_provider', which is not a Relay hook; did you mean "
        "'relay_register_providers'?"
    )
    assert messages[0].endswith(
        "'relay_register_providers'? The other plugins work; fix or uninstall it, or set "
        "RELAY_BLOCK_PLUGINS=typo to skip it"
    )
    assert "relay plugin 'wrong' is broken" in messages[1]
    assert "its 'relay_register_providers' takes 'registr'" in messages[1]

    with pytest.raises(PluginBroken) as caught:
        hub.plugins.provider("typo")
    assert caught.value.plugin == "typo"
    assert "did you mean 'relay_register_providers'?" in caught.value.cause
    assert "not installed" not in str(caught.value)
    infos = {info.name: info for info in hub.plugins.plugins()}
    assert (infos["typo"].status, infos["wrong"].status, infos["good"].status) == (
        "broken",
        "broken",
        "loaded",
    )


@pytest.mark.usefixtures("broken_entry_points")
def test_the_command_line_reports_a_broken_plugin_and_keeps_working(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from relay_core import cli as cli_module

    monkeypatch.setattr(cli_module, "_shared_registry", None)
    monkeypatch.setattr(cli_module.cli, "commands", dict(cli_module.cli.commands))
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    cli_module._add_plugin_commands()  # what `relay ...` does first: warnings, one line each
    warned = capsys.readouterr().err.splitlines()
    assert [line.partition(" and ")[0] for line in warned] == [
        "warning: relay plugin 'typo' is broken",
        "warning: relay plugin 'wrong' is broken",
    ]
    assert "did you mean 'relay_register_providers'?" in warned[0]
    runner = CliRunner()

    helped = runner.invoke(cli_module.cli, ["--help"])
    assert helped.exit_code == 0
    listed = runner.invoke(cli_module.cli, ["plugins"])
    assert listed.exit_code == 0
    assert (
        "typo  (built in)  BROKEN: it implements 'relay_register_provider', which is not a "
        "Relay hook; did you mean 'relay_register_providers'?"
    ) in listed.output
    assert runner.invoke(cli_module.cli, ["chat", "good/x", "hi"]).output == "good says hi\n"
    refused = runner.invoke(cli_module.cli, ["chat", "typo/x", "hi"])
    assert refused.exit_code == 2
    assert refused.output.startswith(
        "error: provider 'typo' is not available: plugin 'typo' is broken and was not loaded"
    )
    assert refused.exception is None or isinstance(refused.exception, SystemExit)


def test_a_registration_hook_that_raises_leaves_its_plugin_out_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    (tmp_path / "relay_half_plugin.py").write_text(
        textwrap.dedent(
            """
            from relay_core import hookimpl

            @hookimpl
            def relay_register_providers(register):
                register("half", "relay_half_plugin:Adapter")
                raise RuntimeError("no config file")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    half = importlib.metadata.EntryPoint("half", "relay_half_plugin", "relay")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [half])
    registry = PluginRegistry()
    with pytest.warns(PluginWarning, match="relay_register_providers raised RuntimeError"):
        registry.load()
    with pytest.raises(PluginBroken, match="no config file"):
        registry.provider("half")


def test_a_plugin_blocked_in_code_is_said_to_be_blocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    (tmp_path / "relay_fine_plugin.py").write_text(textwrap.dedent(GOOD_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    good = importlib.metadata.EntryPoint("good", "relay_fine_plugin", "relay")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [good])
    with pytest.raises(PluginBlocked, match=r"'good' is installed but blocked in code"):
        PluginRegistry(block=["good"]).provider("good")
    with pytest.raises(PluginBlocked, match="not in the allow= list"):
        PluginRegistry(allow=["other"]).provider("good")
    registry = PluginRegistry()
    assert registry.provider("good").plugin == "good"
    registry.block("good")
    with pytest.raises(PluginBlocked, match="blocked in code") as caught:
        registry.provider("good")
    assert caught.value.by.startswith("blocked in code")


def test_an_installed_but_blocked_plugin_says_what_blocked_it(installed_plugin: Path) -> None:
    code = """
        from relay_core import PluginBlocked, PluginRegistry
        try:
            PluginRegistry().provider("acme")
        except PluginBlocked as error:
            print(error)
    """
    by_env = _run(installed_plugin, code, RELAY_BLOCK_PLUGINS="acme").stdout
    assert by_env == (
        "provider 'acme' is not available: plugin 'acme' (relay-acme) is installed but "
        "blocked by RELAY_BLOCK_PLUGINS (remove 'acme' from it to load it)\n"
    )
    by_allow_list = _run(installed_plugin, code, RELAY_PLUGINS="other").stdout
    assert "is installed but not in the RELAY_PLUGINS allow-list" in by_allow_list
    cli = _run(
        installed_plugin,
        "from relay_core.cli import main; main(['chat', 'acme/x', 'hi'])",
        RELAY_BLOCK_PLUGINS="acme",
    )
    assert cli.returncode == 2
    assert "blocked by RELAY_BLOCK_PLUGINS" in cli.stderr
    assert "pip install" not in cli.stderr
    assert "Traceback" not in cli.stderr
    listing = _run(
        installed_plugin, "from relay_core.cli import main; main(['plugins'])", RELAY_PLUGINS=""
    )
    assert (
        "acme  (relay-acme 1.2.3)  not loaded: not in the RELAY_PLUGINS allow-list"
        in listing.stdout
    )


CLASHING_INIT = """\
from relay_core import hookimpl


@hookimpl
def relay_register_providers(register):
    register("acme", "relay_acme_{n}._adapter:AcmeProvider")
    register("acme-{n}", "relay_acme_{n}._adapter:AcmeProvider")
"""


@pytest.fixture(scope="module")
def clashing_plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two distributions, relay-acme-one and relay-acme-two, that both register the
    provider ``acme`` (and one provider of their own each), pip-installed together."""
    target = tmp_path_factory.mktemp("clash-site")
    for n in ("one", "two"):
        source = tmp_path_factory.mktemp(f"relay-acme-{n}")
        (source / "pyproject.toml").write_text(
            PLUGIN_PYPROJECT.replace('name = "relay-acme"', f'name = "relay-acme-{n}"')
            .replace('acme = "relay_acme"', f'acme{n} = "relay_acme_{n}"')
            .replace('packages = ["relay_acme"]', f'packages = ["relay_acme_{n}"]')
        )
        package = source / f"relay_acme_{n}"
        package.mkdir()
        (package / "__init__.py").write_text(CLASHING_INIT.format(n=n))
        (package / "_adapter.py").write_text(PLUGIN_ADAPTER)
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"),
                *("--no-build-isolation", "--target", str(target), str(source)),
            ],
            check=True,
            capture_output=True,
        )
    return target


def test_two_installed_plugins_registering_one_provider_is_an_error(
    clashing_plugins: Path,
) -> None:
    result = _run(
        clashing_plugins,
        """
        import json
        from relay_core import Hub, ProviderConflict
        out = {}
        with Hub() as hub:
            for attempt in ("first", "second"):
                try:
                    hub.chat("acme/x", "hi")
                    out[attempt] = "answered"
                except ProviderConflict as error:
                    out[attempt] = [str(error), list(error.plugins), list(error.distributions)]
            out["one"] = hub.chat("acme-one/x", "hi").text
            out["two"] = hub.chat("acme-two/x", "hi").text
        print(json.dumps(out))
    """,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    # The error every time, not just on the first call (it used to work after that).
    assert out["first"] == out["second"]
    message, plugins, distributions = out["first"]
    assert sorted(plugins) == ["acmeone", "acmetwo"]
    assert sorted(distributions) == ["relay-acme-one", "relay-acme-two"]
    assert "provider 'acme' is registered by both" in message
    for plugin, distribution in (("acmeone", "relay-acme-one"), ("acmetwo", "relay-acme-two")):
        assert f"'{plugin}' ({distribution})" in message
        assert f"RELAY_BLOCK_PLUGINS={plugin}" in message
    # The other providers of both plugins work.
    assert out["one"] == out["two"] == "acme says HI"

    helped = _run(clashing_plugins, "from relay_core.cli import main; main(['--help'])")
    assert helped.returncode == 0
    assert helped.stderr == ""
    called = _run(
        clashing_plugins, "from relay_core.cli import main; main(['chat', 'acme/x', 'hi'])"
    )
    assert called.returncode == 2
    assert called.stderr.startswith("error: provider 'acme' is registered by both")
    assert "Traceback" not in called.stderr
    listing = _run(clashing_plugins, "from relay_core.cli import main; main(['plugins'])")
    assert "    conflict: provider 'acme' is registered by 'acmetwo' too" in listing.stdout
    assert "    conflict: provider 'acme' is registered by 'acmeone' too" in listing.stdout
    chosen = _run(
        clashing_plugins,
        "from relay_core.cli import main; main(['chat', 'acme/x', 'hi'])",
        RELAY_BLOCK_PLUGINS="acmetwo",
    )
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout == "acme says HI\n"
