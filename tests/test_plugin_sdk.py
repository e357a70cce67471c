"""The plugin SDK (``relay_core.plugin``) is exactly what its ``__all__`` lists, each name
the core's own object, and importing it stays light."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import relay_core.plugin as sdk

SOURCE = Path(sdk.__file__).read_text()


def test_all_is_exact() -> None:
    public = {name for name in dir(sdk) if not name.startswith("_")}
    assert sorted(public) == sorted(sdk.__all__)
    assert len(set(sdk.__all__)) == len(sdk.__all__)


def test_every_name_is_the_defining_modules_object() -> None:
    for module, names in sdk._MODULES.items():
        defining = importlib.import_module(module)
        for name in names:
            assert getattr(sdk, name) is getattr(defining, name), name
    assert {n for names in sdk._MODULES.values() for n in names} == set(sdk.__all__)


def test_type_checkers_see_the_same_names() -> None:
    """The ``TYPE_CHECKING`` imports (what mypy reads) match the runtime table."""
    (block,) = [
        node
        for node in ast.parse(SOURCE).body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    ]
    typed: dict[str, set[str]] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        assert node.module
        typed.setdefault(node.module, set()).update(alias.name for alias in node.names)
    assert typed == {module: set(names) for module, names in sdk._MODULES.items()}


def test_what_an_adapter_needs_is_there() -> None:
    """The names every provider adapter in this repository is built from."""
    needed = {
        "hookimpl",
        "lazy_exports",
        "Provider",
        "ProviderSettings",
        "Capability",
        "ErrorRule",
        "BatchLimits",
        "HttpClient",
        "Request",
        "Response",
        "StreamEvent",
        "TextPart",
        "TextDelta",
        "ToolCallPart",
        "Usage",
        "EndEvent",
        "StreamAssembler",
        "SSEEvent",
        "closing_stream",
        "classify_stream_error",
        "SamplingLimits",
        "within_limits",
        "ProviderError",
        "InvalidRequestError",
        "MalformedResponse",
        "Secret",
        "resolve_credential",
    }
    assert needed <= set(sdk.__all__)


def test_importing_the_sdk_stays_light() -> None:
    probe = textwrap.dedent("""
        import sys
        from relay_core.plugin import Provider, Request, hookimpl, lazy_exports
        heavy = ("httpx", "httpcore", "click", "structlog", "keyring", "anyio")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
    """)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
