"""Relay's sessions. `nox` runs the default set: what CI runs.

- tests: core and every plugin, installed together, and `integration/` (plugins combined)
- core: relay-core alone, with no plugin installed
- one session per plugin directory (e.g. `nox -s relay-mock`): the core plus that plugin
- lint (ruff), typecheck (mypy strict on relay_core), demo (`relay demo` offline)
- docs: the site (mkdocs.yml) built with --strict into build/site
- reliability: faults, kills, hostile input, leaked keys at CI size (`-- full` by hand);
  figures go to build/reliability/, docs/reliability.md only with `-- --update-docs`
- dist: a wheel and an sdist of relay-core and every plugin in dist/, checked by twine
- wheels: those wheels alone installed in a fresh venv outside the tree, every module
  imported, the tests run against them, `relay demo`
- core-lowest: the core's tests on the lowest dependency versions pyproject.toml allows
  (`core` gets the newest)
- unchanged (last): the run left every tracked file as it found it
- bench (by hand, not in CI): `nox -s bench` (`-- --quick` for the short form) measures
  Relay beside raw httpx, the openai SDK and LiteLLM and rewrites docs/benchmarks.*
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import nox

ROOT = Path(__file__).parent
PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))
TEST_DEPS = [
    "pytest>=8",
    "pytest-asyncio>=0.24",  # asyncio_default_fixture_loop_scope
    "hypothesis>=6",
    "jsonschema>=4",
    "setuptools>=77",  # builds the SPDX license metadata (tests build wheels)
    'tomli>=2; python_version < "3.11"',  # tests read pyproject.toml files
    "vcrpy>=6",
    "pydantic>=2",  # structured output from Pydantic models is tested where it is installed
    "pip",  # tests build wheels and install plugins with it; a uv venv has none
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
    "docs",
    "core-lowest",
    "wheels",  # runs dist first
    "unchanged",
]
nox.options.reuse_existing_virtualenvs = True
# uv makes a session's venv and installs into it in seconds where pip takes a quarter of a
# minute: with thirty sessions that is most of CI's set-up time. Without uv, virtualenv.
nox.options.default_venv_backend = "uv|virtualenv"
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
    """relay-core alone: proves the core needs no plugin. Its dependencies are upgraded to
    the newest releases each run (`core-lowest` tests the oldest ones allowed)."""
    # uv's --upgrade is pip's eager strategy: every package, not only those named.
    eager = [] if session.venv_backend == "uv" else ["--upgrade-strategy", "eager"]
    session.install("--upgrade", *eager, *TEST_DEPS, *_editable(ROOT))
    session.run("pytest", "tests", *session.posargs)


@nox.session(name="core-lowest")
def core_lowest(session: nox.Session) -> None:
    """relay-core's tests on the lowest version of each dependency its pyproject.toml
    allows: a lower bound nobody tests is a guess."""
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [dep.replace(">=", "==") for dep in dependencies if ">=" in dep]
    constraints = Path(session.create_tmp()) / "lowest.txt"
    constraints.write_text("\n".join(pins) + "\n")
    session.install("-c", str(constraints), *TEST_DEPS, *_editable(ROOT))
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
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
    # pytest and vcrpy for relay_core.testing (the conformance suite, cassette replay);
    # tiktoken for relay-openai's optional tokenizer (its [tokens] extra); redis, psycopg
    # and httptools for relay-serve's and relay-cache's shared state, key store and parser
    # (their [redis], [postgres] and [fast] extras).
    session.install(
        "mypy>=1.10",
        "types-PyYAML",
        "pytest>=8",
        "vcrpy>=6",
        "tiktoken>=0.7",
        "redis>=5",
        "psycopg[binary]>=3.1",
        "httptools>=0.6",
        *_editable(ROOT, *PLUGINS),
    )
    session.run("mypy")
    for plugin in PLUGINS:
        session.run("mypy", "--strict", str(plugin / "src"))


@nox.session
def demo(session: nox.Session) -> None:
    """The README's first command: the offline tour."""
    session.install(*_editable(ROOT, ROOT / "plugins" / "relay-mock"))
    session.run("relay", "demo")


DOCS_DEPS = [
    "mkdocs>=1.6,<2",
    "mkdocs-material>=9.5",
    "mkdocstrings[python]>=0.26",
    "mkdocs-click>=0.8",
    "ruff>=0.6",  # mkdocstrings formats the reference's signatures with it
]


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs.yml) built with --strict into build/site: a broken
    link, a missing reference or any other warning fails. Its code blocks run in `tests`
    (integration/test_site_blocks.py)."""
    session.install(*DOCS_DEPS, *_editable(ROOT, *PLUGINS))
    # Material's notice about a future MkDocs 2 is not about this site.
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
    # Every public name of relay_core and the plugins has its entry in the reference.
    session.run("python", "tools/check_reference.py")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks against the baselines (docs/benchmarks.md); not part of CI. Every
    plugin is installed, as the issue's targets say: the per-call figures then show what
    installed but unconfigured plugins cost beside a hub with the provider's alone."""
    session.install(
        *_editable(ROOT, *PLUGINS),
        "openai",
        "litellm",
        "matplotlib",
        # relay-serve[fast]: relay serve as a team would run it, on httptools and uvloop.
        "httptools>=0.6",
        "uvloop>=0.19",
    )
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def reliability(session: nox.Session) -> None:
    """Faults, kills, hostile input and leaked keys (docs/reliability.md); CI runs the
    small form, `-- full` the big one. Figures go to build/reliability/; `-- --update-docs`
    publishes them (reliability/results-*.json, docs/reliability.md)."""
    plugins = (
        "relay-audit",
        "relay-mock",
        "relay-openai",
        "relay-openai-compat",
        "relay-ray",
        "relay-serve",
    )
    # redis: the shared-state test talks to relay serve's Redis itself (relay-serve[redis]).
    session.install(
        "pytest>=8",
        "hypothesis>=6",
        "vcrpy>=6",
        "redis>=5",
        *_editable(ROOT, *(ROOT / "plugins" / name for name in plugins)),
    )
    scale = "full" if "full" in session.posargs else "ci"
    update = "1" if "--update-docs" in session.posargs else "0"
    args = [arg for arg in session.posargs if arg not in ("full", "--update-docs")]
    env = {"RELAY_RELIABILITY_SCALE": scale, "RELAY_RELIABILITY_UPDATE_DOCS": update}
    session.run("pytest", "reliability", *args, env=env)


