"""Plugin discovery and the registries filled by the registration hooks.

One :class:`PluginRegistry` wraps one ``pluggy.PluginManager("relay")``. Entry points in
the group ``relay`` load on first use, once; in-code plugins register at any time with
:meth:`PluginRegistry.register`. Two environment variables steer loading, as in pytest
and llm:

- ``RELAY_PLUGINS``: a comma-separated allow-list of entry point names; set but empty,
  only the built-ins load.
- ``RELAY_BLOCK_PLUGINS``: a comma-separated list of entry point names never to load.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

import pluggy
from attrs import field, frozen

from relay_core import hookspecs
from relay_core.errors import ConfigError, PluginNotInstalled

if TYPE_CHECKING:
    from relay_core.caching import CacheFactory
    from relay_core.pricing import PricingSource
    from relay_core.providers import Provider

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginRegistry",
    "ProviderEntry",
    "SettingsEntry",
]

ENTRY_POINT_GROUP = "relay"
BUILTIN_PLUGIN = "relay.builtin"
_SECTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

# Where a provider lives when nobody has installed it: the hint in PluginNotInstalled.
_DISTRIBUTION_OF_PROVIDER = {
    "mock": "relay-mock",
    "openai": "relay-openai",
    "anthropic": "relay-anthropic",
    "gemini": "relay-gemini",
    "mistral": "relay-mistral",
    "openai-compat": "relay-openai-compat",
    "together": "relay-openai-compat",
    "groq": "relay-openai-compat",
    "deepseek": "relay-openai-compat",
    "xai": "relay-openai-compat",
    "fireworks": "relay-openai-compat",
    "openrouter": "relay-openai-compat",
    "vllm": "relay-openai-compat",
    "ollama": "relay-openai-compat",
    "llama-cpp": "relay-openai-compat",
}


def distribution_for(provider: str) -> str:
    """The distribution to ``pip install`` for a provider name."""
    return _DISTRIBUTION_OF_PROVIDER.get(provider, f"relay-{provider}")


@frozen
class ProviderEntry:
    """A registered provider: its adapter (class or import string) and preset defaults."""

    name: str
    adapter: type[Provider] | str
    plugin: str
    defaults: Mapping[str, Any] = field(factory=dict)

    def load(self) -> type[Provider]:
        """The adapter class, importing its module on first use."""
        if not isinstance(self.adapter, str):
            return self.adapter
        import importlib

        module_name, _, attr = self.adapter.partition(":")
        try:
            module = importlib.import_module(module_name)
            adapter = getattr(module, attr)
        except (ImportError, AttributeError) as error:
            raise ConfigError(
                f"plugin {self.plugin!r} registered provider {self.name!r} as "
                f"{self.adapter!r}, which cannot be imported: {error}"
            ) from error
        return cast("type[Provider]", adapter)


@frozen
class SettingsEntry:
    """A catalog section ``plugins.<name>`` a plugin declared it reads."""

    name: str
    plugin: str
    fields: frozenset[str] | None = None
    check: Callable[[Any], None] | None = None


@frozen
class PluginInfo:
    """A loaded plugin, for ``relay plugins``."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


