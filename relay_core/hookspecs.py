"""The hook contract between Relay's core and its plugins.

A plugin is a module (or any object) with functions named after these hooks and marked
with :data:`relay_core.hookimpl`. Relay finds installed plugins through the entry point
group ``relay``::

    # pyproject.toml of your plugin
    [project.entry-points.relay]
    acme = "relay_acme"

and an application can register one in code: ``hub.plugins.register(module_or_object)``.

Rules every hook implementation follows:

- **No I/O and no heavy imports.** The module named by the entry point is imported
  whenever plugins load (``relay --help``, ``relay plugins``, the first call). Keep it
  small: register adapters by import string (``"relay_acme._adapter:AcmeProvider"``)
  so the adapter module, and httpx with it, load only when a call needs them.
- **Declare, don't store.** Registration hooks receive a ``register`` callback; the core
  keeps the names, detects clashes and decides when to use what you registered.
- Implement only the hooks you need; an implementation's parameters may be any subset of
  the spec's, in any order (pluggy passes them by name).

The hooks, by lifecycle phase: registration (providers, pricing sources, credential
resolvers, response caches, CLI commands), then per call (guardrails, redaction, audit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from relay_core.caching import CacheFactory
    from relay_core.calls import CallInfo, Restorer
    from relay_core.config import Catalog
    from relay_core.pricing import PricingSource
    from relay_core.types import AuditEvent, Request, Response

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("relay")
hookimpl = pluggy.HookimplMarker("relay")


# ---------------------------------------------------------------------------- registration


@hookspec
def relay_register_providers(register: Callable[..., None]) -> None:
    """Declare the provider adapters this plugin offers.

    Call ``register(name, adapter, *, defaults=None)`` once per provider:

    - ``name``: the provider name users write in ``provider/model`` targets and as keys
      of the catalog's ``providers`` section (``"openai"``, ``"groq"``).
    - ``adapter``: a :class:`relay_core.Provider` subclass, or preferably an import
      string ``"package.module:ClassName"`` that the core imports on first use.
    - ``defaults``: settings used when the catalog does not set them: ``base_url``,
      ``api_key_env`` (the environment variable holding the key) and ``options``, e.g.
      ``{"base_url": "https://api.groq.com/openai/v1", "api_key_env": "GROQ_API_KEY"}``;
      this is how one adapter serves several presets.

    A name another plugin registered too is a :class:`relay_core.ProviderConflict`
    (a ``ConfigError``) naming both plugins: raised at once for a plugin registered in
    code, and by every call to that name for two installed plugins (their other
    providers keep working). Return nothing. Called once per plugin, when it is
    registered, so a plugin registered in code after the first call is asked too.

    Since 0.1.
    """


@hookspec
def relay_register_pricing_sources(register: Callable[[PricingSource], None]) -> None:
    """Declare sources of model prices.

    Call ``register(source)`` with an object satisfying
    :class:`relay_core.pricing.PricingSource`: a ``name``, a ``tier`` (``"live_api"``,
    ``"snapshot"`` or ``"estimated"``) and ``price(provider, model)`` returning a
    :class:`relay_core.pricing.ModelPrice` or ``None`` when it does not know the model.
    ``price`` is called at call time and must not block on the network (cache what you
    fetch); give each price its ``source`` (URL) and ``as_of`` (ISO date). Prices set in
    the catalog always win; among sources, the better tier wins (``live_api`` over
    ``snapshot`` over ``estimated``). A source may also implement ``models(provider)``
    (:class:`relay_core.pricing.ListingSource`: browsing, comparing, routing by context
    window) and ``refresh()`` (:class:`relay_core.pricing.RefreshableSource`: called by
    ``relay pricing refresh``). Return nothing. Called once per plugin, when it is
    registered.

    Since 0.1.
    """


@hookspec
def relay_register_credential_resolvers(
    register: Callable[[str, Callable[[str], str]], None],
) -> None:
    """Declare how credential references of a scheme are resolved.

    Call ``register(scheme, resolve)``: a reference ``scheme:rest`` in the catalog (for
    example ``vault:team/openai``) is resolved by calling ``resolve("team/openai")``,
    which returns the secret value, or raises :class:`LookupError` with a message that
    names the reference but never a value when the secret does not exist. The core wraps
    the value in a :class:`relay_core.Secret` so it is masked everywhere. The built-in
    schemes are ``env`` (written ``$env.NAME``), ``file`` and ``keyring``; registering
    one of them again replaces it. Called once per plugin, when it is registered.

    A resolver that asks a remote secret manager keeps what it read for a while
    (:class:`relay_core.plugin.CachedSecrets` does, with a TTL) and offers
    ``cache_clear()``, which :meth:`relay_core.Hub.refresh_credentials` calls so that a
    rotated secret is read again. An exception other than :class:`LookupError` becomes
    a :class:`relay_core.CredentialError` naming the reference and the exception's type,
    never its message.

    Since 0.1 (``cache_clear`` since 0.5).
    """


@hookspec
def relay_register_response_caches(register: Callable[[str, CacheFactory], None]) -> None:
    """Offer a store for the response cache.

    Call ``register(name, factory)``. ``factory(settings)`` builds a
    :class:`relay_core.caching.ResponseCache` from the catalog's ``plugins.<name>``
    mapping (empty when the catalog has none); the hub calls it once, on the first call
    that uses the cache, so the factory may import what it needs then. Raise
    :class:`relay_core.ConfigError` (``catalog.error()`` is not available here: name the
    setting in the message) for bad settings. Only one cache plugin may be installed: a
    second registration raises :class:`relay_core.ConfigError` naming both. Return
    nothing. Called once per plugin, when it is registered.

    When the hub asks the store is its business, not the plugin's: a call with
    ``cache=True``, or an alias or catalog default with ``cache: true``.

    Since 0.2.
    """


@hookspec
def relay_register_workspace_stores(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Offer a store for batch workspaces' records (jobs, chunks, items, leases).

    Call ``register(scheme, factory)``: a workspace opened with ``store="SCHEME://..."``
    (``--store`` on the CLI, ``$RELAY_WORKSPACE_STORE``) gets its records from
    ``factory(url, *, read_only)``, which returns a
    :class:`relay_core.batch.stores.WorkspaceStore` keeping that module's promises
    (writers serialised across hosts, rows by position and name, ``UniqueViolation``,
    errors as :class:`relay_core.WorkspaceError` without the URL's password). The JSONL
    files stay in the workspace directory. ``read_only`` is for views and dashboards: a
    session that cannot write. Two plugins registering one scheme is a
    :class:`relay_core.ConfigError` naming both. Called once per plugin, when it is
    registered; the factory is called for each workspace opened, so it may import its
    driver then.

    Since 0.6.
    """


