"""MkDocs hook: the Python API reference, one page a module, built by mkdocstrings."""

from __future__ import annotations

from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

MODULES = ["relay_core"]


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    for entry in config["nav"]:
        if isinstance(entry, dict) and "Reference" in entry:
            section: list[Any] = entry["Reference"]
            for index, item in enumerate(section):
                if item == {"Python API": "reference/"}:
                    section[index] = {"Python API": [f"reference/{m}.md" for m in MODULES]}
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for module in MODULES:
        files.append(
            File.generated(
                config, f"reference/{module}.md", content=f"# `{module}`\n\n::: {module}\n"
            )
        )
    return files
