"""After ``mkdocs build``: every public name of Relay has its entry in the site's reference,
and every public method of its classes says what it does.

The public names are those ``tools/docs_reference.py`` documents (each documented
module's ``__all__``); the site's inventory (``build/site/objects.inv``, written by
mkdocstrings) lists every object the reference rendered. A name missing from it has no
reference entry. A public method or property of a documented class with no docstring of
its own, none to take from a method it overrides, and no hook it implements
(``tools/docs_docstrings.py`` gives those theirs) is an entry with nothing in it. The
check fails on either and lists each.

    python tools/check_reference.py [build/site/objects.inv]
"""

from __future__ import annotations

import importlib
import inspect
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_docstrings import hook_names
from docs_reference import ROOT, public_api


def inventory_names(data: bytes) -> set[str]:
    """The object names of a Sphinx inventory, version 2 (what mkdocstrings writes):
    four header lines, then zlib-compressed lines ``name domain:role priority uri text``."""
    header = data.split(b"\n", 4)
    if len(header) < 5 or header[0] != b"# Sphinx inventory version 2":
        raise ValueError("not a Sphinx inventory, version 2")
    body = zlib.decompress(header[4]).decode("utf-8")
    return {line.split(" ", 1)[0] for line in body.splitlines() if line.strip()}


def missing(api: dict[str, list[str]], names: set[str]) -> list[str]:
    """The modules and ``module.name`` paths of ``api`` that ``names`` lacks."""
    wanted = [
        path
        for module, public in api.items()
        for path in (module, *(f"{module}.{name}" for name in public))
    ]
    return [path for path in wanted if path not in names]


def undocumented(api: dict[str, list[str]]) -> list[str]:
    """The public methods and properties of ``api``'s classes, each under the path of the
    class's definition and listed once, that have no docstring to show."""
    hooks = hook_names()
    found: dict[str, None] = {}
    for module, public in api.items():
        loaded = importlib.import_module(module)
        for name in public:
            cls = getattr(loaded, name)
            if not inspect.isclass(cls):
                continue
            for attr, value in vars(cls).items():
                if attr.startswith("_") or _function(value) is None or attr in hooks:
                    continue
                # Its own docstring, or one of a method it overrides (as griffe gives it).
                if not any(
                    getattr(_function(vars(base).get(attr)), "__doc__", None)
                    for base in cls.__mro__
                ):
                    found[f"{cls.__module__}.{cls.__qualname__}.{attr}"] = None
    return list(found)


def _function(value: object) -> object | None:
    """The function behind a class attribute (a method, a property's getter, a class or
    static method's function), or None for anything else."""
    function = value.fget if isinstance(value, property) else value
    function = getattr(function, "__func__", function)
    return function if callable(function) else None


def main(argv: list[str]) -> int:
    inventory = Path(argv[0]) if argv else ROOT / "build" / "site" / "objects.inv"
    api = public_api()
    absent = missing(api, inventory_names(inventory.read_bytes()))
    if absent:
        print(f"{len(absent)} public names have no entry in {inventory}:", file=sys.stderr)
        for path in absent:
            print(f"  {path}", file=sys.stderr)
        return 1
    empty = undocumented(api)
    if empty:
        print(f"{len(empty)} public methods have no docstring:", file=sys.stderr)
        for path in empty:
            print(f"  {path}", file=sys.stderr)
        return 1
    count = sum(1 + len(names) for names in api.values())
    print(f"{inventory}: all {count} public modules and names of {len(api)} modules found")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
