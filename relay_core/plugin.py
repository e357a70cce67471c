"""The plugin SDK: everything a plugin author imports from the core, in one module.

An adapter, a hook implementation or a plugin's command takes its names from here::

    from relay_core.plugin import HttpClient, Provider, Request, Response, hookimpl

These are re-exports of the core's own objects (``relay_core.plugin.Provider is
relay_core.providers.Provider``), so a plugin written against the defining modules keeps
working; but this module is the contract. A name listed here stays, with its meaning,
across minor versions; anything reached any other way (``relay_core._anything``, a
module's private names) may change without notice, and ``tests/test_plugin_boundaries.py``
keeps the plugins in this repository off it. What a plugin offers its *users* (a
:class:`~relay_core.Hub` to serve, a catalog to load) is the application API,
:mod:`relay_core` itself.

The name is ``plugin``, singular, beside ``relay_core.plugins`` (the registry that loads
plugins): it reads as the import it is, ``from relay_core.plugin import ...``, and a slip
between the two fails at import time with a clear error rather than doing something else.

Names load on first access (PEP 562): importing this module imports neither httpx nor
structlog, keyring or click, so a plugin's entry-point module may take ``hookimpl`` and
``lazy_exports`` from here and stay light.
"""

from typing import TYPE_CHECKING

from relay_core.lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from relay_core.batch.view import (
        ItemRow,
        ItemState,
        WorkspaceView,
    )
    from relay_core.batching import (
        error_info,
        jsonl,
        jsonl_line,
        parse_lines,
    )
    from relay_core.caching import (
        CacheFactory,
        ResponseCache,
    )
    from relay_core.calls import (
        CallInfo,
        Restorer,
    )
    from relay_core.cli import (
        catalog_path,
    )
    from relay_core.config import (
        Catalog,
        CredentialRef,
        Location,
    )
    from relay_core.credentials import (
        resolve_credential,
    )
    from relay_core.embeddings import (
        EmbeddingRequest,
        EmbeddingResponse,
        InputType,
    )
    from relay_core.errors import (
        AuthenticationError,
        BatchInputError,
        CircuitOpen,
        ConfigError,
        ContentPolicyError,
        ContextWindowExceeded,
        CredentialError,
        GuardrailViolation,
        InvalidRequestError,
        JobConflict,
        JobError,
        JobNotFound,
        MalformedResponse,
        NotFoundError,
        PluginBlocked,
        PluginBroken,
        PluginNotInstalled,
        ProviderConflict,
        ProviderError,
        ProviderUnavailable,
        QuotaExceeded,
        RateLimitError,
        RelayError,
        ResultsNotReady,
        Timeout,
        UnknownAlias,
        UnsupportedCapability,
        WorkspaceError,
    )
    from relay_core.hookspecs import (
        hookimpl,
    )
    from relay_core.http import (
        HttpClient,
        HttpPool,
        Prepare,
        classify_stream_error,
    )
    from relay_core.hub import (
        merge_kwargs,
    )
    from relay_core.jsonschema import (
        DEFINITIONS,
        UnresolvedReference,
        inline_refs,
        map_subschemas,
        resolve_ref,
        subschemas,
    )
    from relay_core.lazy import (
        lazy_exports,
    )
    from relay_core.log import (
        get_logger,
    )
    from relay_core.pipeline import (
        parse_structured,
    )
    from relay_core.plugins import (
        PluginRegistry,
    )
    from relay_core.pricing import (
        ListingSource,
        ModelInfo,
        ModelPrice,
        PricingSource,
        RefreshableSource,
    )
    from relay_core.providers import (
        BatchLimits,
        Capability,
        EmbeddingLimits,
        ErrorRule,
        Provider,
        ProviderSettings,
        provider_state_dir,
    )
    from relay_core.routing import (
        estimate_prompt_tokens,
    )
    from relay_core.sampling import (
        SamplingLimits,
        within_limits,
    )
    from relay_core.secrets import (
        Secret,
        has_known_key_shape,
        is_credential_name,
        looks_like_api_key,
        mask,
        redact_url,
        remember,
    )
    from relay_core.serialize import (
        dumps,
        loads,
        structure,
        unstructure,
    )
    from relay_core.streaming import (
        SSEEvent,
        StreamAssembler,
        closing_stream,
        parse_sse,
    )
    from relay_core.tokens import (
        TokenCount,
        estimate_tokens,
    )
    from relay_core.tools import (
        ToolOutput,
        Toolset,
    )
    from relay_core.types import (
        REASONING_BUDGETS,
        AuditEvent,
        BatchCounts,
        BatchItem,
        BatchState,
        Citation,
        CitationDelta,
        Cost,
        CostSource,
        DocumentPart,
        EndEvent,
        ErrorInfo,
        FinishReason,
        GenerationConfig,
        ImagePart,
        Message,
        Part,
        ProviderBatch,
        ReasoningEffort,
        Request,
        Response,
        ResponseSchema,
        Role,
        ServerToolCallDelta,
        ServerToolCallPart,
        ServerToolResultDelta,
        ServerToolResultPart,
        StreamEvent,
        TextDelta,
        TextPart,
        ThinkingDelta,
        ThinkingPart,
        Tool,
        ToolCallDelta,
        ToolCallPart,
        ToolResultPart,
        ToolRun,
        ToolStep,
        Usage,
        UsageEvent,
    )
    from relay_core.validation import (
        schema_errors,
        without_optional_nulls,
    )