DIST = ROOT / "dist"


def _project(path: Path) -> dict[str, Any]:
    import tomllib

    project: dict[str, Any] = tomllib.loads((path / "pyproject.toml").read_text())["project"]
    return project


def _extras(path: Path) -> dict[str, list[str]]:
    extras: dict[str, list[str]] = _project(path).get("optional-dependencies", {})
    return extras


@nox.session
def dist(session: nox.Session) -> None:
    """A wheel and an sdist of relay-core and of every plugin in dist/, each wheel built
    from its sdist (so an sdist that misses a file fails here), then `twine check`."""
    session.install("build>=1.2", "setuptools>=77", "twine>=6")
    shutil.rmtree(DIST, ignore_errors=True)
    # --no-isolation: this session's setuptools builds all twenty, in parallel, instead of
    # twenty fresh build environments one after the other.
    builds = [
        subprocess.Popen(
            [session.bin + "/python", "-m", "build", "--no-isolation", "--outdir", DIST, path],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in (ROOT, *PLUGINS)
    ]
    failed = []
    for path, build in zip((ROOT, *PLUGINS), builds, strict=True):
        output, _ = build.communicate()
        # setuptools' deprecations (a license table...) are warnings, not errors: fail on
        # them here, before they become errors in a release.
        warned = re.search(r"\w+Warning\b|^!!", output, re.MULTILINE)
        if build.returncode or warned:
            session.log(output)
            failed.append(_project(path)["name"] if path != ROOT else "relay-core")
    if failed:
        session.error(f"building failed or warned: {', '.join(failed)}")
    session.run("twine", "check", "--strict", *sorted(str(p) for p in DIST.iterdir()))


def _third_party(*paths: Path) -> list[str]:
    """What the distributions at ``paths`` need from an index, with their test extras:
    everything but relay-core and the plugins, which come from dist/."""
    ours = {"relay-core", *(_project(p)["name"] for p in PLUGINS)}
    wanted = set(TEST_DEPS)
    for path in paths:
        for dep in [*_project(path)["dependencies"], *_extras(path).get("test", ())]:
            name = dep.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0]
            if name.strip() not in ours:
                wanted.add(dep)
    return sorted(wanted)


@nox.session(requires=["dist"])
def wheels(session: nox.Session) -> None:
    """relay-core and every plugin installed from dist/ alone, in a fresh venv outside the
    tree: every module of each imports, each entry point loads, the core's and every
    plugin's tests pass against the installed code, and `relay demo` runs."""
    venv = Path(tempfile.mkdtemp(prefix="relay-wheels-"))
    try:
        session.run("python", "-m", "venv", str(venv))
        python = str(venv / "bin" / "python")
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        session.run(*pip, *_third_party(ROOT, *PLUGINS), external=True)
        # --no-index: a sibling (relay-serve → relay-openai-compat → relay-openai) resolves
        # from dist/ or not at all, never from an index that may hold another's relay-core.
        names = [
            _project(p)["name"] + ("[test]" if "test" in _extras(p) else "")
            for p in (ROOT, *PLUGINS)
        ]
        session.run(*pip, "--no-index", "--find-links", str(DIST), *names, external=True)
        session.run(python, "-m", "pip", "check", external=True)
        tool = str(ROOT / "tools" / "wheels.py")
        with session.chdir(venv):  # never the tree's directory: nothing imports from it
            session.run(python, tool, "installed", str(ROOT), external=True)
            session.run(
                python,
                tool,
                "pytest",
                str(ROOT),
                "--rootdir",
                str(ROOT),
                "-q",
                str(ROOT / "tests"),
                *(str(p / "tests") for p in PLUGINS),
                *session.posargs,
                external=True,
            )
            session.run(str(venv / "bin" / "relay"), "demo", external=True)
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def _tracked_state() -> dict[str, str] | None:
    """Each tracked file that differs from HEAD, with a digest of its content now (deleted:
    ""), or None outside a git checkout."""
    try:
        changed = subprocess.run(
            ["git", "diff", "HEAD", "--name-only", "-z"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    state = {}
    for name in filter(None, changed.split("\0")):
        path = ROOT / name
        state[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    return state


# Taken when nox reads this file, before any session runs: a developer's own edits are
# not the run's doing.
_TRACKED_AT_START = _tracked_state()


@nox.session(python=False)
def unchanged(session: nox.Session) -> None:
    """Last in CI: the sessions before it left every tracked file as they found it (results
    belong in build/; docs are rewritten only by hand: `nox -s reliability -- --update-docs`,
    `nox -s bench`)."""
    now = _tracked_state()
    if _TRACKED_AT_START is None or now is None:
        session.skip("not a git checkout")
    changed = sorted(
        name for name in {*_TRACKED_AT_START, *now} if _TRACKED_AT_START.get(name) != now.get(name)
    )
    if changed:
        session.error(f"this nox run changed tracked files: {', '.join(changed)}")
