"""MkDocs hook: each plugin's README becomes its page under ``plugins/`` on the site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/README.md"))


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    nav: list[Any] = config["nav"]
    for index, entry in enumerate(nav):
        if entry == {"Plugins": "plugins/"}:
            nav[index] = {"Plugins": [f"plugins/{p.name}.md" for p in PLUGINS]}
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for plugin in PLUGINS:
        text = (plugin / "README.md").read_text(encoding="utf-8")
        files.append(File.generated(config, f"plugins/{plugin.name}.md", content=text))
    return files
