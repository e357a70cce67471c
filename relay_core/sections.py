"""The catalog's ``plugins:`` sections, checked against what the installed plugins read.

A section is only read by the plugin that declared it (``relay_register_settings``), so
a misspelt one (``guardrail:``) or one for a plugin that is not installed would be
ignored without a word, and calls would run unguarded, unredacted, unaudited. Here each
section must belong to an installed plugin, and each key of a section to the fields its
plugin declared. A section that says ``optional: true`` may be missing its plugin: a
warning, not an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from relay_core.errors import ConfigError

if TYPE_CHECKING:
    from relay_core.config import Catalog
    from relay_core.plugins import PluginRegistry

__all__ = ["KNOWN_SECTIONS", "check_sections", "raise_all"]

# The sections of Relay's own plugins and where each comes from: the hint for a section
# whose plugin is not installed.
KNOWN_SECTIONS = {
    "audit": "relay-audit",
    "cache": "relay-cache",
    "dashboard": "relay-dashboard",
    "guardrails": "relay-guardrails",
    "mcp": "relay-mcp",
    "otel": "relay-otel",
    "redact": "relay-redact",
    "serve": "relay-serve",
}


def check_sections(
    catalog: Catalog, plugins: PluginRegistry, *, deep: bool = False
) -> tuple[list[ConfigError], list[ConfigError]]:
    """The errors and the warnings about ``catalog.plugins``, each pointing at its node,
    in file order. Loads the plugins' entry points when the catalog has sections.
    ``deep`` (``relay validate``) also runs the ``check`` a plugin declared for its
    section, unless the section already has an unknown field."""
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    if not catalog.plugins:
        return errors, warnings
    declared = plugins.settings_sections()
    for name, section in catalog.plugins.items():
        at = ("plugins", name)
        entry = declared.get(name)
        if entry is None:
            problem = catalog.error(_unclaimed(name, declared), at)
            (warnings if name in catalog.optional_plugins else errors).append(problem)
            continue
        unknown = [
            catalog.error(
                f"plugins.{name}: unknown field {key!r}{_hint(str(key), entry.fields)}",
                (*at, key),
            )
            for key in section
            if entry.fields is not None and key not in entry.fields
        ]
        errors += unknown
        if deep and not unknown and entry.check is not None:
            try:
                entry.check(catalog)
            except ConfigError as error:
                if error.line is None:  # a check that cannot point: at least the section
                    error = catalog.error(error.reason, at)
                errors.append(error)
    errors.sort(key=lambda e: (e.line or 0, e.column or 0))
    warnings.sort(key=lambda e: (e.line or 0, e.column or 0))
    return errors, warnings


def raise_all(errors: list[ConfigError]) -> None:
    """Raise the first of ``errors`` carrying the others in ``also`` (none: return)."""
    if errors:
        first, *rest = errors
        first.also = [*first.also, *rest]
        raise first


def _unclaimed(name: str, declared: Iterable[str]) -> str:
    installed = sorted(declared)
    distribution = KNOWN_SECTIONS.get(name)
    if distribution is not None:
        return (
            f"plugins.{name} configures the {distribution} plugin, which is not installed: "
            f"pip install {distribution} (or add optional: true to go on without it)"
        )
    close = difflib.get_close_matches(name, sorted({*installed, *KNOWN_SECTIONS}), n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
        if close[0] not in installed:
            hint += f" (pip install {KNOWN_SECTIONS[close[0]]})"
    elif installed:
        hint = f"the installed plugins read: {', '.join(installed)}"
    else:
        hint = "no installed plugin reads a section"
    return f"no installed plugin reads plugins.{name}; {hint}"


def _hint(key: str, fields: Iterable[str]) -> str:
    known = sorted(fields)
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of {', '.join(known)}" if known else "; it takes no settings"