@hookspec
def relay_register_job_runners(
    register: Callable[[str, Callable[[Any], Awaitable[None]]], None],
) -> None:
    """Offer a way to answer engine jobs somewhere other than this process.

    Call ``register(name, run)``. A job submitted with ``mode=name`` (``relay batch
    submit --mode NAME``) is stored as an engine job, then answered by ``await
    run(job)``, where ``job`` is a :class:`relay_core.plugin.JobRun`: the stored
    requests, ``deliver`` for each result, ``checkpoint`` to commit and learn of a
    cancellation (see :mod:`relay_core.batch.runners` for what each promises). The core
    writes the job's results once ``run`` returns; a run that raises leaves the job
    interrupted, for ``relay batch resume``. ``engine`` is the core's own runner and
    cannot be replaced; the first plugin to register a name keeps it. Import what the
    runner needs inside ``run``. Return nothing.

    Since 0.6.
    """


@hookspec
def relay_register_settings(register: Callable[..., None]) -> None:
    """Declare the catalog section this plugin reads (``plugins.<name>``).

    Call ``register(name, *, fields=None, check=None)`` once per section:

    - ``name``: the key under the catalog's ``plugins:`` (``"guardrails"``). A section
      no installed plugin declares is an error at ``relay validate`` and when a hub is
      built from a file (``Hub.from_yaml``) or makes its first call: a misspelt
      ``guardrail:`` must never leave calls unguarded. (A plugin that implements
      :func:`relay_configure` under its own name claims that name without declaring it.)
    - ``fields``: the keys the section may hold. The core reports any other key with
      file:line:column and a "did you mean"; ``None`` leaves the keys to the plugin.
    - ``check``: ``check(catalog)``, called by ``relay validate``, raising
      ``catalog.error(message, ("plugins", name, ...))`` for a bad setting; for a
      plugin whose settings are otherwise read only by its own command (``relay
      serve``). Import what it needs inside it.

    The key ``optional`` is the catalog's, not the plugin's: ``optional: true`` in a
    section turns "no plugin reads this section" into a warning, and the core removes
    it before any plugin sees the section. Return nothing; no I/O. Called once per
    plugin, when it is registered.

    Since 0.4.
    """