class PluginRegistry:
    """The plugins of one hub and what they registered.

    ``autoload=False`` loads no entry points (tests register what they need);
    ``allow`` and ``block`` override ``RELAY_PLUGINS`` and ``RELAY_BLOCK_PLUGINS``.
    """

    def __init__(
        self,
        *,
        autoload: bool = True,
        allow: Iterable[str] | None = None,
        block: Iterable[str] = (),
    ) -> None:
        self.pm = pluggy.PluginManager("relay")
        self.pm.add_hookspecs(hookspecs)
        self._autoload = autoload
        env_allow = _env_list("RELAY_PLUGINS")
        self._allow = (
            set(allow) if allow is not None else (set(env_allow) if env_allow is not None else None)
        )
        self._block = set(block) | set(_env_list("RELAY_BLOCK_PLUGINS") or ())
        self._loaded = False
        self._lock = threading.RLock()
        self._providers: dict[str, ProviderEntry] = {}
        self._resolvers: dict[str, Callable[[str], str]] = {}
        self._pricing_sources: list[PricingSource] = []
        self._caches: dict[str, tuple[str, CacheFactory]] = {}
        self._distributions: dict[str, tuple[str, str]] = {}
        self._settings: dict[str, SettingsEntry] = {}
        from relay_core import _builtin

        self.register(_builtin, name=BUILTIN_PLUGIN)

    @property
    def hook(self) -> Any:
        """The hook caller, e.g. ``registry.hook.relay_audit(event=...)``."""
        return self.pm.hook

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register an in-code plugin (a module or an object with hook implementations).

        Its registration hooks run at once. Returns the name it is registered under.
        """
        with self._lock:
            plugin_name = self.pm.register(plugin, name=name)
            if plugin_name is None:
                raise ConfigError(f"plugin {name!r} is blocked or already registered")
            self._run_registration_hooks(plugin_name)
            return plugin_name

    def block(self, name: str) -> None:
        """Never load the entry point ``name`` (and unregister it if it is loaded)."""
        with self._lock:
            self._block.add(name)
            self.pm.set_blocked(name)

    def load(self) -> None:
        """Load the entry point plugins once; later calls return at once."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if self._autoload:
                self._load_entry_points()
            self.pm.check_pending()

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        # One broken plugin is reported, after the others are loaded: it must not make
        # the plugins that follow it in entry point order silently disappear.
        failures: list[str] = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._block or (self._allow is not None and ep.name not in self._allow):
                continue
            if self.pm.has_plugin(ep.name) or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as error:
                dist = ep.dist.name if ep.dist else ep.value
                failures.append(f"plugin {ep.name!r} (from {dist}) failed to import: {error}")
                continue
            if ep.dist is not None:
                self._distributions[ep.name] = (ep.dist.name, ep.dist.version)
            self.register(plugin, name=ep.name)
        if failures:
            raise ConfigError("; ".join(failures))

    def _run_registration_hooks(self, plugin_name: str) -> None:
        def add_provider(
            name: str, adapter: type[Provider] | str, *, defaults: Mapping[str, Any] | None = None
        ) -> None:
            existing = self._providers.get(name)
            if existing is not None and existing.plugin != plugin_name:
                raise ConfigError(
                    f"provider {name!r} is registered by both {existing.plugin!r} and "
                    f"{plugin_name!r}; block one with RELAY_BLOCK_PLUGINS"
                )
            self._providers[name] = ProviderEntry(name, adapter, plugin_name, dict(defaults or {}))

        def add_resolver(scheme: str, resolve: Callable[[str], str]) -> None:
            self._resolvers[scheme] = resolve

        def add_cache(name: str, factory: CacheFactory) -> None:
            for other, (other_plugin, _) in self._caches.items():
                if other_plugin != plugin_name:
                    raise ConfigError(
                        f"response caches are offered by both {other_plugin!r} ({other}) "
                        f"and {plugin_name!r} ({name}); block one with RELAY_BLOCK_PLUGINS"
                    )
            self._caches[name] = (plugin_name, factory)

        def add_settings(
            name: str,
            *,
            fields: Iterable[str] | None = None,
            check: Callable[[Any], None] | None = None,
        ) -> None:
            existing = self._settings.get(name)
            if existing is not None and existing.plugin != plugin_name:
                raise ConfigError(
                    f"the catalog section plugins.{name} is claimed by both "
                    f"{existing.plugin!r} and {plugin_name!r}; block one with RELAY_BLOCK_PLUGINS"
                )
            allowed = frozenset(fields) if fields is not None else None
            self._settings[name] = SettingsEntry(name, plugin_name, allowed, check)

        callbacks: dict[str, Callable[..., None]] = {
            "relay_register_providers": add_provider,
            "relay_register_pricing_sources": self._pricing_sources.append,
            "relay_register_credential_resolvers": add_resolver,
            "relay_register_response_caches": add_cache,
            "relay_register_settings": add_settings,
        }
        for hook_name, register in callbacks.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin_name == plugin_name:
                    impl.function(**{arg: register for arg in impl.argnames})

    # -- what the plugins registered ----------------------------------------------------

    def provider(self, name: str) -> ProviderEntry:
        """The entry for provider ``name``; :class:`PluginNotInstalled` if none has it."""
        self.load()
        try:
            return self._providers[name]
        except KeyError:
            raise PluginNotInstalled(name, distribution_for(name)) from None

    def providers(self) -> Mapping[str, ProviderEntry]:
        self.load()
        return dict(self._providers)

    def credential_resolver(self, scheme: str) -> Callable[[str], str] | None:
        self.load()
        return self._resolvers.get(scheme)

    def credential_schemes(self) -> list[str]:
        self.load()
        return sorted(self._resolvers)

    def pricing_sources(self) -> list[PricingSource]:
        self.load()
        return list(self._pricing_sources)

    def response_cache(self) -> tuple[str, CacheFactory] | None:
        """The name and factory of the installed response cache, if any."""
        self.load()
        return next(iter((name, f) for name, (_, f) in self._caches.items()), None)

    def settings_sections(self) -> Mapping[str, SettingsEntry]:
        """The catalog sections under ``plugins:`` that installed plugins read: those
        declared with ``relay_register_settings``, the name of each response cache
        (its factory gets ``plugins.<name>``), and the name of each plugin registered
        under a name that implements ``relay_configure``."""
        self.load()
        found = dict(self._settings)
        for name, (plugin, _) in self._caches.items():
            found.setdefault(name, SettingsEntry(name, plugin))
        for impl in self.pm.hook.relay_configure.get_hookimpls():
            # Not "relay.builtin", "audit:configured" or pluggy's made-up numeric names.
            if _SECTION_NAME.match(impl.plugin_name):
                found.setdefault(
                    impl.plugin_name, SettingsEntry(impl.plugin_name, impl.plugin_name)
                )
        return found

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin with its distribution and the hooks it implements."""
        self.load()
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = tuple(sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ()))
            dist, version = self._distributions.get(name, (None, None))
            infos.append(PluginInfo(name, dist, version, hooks))
        return sorted(infos, key=lambda info: info.name)
