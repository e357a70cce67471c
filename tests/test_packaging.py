"""What a user installing Relay gets: the core's wheel holds every module, every
distribution carries the metadata a packager expects at one version, and every README's
install line from a clone names paths that exist and the plugins each one builds on.

The wheel of every plugin, installed alone in a fresh environment, is checked by
`nox -s wheels` (tools/wheels.py); this file keeps the quick checks in the test suite."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from glob import glob
from pathlib import Path
from typing import Any

import pytest

import relay_core

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))


def _pyproject(path: Path) -> dict[str, Any]:
    return tomllib.loads((path / "pyproject.toml").read_text())


def _name(path: Path) -> str:
    return str(_pyproject(path)["project"]["name"])


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[;\s]", requirement, maxsplit=1)[0]


def _builds_on(plugin: Path) -> set[str]:
    """The distributions of this repository that ``plugin`` needs to run, directly or
    through another (relay-serve: relay-core, relay-openai-compat, relay-openai)."""
    by_name = {_name(p): p for p in (ROOT, *PLUGINS)}
    found: set[str] = set()
    todo = [plugin]
    while todo:
        for requirement in _pyproject(todo.pop())["project"].get("dependencies", ()):
            name = _requirement_name(requirement)
            if name in by_name and name not in found:
                found.add(name)
                todo.append(by_name[name])
    return found


def test_the_core_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    """A fixed package list once left relay_core/batch out of the wheel: installed from
    it, `from relay_core import RelayClient` raised ModuleNotFoundError."""
    source = tmp_path / "relay-core"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "relay_core", source / "relay_core", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"),
            *("--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"), str(source)),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("relay_core-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    wanted = {
        path.relative_to(source).as_posix()
        for path in (source / "relay_core").rglob("*")
        if path.is_file()
    }
    assert "relay_core/batch/__init__.py" in wanted
    assert wanted - shipped == set()
    assert f"relay_core-{relay_core.__version__}.dist-info/licenses/LICENSE" in shipped


@pytest.mark.parametrize("path", [ROOT, *PLUGINS], ids=lambda p: _name(p))
def test_a_distribution_carries_what_a_packager_expects(path: Path) -> None:
    pyproject = _pyproject(path)
    project = pyproject["project"]
    # The SPDX form: a license table is deprecated and warns at every build.
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert (path / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    assert "setuptools>=77" in pyproject["build-system"]["requires"]  # SPDX needs 77
    assert project["requires-python"] == ">=3.10"
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.10" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # SPDX replaces them
    assert project["urls"]["Homepage"].startswith("https://")
    assert (path / project["readme"]).is_file()
    for package in pyproject["tool"]["setuptools"]["package-data"]:
        package_dir = path / "src" / package if path != ROOT else path / package
        assert (package_dir / "py.typed").is_file()


def test_every_distribution_has_relay_cores_version() -> None:
    """One version, single-sourced: relay_core.__version__ is the core's (read by
    setuptools); each plugin's pyproject.toml repeats it and is held to it here."""
    core = _pyproject(ROOT)
    assert core["project"]["dynamic"] == ["version"]
    assert core["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "relay_core.__version__"}
    versions = {_name(p): _pyproject(p)["project"]["version"] for p in PLUGINS}
    assert versions == dict.fromkeys(versions, relay_core.__version__)


def _install_commands(readme: Path) -> list[list[str]]:
    """Every ``pip install`` command of a README that names a path of this repository
    (from a clone), as its arguments; commented-out ones included. A command in prose is
    an inline code span, which may wrap onto the next line."""
    text = readme.read_text()
    spans = re.findall(r"`pip install ([^`]+)`", text)
    lines = re.sub(r"`pip install [^`]+`", "", text).splitlines()
    found = spans + [c for line in lines for c in line.split("pip install")[1:]]
    commands = []
    for command in found:
        args = command.split("#")[0].split("&&")[0].split()
        if any(arg.startswith((".", "plugins/")) for arg in args):
            commands.append(args)
    return commands


def _installed_by(args: list[str]) -> set[str]:
    """The distributions of this repository that ``pip install ARGS``, run at the root of a
    clone, installs; an argument naming no such path fails the test."""
    names = set()
    for arg in args:
        if arg.startswith("-"):
            continue
        matches = glob(str(ROOT / arg.split("[")[0]))
        assert matches, f"pip install {' '.join(args)}: {arg} is not a path of this repository"
        for match in matches:
            assert (Path(match) / "pyproject.toml").is_file(), f"{arg} is not a distribution"
            names.add(_name(Path(match)))
    return names


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_a_plugin_readme_says_how_to_install_it_from_a_clone(plugin: Path) -> None:
    """relay-serve's said `pip install -e plugins/relay-serve`, which looks relay-core and
    relay-openai-compat up on an index that does not have them."""
    commands = _install_commands(plugin / "README.md")
    assert commands, f"{plugin.name}/README.md has no install line for a clone"
    for args in commands:
        installed = _installed_by(args)
        assert _name(plugin) in installed
        assert _builds_on(plugin) <= installed, f"pip install {' '.join(args)}"


def test_the_readme_install_lines_from_a_clone_are_complete() -> None:
    commands = _install_commands(ROOT / "README.md")
    everything = {_name(p) for p in (ROOT, *PLUGINS)}
    assert everything in [_installed_by(args) for args in commands]  # all plugins
    assert len(commands) >= 3  # and the core with one plugin, one with its siblings
    by_name = {_name(p): p for p in PLUGINS}
    for args in commands:
        installed = _installed_by(args)
        for name in installed - {"relay-core"}:
            assert _builds_on(by_name[name]) <= installed, f"pip install {' '.join(args)}"
