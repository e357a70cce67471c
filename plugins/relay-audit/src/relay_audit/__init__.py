"""relay-audit: every call, batch and job event recorded to a hash-chained JSONL file,
a SQLite table or standard output, never with a secret in it.

Configured by the catalog's ``plugins.audit`` (see the README); ``relay audit verify
FILE`` checks a JSONL file's hash chain (with ``--key`` its HMACs, with ``--head`` an
anchor ``relay audit head`` printed). This module is imported whenever plugins load,
so it only registers: the sinks, the record builder and the CLI load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relay_core.plugin import hookimpl, lazy_exports

if TYPE_CHECKING:
    from collections.abc import Callable

    from relay_audit._jsonl import JsonlSink
    from relay_audit._plugin import AuditPlugin, Sink, StdoutSink
    from relay_audit._record import SCHEMA_VERSION, build_record
    from relay_audit._settings import Settings
    from relay_audit._sqlite import SqliteSink
    from relay_audit._verify import Head, Verdict, verify
    from relay_core import Hub
    from relay_core.plugin import Catalog

__all__ = [
    "SCHEMA_VERSION",
    "AuditPlugin",
    "Head",
    "JsonlSink",
    "Settings",
    "Sink",
    "SqliteSink",
    "StdoutSink",
    "Verdict",
    "audit_plugin",
    "build_record",
    "verify",
]

__version__ = "0.1.0"

_MODULE_OF = {
    "SCHEMA_VERSION": "relay_audit._record",
    "AuditPlugin": "relay_audit._plugin",
    "Head": "relay_audit._verify",
    "JsonlSink": "relay_audit._jsonl",
    "Settings": "relay_audit._settings",
    "Sink": "relay_audit._plugin",
    "SqliteSink": "relay_audit._sqlite",
    "StdoutSink": "relay_audit._plugin",
    "Verdict": "relay_audit._verify",
    "build_record": "relay_audit._record",
    "verify": "relay_audit._verify",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULE_OF)


def audit_plugin(hub: Hub) -> AuditPlugin | None:
    """The :class:`AuditPlugin` recording ``hub``'s events (to read its ``failures``), or
    ``None``. The catalog's plugin is configured on the hub's first call."""
    from relay_audit._plugin import AuditPlugin

    for plugin in hub.plugins.pm.get_plugins():
        if isinstance(plugin, AuditPlugin):
            return plugin
    return None


@hookimpl
def relay_configure(catalog: Catalog) -> object | None:
    raw = catalog.plugins.get("audit")
    if raw is None:
        return None
    from relay_audit._plugin import AuditPlugin
    from relay_audit._settings import Settings, resolve_key

    settings = Settings.parse(
        raw, lambda message, at: catalog.error(message, ("plugins", "audit", *at))
    )
    key = None
    if settings.hmac_key is not None:
        key = resolve_key(settings.hmac_key, catalog.where(("plugins", "audit", "hmac_key")))
    return AuditPlugin.from_settings(settings, key=key)


@hookimpl
def relay_register_commands(cli: Any) -> None:
    from relay_audit._cli import audit

    cli.add_command(audit)


@hookimpl
def relay_register_settings(register: Callable[..., None]) -> None:
    register("audit", fields=("sinks", "include_content", "fields", "hmac_key"))
