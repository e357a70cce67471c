"""The public API is exactly what ``relay_core.__all__`` lists, and all of it resolves."""

from __future__ import annotations

import relay_core


def test_all_is_exact() -> None:
    public = {
        name
        for name in dir(relay_core)
        if not name.startswith("_") and not isinstance(getattr(relay_core, name), type(relay_core))
    }
    # Lazily provided names are public too.
    public.add("configure_logging")
    assert sorted(relay_core.__all__) == sorted(public | {"__version__"})


def test_every_exported_name_resolves_and_is_documented() -> None:
    for name in relay_core.__all__:
        value = getattr(relay_core, name)
        if isinstance(value, type) or (callable(value) and not hasattr(value, "__args__")):
            assert value.__doc__, f"{name} has no docstring"


def test_all_is_sorted() -> None:
    assert relay_core.__all__ == sorted(relay_core.__all__)
