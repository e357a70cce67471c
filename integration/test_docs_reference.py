"""The site's reference, checked without building the site: what tools/docs_reference.py
generates covers every public name, and tools/check_reference.py reads an inventory.
(`nox -s docs` builds the site and runs the check on the real inventory.)"""

from __future__ import annotations

import importlib.util
import json
import sys
import zlib
from pathlib import Path
from types import ModuleType

import pytest

import relay_core

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool(name: str) -> ModuleType:
    sys.path.insert(0, str(TOOLS))  # check_reference imports docs_reference
    try:
        spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(TOOLS))


reference = _tool("docs_reference")
schema_hook = _tool("docs_schema")
check = _tool("check_reference")


def test_public_api_is_each_modules_all() -> None:
    api = reference.public_api()
    assert api["relay_core"] == sorted(relay_core.__all__)
    for module in ("relay_core.plugin", "relay_core.batch.runners", "relay_core.testing"):
        assert api[module] == list(__import__(module, fromlist=["_"]).__all__)
    # The hook specifications are the plugin author's API too.
    assert "relay_register_providers" in api["relay_core.hookspecs"]
    # Each plugin's package and its non-underscore modules, never a private one.
    assert {"relay_openai.chat", "relay_gemini.wire", "relay_ray.runner"} <= set(api)
    assert {p.name.replace("-", "_") for p in reference.PLUGINS} <= set(api)
    assert not [m for m in api if any(part.startswith("_") for part in m.split("."))]


def test_each_relay_core_name_is_on_exactly_one_page() -> None:
    pages = [page for page in reference.reference_pages() if "/relay_core/" in page[0]]
    directives = [
        line.removeprefix("::: relay_core.")
        for _, _, content in pages
        for line in content.splitlines()
        if line.startswith("::: relay_core.")
    ]
    assert sorted(directives) == sorted(relay_core.__all__)


def test_catalog_schema_page_has_every_section_and_field() -> None:
    schema = json.loads((reference.ROOT / "relay.schema.json").read_text())
    page = schema_hook.catalog_schema_page(schema, schema_hook.class_defaults(schema))
    for name, definition in schema["$defs"].items():
        assert f"\n## {name}\n" in page
        forms = [definition, *definition.get("anyOf", ())]
        for field in (f for form in forms for f in form.get("properties", {})):
            assert f"| `{field}` |" in page
    assert "[ProviderConfig](#providerconfig)" in page
    # Defaults the schema lacks come from the classes: BreakerSettings(failures=5).
    assert "| `failures` | integer | `5` |" in page


def test_check_lists_what_the_inventory_lacks() -> None:
    lines = "relay_core py:module 1 reference/#relay_core -\nrelay_core.Hub py:class 1 x -\n"
    header = b"# Sphinx inventory version 2\n# Project: x\n# Version: 0\n# zlib\n"
    names = check.inventory_names(header + zlib.compress(lines.encode()))
    assert names == {"relay_core", "relay_core.Hub"}
    api = {"relay_core": ["Hub", "Job"], "relay_mock": []}
    assert check.missing(api, names) == ["relay_core.Job", "relay_mock"]


def test_check_lists_public_methods_with_nothing_to_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = ModuleType("relay_fixture")

    class Base:
        def inherited(self) -> None:
            """Documented once, on the base."""

    class Sink(Base):
        def bare(self) -> None: ...

        @property
        def size(self) -> int:
            return 0

        def inherited(self) -> None: ...  # takes the base's docstring

        def relay_audit(self) -> None: ...  # a hook: the specification documents it

        def documented(self) -> None:
            """Said here."""

        def _private(self) -> None: ...

    Sink.__module__ = "relay_fixture"
    module.Sink = Sink  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "relay_fixture", module)
    prefix = f"relay_fixture.{Sink.__qualname__}"
    assert check.undocumented({"relay_fixture": ["Sink"]}) == [f"{prefix}.bare", f"{prefix}.size"]


def test_the_cli_page_sees_plugin_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    from relay_core.cli import cli, with_plugins

    # with_plugins() adds to the one `relay` group: leave other tests the group as it was.
    monkeypatch.setattr(cli, "commands", dict(cli.commands))
    assert with_plugins() is cli
    assert {"serve", "dashboard", "keys", "spend"} <= set(cli.commands)
