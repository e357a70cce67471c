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

import difflib
import importlib
import inspect
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

import pluggy
from attrs import field, frozen

from relay_core import _builtin, hookspecs
from relay_core.errors import (
    ConfigError,
    PluginBlocked,
    PluginBroken,
    PluginNotInstalled,
    ProviderConflict,
    RelayError,
)

if TYPE_CHECKING:
    from relay_core.caching import CacheFactory
    from relay_core.pricing import PricingSource
    from relay_core.providers import Provider

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginRegistry",
    "PluginWarning",
    "ProviderEntry",
    "SettingsEntry",
]

ENTRY_POINT_GROUP = "relay"
BUILTIN_PLUGIN = "relay.builtin"
_SECTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

# Every provider a distribution of this repository registers: the pip install hint of
# PluginNotInstalled, and the names a typo is compared with when nothing is installed.
# integration/test_provider_table.py checks it against what the plugins register.
_DISTRIBUTION_OF_PROVIDER = {
    "mock": "relay-mock",
    "openai": "relay-openai",
    "anthropic": "relay-anthropic",
    "gemini": "relay-gemini",
    "mistral": "relay-mistral",
    "cohere": "relay-cohere",
    "azure": "relay-azure",
    "bedrock": "relay-bedrock",
    "vertex": "relay-vertex",
    "vertex-openai": "relay-vertex",
    "pool": "relay-serve",
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


class PluginWarning(UserWarning):
    """An installed plugin could not be loaded and was left out; the others work. The
    message names the plugin, what went wrong and the fix. Silence one plugin's warning
    by blocking it (``RELAY_BLOCK_PLUGINS``), or all with :mod:`warnings` filters."""


def distribution_for(provider: str) -> str | None:
    """The distribution to ``pip install`` for a provider name, when one is known."""
    return _DISTRIBUTION_OF_PROVIDER.get(provider)


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


PluginStatus = Literal["loaded", "conflict", "broken", "blocked"]


@frozen
class SettingsEntry:
    """A catalog section ``plugins.<name>`` a plugin declared it reads."""

    name: str
    plugin: str
    fields: frozenset[str] | None = None
    check: Callable[[Any], None] | None = None


@frozen
class PluginInfo:
    """A plugin, for ``relay plugins``: loaded, or found and left out.

    ``status`` is ``loaded``; ``conflict`` (loaded, but a provider name it registers is
    registered by another plugin too); ``broken`` (failed to load); or ``blocked`` (an
    entry point not loaded because of the allow or block lists). ``reason`` says why for
    every status but ``loaded``.
    """

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    status: PluginStatus = "loaded"
    reason: str | None = None


@frozen
class _LeftOut:
    """An entry point that was found but not loaded, and why."""

    origin: tuple[str, str] | None  # distribution and version
    reason: str


class _LoadFailure(Exception):
    """A plugin cannot be registered; ``reason`` says why and how to fix it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@frozen
class _Registrations:
    """What one plugin's registration hooks declared, kept apart until all succeeded."""

    providers: list[ProviderEntry] = field(factory=list)
    resolvers: list[tuple[str, Callable[[str], str]]] = field(factory=list)
    pricing_sources: list[PricingSource] = field(factory=list)
    caches: list[tuple[str, CacheFactory]] = field(factory=list)
    stores: list[tuple[str, Callable[..., Any]]] = field(factory=list)
    settings: list[SettingsEntry] = field(factory=list)


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _canonical(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


class PluginRegistry:
    """The plugins of one hub and what they registered.

    ``autoload=False`` loads no entry points (tests register what they need);
    ``allow`` and ``block`` override ``RELAY_PLUGINS`` and add to ``RELAY_BLOCK_PLUGINS``.

    An entry point plugin that fails to load (import error, misspelt hook, a
    registration hook that raises) is left out with a :class:`PluginWarning`; the
    others load. Two plugins registering one provider name both stay loaded, and a call
    to that name raises :class:`ProviderConflict`.
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
        self._allow: set[str] | None = None
        self._allow_source = ""
        if allow is not None:
            self._allow, self._allow_source = set(allow), "the allow= list of this registry"
        elif env_allow is not None:
            self._allow, self._allow_source = set(env_allow), "the RELAY_PLUGINS allow-list"
        self._block_env = set(_env_list("RELAY_BLOCK_PLUGINS") or ())
        self._block = set(block)
        self._loaded = False
        self._lock = threading.RLock()
        self.generation = 0
        """Counts the plugins registered and unregistered: what a hub compares to know
        whether the chain of its call pipeline still holds."""
        self._providers: dict[str, ProviderEntry] = {}
        # A provider name two plugins registered: every plugin's entry, first first.
        self._conflicts: dict[str, list[ProviderEntry]] = {}
        self._resolvers: dict[str, tuple[str, Callable[[str], str]]] = {}
        self._pricing_sources: list[tuple[str, PricingSource]] = []
        self._caches: dict[str, tuple[str, CacheFactory]] = {}
        # URL scheme → (plugin, factory) of the workspace stores.
        self._stores: dict[str, tuple[str, Callable[..., Any]]] = {}
        self._distributions: dict[str, tuple[str, str]] = {}
        self._broken: dict[str, _LeftOut] = {}
        self._blocked: dict[str, _LeftOut] = {}
        self._settings: dict[str, SettingsEntry] = {}

        self.register(_builtin, name=BUILTIN_PLUGIN)

    @property
    def hook(self) -> Any:
        """The hook caller, e.g. ``registry.hook.relay_audit(event=...)``."""
        return self.pm.hook

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register an in-code plugin (a module or an object with hook implementations).

        Its registration hooks run at once. Returns the name it is registered under.
        Raises :class:`ConfigError` if the plugin is broken (a misspelt hook, a hook
        whose arguments the spec does not pass, a registration hook that raises) and
        :class:`ProviderConflict` if it registers a provider name another plugin has;
        either way nothing of it stays registered.
        """
        with self._lock:
            try:
                return self._add(plugin, name, lenient=False)
            except _LoadFailure as failure:
                shown = name or self.pm.get_canonical_name(plugin)
                raise ConfigError(f"plugin {shown!r} is broken: {failure.reason}") from None

    def block(self, name: str) -> None:
        """Never load the entry point ``name`` (and unregister it if it is loaded)."""
        with self._lock:
            self._block.add(name)
            if self.pm.has_plugin(name):
                self._forget(name)
                origin = self._distributions.pop(name, None)
                self._blocked[name] = _LeftOut(origin, cast("str", self._blocked_by(name)))
            self.pm.set_blocked(name)

    def load(self) -> None:
        """Load the entry point plugins once; later calls return at once.

        Never raises for a broken plugin: it is left out with a :class:`PluginWarning`.
        """
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if self._autoload:
                self._load_entry_points()

    def _blocked_by(self, name: str) -> str | None:
        """What keeps the entry point ``name`` from loading, in words; None if nothing."""
        if name in self._block or self.pm.is_blocked(name):
            return "blocked in code (PluginRegistry(block=...) or registry.block())"
        if name in self._block_env:
            return f"blocked by RELAY_BLOCK_PLUGINS (remove {name!r} from it to load it)"
        if self._allow is not None and name not in self._allow:
            return f"not in {self._allow_source} (add {name!r} to it to load it)"
        return None

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            origin = (ep.dist.name, ep.dist.version) if ep.dist is not None else None
            blocked = self._blocked_by(ep.name)
            if blocked is not None:
                self._blocked[ep.name] = _LeftOut(origin, blocked)
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as error:
                self._left_out(ep.name, origin, f"importing {ep.value!r} failed: {error!r}")
                continue
            if origin is not None:
                self._distributions[ep.name] = origin
            try:
                self._add(plugin, ep.name, lenient=True)
            except _LoadFailure as failure:
                self._distributions.pop(ep.name, None)
                self._left_out(ep.name, origin, failure.reason)

    def _left_out(self, name: str, origin: tuple[str, str] | None, reason: str) -> None:
        self._broken[name] = _LeftOut(origin, reason)
        where = f" ({origin[0]} {origin[1]})" if origin else ""
        stop = "" if reason.endswith(("?", ".")) else "."
        warnings.warn(
            f"relay plugin {name!r}{where} is broken and was not loaded: {reason}{stop} The "
            f"other plugins work; fix or uninstall it, or set RELAY_BLOCK_PLUGINS={name} to "
            "skip it",
            PluginWarning,
            stacklevel=2,
        )

    def _add(self, plugin: object, name: str | None, *, lenient: bool) -> str:
        problem = self._hook_problem(plugin)
        if problem is not None:
            raise _LoadFailure(problem)
        try:
            registered = self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as error:
            # pluggy older than 1.6 leaves a plugin that fails validation half registered.
            if name is not None and self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            raise _LoadFailure(" ".join(str(error).split())) from error
        except ValueError as error:
            if not lenient:
                raise
            # Two entry points naming one module: the second is the one left out.
            raise _LoadFailure(str(error).partition("\n")[0]) from error
        if registered is None:
            raise ConfigError(f"plugin {name!r} is blocked or already registered")
        try:
            declared = self._registrations(registered)
            self._commit(registered, declared, lenient=lenient)
        except BaseException:
            self.pm.unregister(name=registered)
            raise
        self.generation += 1
        return registered

    def _hook_problem(self, plugin: object) -> str | None:
        """Why pluggy would refuse ``plugin``, said for a plugin author: a hook name
        with a typo (pluggy's check_pending would only catch it later, for every plugin
        at once) or arguments a hook does not pass."""
        specs = {
            name: caller
            for name, caller in vars(self.pm.hook).items()
            if not name.startswith("_") and caller.has_spec()
        }
        for attr in dir(plugin):
            try:
                opts = self.pm.parse_hookimpl_opts(plugin, attr)
            except Exception:
                continue  # a property that raises is no hook
            if opts is None:
                continue
            hook = opts.get("specname") or attr
            if hook not in specs:
                if opts.get("optionalhook"):
                    continue

                close = difflib.get_close_matches(hook, specs, n=1)
                fix = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"Relay's hooks are {', '.join(sorted(specs))}"
                )
                return f"it implements {hook!r}, which is not a Relay hook; {fix}"
            passed = list(inspect.signature(getattr(hookspecs, hook)).parameters)
            try:
                taken = inspect.signature(getattr(plugin, attr)).parameters
            except (TypeError, ValueError):
                continue  # no signature to read: pluggy judges it
            unknown = [arg for arg in taken if arg not in passed]
            if unknown:
                return (
                    f"its {hook!r} takes {', '.join(map(repr, unknown))}, which the hook does "
                    f"not pass; it passes {', '.join(map(repr, passed))} (by name)"
                )
        return None

    def _registrations(self, plugin_name: str) -> _Registrations:
        declared = _Registrations()

        def add_provider(
            name: str, adapter: type[Provider] | str, *, defaults: Mapping[str, Any] | None = None
        ) -> None:
            declared.providers.append(
                ProviderEntry(name, adapter, plugin_name, dict(defaults or {}))
            )

        def add_resolver(scheme: str, resolve: Callable[[str], str]) -> None:
            declared.resolvers.append((scheme, resolve))

        def add_cache(name: str, factory: CacheFactory) -> None:
            declared.caches.append((name, factory))

        def add_store(scheme: str, factory: Callable[..., Any]) -> None:
            declared.stores.append((scheme.lower(), factory))

        def add_settings(
            name: str,
            *,
            fields: Iterable[str] | None = None,
            check: Callable[[Any], None] | None = None,
        ) -> None:
            allowed = frozenset(fields) if fields is not None else None
            declared.settings.append(SettingsEntry(name, plugin_name, allowed, check))

        callbacks: dict[str, Callable[..., None]] = {
            "relay_register_providers": add_provider,
            "relay_register_pricing_sources": declared.pricing_sources.append,
            "relay_register_credential_resolvers": add_resolver,
            "relay_register_response_caches": add_cache,
            "relay_register_workspace_stores": add_store,
            "relay_register_settings": add_settings,
        }
        for hook_name, register in callbacks.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin_name != plugin_name:
                    continue
                try:
                    impl.function(**{arg: register for arg in impl.argnames})
                except Exception as error:
                    raise _LoadFailure(f"its {hook_name} raised {error!r}") from error
        return declared

    def _commit(self, plugin_name: str, declared: _Registrations, *, lenient: bool) -> None:
        """Keep what a plugin declared. A provider name another plugin has is a conflict:
        an error at once for a plugin registered in code; for an entry point, one that a
        call to that name reports (both plugins stay, with their other providers)."""
        for name, _ in declared.caches:
            for other, (other_plugin, _) in self._caches.items():
                if other_plugin != plugin_name:
                    clash = (
                        f"response caches are offered by both {other_plugin!r} ({other}) "
                        f"and {plugin_name!r} ({name}); block one with RELAY_BLOCK_PLUGINS"
                    )
                    raise _LoadFailure(clash) if lenient else ConfigError(clash)
        for scheme, _ in declared.stores:
            owner = self._stores.get(scheme)
            if owner is not None and owner[0] != plugin_name:
                clash = (
                    f"workspace stores for {scheme}:// are offered by both {owner[0]!r} and "
                    f"{plugin_name!r}; block one with RELAY_BLOCK_PLUGINS"
                )
                raise _LoadFailure(clash) if lenient else ConfigError(clash)
        for section in declared.settings:
            claimed = self._settings.get(section.name)
            if claimed is not None and claimed.plugin != plugin_name:
                clash = (
                    f"the catalog section plugins.{section.name} is claimed by both "
                    f"{claimed.plugin!r} and {plugin_name!r}; block one with RELAY_BLOCK_PLUGINS"
                )
                raise _LoadFailure(clash) if lenient else ConfigError(clash)
        clashes = [
            entry
            for entry in declared.providers
            if entry.name in self._conflicts
            or self._providers.get(entry.name, entry).plugin != plugin_name
        ]
        if clashes and not lenient:
            entry = clashes[0]
            existing = self._conflicts.get(entry.name) or [self._providers[entry.name]]
            raise self._conflict(entry.name, [*existing, entry])
        for entry in declared.providers:
            if entry in clashes:
                if entry.name not in self._conflicts:
                    self._conflicts[entry.name] = [self._providers.pop(entry.name)]
                self._conflicts[entry.name].append(entry)
            else:
                self._providers[entry.name] = entry
        self._resolvers.update((scheme, (plugin_name, f)) for scheme, f in declared.resolvers)
        self._pricing_sources += [(plugin_name, source) for source in declared.pricing_sources]
        self._caches.update((name, (plugin_name, f)) for name, f in declared.caches)
        self._stores.update((scheme, (plugin_name, f)) for scheme, f in declared.stores)
        self._settings.update((section.name, section) for section in declared.settings)

    def _forget(self, plugin_name: str) -> None:
        """Drop what a plugin registered, before it is unregistered."""
        self.pm.unregister(name=plugin_name)
        self.generation += 1
        self._providers = {n: e for n, e in self._providers.items() if e.plugin != plugin_name}
        for name, entries in list(self._conflicts.items()):
            kept = [entry for entry in entries if entry.plugin != plugin_name]
            if len(kept) > 1:
                self._conflicts[name] = kept
            else:
                del self._conflicts[name]
                self._providers.update((entry.name, entry) for entry in kept)
        self._resolvers = {s: r for s, r in self._resolvers.items() if r[0] != plugin_name}
        self._pricing_sources = [p for p in self._pricing_sources if p[0] != plugin_name]
        self._caches = {n: c for n, c in self._caches.items() if c[0] != plugin_name}
        self._stores = {n: c for n, c in self._stores.items() if c[0] != plugin_name}
        self._settings = {n: e for n, e in self._settings.items() if e.plugin != plugin_name}

    def _conflict(self, provider: str, entries: list[ProviderEntry]) -> ProviderConflict:
        plugins = tuple(entry.plugin for entry in entries)
        distributions = tuple(
            self._distributions[p][0] if p in self._distributions else None for p in plugins
        )
        blockable = [p for p in plugins if p in self._distributions]
        if blockable:
            fix = "keep one: set " + " or ".join(
                f"RELAY_BLOCK_PLUGINS={p}" for p in reversed(blockable)
            )
        else:
            fix = "register only one of them"
        return ProviderConflict(provider, plugins, distributions, fix=fix)

    def _missing(self, name: str) -> RelayError:
        """The error for a provider name no loaded plugin serves, saying why."""
        clash = self._conflicts.get(name)
        if clash:
            return self._conflict(name, clash)
        for plugin, left_out in self._broken.items():
            if self._may_offer(plugin, left_out, name):
                dist = left_out.origin[0] if left_out.origin else None
                return PluginBroken(name, plugin, dist, cause=left_out.reason)
        for plugin, left_out in self._blocked.items():
            if self._may_offer(plugin, left_out, name):
                dist = left_out.origin[0] if left_out.origin else None
                return PluginBlocked(name, plugin, dist, by=left_out.reason)
        known = distribution_for(name)
        if known is not None:
            return PluginNotInstalled(name, known)

        names = sorted(set(self._providers) | set(self._conflicts) | set(_DISTRIBUTION_OF_PROVIDER))
        close = tuple(difflib.get_close_matches(name, names, n=3, cutoff=0.7))
        if close:
            return PluginNotInstalled(name, None, suggestions=close)
        return PluginNotInstalled(name, None, installed=tuple(sorted(self._providers)))

    @staticmethod
    def _may_offer(plugin: str, left_out: _LeftOut, provider: str) -> bool:
        """Whether a plugin that was not loaded is the one a provider name needs. What it
        registers is unknown (it never ran), so go by names: the entry point's, or its
        distribution's (``relay-acme`` for ``acme``, or the known one for ``groq``)."""
        if plugin == provider:
            return True
        if left_out.origin is None:
            return False
        wanted = {f"relay-{provider}", distribution_for(provider) or f"relay-{provider}"}
        return _canonical(left_out.origin[0]) in {_canonical(w) for w in wanted}

    # -- what the plugins registered ----------------------------------------------------

    def provider(self, name: str) -> ProviderEntry:
        """The entry for provider ``name``.

        Raises :class:`PluginNotInstalled` if no loaded plugin has it: its subclass
        :class:`PluginBroken` or :class:`PluginBlocked` when the plugin that offers it is
        installed but broken or blocked; :class:`ProviderConflict` if two plugins
        registered the name.
        """
        self.load()
        entry = self._providers.get(name)
        if entry is None:
            raise self._missing(name)
        return entry

    def providers(self) -> Mapping[str, ProviderEntry]:
        """The providers the loaded plugins registered, by name."""
        self.load()
        return dict(self._providers)

    def credential_resolver(self, scheme: str) -> Callable[[str], str] | None:
        """The resolver plugins registered for a credential reference's ``scheme``
        (``vault``, ``aws-sm``...), or ``None``."""
        self.load()
        found = self._resolvers.get(scheme)
        return found[1] if found else None

    def credential_schemes(self) -> list[str]:
        """The credential reference schemes plugins registered, sorted."""
        self.load()
        return sorted(self._resolvers)

    def pricing_sources(self) -> list[PricingSource]:
        """The pricing sources plugins registered."""
        self.load()
        return [source for _, source in self._pricing_sources]

    def response_cache(self) -> tuple[str, CacheFactory] | None:
        """The name and factory of the installed response cache, if any."""
        self.load()
        return next(iter((name, f) for name, (_, f) in self._caches.items()), None)

    def workspace_stores(self) -> dict[str, Callable[..., Any]]:
        """URL scheme → factory of the workspace stores plugins registered."""
        self.load()
        return {scheme: factory for scheme, (_, factory) in self._stores.items()}

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
        """Every registered plugin with its distribution and the hooks it implements, and
        every entry point left out (broken or blocked) with the reason."""
        self.load()
        infos = []
        clashes: dict[str, list[str]] = {}
        for name, entries in self._conflicts.items():
            for entry in entries:
                others = [repr(e.plugin) for e in entries if e.plugin != entry.plugin]
                clashes.setdefault(entry.plugin, []).append(
                    f"provider {name!r} is registered by {' and '.join(others)} too"
                )
        for name, plugin in self.pm.list_name_plugin():
            hooks = tuple(sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ()))
            dist, version = self._distributions.get(name, (None, None))
            if name in clashes:
                reason = "; ".join(clashes[name])
                infos.append(PluginInfo(name, dist, version, hooks, "conflict", reason))
            else:
                infos.append(PluginInfo(name, dist, version, hooks))
        left_out: list[tuple[PluginStatus, dict[str, _LeftOut]]] = [
            ("broken", self._broken),
            ("blocked", self._blocked),
        ]
        for status, found in left_out:
            for name, why in found.items():
                dist, version = why.origin or (None, None)
                infos.append(PluginInfo(name, dist, version, (), status, why.reason))
        return sorted(infos, key=lambda info: info.name)
