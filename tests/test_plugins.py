"""Plugin discovery: in-code registration, entry points, allow and block lists, clashes,
lazy adapters, and a plugin built and pip-installed elsewhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from relay_core import ConfigError, PluginNotInstalled, PluginRegistry, hookimpl
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
    with pytest.raises(ConfigError, match="'alpha' is registered by both 'first' and 'second'"):
        registry.register(Registers("alpha"), name="second")


def test_unknown_provider_names_the_distribution() -> None:
    registry = PluginRegistry(autoload=False)
    with pytest.raises(PluginNotInstalled) as caught:
        registry.provider("groq")
    assert caught.value.distribution == "relay-openai-compat"
    assert distribution_for("acme") == "relay-acme"


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


def test_a_typo_in_a_hook_name_is_caught() -> None:
    from pluggy import PluginValidationError

    class Typo:
        @hookimpl
        def relay_register_provider(self, register: Any) -> None:  # missing "s"
            pass

    registry = PluginRegistry(autoload=False)
    registry.register(Typo(), name="typo")
    with pytest.raises(PluginValidationError, match="relay_register_provider"):
        registry.load()


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

    with pytest.raises(ConfigError, match=r"plugin 'broken' .* failed to import"):
        registry.load()
    # The plugin after the broken one in entry point order is there all the same.
    assert "good" in registry.providers()
