"""Each plugin's page on the site says what the installed plugin declares.

``tools/docs_plugins.py`` (the MkDocs hook) appends to each plugin's README a section
generated from the plugin's own registration hooks. These tests check that section
against what Relay's plugin registry sees, and the hook's link rewriting and nav groups,
with no site build.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from relay_core.plugins import PluginRegistry

ROOT = Path(__file__).resolve().parents[1]


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_plugins", ROOT / "tools/docs_plugins.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_plugins"] = module
    spec.loader.exec_module(module)
    return module


HOOK = _hook()
REGISTRY = PluginRegistry()
PLUGIN_OF = {info.distribution: info.name for info in REGISTRY.plugins() if info.distribution}


@pytest.mark.parametrize("plugin", HOOK.PLUGINS, ids=lambda p: p.name)
def test_the_generated_section_holds_what_the_plugin_declares(plugin: Path) -> None:
    found = HOOK.declared(plugin.name)
    assert found is not None, f"{plugin.name} is not installed"
    section = HOOK.generated_section(found)
    assert f"$ pip install {plugin.name}\n" in section
    name = PLUGIN_OF[plugin.name]
    providers = {n: e for n, e in REGISTRY.providers().items() if e.plugin == name}
    assert sorted(providers) == [p.name for p in found.providers]
    for provider, entry in providers.items():
        adapter = entry.load()
        row = next(line for line in section.splitlines() if line.startswith(f"| `{provider}` |"))
        for capability in adapter.capabilities:
            assert f"`{capability}`" in row, (provider, capability)
        key = entry.defaults.get("api_key_env", adapter.api_key_env)
        assert (f"`{key}`" if key else "| none |") in row
    sections = {n: s for n, s in REGISTRY.settings_sections().items() if s.plugin == name}
    declared_sections = {n for n, _ in found.settings}
    assert declared_sections <= set(sections)
    for section_name in declared_sections:
        assert f"`plugins.{section_name}`" in section
        for key in sections[section_name].fields or ():
            assert f"`{key}`" in section
            assert f'"{key}": {{}}' in section


def test_the_commands_a_plugin_adds_are_on_its_page() -> None:
    section = HOOK.generated_section(HOOK.declared("relay-serve"))
    for command in ("serve", "serve-key", "spend", "keys"):
        assert f"| `relay {command}` |" in section


def test_other_registrations_are_listed() -> None:
    assert "`vault:`" in HOOK.generated_section(HOOK.declared("relay-secrets-vault"))
    assert "`ray`" in HOOK.generated_section(HOOK.declared("relay-ray"))
    assert "tier `snapshot`" in HOOK.generated_section(HOOK.declared("relay-mock"))


def test_plugins_are_grouped_by_the_hooks_they_implement() -> None:
    groups = {p.name: HOOK.group_of(HOOK.declared(p.name).hooks) for p in HOOK.PLUGINS}
    assert groups["relay-openai"] == groups["relay-mock"] == "Providers"
    assert groups["relay-serve"] == groups["relay-dashboard"] == "Serving"
    assert groups["relay-ray"] == groups["relay-postgres"] == "Batch and scale"
    assert groups["relay-secrets-vault"] == "Secrets"
    assert groups["relay-guardrails"] == "Safety, observability and tools"
    assert HOOK.OTHER not in groups.values()


@pytest.mark.parametrize(
    ("link", "on_the_site"),
    [
        ("[Relay](../../README.md)", "[Relay](../index.md)"),
        ("[it](../relay-openai/README.md#batches)", "[it](relay-openai.md#batches)"),
        ("[guide](../../docs/batch-guide.md)", "[guide](../batch-guide.md)"),
        ("![jobs](../../docs/dashboard-jobs.png)", "![jobs](../dashboard-jobs.png)"),
        ("[below](#batches)", "[below](#batches)"),
        ("[docs](https://example.com/x)", "[docs](https://example.com/x)"),
        ("[the server](src/relay_serve/_app.py)", "the server (`src/relay_serve/_app.py`)"),
        ("[`cassettes/x.yaml`](../../cassettes/x.yaml)", "`cassettes/x.yaml`"),
    ],
)
def test_readme_links_point_where_the_site_has_them(link: str, on_the_site: str) -> None:
    assert HOOK.site_links(f"See {link}.\n") == f"See {on_the_site}.\n"


def test_links_inside_code_blocks_are_left_alone() -> None:
    text = "```text\n[Relay](../../README.md)\n```\n"
    assert HOOK.site_links(text) == text
