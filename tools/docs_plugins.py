"""MkDocs hook: each plugin's README becomes its page under ``plugins/`` on the site.

A page is the plugin's README with its links rewritten for the site (see
:func:`site_links`), followed by a section generated from the installed plugin itself
(see :func:`generated_section`): its ``pip install`` line, the providers it registers
with their declared capabilities, the catalog sections it reads with their keys and
schema, the commands it adds to ``relay``, and what else it registers. The README can
place that section with a line ``<!-- plugin:generated -->``; without one it goes at the
end. The Plugins nav is grouped by the hooks each plugin implements (see :data:`GROUPS`),
so a new plugin lands in its group with no list to edit.

The functions below :func:`on_config` and :func:`on_files` need no MkDocs:
``integration/test_plugin_pages.py`` checks them against what the plugins declare.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/README.md"))
MARKER = "<!-- plugin:generated -->"
LOG = logging.getLogger("mkdocs.plugins.docs_plugins")

# A plugin's nav group: the first whose hooks it implements, in this order.
GROUPS: list[tuple[str, Callable[[frozenset[str]], bool]]] = [
    (
        "Serving",
        lambda h: "relay_register_commands" in h and "relay_configure" not in h,
    ),
    ("Providers", lambda h: "relay_register_providers" in h),
    (
        "Batch and scale",
        lambda h: bool(
            h
            & {
                "relay_register_job_runners",
                "relay_register_workspace_stores",
                "relay_register_response_caches",
            }
        ),
    ),
    ("Pricing", lambda h: "relay_register_pricing_sources" in h),
    ("Secrets", lambda h: "relay_register_credential_resolvers" in h),
    ("Safety, observability and tools", lambda h: "relay_configure" in h),
]
OTHER = "Other"


# --------------------------------------------------------------------------- declared


@dataclass
class Provider:
    name: str
    capabilities: list[str]
    key: str | None
    base_url: str | None


@dataclass
class Declared:
    """What one installed distribution's entry points declare to Relay."""

    distribution: str
    hooks: frozenset[str] = frozenset()
    providers: list[Provider] = field(default_factory=list)
    settings: list[tuple[str, list[str] | None]] = field(default_factory=list)
    commands: list[tuple[str, str]] = field(default_factory=list)
    pricing_sources: list[tuple[str, str]] = field(default_factory=list)
    credential_schemes: list[str] = field(default_factory=list)
    response_caches: list[str] = field(default_factory=list)
    workspace_stores: list[str] = field(default_factory=list)
    job_runners: list[str] = field(default_factory=list)


def declared(distribution: str) -> Declared | None:
    """Call the registration hooks of ``distribution``'s ``relay`` entry points with
    recording callbacks; ``None`` when the distribution is not installed."""
    from relay_core import hookspecs

    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None
    found = Declared(distribution)
    hooks: set[str] = set()
    for entry in dist.entry_points:
        if entry.group != "relay":
            continue
        plugin = entry.load()
        implemented = {
            name for name in dir(plugin) if name.startswith("relay_") and hasattr(hookspecs, name)
        }
        hooks |= implemented
        _record(plugin, implemented, found)
    found.hooks = frozenset(hooks)
    return found


def _record(plugin: Any, hooks: set[str], found: Declared) -> None:
    from relay_core.capabilities import Capability

    def provider(name: str, adapter: Any, *, defaults: Any = None) -> None:
        if isinstance(adapter, str):
            module, _, attribute = adapter.partition(":")
            adapter = getattr(importlib.import_module(module), attribute)
        defaults = dict(defaults or {})
        found.providers.append(
            Provider(
                name,
                [str(c) for c in Capability if c in adapter.capabilities],
                defaults.get("api_key_env", adapter.api_key_env),
                defaults.get("base_url", adapter.default_base_url),
            )
        )

    def settings(name: str, *, fields: Any = None, check: Any = None) -> None:
        found.settings.append((name, sorted(fields) if fields is not None else None))

    recorders: dict[str, Callable[..., None]] = {
        "relay_register_providers": provider,
        "relay_register_settings": settings,
        "relay_register_pricing_sources": lambda source: found.pricing_sources.append(
            (source.name, source.tier)
        ),
        "relay_register_credential_resolvers": lambda scheme, resolve: (
            found.credential_schemes.append(scheme)
        ),
        "relay_register_response_caches": lambda name, factory: found.response_caches.append(name),
        "relay_register_workspace_stores": lambda scheme, factory: found.workspace_stores.append(
            scheme
        ),
        "relay_register_job_runners": lambda name, run: found.job_runners.append(name),
    }
    for hook, recorder in recorders.items():
        if hook in hooks:
            getattr(plugin, hook)(register=recorder)
    if "relay_register_commands" in hooks:
        import click

        group = click.Group("relay")
        plugin.relay_register_commands(cli=group)
        for name, command in sorted(group.commands.items()):
            found.commands.append((name, command.get_short_help_str(limit=120)))
    found.providers.sort(key=lambda p: p.name)


def group_of(hooks: frozenset[str]) -> str:
    """The Plugins nav group of a plugin implementing ``hooks``."""
    return next((name for name, test in GROUPS if test(hooks)), OTHER)


