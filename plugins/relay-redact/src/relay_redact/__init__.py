"""relay-redact: finds personal data and secrets in every request before it leaves the
process (or is logged, cached or audited), and puts the originals back in the answer.

This module stays light: it is imported whenever plugins load. The detectors and the
redactor load on the first call, when the hub asks :func:`relay_configure`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay_core.plugin import hookimpl, lazy_exports

if TYPE_CHECKING:
    from collections.abc import Callable

    from relay_core.plugin import Catalog
    from relay_redact._detectors import DETECTORS, ENTITIES, Detector, Finding, find_pii
    from relay_redact._plugin import Redactor
    from relay_redact._restore import PlaceholderRestorer
    from relay_redact._settings import Settings

__all__ = [
    "DETECTORS",
    "ENTITIES",
    "Detector",
    "Finding",
    "PlaceholderRestorer",
    "Redactor",
    "Settings",
    "find_pii",
    "relay_configure",
    "relay_register_settings",
]

__version__ = "0.1.0"

_MODULE_OF = {
    "DETECTORS": "relay_redact._detectors",
    "ENTITIES": "relay_redact._detectors",
    "Detector": "relay_redact._detectors",
    "Finding": "relay_redact._detectors",
    "find_pii": "relay_redact._detectors",
    "Redactor": "relay_redact._plugin",
    "PlaceholderRestorer": "relay_redact._restore",
    "Settings": "relay_redact._settings",
}


@hookimpl
def relay_configure(catalog: Catalog) -> object | None:
    """The :class:`Redactor` for ``catalog``'s ``plugins.redact`` settings (defaults when
    absent: placeholder mode, every entity); ``None`` when they say ``enabled: false``."""
    from relay_redact._plugin import Redactor
    from relay_redact._settings import Settings

    settings = Settings.parse(catalog)
    return Redactor(settings) if settings.enabled else None


__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULE_OF, listed=__all__)


# The settings Settings.parse takes, here so that declaring them imports nothing.
_FIELDS = (
    "allow",
    "enabled",
    "entities",
    "map_ttl",
    "mask_style",
    "max_maps",
    "mode",
    "salt",
)


@hookimpl
def relay_register_settings(register: Callable[..., None]) -> None:
    register("redact", fields=_FIELDS)
