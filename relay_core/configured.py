"""What plugins configure for one hub's catalog: checked, registered once before the
first call, and closed with the hub.

``relay_configure`` hands each plugin the catalog and registers what it returns (an
audit sink over a file, a redactor, an MCP server's toolset) in the hub's registry. It
must happen before the first request (a redactor must see it), after the application
has registered its own plugins, and once however many threads call at once. It is its
own idea, apart from the hub that triggers it, because it owns state the calls never
touch: what was configured, and how to close it.
"""

from __future__ import annotations

import threading

from relay_core.config import Catalog
from relay_core.log import get_logger
from relay_core.plugins import PluginRegistry
from relay_core.sections import check_sections, raise_all

__all__ = ["ConfiguredPlugins"]


class ConfiguredPlugins:
    """The plugins configured for ``catalog`` in ``plugins`` (the hub's registry)."""

    def __init__(self, catalog: Catalog, plugins: PluginRegistry) -> None:
        self.catalog = catalog
        self.plugins = plugins
        self.done = False
        """Whether :meth:`configure` has run."""
        self.configured: list[object] = []
        """What ``relay_configure`` returned and this hub registered, in order."""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ConfiguredPlugins(done={self.done}, configured={len(self.configured)})"

    def check_sections(self, *, warn: bool = True) -> None:
        """Raise a :class:`ConfigError` for a ``plugins:`` section no installed plugin
        reads or a field it does not know; log the sections ignored when ``warn``."""
        errors, warnings = check_sections(self.catalog, self.plugins)
        raise_all(errors)
        for warning in warnings if warn else ():
            get_logger("relay.hub").warning("plugin_section_ignored", reason=str(warning))

    def configure(self) -> None:
        """Load the entry points and register what each plugin configures for the
        catalog (once, before the first call: a redactor must see the first request)."""
        if self.done:
            return
        self.plugins.load()
        with self._lock:
            if self.done:
                return
            # Before any plugin configures itself: a misspelt guardrails section must
            # stop the hub, not leave its calls unguarded.
            self.check_sections()
            for impl in self.plugins.hook.relay_configure.get_hookimpls():
                configured = impl.function(
                    **{arg: self.catalog for arg in impl.argnames if arg == "catalog"}
                )
                name = f"{impl.plugin_name}:configured"
                # A registry shared by several hubs keeps the first hub's configuration.
                if configured is not None and not self.plugins.pm.has_plugin(name):
                    self.plugins.register(configured, name=name)
                    self.configured.append(configured)
            self.done = True

    async def aclose(self) -> None:
        """Close what was configured: each object's ``aclose()`` awaited, or its
        ``close()`` called. A failure is logged and the others still close."""
        # What relay_configure returned may hold files (audit sinks), connections or
        # processes (MCP servers).
        for configured in self.configured:
            try:
                aclose = getattr(configured, "aclose", None)
                if callable(aclose):
                    await aclose()
                    continue
                close = getattr(configured, "close", None)
                if callable(close):
                    close()
            except Exception as error:
                get_logger("relay.hub").error(
                    "plugin.close_failed", plugin=repr(configured), error=repr(error)
                )