# --------------------------------------------------------------------------- the page


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def generated_section(found: Declared) -> str:
    """The Markdown section a plugin's page ends with, from what it declares."""
    out = [
        "## What the plugin declares",
        "",
        "*Generated from the installed plugin when the site is built.*",
        "",
        "```console",
        f"$ pip install {found.distribution}",
        "```",
        "",
    ]
    if found.providers:
        out += [
            "### Providers",
            "",
            "Use them as `provider/model` targets and as keys of the catalog's `providers`. "
            "The hub refuses, before any call, a request that needs a capability the "
            "provider does not declare.",
            "",
            "*key variable* is the environment variable the core reads when the catalog "
            "gives no `api_key`; *none* means the core asks for no key: the provider needs "
            "none, or its adapter finds its own credentials (the page above says how).",
            "",
            "| provider | capabilities | key variable | default base URL |",
            "|---|---|---|---|",
        ]
        for p in found.providers:
            key = f"`{p.key}`" if p.key else "none"
            url = f"`{p.base_url}`" if p.base_url else "none"
            caps = ", ".join(f"`{c}`" for c in p.capabilities) or "none"
            out.append(f"| `{p.name}` | {caps} | {key} | {url} |")
        out.append("")
    if found.settings:
        out += ["### Settings", ""]
        for name, fields in found.settings:
            if fields is None:
                out += [f"The catalog's `plugins.{name}` section: the plugin checks its keys.", ""]
                schema: dict[str, Any] = {"type": "object"}
            else:
                keys = ", ".join(f"`{f}`" for f in fields)
                out += [f"The catalog's `plugins.{name}` section takes the keys {keys}.", ""]
                schema = {
                    "type": "object",
                    "properties": {f: {} for f in fields},
                    "additionalProperties": False,
                }
            out += [
                "Its JSON Schema, as the plugin declares it (`relay validate` reports any "
                "other key with its line and a suggestion):",
                "",
                "```json",
                json.dumps({"plugins": {"properties": {name: schema}}}, indent=2),
                "```",
                "",
            ]
    if found.commands:
        out += ["### Commands", "", "| command | what it does |", "|---|---|"]
        out += [f"| `relay {n}` | {_cell(h)} |" for n, h in found.commands]
        out += ["", "`relay COMMAND --help` gives each one's options.", ""]
    others = [
        ("Pricing sources", [f"{n} (tier `{t}`)" for n, t in found.pricing_sources]),
        ("Credential schemes", [f"`{s}:`" for s in found.credential_schemes]),
        ("Response caches", [f"`{n}`" for n in found.response_caches]),
        ("Workspace stores", [f"`{s}://`" for s in found.workspace_stores]),
        ("Job runners", [f"`{n}` (`--mode {n}`)" for n in found.job_runners]),
    ]
    listed = [(title, items) for title, items in others if items]
    if listed:
        out += ["### Also registered", "", "| what | names |", "|---|---|"]
        out += [f"| {title} | {', '.join(items)} |" for title, items in listed]
        out.append("")
    return "\n".join(out)


_LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^ *(`{3,}|~{3,})")


def site_link(target: str) -> str | None:
    """Where a README's relative link points on the site (from ``plugins/<name>.md``),
    or ``None`` when its target is not on the site."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
        return target
    path, hash_, anchor = target.partition("#")
    if path in ("../../README.md", "../../docs/index.md"):
        return "../index.md"  # the README's anchors are not the home page's
    plugin = re.fullmatch(r"\.\./(relay-[\w-]+)/README\.md", path)
    if plugin:
        return f"{plugin.group(1)}.md{hash_}{anchor}"
    if path == "README.md":
        return f"#{anchor}" if anchor else "#"
    if path.startswith("../../docs/"):
        return f"../{path.removeprefix('../../docs/')}{hash_}{anchor}"
    return None


def site_links(text: str) -> str:
    """The README with its relative links pointing where the site has them; a link to
    a file not on the site (source, tests, cassettes) becomes its text and path as code."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        opening = _FENCE.match(line)
        if opening and (fence is None or opening.group(1).startswith(fence)):
            fence = None if fence else opening.group(1)
        if fence is None and not opening:
            line = _LINK.sub(_rewrite, line)
        out.append(line)
    return "".join(out)


def _rewrite(match: re.Match[str]) -> str:
    bang, label, target = match.groups()
    where = site_link(target)
    if where is not None:
        return f"{bang}[{label}]({where})"
    path = target.partition("#")[0].lstrip("./")
    return label if f"`{path}`" in label or label == f"`{path}`" else f"{label} (`{path}`)"


def page(plugin: Path) -> str:
    """The site page of the plugin whose folder is ``plugin``."""
    text = site_links((plugin / "README.md").read_text(encoding="utf-8"))
    found = declared(plugin.name)
    if found is None:
        LOG.warning("%s is not installed: its page has no generated section", plugin.name)
        return text
    section = generated_section(found)
    if MARKER in text:
        return text.replace(MARKER, section)
    return f"{text.rstrip()}\n\n{section}"


# --------------------------------------------------------------------------- MkDocs


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    groups: dict[str, list[str]] = {name: [] for name, _ in GROUPS}
    groups[OTHER] = []
    for plugin in PLUGINS:
        found = declared(plugin.name)
        groups[group_of(found.hooks if found else frozenset())].append(f"plugins/{plugin.name}.md")
    entries = [{name: pages} for name, pages in groups.items() if pages]
    nav: list[Any] = config["nav"]
    for index, entry in enumerate(nav):
        if entry == {"Plugins": "plugins/"}:
            nav[index] = {"Plugins": entries}
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from mkdocs.structure.files import File

    for plugin in PLUGINS:
        files.append(File.generated(config, f"plugins/{plugin.name}.md", content=page(plugin)))
    return files