__all__ = [
    "DEFINITIONS",
    "REASONING_BUDGETS",
    "AuditEvent",
    "AuthenticationError",
    "BatchCounts",
    "BatchInputError",
    "BatchItem",
    "BatchLimits",
    "BatchState",
    "CacheFactory",
    "CallInfo",
    "Capability",
    "Catalog",
    "CircuitOpen",
    "Citation",
    "CitationDelta",
    "ConfigError",
    "ContentPolicyError",
    "ContextWindowExceeded",
    "Cost",
    "CostSource",
    "CredentialError",
    "CredentialRef",
    "DocumentPart",
    "EmbeddingLimits",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EndEvent",
    "ErrorInfo",
    "ErrorRule",
    "FinishReason",
    "GenerationConfig",
    "GuardrailViolation",
    "HttpClient",
    "HttpPool",
    "ImagePart",
    "InputType",
    "InvalidRequestError",
    "ItemRow",
    "ItemState",
    "JobConflict",
    "JobError",
    "JobNotFound",
    "ListingSource",
    "Location",
    "MalformedResponse",
    "Message",
    "ModelInfo",
    "ModelPrice",
    "NotFoundError",
    "Part",
    "PluginBlocked",
    "PluginBroken",
    "PluginNotInstalled",
    "PluginRegistry",
    "Prepare",
    "PricingSource",
    "Provider",
    "ProviderBatch",
    "ProviderConflict",
    "ProviderError",
    "ProviderSettings",
    "ProviderUnavailable",
    "QuotaExceeded",
    "RateLimitError",
    "ReasoningEffort",
    "RefreshableSource",
    "RelayError",
    "Request",
    "Response",
    "ResponseCache",
    "ResponseSchema",
    "Restorer",
    "ResultsNotReady",
    "Role",
    "SSEEvent",
    "SamplingLimits",
    "Secret",
    "ServerToolCallDelta",
    "ServerToolCallPart",
    "ServerToolResultDelta",
    "ServerToolResultPart",
    "StreamAssembler",
    "StreamEvent",
    "TextDelta",
    "TextPart",
    "ThinkingDelta",
    "ThinkingPart",
    "Timeout",
    "TokenCount",
    "Tool",
    "ToolCallDelta",
    "ToolCallPart",
    "ToolOutput",
    "ToolResultPart",
    "ToolRun",
    "ToolStep",
    "Toolset",
    "UnknownAlias",
    "UnresolvedReference",
    "UnsupportedCapability",
    "Usage",
    "UsageEvent",
    "WorkspaceError",
    "WorkspaceView",
    "catalog_path",
    "classify_stream_error",
    "closing_stream",
    "dumps",
    "error_info",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "get_logger",
    "has_known_key_shape",
    "hookimpl",
    "inline_refs",
    "is_credential_name",
    "jsonl",
    "jsonl_line",
    "lazy_exports",
    "loads",
    "looks_like_api_key",
    "map_subschemas",
    "mask",
    "merge_kwargs",
    "parse_lines",
    "parse_sse",
    "parse_structured",
    "provider_state_dir",
    "redact_url",
    "remember",
    "resolve_credential",
    "resolve_ref",
    "schema_errors",
    "structure",
    "subschemas",
    "unstructure",
    "within_limits",
    "without_optional_nulls",
]

