"""Relay: one Python interface to every major LLM provider.

The names below are the public API; every other module is importable but internal
unless its own docstring says it is for plugin authors (``relay_core.http``,
``relay_core.streaming``, ``relay_core.hookspecs``, ``relay_core.serialize``).

Names are loaded on first access (PEP 562), so ``import relay_core`` costs almost
nothing and a program pays only for what it uses.
"""

from typing import TYPE_CHECKING
from typing import Any as _Any

if TYPE_CHECKING:
    from relay_core.config import (
        Catalog,
        CredentialRef,
        Defaults,
        GroupConfig,
        ModelConfig,
        ProviderConfig,
        load_catalog,
        parse_catalog,
    )
    from relay_core.errors import (
        AuthenticationError,
        ConfigError,
        ContentPolicyError,
        ContextWindowExceeded,
        CredentialError,
        GuardrailViolation,
        InvalidRequestError,
        MalformedResponse,
        NotFoundError,
        PluginNotInstalled,
        ProviderError,
        ProviderUnavailable,
        RateLimitError,
        RelayError,
        Timeout,
        UnknownAlias,
        UnsupportedCapability,
    )
    from relay_core.hookspecs import hookimpl
    from relay_core.hub import Hub, ModelHandle
    from relay_core.log import configure_logging
    from relay_core.plugins import PluginRegistry
    from relay_core.pricing import ModelPrice, PricingProfile, PricingSource, compute_cost
    from relay_core.providers import (
        BatchLimits,
        Capability,
        ErrorRule,
        Provider,
        ProviderSettings,
    )
    from relay_core.secrets import Secret
    from relay_core.streaming import StreamAssembler
    from relay_core.types import (
        AuditEvent,
        BatchCounts,
        BatchItem,
        Cost,
        DocumentPart,
        EndEvent,
        ErrorInfo,
        GenerationConfig,
        ImagePart,
        Message,
        Part,
        ProviderBatch,
        Request,
        Response,
        ResponseSchema,
        StreamEvent,
        TextDelta,
        TextPart,
        ThinkingDelta,
        ThinkingPart,
        Tool,
        ToolCallDelta,
        ToolCallPart,
        ToolResultPart,
        Usage,
        UsageEvent,
    )

__version__ = "0.1.0"

__all__ = [
    "AuditEvent",
    "AuthenticationError",
    "BatchCounts",
    "BatchItem",
    "BatchLimits",
    "Capability",
    "Catalog",
    "ConfigError",
    "ContentPolicyError",
    "ContextWindowExceeded",
    "Cost",
    "CredentialError",
    "CredentialRef",
    "Defaults",
    "DocumentPart",
    "EndEvent",
    "ErrorInfo",
    "ErrorRule",
    "GenerationConfig",
    "GroupConfig",
    "GuardrailViolation",
    "Hub",
    "ImagePart",
    "InvalidRequestError",
    "MalformedResponse",
    "Message",
    "ModelConfig",
    "ModelHandle",
    "ModelPrice",
    "NotFoundError",
    "Part",
    "PluginNotInstalled",
    "PluginRegistry",
    "PricingProfile",
    "PricingSource",
    "Provider",
    "ProviderBatch",
    "ProviderConfig",
    "ProviderError",
    "ProviderSettings",
    "ProviderUnavailable",
    "RateLimitError",
    "RelayError",
    "Request",
    "Response",
    "ResponseSchema",
    "Secret",
    "StreamAssembler",
    "StreamEvent",
    "TextDelta",
    "TextPart",
    "ThinkingDelta",
    "ThinkingPart",
    "Timeout",
    "Tool",
    "ToolCallDelta",
    "ToolCallPart",
    "ToolResultPart",
    "UnknownAlias",
    "UnsupportedCapability",
    "Usage",
    "UsageEvent",
    "__version__",
    "compute_cost",
    "configure_logging",
    "hookimpl",
    "load_catalog",
    "parse_catalog",
]

_MODULE_OF: dict[str, str] = {
    "AuditEvent": "relay_core.types",
    "AuthenticationError": "relay_core.errors",
    "BatchCounts": "relay_core.types",
    "BatchLimits": "relay_core.providers",
    "BatchItem": "relay_core.types",
    "Capability": "relay_core.providers",
    "Catalog": "relay_core.config",
    "ConfigError": "relay_core.errors",
    "ContentPolicyError": "relay_core.errors",
    "ContextWindowExceeded": "relay_core.errors",
    "Cost": "relay_core.types",
    "CredentialError": "relay_core.errors",
    "CredentialRef": "relay_core.config",
    "Defaults": "relay_core.config",
    "DocumentPart": "relay_core.types",
    "EndEvent": "relay_core.types",
    "ErrorInfo": "relay_core.types",
    "ErrorRule": "relay_core.providers",
    "GenerationConfig": "relay_core.types",
    "GroupConfig": "relay_core.config",
    "GuardrailViolation": "relay_core.errors",
    "Hub": "relay_core.hub",
    "ImagePart": "relay_core.types",
    "InvalidRequestError": "relay_core.errors",
    "MalformedResponse": "relay_core.errors",
    "Message": "relay_core.types",
    "ModelConfig": "relay_core.config",
    "ModelHandle": "relay_core.hub",
    "ModelPrice": "relay_core.pricing",
    "NotFoundError": "relay_core.errors",
    "Part": "relay_core.types",
    "PluginNotInstalled": "relay_core.errors",
    "PluginRegistry": "relay_core.plugins",
    "PricingProfile": "relay_core.pricing",
    "PricingSource": "relay_core.pricing",
    "Provider": "relay_core.providers",
    "ProviderBatch": "relay_core.types",
    "ProviderConfig": "relay_core.config",
    "ProviderError": "relay_core.errors",
    "ProviderSettings": "relay_core.providers",
    "ProviderUnavailable": "relay_core.errors",
    "RateLimitError": "relay_core.errors",
    "RelayError": "relay_core.errors",
    "Request": "relay_core.types",
    "Response": "relay_core.types",
    "ResponseSchema": "relay_core.types",
    "Secret": "relay_core.secrets",
    "StreamAssembler": "relay_core.streaming",
    "StreamEvent": "relay_core.types",
    "TextDelta": "relay_core.types",
    "TextPart": "relay_core.types",
    "ThinkingDelta": "relay_core.types",
    "ThinkingPart": "relay_core.types",
    "Timeout": "relay_core.errors",
    "Tool": "relay_core.types",
    "ToolCallDelta": "relay_core.types",
    "ToolCallPart": "relay_core.types",
    "ToolResultPart": "relay_core.types",
    "UnknownAlias": "relay_core.errors",
    "UnsupportedCapability": "relay_core.errors",
    "Usage": "relay_core.types",
    "UsageEvent": "relay_core.types",
    "compute_cost": "relay_core.pricing",
    "configure_logging": "relay_core.log",
    "hookimpl": "relay_core.hookspecs",
    "load_catalog": "relay_core.config",
    "parse_catalog": "relay_core.config",
}


def __getattr__(name: str) -> _Any:
    module_name = _MODULE_OF.get(name)
    if module_name is None:
        raise AttributeError(f"module 'relay_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
