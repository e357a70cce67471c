"""The layers of ``relay_core``, bottom to top, as data (``tests/test_layers.py`` enforces them).

A module imports only from its own layer and the layers below it, at module level, inside
a function, or under ``TYPE_CHECKING`` alike: a call's vocabulary knows nothing of the
catalog, the catalog nothing of routing, routing nothing of the hub, and the hub nothing
of tools, batch jobs or the CLI built on it. Imports inside functions are kept for one
reason only, cold start (``tests/test_lazy_imports.py``): the third-party modules in
:data:`DEFERRED_THIRD_PARTY`, and the few core modules in :data:`DEFERRED_CORE`, each
with why.

A new module goes into the layer its meaning puts it in; the test fails for a module
that is in none. A name matches the module and, for a package, its submodules (but
``relay_core`` matches only its own ``__init__``).
"""

from __future__ import annotations

__all__ = ["DEFERRED_CORE", "DEFERRED_THIRD_PARTY", "LAYERS", "layer_of"]

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        # What a call is made of: secrets, errors, the unified types, capabilities and
        # tasks, and the two helpers everything may use (lazy exports, logging).
        "vocabulary",
        (
            "relay_core._architecture",
            "relay_core.secrets",
            "relay_core.errors",
            "relay_core.types",
            "relay_core.embeddings",
            "relay_core.tokens",
            "relay_core.capabilities",
            "relay_core.lazy",
            "relay_core.log",
        ),
    ),
    (
        # What the pipeline stands on: (de)serialising, schemas, the catalog and its
        # sections, prices, credentials, HTTP and streaming, the adapter contract, the
        # plugin machinery and the contracts plugins fill (caches, breakers, hooks).
        "infrastructure",
        (
            "relay_core.serialize",
            "relay_core.messages",
            "relay_core.call_forms",
            "relay_core.counting",
            "relay_core.jsonschema",
            "relay_core.validation",
            "relay_core.schema",
            "relay_core.pricing",
            "relay_core._catalog_checks",
            "relay_core.config",
            "relay_core.sections",
            "relay_core.credentials",
            "relay_core.streaming",
            "relay_core.http",
            "relay_core._transport",
            "relay_core.providers",
            "relay_core.batching",
            "relay_core.sampling",
            "relay_core.caching",
            "relay_core.breakers",
            "relay_core.shared_breakers",
            "relay_core.calls",
            "relay_core.hookspecs",
            "relay_core.plugins",
            "relay_core._builtin",
        ),
    ),
    # One call's way through the layers, down to the adapter, and the tool loop, which
    # is calls through the pipeline with tool runs between them.
    ("pipeline", ("relay_core.routing", "relay_core.pipeline", "relay_core.tools")),
    # The facade over the pipeline, and its sync bridge.
    (
        "hub",
        (
            "relay_core.hub",
            "relay_core.handles",
            "relay_core.configured",
            "relay_core.adapters",
            "relay_core.candidates",
            "relay_core.bridge",
        ),
    ),
    # What is built on the hub.
    (
        "applications",
        (
            "relay_core.batch",
            "relay_core.cli",
            "relay_core._cli_batch",
            "relay_core._cli_browse",
            "relay_core._demo",
            "relay_core.testing",
            "relay_core.real_servers",
        ),
    ),
    # The public facades, which re-export lazily from every layer.
    ("facades", ("relay_core", "relay_core.plugin")),
)

# Third-party (and standard library) modules a function may import, for cold start: none
# is loaded by ``import relay_core`` and loading a catalog, and each costs milliseconds.
DEFERRED_THIRD_PARTY: dict[str, str] = {
    "ast": "a few ms; only when relay_core's exports are first read from its source",
    "asyncio": "about 25 ms; only a call needs it",
    "cattrs.strategies": "about 5 ms; only when the first converter is built",
    "click": "the CLI's, never the library's",
    "httpx": "the HTTP client; only a call needs it",
    "importlib.metadata": "about 30 ms; only when plugins load from entry points",
    "keyring": "a keyring backend; only a keyring: credential needs it",
    "mimetypes": "only to guess a file's media type",
    "pytest": "the test kit's, never the library's",
    "queue": "only the sync bridge's first call needs it",
    "structlog": "only when something is logged",
    "subprocess": "about 5 ms; the test kit's subprocess checks only",
    "tempfile": "about 4 ms; the demo's workspace only",
    "urllib.request": "about 100 ms with what it loads; only to read proxy settings",
    "vcr": "the test kit's cassettes only",
    "yaml": "about 15 ms; only when a catalog is read from YAML",
}

# Core modules a function may import, each with why it cannot be at module level.
# Keyed by (importing module, imported module).
DEFERRED_CORE: dict[tuple[str, str], str] = {
    # The HTTP stack loads asyncio and httpx (30 ms): a hub is built and its catalog read
    # without them, and the first call loads them.
    ("relay_core.adapters", "relay_core.http"): "the first call builds the pool and clients",
    ("relay_core.pipeline.layers", "relay_core.http"): (
        "the retry policy lives with the HTTP stack; the first call loads it"
    ),
    ("relay_core.http", "relay_core._transport"): (
        "aiohttp loads with the first client built for the network; a client over a "
        "given transport (httpx.MockTransport in tests) never loads it"
    ),
    ("relay_core.providers", "relay_core.http"): (
        "an adapter built by hand gets a client of its own; at module level the adapter "
        "contract would load the HTTP stack (and asyncio, 30 ms) at cold start"
    ),
    ("relay_core.counting", "relay_core.http"): (
        "a token count's retries; the HTTP stack loads with the first call, not the hub"
    ),
    # `relay --help`, `relay validate` and the like must not load the hub, the batch
    # engine or the demo (and asyncio with them); the commands that use them do.
    ("relay_core.cli", "relay_core.hub"): "only the commands that call a model need the hub",
    ("relay_core._cli_batch", "relay_core.batch._client"): "only the batch commands need it",
    ("relay_core.cli", "relay_core._demo"): "only `relay demo` needs it",
    ("relay_core.types", "relay_core.serialize"): (
        "Request.fingerprint(): the converter is built from these types, so it cannot be "
        "imported while they are being defined; the public method stays where users call it"
    ),
    ("relay_core.embeddings", "relay_core.serialize"): (
        "EmbeddingRequest.fingerprint(), as Request.fingerprint()"
    ),
    ("relay_core.types", "relay_core.messages"): (
        "Message.to_openai(): the converter reads and writes these types; the public "
        "method stays where users call it"
    ),
    ("relay_core.types", "relay_core.schema"): (
        "ResponseSchema.from_type(): the schema generator walks these types (and the "
        "catalog's); the public method stays where users call it"
    ),
}


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of ``module``'s layer (the longest matching name), or
    ``None`` for a module outside ``relay_core`` or in no layer."""
    best: tuple[int, int] | None = None
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            # relay_core names the facade alone, not every module below it.
            matches = module == name or (name != "relay_core" and module.startswith(name + "."))
            if matches and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]
