"""Cold start is a feature: what must not be imported until a call needs it.

Each check runs in a fresh interpreter and inspects ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Heavy or optional machinery, and every adapter module; registration modules may load.
FORBIDDEN = (
    "httpx",
    "httpcore",
    "aiohttp",
    "yarl",
    "structlog",
    "keyring",
    "anyio",
    "ssl",
)
ADAPTER_MODULE_SUFFIX = "._provider"

CATALOG = """\
providers:
  openai: {api_key: $env.OPENAI_API_KEY}
models:
  fast: mock/echo
  smart: {target: openai/gpt-4.1, params: {temperature: 0.2}}
groups:
  both: {strategy: fallback, members: [smart, fast]}
"""


def _imported_after(code: str, tmp_path: Path) -> list[str]:
    (tmp_path / "relay.yaml").write_text(CATALOG)
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import json, sys
        print(json.dumps(sorted(sys.modules)), file=sys.__stderr__)
    """)
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stderr, result.stdout
    modules: list[str] = json.loads(result.stderr.strip().splitlines()[-1])
    return modules


def _heavy(modules: list[str]) -> list[str]:
    return [
        m
        for m in modules
        if m.split(".")[0] in FORBIDDEN or m.endswith(ADAPTER_MODULE_SUFFIX) or m == "click"
    ]


def test_import_and_catalog_load_stay_light(tmp_path: Path) -> None:
    modules = _imported_after(
        """
        import relay_core
        catalog = relay_core.load_catalog("relay.yaml")
        hub = relay_core.Hub(catalog)
        assert hub.catalog.lookup("both")
    """,
        tmp_path,
    )
    assert _heavy(modules) == []


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["plugins"], ["validate", "--no-credentials"], ["models", "list"], ["schema"]],
)
def test_cli_commands_stay_light(tmp_path: Path, argv: list[str]) -> None:
    modules = _imported_after(
        f"""
        from relay_core.cli import main
        try:
            main({argv!r})
        except SystemExit:
            pass
    """,
        tmp_path,
    )
    heavy = [m for m in _heavy(modules) if m != "click" and not m.startswith("click.")]
    assert heavy == []


def test_a_call_loads_what_it_needs(tmp_path: Path) -> None:
    """The other side of the coin: the probe can see imports, so the tests above mean
    something."""
    modules = _imported_after(
        """
        import relay_core.http, asyncio
        from relay_core.providers import ProviderSettings
        async def main():
            pool = relay_core.http.HttpPool()
            pool.client("x", "http://127.0.0.1:9", timeout=1)
            await pool.aclose()
        asyncio.run(main())
    """,
        tmp_path,
    )
    assert "httpx" in modules
