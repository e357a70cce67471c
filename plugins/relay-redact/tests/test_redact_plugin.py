"""Discovery through the entry point, a light entry module, and the exact public API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import relay_redact


def test_the_public_api_is_exactly_all() -> None:
    public = {name for name in dir(relay_redact) if not name.startswith("_")}
    assert public == set(relay_redact.__all__)
    for name in relay_redact.__all__:
        assert getattr(relay_redact, name) is not None


def test_installed_it_redacts_the_first_call_and_loads_detectors_only_then() -> None:
    code = textwrap.dedent("""
        import json, sys
        from relay_core import Hub, PluginRegistry

        registry = PluginRegistry()
        names = [info.name for info in registry.plugins()]
        before = sorted(m for m in sys.modules if m.startswith("relay_redact."))
        with Hub(plugins=registry) as hub:
            answer = hub.chat("mock/echo", "mail jane@example.org")
        provider = "".join(b.get("text", "") for b in answer.raw["content"])
        print(json.dumps({"names": names, "before": before, "provider": provider,
                          "caller": answer.text}))
    """)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=False
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert "redact" in out["names"]
    assert out["before"] == []
    assert out["provider"] == "mail <EMAIL_1>"
    assert out["caller"] == "mail jane@example.org"
