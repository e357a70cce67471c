"""MkDocs hook: the site's Reference section, generated so it cannot fall behind the code.

- The Python API, built by mkdocstrings from the docstrings: ``relay_core``'s names split
  by theme, the plugin SDK (``relay_core.plugin``), the plugin hooks
  (``relay_core.hookspecs``), the batch extension modules, ``relay_core.testing``, and
  one page a plugin with its package and its public modules (every module whose path
  has no ``_`` part). What is public is each module's ``__all__`` and its hook
  specifications (:func:`public_api`); a new name or module appears with no page edited.
- The catalog schema page is ``tools/docs_schema.py``'s; the docstrings' Sphinx roles
  become links through ``tools/docs_docstrings.py``, a griffe extension.
- The command line page (``docs/reference/cli.md``) is mkdocs-click's, over ``relay``
  with the commands installed plugins add (:func:`relay_core.cli.with_plugins`).

``tools/check_reference.py`` checks after the build that every name :func:`public_api`
lists is in the site's inventory.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))

# relay_core's names, a page a theme, by the module that defines them. A name from a
# module not listed here lands on the last page, so it is never left out.
THEMES: list[tuple[str, str, str, tuple[str, ...]]] = [
    (
        "hub",
        "The hub and calls",
        "The hub answers calls: chat, streams, tools, structured output, embeddings.",
        (
            "relay_core.hub",
            "relay_core.tools",
            "relay_core.streaming",
            "relay_core.tokens",
            "relay_core.caching",
            "relay_core.routing",
        ),
    ),
    (
        "types",
        "Messages and types",
        "What a call takes and gives back: messages, parts, requests, responses, events.",
        ("relay_core.types", "relay_core.messages", "relay_core.embeddings"),
    ),
    (
        "batch",
        "Batch jobs",
        "Batch jobs of any size, run by a client over a workspace, resumable.",
        ("relay_core.batch._client", "relay_core.batch._types"),
    ),
    (
        "config",
        "Configuration",
        "The catalog and what it holds: providers, aliases, groups, defaults, credentials.",
        ("relay_core.config", "relay_core.secrets", "relay_core.log"),
    ),
    (
        "errors",
        "Errors",
        "Every error Relay raises is a `RelayError`; catch the subclass you can handle.",
        ("relay_core.errors",),
    ),
    (
        "providers",
        "Providers, plugins and pricing",
        "What a provider declares, how plugins load, and what a call costs.",
        (
            "relay_core.providers",
            "relay_core.plugins",
            "relay_core.hookspecs",
            "relay_core.pricing",
        ),
    ),
]

# Modules of relay_core documented whole, each on a page of its own.
CORE_MODULES: list[tuple[str, str, str, tuple[str, ...]]] = [
    (
        "plugin-sdk",
        "Plugin SDK",
        "Everything a plugin author imports from the core, in one module: the contract "
        "a plugin is written against. See [Write a provider plugin](../plugin-authors.md).",
        ("relay_core.plugin",),
    ),
    (
        "hooks",
        "Plugin hooks",
        "The hooks a plugin implements, each a function marked `@hookimpl` with the "
        "hook's name: when the core calls it, with what, and what it expects back.",
        ("relay_core.hookspecs",),
    ),
    (
        "batch-extension",
        "Batch runners and stores",
        "The batch package, and the interfaces a job runner (relay-ray) or a workspace "
        "store (relay-postgres) implements.",
        (
            "relay_core.batch",
            "relay_core.batch.runners",
            "relay_core.batch.stores",
            "relay_core.batch.view",
        ),
    ),
    (
        "testing",
        "Testing",
        "Helpers for testing plugins and applications, and the provider conformance suite.",
        ("relay_core.testing",),
    ),
]


def _source(module: str) -> Path:
    """The file of ``module`` in this tree (its package's ``__init__.py``)."""
    head, *rest = module.split(".")
    bases = [ROOT] + [p / "src" for p in PLUGINS]
    for base in bases:
        path = base.joinpath(head, *rest)
        if (path / "__init__.py").is_file():
            return path / "__init__.py"
        if path.with_suffix(".py").is_file():
            return path.with_suffix(".py")
    raise LookupError(f"no source for {module}")


def _all(module: str) -> list[str]:
    """``module.__all__``: read from the source when it is a literal, else imported
    (``relay_core`` derives it from its ``TYPE_CHECKING`` imports); then the module's
    hook specifications (functions marked ``@hookspec``), the API of plugins."""
    tree = ast.parse(_source(module).read_text(encoding="utf-8"))
    hooks = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("hookspec" in ast.unparse(decorator) for decorator in node.decorator_list)
    ]
    return _exported(module, tree) + hooks


