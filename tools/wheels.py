"""Checks of relay-core and its plugins as installed from built wheels, run by the
``wheels`` nox session with the Python of a fresh virtual environment outside the tree.

    python tools/wheels.py installed ROOT        # every distribution: files, imports, entry points
    python tools/wheels.py pytest ROOT ARGS...   # pytest, then: no relay module came from ROOT

An editable install hides a wheel that leaves out a subpackage or a data file (relay-core's
once left out ``relay_core/batch``); these checks see what a user's ``pip install`` gets.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import pkgutil
import sys
import sysconfig
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib


def _site_packages() -> list[Path]:
    return [Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")]


def _installed_here(path: str | None) -> bool:
    return path is not None and any(
        Path(path).resolve().is_relative_to(site) for site in _site_packages()
    )


def _sources(root: Path) -> dict[str, Path]:
    """Each distribution's name and the directory its packages are built from."""
    found = {"relay-core": root}
    for pyproject in sorted(root.glob("plugins/*/pyproject.toml")):
        found[tomllib.loads(pyproject.read_text())["project"]["name"]] = pyproject.parent / "src"
    return found


def _shipped(source: Path, packages: list[str]) -> set[str]:
    """What the wheel must hold: every file of each package directory in the source tree,
    as a path relative to site-packages (build leftovers aside)."""
    wanted = set()
    for package in packages:
        for path in (source / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                wanted.add(path.relative_to(source).as_posix())
    return wanted


def check_installed(root: Path) -> list[str]:
    problems: list[str] = []
    import relay_core

    if not _installed_here(relay_core.__file__):
        problems.append(f"relay_core was imported from {relay_core.__file__}, not site-packages")
    for name, source in _sources(root).items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}: not installed")
            continue
        if dist.version != relay_core.__version__:
            problems.append(f"{name}: version {dist.version}, not {relay_core.__version__}")
        files = {str(f) for f in dist.files or ()}
        packages = sorted(
            {f.split("/")[0] for f in files if f.endswith("/__init__.py") and f.count("/") == 1}
        )
        if not packages:
            problems.append(f"{name}: the wheel holds no package")
        for missing in sorted(_shipped(source, packages) - files):
            problems.append(f"{name}: {missing} is in the source tree but not in the wheel")
        for package in packages:
            module = importlib.import_module(package)
            if not _installed_here(module.__file__):
                problems.append(f"{name}: {package} imported from {module.__file__}")
            walked = pkgutil.walk_packages(module.__path__, prefix=f"{package}.")
            for info in walked:
                try:
                    importlib.import_module(info.name)
                except Exception as error:
                    problems.append(f"{name}: import {info.name}: {error!r}")
        for entry_point in dist.entry_points:
            try:
                entry_point.load()
            except Exception as error:
                problems.append(f"{name}: entry point {entry_point.value}: {error!r}")
        print(f"ok  {name} {dist.version}: {', '.join(packages)}, {len(files)} files")
    return problems


def run_pytest(root: Path, args: list[str]) -> int:
    import pytest

    status = int(pytest.main(args))
    from_tree = sorted(
        name
        for name, module in list(sys.modules.items())
        if name.split(".")[0].startswith("relay_")
        and getattr(module, "__file__", None)
        and Path(module.__file__).resolve().is_relative_to(root.resolve())
    )
    if from_tree:
        print(f"the tests imported code from the source tree, not the wheels: {from_tree}")
        return status or 1
    return status


def main(argv: list[str]) -> int:
    command, root = argv[0], Path(argv[1])
    if command == "pytest":
        return run_pytest(root, argv[2:])
    problems = check_installed(root)
    for problem in problems:
        print(f"FAIL {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
