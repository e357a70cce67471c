"""The adapters of one hub: each catalog provider's adapter, built with its settings and
credentials on the first call that needs it, over the hub's HTTP pool."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from relay_core.config import Catalog, CredentialRef, ProviderConfig
from relay_core.credentials import resolve_credential
from relay_core.errors import CredentialError
from relay_core.plugins import PluginRegistry
from relay_core.providers import Provider, ProviderSettings

if TYPE_CHECKING:
    from relay_core.http import HttpPool

__all__ = ["Adapters"]


class Adapters:
    """Builds and keeps the adapter of each provider of ``catalog``, and the HTTP pool
    they share (over ``transport`` when one is given: ``httpx.MockTransport`` in tests)."""

    def __init__(self, catalog: Catalog, plugins: PluginRegistry, transport: Any = None) -> None:
        self.catalog = catalog
        self.plugins = plugins
        self._transport = transport
        self._pool: HttpPool | None = None
        self._built: dict[str, Provider] = {}
        self._priced_as: dict[str, str] = {}
        self._lock = threading.Lock()

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
        if config.api_key is not None:
            return resolve_credential(
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
                f"provider {name!r} needs an API key: set {env_var}, or give "
                f"providers.{name}.api_key in the catalog as a reference",
                file=catalog.path,
            ) from None