@hookspec
def relay_register_commands(cli: Any) -> None:
    """Add subcommands to the ``relay`` command line.

    ``cli`` is the root :class:`click.Group`; add commands with ``cli.add_command(cmd)``
    or the ``@cli.command()`` decorator. Import click inside this function, not at
    module level. Exit codes follow Relay's: 0 ok, 1 failure, 2 bad usage or config.
    Return nothing.

    Since 0.1.
    """


@hookspec
def relay_configure(catalog: Catalog) -> object | None:
    """Return an object implementing per-call hooks, configured for ``catalog``, or
    ``None``.

    For plugins with settings (guardrail rules, audit sinks, exporters): declare your
    section with :func:`relay_register_settings`, read it from
    ``catalog.plugins.get("<your name>", {})``, check it, and raise
    ``catalog.error(message, ("plugins", "<your name>", ...))`` for a bad one (a
    :class:`relay_core.ConfigError` with file and line). The hub calls this once, before
    its first call, and registers what you return in its own plugin registry, so two
    hubs with two catalogs in one process each get their own configured object; when
    the hub closes, the object's ``close()`` is called if it has one. ``relay validate``
    calls this hook too, so bad settings are reported there. Keep the entry-point
    module's own hooks for what needs no settings.

    Since 0.2.
    """


# ---------------------------------------------------------------------------- per call


@hookspec
def relay_guardrail_pre(request: Request, call: CallInfo) -> None:
    """Inspect a request before it is sent (after redaction).

    ``request`` is the complete unified request as the provider will receive it
    (``model`` is the provider's model name, catalog params merged in; ``custom_id`` set
    in batches); ``call`` says which alias, provider and model it goes to, the batch job
    it belongs to, and ``call.quote()`` the price it will be billed at. Return nothing
    to let it pass; raise :class:`relay_core.GuardrailViolation` naming your rule to stop
    it. In a batch, only that request fails and the violation is recorded in its
    result. Every installed guardrail runs; the first violation stops the call.

    Since 0.1 (``call`` since 0.2).
    """


@hookspec
def relay_guardrail_post(request: Request, response: Response, call: CallInfo) -> None:
    """Inspect a response before the caller sees it.

    Receives the request as sent, the complete response (priced: ``response.cost``; for
    streams once, with the assembled response, before the final ``end`` event is
    yielded) and the ``call``. Return nothing to let it pass; raise
    :class:`relay_core.GuardrailViolation` to withhold it. A withheld answer is never
    cached.

    Since 0.1 (``call`` since 0.2).
    """


@hookspec
def relay_redact(request: Request) -> Request | None:
    """Return a redacted copy of ``request``, or ``None`` to leave it as it is.

    Called before the request leaves the process, is logged, cached or audited.
    Redactors are chained: each receives the previous one's result. Must be pure (no
    I/O) and must not change ``model`` or ``custom_id``. A redactor that can put the
    values back (``relay_restorer``) may note in the copy's ``metadata`` what it needs to
    find its map again (metadata never reaches a provider), never the values themselves.

    Since 0.1.
    """


@hookspec
def relay_restorer(request: Request) -> Restorer | None:
    """Offer a :class:`relay_core.calls.Restorer` for the answer to ``request`` (the
    redacted request, as your ``relay_redact`` returned it), or ``None``.

    The hub restores the answer after post guardrails, audit and the response cache
    have seen it redacted, just before the caller gets it: stream text through
    ``feed``/``flush``, the final response through ``restore``. Restorers of several
    plugins run in the reverse order of their redactors.

    Since 0.2.
    """


@hookspec
def relay_toolsets() -> Sequence[Any] | None:
    """Offer toolsets to the hub's tool loop (:meth:`relay_core.Hub.arun_tools`).

    Return a list of :class:`relay_core.tools.Toolset` objects (or ``None``); typed
    ``Any`` here because the tools sit a layer above this contract. Usually
    implemented by the object your ``relay_configure`` returned, so each hub gets the
    toolsets its catalog declares (relay-mcp: one per MCP server under
    ``plugins.mcp.servers``). Called when a loop starts and its toolsets are chosen by
    name; connect lazily (in ``list_tools``), not here. Names must be unique across all
    plugins: a clash is a :class:`relay_core.ConfigError` naming both. A toolset that
    holds connections or processes is closed with the hub through the configured
    object's ``aclose()`` (preferred) or ``close()``.

    Since 0.3.
    """


@hookspec
def relay_audit(event: AuditEvent) -> None:
    """Receive every call, batch and job event (see :class:`relay_core.AuditEvent`).

    Events never carry secrets. A sink that fails must not break the call: exceptions
    raised here are caught, logged with the plugin's name, and the call goes on. Keep it
    fast or hand the event to a queue; it runs on the caller's path. Return nothing.

    Since 0.1.
    """
