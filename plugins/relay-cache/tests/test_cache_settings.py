"""``plugins.cache`` checked strictly, its defaults, and the plugin's discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from relay_cache._disk import DiskCache
from relay_cache._memory import MemoryCache
from relay_cache._settings import Settings, open_store
from relay_core import ConfigError, Hub

MiB = 1024 * 1024


def test_the_defaults() -> None:
    memory = Settings.parse({})
    assert (memory.backend, memory.ttl, memory.max_entries, memory.max_bytes) == (
        "memory",
        86400.0,
        10_000,
        64 * MiB,
    )
    assert memory.path is None
    disk = Settings.parse({"backend": "disk"})
    assert (disk.max_entries, disk.max_bytes) == (100_000, 1024 * MiB)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RELAY_CACHE_DIR": "{tmp}/mine"}, "{tmp}/mine/responses.db"),
        ({"XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/relay/responses.db"),
        ({}, "{tmp}/home/.cache/relay/responses.db"),
    ],
    ids=["RELAY_CACHE_DIR", "XDG_CACHE_HOME", "home"],
)
def test_the_default_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    for name in ("RELAY_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    assert Settings.parse({"backend": "disk"}).path == Path(expected.format(tmp=tmp_path))


def test_a_path_expands_the_home_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings.parse({"backend": "disk", "path": "~/caches/answers.db"})
    assert settings.path == tmp_path / "caches" / "answers.db"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4096, 4096), ("64 MiB", 64 * MiB), ("1.5KB", 1500), ("2 gib", 2 * 1024 * MiB)],
)
def test_max_bytes_takes_bytes_or_a_size(value: object, expected: int) -> None:
    assert Settings.parse({"max_bytes": value}).max_bytes == expected


def test_ttl_null_means_forever() -> None:
    assert Settings.parse({"ttl": None}).ttl is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tll": 5}, "plugins.cache has no setting 'tll'; the settings are backend, "),
        ({"backend": "memcached"}, "plugins.cache.backend must be memory, disk or redis"),
        ({"ttl": 0}, "plugins.cache.ttl must be a number of seconds above 0"),
        ({"ttl": -5}, "plugins.cache.ttl must be a number of seconds above 0"),
        ({"ttl": "1 day"}, "plugins.cache.ttl must be a number of seconds above 0"),
        ({"ttl": True}, "plugins.cache.ttl must be"),
        ({"max_entries": 0}, "plugins.cache.max_entries must be a whole number"),
        ({"max_entries": 2.5}, "plugins.cache.max_entries must be a whole number"),
        ({"max_entries": False}, "plugins.cache.max_entries must be"),
        ({"max_bytes": 0}, "plugins.cache.max_bytes must be a size in bytes above 0"),
        ({"max_bytes": "lots"}, "plugins.cache.max_bytes must be a size"),
        ({"max_bytes": "5 parsecs"}, "plugins.cache.max_bytes must be a size"),
        ({"path": "/tmp/x.db"}, "plugins.cache.path applies only to backend: disk"),
        ({"backend": "disk", "path": 5}, "plugins.cache.path must be the path of a SQLite"),
        ({"backend": "disk", "path": " "}, "plugins.cache.path must be the path"),
        ({"clock": 5}, "plugins.cache.clock must be a function"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_setting(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.parse(settings)
    assert str(caught.value).startswith(message)


def test_the_settings_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^plugins\.cache must be a mapping"):
        Settings.parse(["memory"])  # type: ignore[arg-type]


@pytest.mark.parametrize(("backend", "kind"), [("memory", MemoryCache), ("disk", DiskCache)])
async def test_the_backend_picks_the_store(tmp_path: Path, backend: str, kind: type) -> None:
    settings: dict[str, Any] = {"backend": backend, "max_entries": 7, "ttl": 30}
    if backend == "disk":
        settings["path"] = str(tmp_path / "r.db")
    store = open_store(settings)
    assert isinstance(store, kind)
    assert (store.ttl, store.max_entries) == (30.0, 7)
    await store.aclose()


async def test_a_bad_setting_fails_the_call_that_opens_the_cache(
    make_hub: Callable[..., Hub],
) -> None:
    hub = make_hub("plugins:\n  cache: {ttl: -1}\n")
    assert (await hub.achat("mock/echo", "no cache, no check")).text == "no cache, no check"
    with pytest.raises(ConfigError, match=r"plugins\.cache\.ttl must be") as caught:
        await hub.achat("mock/echo", "now it is opened", cache=True)
    # The core points the error at the plugin's section of the catalog.
    assert (caught.value.line, caught.value.column) == (2, 3)


def test_the_entry_point_registers_the_cache_and_stays_light() -> None:
    code = """
        import json, sys
        from relay_core import PluginRegistry

        registry = PluginRegistry()
        name, factory = registry.response_cache()
        light = sorted(m for m in sys.modules if m.startswith("relay_cache."))
        store = factory({})
        print(json.dumps({"name": name, "light": light, "store": type(store).__name__}))
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["RELAY_PLUGINS"] = "cache"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out == {"name": "cache", "light": [], "store": "MemoryCache"}
