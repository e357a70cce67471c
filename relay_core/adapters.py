"""The adapters of one hub: each catalog provider's adapter, built with its settings and
credentials on the first call that needs it, over the hub's HTTP pool.

A provider's key comes, first found first: from the hub's ``credentials=`` (code), the
catalog's ``api_key`` (a reference; in a catalog built in code also a Secret or a
resolver), the adapter's environment variable. It is resolved when the adapter is
built; :meth:`Adapters.refresh` drops adapters so that the next call builds them again
with their keys resolved anew (a rotated key, without restarting the application)."""

from __future__ import annotations

import difflib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from relay_core.config import ApiKey, Catalog, CredentialRef, ProviderConfig, api_key_from_code
from relay_core.credentials import resolve_api_key, resolve_credential
from relay_core.errors import CredentialError
from relay_core.plugins import PluginRegistry, distribution_for
from relay_core.providers import Provider, ProviderSettings

if TYPE_CHECKING:
    from relay_core.http import HttpPool

__all__ = ["Adapters", "credentials_in_code"]


def credentials_in_code(
    given: Mapping[str, object], catalog: Catalog, plugins: PluginRegistry
) -> dict[str, ApiKey]:
    """The keys of ``Hub(credentials=...)``, by provider, each checked (see
    :func:`relay_core.config.api_key_from_code`). A provider that neither ``catalog``
    nor an installed plugin knows is a :class:`CredentialError` with the closest name:
    a misspelt one would otherwise leave its key unused and the provider without it."""
    keys: dict[str, ApiKey] = {}
    for provider, value in given.items():
        key = api_key_from_code(value, f"credentials[{provider!r}]")
        if key is not None:
            keys[provider] = key
    unknown = [name for name in keys if not _known_provider(name, catalog, plugins)]
    if unknown:
        name = unknown[0]
        known = sorted({*catalog.providers, *plugins.providers()})
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; providers: {', '.join(known)}"
        raise CredentialError(
            f"credentials names provider {name!r}, which neither the catalog nor an "
            f"installed plugin knows{hint}"
        )
    return keys


def _known_provider(name: str, catalog: Catalog, plugins: PluginRegistry) -> bool:
    if name in catalog.providers or any(
        model.provider == name for model in catalog.models.values()
    ):
        return True
    # Entry points load only for a name nothing else settles (cold start).
    return distribution_for(name) is not None or name in plugins.providers()


class Adapters:
    """Builds and keeps the adapter of each provider of ``catalog``, and the HTTP pool
    they share (over ``transport`` when one is given: ``httpx.MockTransport`` in tests).
    ``credentials`` holds keys given in code, by provider name (already checked: see
    :func:`relay_core.config.api_key_from_code`)."""

    def __init__(
        self,
        catalog: Catalog,
        plugins: PluginRegistry,
        transport: Any = None,
        *,
        credentials: Mapping[str, ApiKey] | None = None,
    ) -> None:
        self.catalog = catalog
        self.plugins = plugins
        self._transport = transport
        self._credentials = dict(credentials or {})
        self._pool: HttpPool | None = None
        self._built: dict[str, Provider] = {}
        self._retired: list[Provider] = []
        self._priced_as: dict[str, str] = {}
        self._lock = threading.Lock()
        self.generation = 0
        """Counts refreshes: a handle that keeps its adapter asks again when it moved."""

    def __repr__(self) -> str:
        in_code = sorted(self._credentials)
        return f"Adapters(built={sorted(self._built)}, credentials_in_code={in_code})"

    # asyncio and httpx load with the first call, not when the hub is built.
    @property
    def pool(self) -> HttpPool:
        if self._pool is None:
            from relay_core.http import HttpPool

            self._pool = HttpPool(transport=self._transport)
        return self._pool

    def get(self, provider: str) -> Provider:
        """The adapter of the catalog's ``provider``, built on first use."""
        with self._lock:
            adapter = self._built.get(provider)
            if adapter is None:
                adapter = self._built[provider] = self._build(provider)
            return adapter

    def built(self) -> dict[str, Provider]:
        """The adapters built so far, by provider name."""
        with self._lock:
            return dict(self._built)

    def refresh(self, provider: str | None = None) -> list[str]:
        """Drop the adapter of ``provider`` (default: every one), so that the next call
        builds it again and resolves its key again: a resolver is called again, a
        reference read again, the caches of secret-manager resolvers cleared first.
        Calls in flight finish with the adapter they have. Returns the providers dropped.
        """
        for scheme in self.plugins.credential_schemes():
            clear = getattr(self.plugins.credential_resolver(scheme), "cache_clear", None)
            if callable(clear):
                clear()
        with self._lock:
            names = [provider] if provider is not None else list(self._built)
            dropped = [name for name in names if name in self._built]
            # Closed with the hub, not now: a call in flight may still be using it.
            self._retired.extend(self._built.pop(name) for name in dropped)
            self.generation += 1
            return dropped

    def retired(self) -> list[Provider]:
        """Adapters :meth:`refresh` dropped, for the hub to close with the others."""
        with self._lock:
            retired, self._retired = self._retired, []
            return retired

    def pricing_name(self, provider: str) -> str:
        """The name pricing sources know ``provider`` by."""
        # Pricing sources know providers by their registered name (`mock`), not by the
        # catalog key a user chose for one (`offline: {plugin: mock}`).
        return self._priced_as.get(provider) or self.catalog.plugin_of(provider)

    def _build(self, name: str) -> Provider:
        from relay_core.http import HttpClient

        catalog = self.catalog
        config = catalog.providers.get(name, ProviderConfig())
        entry = self.plugins.provider(catalog.plugin_of(name))
        self._priced_as[name] = entry.name
        adapter_cls = entry.load()
        defaults = entry.defaults
        settings = ProviderSettings(
            name=name,
            api_key=self._api_key(
                name, config, defaults.get("api_key_env", adapter_cls.api_key_env)
            ),
            base_url=config.base_url or defaults.get("base_url") or adapter_cls.default_base_url,
            timeout=config.timeout or catalog.defaults.timeout,
            max_retries=(
                config.max_retries
                if config.max_retries is not None
                else catalog.defaults.max_retries
            ),
            headers=dict(config.headers),
            options={**defaults.get("options", {}), **config.options},
        )
        http = HttpClient(
            self.pool, settings, base_url=settings.base_url, rules=adapter_cls.error_rules
        )
        return adapter_cls(settings, http)

    def _api_key(self, name: str, config: ProviderConfig, env_var: str | None) -> Any:
        catalog = self.catalog
        in_code = self._credentials.get(name)
        if in_code is not None:
            return resolve_api_key(name, in_code, self.plugins)
        if config.api_key is not None:
            return resolve_api_key(
                name,
                config.api_key,
                self.plugins,
                where=catalog.where(("providers", name, "api_key")),
                private_files=catalog.defaults.strict_credential_files,
            )
        if env_var is None:
            return None
        try:
            return resolve_credential(CredentialRef("env", env_var), self.plugins)
        except CredentialError:
            raise CredentialError(
                f"provider {name!r} needs an API key: set {env_var}, give "
                f"providers.{name}.api_key in the catalog as a reference, or hand it "
                f"in code: Hub(..., credentials={{{name!r}: Secret(...)}})",
                file=catalog.path,
            ) from None