def _exported(module: str, tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if [getattr(t, "id", None) for t in targets] == ["__all__"]:
                names: list[str] = ast.literal_eval(node.value)
                return names
    return list(importlib.import_module(module).__all__)


def core_origins() -> dict[str, str]:
    """Each name ``relay_core`` exports, with the module that defines it (from the
    ``from m import Name as Name`` lines of its ``TYPE_CHECKING`` block)."""
    tree = ast.parse(_source("relay_core").read_text(encoding="utf-8"))
    origins = {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    return {name: origins.get(name, "relay_core") for name in _all("relay_core")}


def plugin_modules(plugin: Path) -> list[str]:
    """A plugin's package and its public modules: every module with no ``_`` part."""
    (package,) = [p for p in (plugin / "src").iterdir() if (p / "__init__.py").is_file()]
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            found.append(".".join(parts))
    return sorted(found, key=lambda name: (name.count("."), name))


def public_api() -> dict[str, list[str]]:
    """Every documented module with its public names: what the reference must hold."""
    api = {"relay_core": _all("relay_core")}
    for *_, modules in CORE_MODULES:
        api.update({module: _all(module) for module in modules})
    for plugin in PLUGINS:
        api.update({module: _all(module) for module in plugin_modules(plugin)})
    return api


def _directive(identifier: str, **options: Any) -> str:
    lines = [f"::: {identifier}"]
    if options:
        lines.append("    options:")
        lines += [f"      {key}: {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def _core_pages() -> Iterator[tuple[str, str, str]]:
    origins = core_origins()
    placed = {module for *_, modules in THEMES for module in modules}
    for index, (slug, title, lead, modules) in enumerate(THEMES):
        last = index == len(THEMES) - 1
        # The theme's first module first (the hub before what it uses), then A to Z.
        rank = {module: position for position, module in enumerate(modules)}
        names = sorted(
            (
                name
                for name, origin in origins.items()
                if origin in modules or (last and origin not in placed)
            ),
            key=lambda name: (rank.get(origins[name], len(rank)), name),
        )
        body = [f"# {title}\n", f"{lead} Import each name from `relay_core`.\n"]
        body += [_directive(f"relay_core.{name}") for name in names]
        yield f"reference/relay_core/{slug}.md", title, "\n".join(body)


# A re-export documented in full elsewhere: its heading and signature, no docstring.
BRIEF = {
    "members": False,
    "show_bases": False,
    **{
        f"show_docstring_{part}": False
        for part in [
            "description",
            "attributes",
            "examples",
            "other_parameters",
            "parameters",
            "raises",
            "receives",
            "returns",
            "warns",
            "yields",
        ]
    },
}


@functools.cache
def _homes() -> dict[str, str]:
    """Each class and function ``relay_core``'s documented modules export, by its path
    there (``relay_core.plugin.Hub``), with the path where it is documented in full:
    the first that exports it, ``relay_core`` first and the plugin SDK, which re-exports
    the others, last."""
    modules = sorted(
        ["relay_core", *(m for *_, group in CORE_MODULES for m in group)],
        key=lambda module: module == "relay_core.plugin",
    )
    first: dict[int, str] = {}
    homes = {}
    for module in modules:
        loaded = importlib.import_module(module)
        for name in _all(module):
            value = getattr(loaded, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                homes[f"{module}.{name}"] = first.setdefault(id(value), f"{module}.{name}")
    return homes


def _module_page(title: str, lead: str, modules: tuple[str, ...] | list[str]) -> str:
    homes = _homes() if any(m.startswith("relay_core") for m in modules) else {}
    body = [f"# {title}\n", f"{lead}\n"]
    for module in modules:
        body.append(_directive(module, members=False))
        # Exactly the module's __all__, a constant without a docstring included.
        for name in _all(module):
            path = f"{module}.{name}"
            home = homes.get(path, path)
            if home == path:
                body.append(_directive(path, heading_level=3, show_if_no_docstring=True))
            else:
                body.append(_directive(path, heading_level=3, **BRIEF))
                body.append(f"The same object as [`{home}`][{home}], documented there.\n")
    return "\n".join(body)


def _plugin_page(plugin: Path) -> str:
    modules = plugin_modules(plugin)
    lead = (
        f"The Python API of {plugin.name}. How to install, configure and use it: "
        f"[{plugin.name}](../../plugins/{plugin.name}.md)."
    )
    if not any(_all(module) for module in modules):
        lead += (
            " It has no public names: it is used through the catalog and the hub, "
            "which load it by its entry point."
        )
    return _module_page(f"{plugin.name}", lead, modules)


def _index(pages: list[tuple[str, str, str]]) -> str:
    lines = [
        "# Python API\n",
        "Every public name of Relay, built from its docstrings. An application imports "
        "from `relay_core`; a plugin author from `relay_core.plugin`. Any other module, "
        "and any name starting with `_`, is internal and may change without notice.\n",
    ]
    for path, title, _ in pages:
        lines.append(f"- [{title}]({path.removeprefix('reference/')})")
    lines += ["", _directive("relay_core", members=False, heading_level=2)]
    return "\n".join(lines)


def reference_pages() -> list[tuple[str, str, str]]:
    """Each generated Python API page: its path in the site, title and Markdown."""
    pages = list(_core_pages())
    for slug, title, lead, modules in CORE_MODULES:
        pages.append((f"reference/{slug}.md", title, _module_page(title, lead, modules)))
    for plugin in PLUGINS:
        pages.append((f"reference/plugins/{plugin.name}.md", plugin.name, _plugin_page(plugin)))
    return [("reference/index.md", "Overview", _index(pages)), *pages]


# The hook.


def on_config(config: Any) -> Any:
    from relay_core.cli import with_plugins

    with_plugins()  # docs/reference/cli.md shows `relay` with every plugin's commands
    nav = [{title: path} for path, title, _ in reference_pages() if "/plugins/" not in path]
    core = [entry for entry in nav if "/relay_core/" in next(iter(entry.values()))]
    plugins = [{p.name: f"reference/plugins/{p.name}.md"} for p in PLUGINS]
    python_api = [
        nav[0],
        {"relay_core": core},
        *(entry for entry in nav[1:] if entry not in core),
        {"Plugins": plugins},
    ]
    for entry in config["nav"]:
        if isinstance(entry, dict) and "Reference" in entry:
            section: list[Any] = entry["Reference"]
            for index, item in enumerate(section):
                if item == {"Python API": "reference/"}:
                    section[index] = {"Python API": python_api}
    return config


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    # mkdocs-click shows click 8.2's "no default" marker; a reader wants an empty cell.
    if page.file.src_uri == "reference/cli.md":
        html = html.replace("<code>Sentinel.UNSET</code>", "")
    return html


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, _, content in reference_pages():
        files.append(File.generated(config, path, content=content))
    return files