# Where each name lives, grouped by module: the one place a re-export is added.
_MODULES: dict[str, tuple[str, ...]] = {
    "relay_core.embeddings": ("EmbeddingRequest", "EmbeddingResponse", "InputType"),
    "relay_core.hookspecs": ("hookimpl",),
    "relay_core.lazy": ("lazy_exports",),
    "relay_core.tokens": ("TokenCount", "estimate_tokens"),
    "relay_core.providers": (
        "BatchLimits",
        "Capability",
        "EmbeddingLimits",
        "ErrorRule",
        "Provider",
        "ProviderSettings",
        "provider_state_dir",
    ),
    "relay_core.types": (
        "AuditEvent",
        "BatchCounts",
        "BatchItem",
        "BatchState",
        "Citation",
        "CitationDelta",
        "Cost",
        "CostSource",
        "DocumentPart",
        "EndEvent",
        "ErrorInfo",
        "FinishReason",
        "GenerationConfig",
        "ImagePart",
        "Message",
        "Part",
        "ProviderBatch",
        "REASONING_BUDGETS",
        "ReasoningEffort",
        "Request",
        "Response",
        "ResponseSchema",
        "Role",
        "ServerToolCallDelta",
        "ServerToolCallPart",
        "ServerToolResultDelta",
        "ServerToolResultPart",
        "StreamEvent",
        "TextDelta",
        "TextPart",
        "ThinkingDelta",
        "ThinkingPart",
        "Tool",
        "ToolCallDelta",
        "ToolCallPart",
        "ToolResultPart",
        "ToolRun",
        "ToolStep",
        "Usage",
        "UsageEvent",
    ),
    "relay_core.errors": (
        "AuthenticationError",
        "BatchInputError",
        "CircuitOpen",
        "ConfigError",
        "ContentPolicyError",
        "ContextWindowExceeded",
        "CredentialError",
        "GuardrailViolation",
        "InvalidRequestError",
        "JobConflict",
        "JobError",
        "JobNotFound",
        "MalformedResponse",
        "NotFoundError",
        "PluginBlocked",
        "PluginBroken",
        "PluginNotInstalled",
        "ProviderConflict",
        "ProviderError",
        "ProviderUnavailable",
        "QuotaExceeded",
        "RateLimitError",
        "RelayError",
        "ResultsNotReady",
        "Timeout",
        "UnknownAlias",
        "UnsupportedCapability",
        "WorkspaceError",
    ),
    "relay_core.http": (
        "HttpClient",
        "HttpPool",
        "Prepare",
        "classify_stream_error",
    ),
    "relay_core.streaming": (
        "SSEEvent",
        "StreamAssembler",
        "closing_stream",
        "parse_sse",
    ),
    "relay_core.sampling": (
        "SamplingLimits",
        "within_limits",
    ),
    "relay_core.batch.view": (
        "ItemRow",
        "ItemState",
        "WorkspaceView",
    ),
    "relay_core.batching": (
        "error_info",
        "jsonl",
        "jsonl_line",
        "parse_lines",
    ),
    "relay_core.secrets": (
        "Secret",
        "has_known_key_shape",
        "is_credential_name",
        "looks_like_api_key",
        "mask",
        "redact_url",
        "remember",
    ),
    "relay_core.credentials": ("resolve_credential",),
    "relay_core.config": (
        "Catalog",
        "CredentialRef",
        "Location",
    ),
    "relay_core.plugins": ("PluginRegistry",),
    "relay_core.calls": (
        "CallInfo",
        "Restorer",
    ),
    "relay_core.caching": (
        "CacheFactory",
        "ResponseCache",
    ),
    "relay_core.tools": (
        "ToolOutput",
        "Toolset",
    ),
    "relay_core.pricing": (
        "ListingSource",
        "ModelInfo",
        "ModelPrice",
        "PricingSource",
        "RefreshableSource",
    ),
    "relay_core.routing": ("estimate_prompt_tokens",),
    "relay_core.hub": ("merge_kwargs",),
    "relay_core.pipeline": ("parse_structured",),
    "relay_core.jsonschema": (
        "DEFINITIONS",
        "UnresolvedReference",
        "inline_refs",
        "map_subschemas",
        "resolve_ref",
        "subschemas",
    ),
    "relay_core.validation": (
        "schema_errors",
        "without_optional_nulls",
    ),
    "relay_core.serialize": (
        "dumps",
        "loads",
        "structure",
        "unstructure",
    ),
    "relay_core.log": ("get_logger",),
    "relay_core.cli": ("catalog_path",),
}

__getattr__, __dir__ = _lazy_exports(
    __name__,
    globals(),
    {name: module for module, names in _MODULES.items() for name in names},
    listed=__all__,
)
