"""Relay's sessions. `nox` runs the default set: what CI runs.

- tests: core and every plugin, installed together, and `integration/` (plugins combined)
- core: relay-core alone, with no plugin installed
- one session per plugin directory (e.g. `nox -s relay-mock`): the core plus that plugin
- lint (ruff), typecheck (mypy strict on relay_core), demo (`relay demo` offline)
- reliability: faults, kills, hostile input, leaked keys at CI size (`-- full` by hand)
- bench (by hand, not in CI): `nox -s bench` (`-- --quick` for the short form) measures
  Relay beside raw httpx, the openai SDK and LiteLLM and rewrites docs/benchmarks.*
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))
TEST_DEPS = [
    "pytest>=8",
    "pytest-asyncio>=0.23",
    "hypothesis>=6",
    "jsonschema>=4",
    "setuptools>=70.1",
    "vcrpy>=6",
    "pydantic>=2",  # structured output from Pydantic models is tested where it is installed
]

# CI runs all of these: each plugin alone too, so no plugin leans on another unnoticed.
nox.options.sessions = [
    "lint",
    "typecheck",
    "core",
    "tests",
    *(p.name for p in PLUGINS),
    "demo",
    "reliability",
]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


def _editable(*paths: Path) -> list[str]:
    return [arg for path in paths for arg in ("-e", str(path))]


def _tested(*paths: Path) -> list[str]:
    """``_editable``, with each plugin's ``test`` extra where it declares one (the openai
    SDK relay-serve is tested with, Playwright for relay-dashboard)."""
    import tomllib

    args = []
    for path in paths:
        project = tomllib.loads((path / "pyproject.toml").read_text())["project"]
        extra = "[test]" if "test" in project.get("optional-dependencies", {}) else ""
        args += ["-e", f"{path}{extra}"]
    return args


@nox.session
def tests(session: nox.Session) -> None:
    """Everything: the core's tests and every plugin's, all installed together."""
    session.install(*TEST_DEPS, *_tested(ROOT, *PLUGINS))
    session.run(
        "pytest",
        "tests",
        *(str(p / "tests") for p in PLUGINS),
        "integration",  # what must hold with several plugins combined
        *session.posargs,
    )


@nox.session
def core(session: nox.Session) -> None:
    """relay-core alone: proves the core needs no plugin."""
    session.install(*TEST_DEPS, *_editable(ROOT))
    session.run("pytest", "tests", *session.posargs)


def _local_dependencies(plugin: Path) -> list[Path]:
    """The plugins of this repository that ``plugin`` depends on, directly or through
    another, for running or for its tests (relay-serve → relay-openai-compat →
    relay-openai; relay-serve is tested in front of relay-mock): installed from here,
    never looked up on an index."""
    import tomllib

    found: list[Path] = []
    todo = [plugin]
    while todo:
        project = tomllib.loads((todo.pop() / "pyproject.toml").read_text())["project"]
        wanted = [
            *project.get("dependencies", ()),
            *project.get("optional-dependencies", {}).get("test", ()),
        ]
        names = {
            dep.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip() for dep in wanted
        }
        for other in PLUGINS:
            if other.name in names and other not in found and other != plugin:
                found.append(other)
                todo.append(other)
    return found


def _plugin_session(plugin: Path) -> None:
    @nox.session(name=plugin.name)
    def run(session: nox.Session) -> None:
        session.install(*TEST_DEPS, *_tested(ROOT, *_local_dependencies(plugin), plugin))
        session.run("pytest", str(plugin / "tests"), *session.posargs)

    run.__doc__ = f"relay-core plus {plugin.name} alone (and the plugins it builds on)."


for _plugin in PLUGINS:
    _plugin_session(_plugin)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    # pytest and vcrpy for relay_core.testing (the conformance suite, cassette replay).
    session.install(
        "mypy>=1.10", "types-PyYAML", "pytest>=8", "vcrpy>=6", *_editable(ROOT, *PLUGINS)
    )
    session.run("mypy")
    for plugin in PLUGINS:
        session.run("mypy", "--strict", str(plugin / "src"))


@nox.session
def demo(session: nox.Session) -> None:
    """The README's first command: the offline tour."""
    session.install(*_editable(ROOT, ROOT / "plugins" / "relay-mock"))
    session.run("relay", "demo")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks against the baselines (docs/benchmarks.md); not part of CI."""
    names = ("relay-openai", "relay-openai-compat", "relay-serve")
    relay = [ROOT, *(ROOT / "plugins" / name for name in names)]
    session.install(
        *_editable(*relay, ROOT / "plugins" / "relay-mock"),
        "openai",
        "litellm",
        "matplotlib",
    )
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def reliability(session: nox.Session) -> None:
    """Faults, kills, hostile input and leaked keys (docs/reliability.md); CI runs the
    small form, `-- full` the big one."""
    plugins = ("relay-mock", "relay-openai", "relay-openai-compat", "relay-serve")
    session.install(
        "pytest>=8",
        "hypothesis>=6",
        "vcrpy>=6",
        *_editable(ROOT, *(ROOT / "plugins" / name for name in plugins)),
    )
    scale = "full" if "full" in session.posargs else "ci"
    args = [arg for arg in session.posargs if arg != "full"]
    session.run("pytest", "reliability", *args, env={"RELAY_RELIABILITY_SCALE": scale})
