"""Relay: one Python interface to every major LLM provider.

The names below are the public API for applications; plugin authors import from
:mod:`relay_core.plugin`, the plugin SDK. Every other module is importable but
internal.

Names are loaded on first access (PEP 562), so ``import relay_core`` costs almost
nothing and a program pays only for what it uses.
"""

from typing import TYPE_CHECKING

from relay_core.lazy import typed_exports as _typed_exports

# The public API, one line a name: type checkers read these imports (the alias marks a
# re-export); at run time ``_typed_exports`` reads the same lines and imports a name on
# its first use, so ``__all__`` is derived from them and cannot drift.
if TYPE_CHECKING:
    from relay_core.batch._client import AsyncRelayClient as AsyncRelayClient
    from relay_core.batch._client import RelayClient as RelayClient
    from relay_core.batch._types import BatchRequest as BatchRequest
    from relay_core.batch._types import Job as Job
    from relay_core.caching import ResponseCache as ResponseCache
    from relay_core.config import BreakerSettings as BreakerSettings
    from relay_core.config import Catalog as Catalog
    from relay_core.config import CredentialRef as CredentialRef
    from relay_core.config import CredentialResolver as CredentialResolver
    from relay_core.config import Defaults as Defaults
    from relay_core.config import GroupConfig as GroupConfig
    from relay_core.config import ModelConfig as ModelConfig
    from relay_core.config import ProviderConfig as ProviderConfig
    from relay_core.config import RateLimits as RateLimits
    from relay_core.config import RouteRule as RouteRule
    from relay_core.config import RouteWhen as RouteWhen
    from relay_core.config import load_catalog as load_catalog
    from relay_core.config import parse_catalog as parse_catalog
    from relay_core.embeddings import EmbeddingRequest as EmbeddingRequest
    from relay_core.embeddings import EmbeddingResponse as EmbeddingResponse
    from relay_core.errors import AuthenticationError as AuthenticationError
    from relay_core.errors import BatchInputError as BatchInputError
    from relay_core.errors import CircuitOpen as CircuitOpen
    from relay_core.errors import ConfigError as ConfigError
    from relay_core.errors import ContentPolicyError as ContentPolicyError
    from relay_core.errors import ContextWindowExceeded as ContextWindowExceeded
    from relay_core.errors import CredentialError as CredentialError
    from relay_core.errors import GuardrailViolation as GuardrailViolation
    from relay_core.errors import InvalidRequestError as InvalidRequestError
    from relay_core.errors import JobConflict as JobConflict
    from relay_core.errors import JobError as JobError
    from relay_core.errors import JobNotFound as JobNotFound
    from relay_core.errors import MalformedResponse as MalformedResponse
    from relay_core.errors import NotFoundError as NotFoundError
    from relay_core.errors import PluginBlocked as PluginBlocked
    from relay_core.errors import PluginBroken as PluginBroken
    from relay_core.errors import PluginNotInstalled as PluginNotInstalled
    from relay_core.errors import ProviderConflict as ProviderConflict
    from relay_core.errors import ProviderError as ProviderError
    from relay_core.errors import ProviderUnavailable as ProviderUnavailable
    from relay_core.errors import QuotaExceeded as QuotaExceeded
    from relay_core.errors import RateLimitError as RateLimitError
    from relay_core.errors import RelayError as RelayError
    from relay_core.errors import ResultsNotReady as ResultsNotReady
    from relay_core.errors import Timeout as Timeout
    from relay_core.errors import UnknownAlias as UnknownAlias
    from relay_core.errors import UnsupportedCapability as UnsupportedCapability
    from relay_core.errors import UnsupportedSetting as UnsupportedSetting
    from relay_core.errors import WorkspaceError as WorkspaceError
    from relay_core.hookspecs import hookimpl as hookimpl
    from relay_core.hub import Hub as Hub
    from relay_core.hub import ModelHandle as ModelHandle
    from relay_core.log import configure_logging as configure_logging
    from relay_core.messages import Conversation as Conversation
    from relay_core.messages import openai_messages as openai_messages
    from relay_core.messages import parse_messages as parse_messages
    from relay_core.plugins import PluginRegistry as PluginRegistry
    from relay_core.plugins import PluginWarning as PluginWarning
    from relay_core.pricing import ModelInfo as ModelInfo
    from relay_core.pricing import ModelPrice as ModelPrice
    from relay_core.pricing import PriceQuote as PriceQuote
    from relay_core.pricing import PricingProfile as PricingProfile
    from relay_core.pricing import PricingSource as PricingSource
    from relay_core.pricing import compute_cost as compute_cost
    from relay_core.providers import BatchLimits as BatchLimits
    from relay_core.providers import Capability as Capability
    from relay_core.providers import EmbeddingLimits as EmbeddingLimits
    from relay_core.providers import ErrorRule as ErrorRule
    from relay_core.providers import Provider as Provider
    from relay_core.providers import ProviderSettings as ProviderSettings
    from relay_core.routing import Candidate as Candidate
    from relay_core.routing import Route as Route
    from relay_core.routing import Router as Router
    from relay_core.routing import RoutingContext as RoutingContext
    from relay_core.secrets import Secret as Secret
    from relay_core.streaming import StreamAssembler as StreamAssembler
    from relay_core.tokens import TokenCount as TokenCount
    from relay_core.tokens import estimate_tokens as estimate_tokens
    from relay_core.tools import FunctionToolset as FunctionToolset
    from relay_core.tools import ToolOutput as ToolOutput
    from relay_core.tools import Toolset as Toolset
    from relay_core.tools import function_tool as function_tool
    from relay_core.types import AuditEvent as AuditEvent
    from relay_core.types import BatchCounts as BatchCounts
    from relay_core.types import BatchItem as BatchItem
    from relay_core.types import Citation as Citation
    from relay_core.types import CitationDelta as CitationDelta
    from relay_core.types import Cost as Cost
    from relay_core.types import DocumentPart as DocumentPart
    from relay_core.types import EndEvent as EndEvent
    from relay_core.types import ErrorInfo as ErrorInfo
    from relay_core.types import GenerationConfig as GenerationConfig
    from relay_core.types import ImagePart as ImagePart
    from relay_core.types import Message as Message
    from relay_core.types import Part as Part
    from relay_core.types import ProviderBatch as ProviderBatch
    from relay_core.types import Request as Request
    from relay_core.types import Response as Response
    from relay_core.types import ResponseSchema as ResponseSchema
    from relay_core.types import ServerToolCallDelta as ServerToolCallDelta
    from relay_core.types import ServerToolCallPart as ServerToolCallPart
    from relay_core.types import ServerToolResultDelta as ServerToolResultDelta
    from relay_core.types import ServerToolResultPart as ServerToolResultPart
    from relay_core.types import StreamEvent as StreamEvent
    from relay_core.types import TextDelta as TextDelta
    from relay_core.types import TextPart as TextPart
    from relay_core.types import ThinkingDelta as ThinkingDelta
    from relay_core.types import ThinkingPart as ThinkingPart
    from relay_core.types import TokenLogprob as TokenLogprob
    from relay_core.types import Tool as Tool
    from relay_core.types import ToolCallDelta as ToolCallDelta
    from relay_core.types import ToolCallPart as ToolCallPart
    from relay_core.types import ToolResultPart as ToolResultPart
    from relay_core.types import ToolRun as ToolRun
    from relay_core.types import ToolStep as ToolStep
    from relay_core.types import Usage as Usage
    from relay_core.types import UsageEvent as UsageEvent

__version__ = "0.1.0"

__getattr__, __dir__ = _typed_exports(__name__, globals(), also=["__version__"])
