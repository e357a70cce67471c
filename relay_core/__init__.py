"""Relay: one Python interface to every major LLM provider.

The names below are the public API; every other module is importable but internal
unless its own docstring says it is for plugin authors (``relay_core.http``,
``relay_core.streaming``, ``relay_core.hookspecs``, ``relay_core.serialize``).
"""

from typing import Any as _Any

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
from relay_core.plugins import PluginRegistry
from relay_core.pricing import ModelPrice, PricingProfile, PricingSource, compute_cost
from relay_core.providers import Capability, ErrorRule, Provider, ProviderSettings
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


def __getattr__(name: str) -> _Any:
    # Logging set-up pulls in the logging machinery; only load it when asked for.
    if name == "configure_logging":
        from relay_core.log import configure_logging

        return configure_logging
    raise AttributeError(f"module 'relay_core' has no attribute {name!r}")
