"""relay-guardrails: rules a request must pass before it is sent and an answer before the
caller sees it, configured under the catalog's ``plugins.guardrails``.

Installed, the plugin does nothing until the catalog has a ``plugins.guardrails``
section; each hub then gets its own :class:`Guardrails`, built from its catalog. A
refused call raises :class:`relay_core.GuardrailViolation` whose ``rule`` names the rule
(in a batch job, only that request fails, with the violation as its result's error).

This module stays light: it is imported whenever plugins load. The rules (``re``,
``fnmatch``) load with the first configured hub, jsonschema with the first answer
checked against a schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay_core.plugin import hookimpl, lazy_exports

if TYPE_CHECKING:
    from collections.abc import Callable

    from relay_core.plugin import Catalog
    from relay_guardrails._guard import Guardrails
    from relay_guardrails._settings import Settings

__all__ = ["Guardrails", "Settings"]

__version__ = "0.1.0"


@hookimpl
def relay_configure(catalog: Catalog) -> object | None:
    """The guardrails of ``catalog.plugins.guardrails``, or ``None`` when it has none."""
    if "guardrails" not in catalog.plugins:
        return None
    from relay_guardrails._guard import Guardrails
    from relay_guardrails._settings import Settings

    return Guardrails(Settings.parse(catalog.plugins["guardrails"], catalog))


# The public classes load on first use, not with the entry point.
__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {"Guardrails": "relay_guardrails._guard", "Settings": "relay_guardrails._settings"},
)


# The settings Settings.parse takes, here so that declaring them imports nothing.
_FIELDS = (
    "allowed_models",
    "assumed_output_tokens",
    "blocked_patterns",
    "max_cost_per_call",
    "max_cost_per_job",
    "max_input_tokens",
    "max_scan_chars",
    "required_patterns",
    "token_count",
    "unknown_price",
    "validate_output_schema",
)


@hookimpl
def relay_register_settings(register: Callable[..., None]) -> None:
    register("guardrails", fields=_FIELDS)
