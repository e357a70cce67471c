"""The unified request, response and stream-event types every provider maps to and from.

All are attrs classes; the values are frozen. They (un)structure through the one converter
in :mod:`relay_core.serialize`: content parts and stream events are tagged unions whose
``type`` field is a stable string (``"text"``, ``"image"``, ``"tool_call"``,
``"text_delta"``...), so JSONL files written today load in later versions.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs
from attrs import field, frozen

from relay_core.errors import ProviderError
from relay_core.secrets import mask

if TYPE_CHECKING:
    # embeddings builds on this module; relay_core.serialize resolves the name for cattrs.
    from relay_core.embeddings import EmbeddingResponse

__all__ = [
    "REASONING_BUDGETS",
    "SETTING_ALIASES",
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
    "TokenLogprob",
    "Tool",
    "ToolCallDelta",
    "ToolCallPart",
    "ToolResultPart",
    "ToolRun",
    "ToolStep",
    "Usage",
    "UsageEvent",
    "resolve_aliases",
]

Role = Literal["user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "unknown"]
ReasoningEffort = Literal["minimal", "low", "medium", "high"]
# Thinking tokens per effort level, for providers that take a budget but were given an
# effort (and back). A provider with its own scale passes its own table.
REASONING_BUDGETS: dict[ReasoningEffort, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
}
CostSource = Literal["user_override", "live_api", "snapshot", "estimated", "unknown"]
BatchState = Literal[
    "validating",
    "in_progress",
    "finalizing",
    "completed",
    "failed",
    "cancelling",
    "cancelled",
    "expired",
]


# ---------------------------------------------------------------------------- parts


@frozen
class Citation:
    """A source that the text it is attached to rests on: a search result, a fetched
    page, a passage of a document the request carried.

    ``url``, ``title`` and ``cited_text`` are what providers have in common (each may be
    missing: a document citation has no URL). ``data`` is the provider's citation whole,
    as received (Anthropic's ``web_search_result_location``, ``char_location``...), so
    that a conversation sent back to that provider carries it unchanged.
    """

    url: str | None = None
    title: str | None = None
    cited_text: str | None = None
    data: dict[str, Any] = field(factory=dict)


def _to_citations(value: Iterable[Citation] | None) -> tuple[Citation, ...]:
    return () if value is None else tuple(value)


@frozen
class TextPart:
    """Plain text. ``signature`` is an opaque token some providers attach to a part
    (Gemini's thought signatures) and require back unchanged in the next turn.
    ``citations`` are the sources this text rests on, when the provider says (answers
    grounded in a web search or in documents); a provider that cannot take them back
    sends the text alone."""

    TAG: ClassVar[str] = "text"
    text: str
    signature: str | None = None
    citations: tuple[Citation, ...] = field(default=(), converter=_to_citations)
    cache: bool = field(default=False, kw_only=True)
    """A prompt-cache breakpoint after this part: the provider may cache the prompt up
    to here (Anthropic's ``cache_control``, Bedrock's ``cachePoint``). Providers that
    cache on their own (OpenAI) ignore it and report cached tokens in the usage."""


def _one_source(instance: ImagePart | DocumentPart, _: attrs.Attribute[Any], __: object) -> None:
    if (instance.url is None) == (instance.data is None):
        raise ValueError(f"{type(instance).__name__} needs exactly one of url= or data=")


def _bytes_size(data: bytes | None) -> str:
    # A part given by URL has no bytes; one with bytes shows their size, not a flood.
    return "None" if data is None else f"<{len(data)} bytes>"


@frozen
class ImagePart:
    """An image, by URL or as bytes. ``media_type`` is required with ``data``."""

    TAG: ClassVar[str] = "image"
    url: str | None = field(default=None, kw_only=True)
    data: bytes | None = field(default=None, kw_only=True, repr=_bytes_size)
    media_type: str | None = field(default=None, kw_only=True, validator=_one_source)
    detail: Literal["auto", "low", "high"] | None = field(default=None, kw_only=True)
    cache: bool = field(default=False, kw_only=True)

    @classmethod
    def from_path(cls, path: str | Path) -> ImagePart:
        """Read an image file; the media type is guessed from its name."""
        data, media_type = _read_media(path, "image/png")
        return cls(data=data, media_type=media_type)

    def base64(self) -> str:
        """The bytes as base64 text, the form most providers want."""
        return base64.b64encode(self.data or b"").decode("ascii")


@frozen
class DocumentPart:
    """A document (PDF, plain text...), by URL or as bytes, with an optional file name."""

    TAG: ClassVar[str] = "document"
    url: str | None = field(default=None, kw_only=True)
    data: bytes | None = field(default=None, kw_only=True, repr=_bytes_size)
    media_type: str = field(default="application/pdf", kw_only=True, validator=_one_source)
    name: str | None = field(default=None, kw_only=True)
    cache: bool = field(default=False, kw_only=True)

    @classmethod
    def from_path(cls, path: str | Path) -> DocumentPart:
        """Read a document file; the media type is guessed from its name."""
        data, media_type = _read_media(path, "application/pdf")
        return cls(data=data, media_type=media_type, name=Path(path).name)

    def base64(self) -> str:
        """The bytes as base64 text."""
        return base64.b64encode(self.data or b"").decode("ascii")


def _read_media(path: str | Path, fallback: str) -> tuple[bytes, str]:
    import mimetypes

    media_type = mimetypes.guess_type(str(path))[0] or fallback
    return Path(path).read_bytes(), media_type


@frozen
class ToolCallPart:
    """The model asks for a tool to be called. ``arguments`` is already parsed JSON;
    ``signature`` is as on :class:`TextPart`."""

    TAG: ClassVar[str] = "tool_call"
    id: str
    name: str
    arguments: dict[str, Any] = field(factory=dict)
    signature: str | None = None


@frozen
class ToolResultPart:
    """The result of a tool call, sent back to the model in a ``tool`` message."""

    TAG: ClassVar[str] = "tool_result"
    tool_call_id: str
    content: str
    name: str | None = None
    is_error: bool = False
    cache: bool = field(default=False, kw_only=True)

    @classmethod
    def from_value(
        cls, tool_call_id: str, value: object, *, name: str | None = None
    ) -> ToolResultPart:
        """A result from any JSON-serialisable value (strings are sent as they are)."""
        content = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return cls(tool_call_id=tool_call_id, content=content, name=name)


@frozen
class ThinkingPart:
    """The model's reasoning. ``signature`` must be sent back unchanged in multi-turn calls
    to providers that sign thinking (Anthropic); ``redacted`` marks encrypted thinking."""

    TAG: ClassVar[str] = "thinking"
    text: str
    signature: str | None = None
    redacted: bool = False


@frozen
class ServerToolCallPart:
    """A tool the provider ran on its own side during the answer: a web search, code
    execution, a page fetch, a tool of a remote MCP server the provider called.

    It records what happened; it is not for the caller to run. ``Response.tool_calls``
    leaves it out, the tool loop never runs it, and the finish reason is not
    ``tool_calls`` for it. ``name`` is the provider's tool name (``web_search``,
    ``bash_code_execution``...), ``arguments`` the parsed JSON input (a search's
    ``query``, a fetch's ``url``). ``server`` names the MCP server for a tool of one,
    ``None`` for the provider's built-in tools.

    Providers that run server tools take these parts back unchanged in the next turn
    (:attr:`Capability.SERVER_TOOLS <relay_core.providers.Capability.SERVER_TOOLS>`);
    for any other provider the hub leaves them out of the request: they record work
    that provider did not do and cannot check.
    """

    TAG: ClassVar[str] = "server_tool_call"
    id: str
    name: str
    arguments: dict[str, Any] = field(factory=dict)
    server: str | None = None


@frozen
class ServerToolResultPart:
    """What a :class:`ServerToolCallPart` produced, as the provider reported it.

    ``tool_call_id`` is the call's ``id``; ``kind`` is the provider's name for the
    result (Anthropic's block type: ``web_search_tool_result``,
    ``code_execution_tool_result``, ``web_fetch_tool_result``, ``mcp_tool_result``...),
    kept so the result goes back to the provider as it came. ``content`` is the result's
    JSON as received (a list of search results with ``title`` and ``url``, a
    command's ``stdout``...; often with encrypted fields only the provider reads):
    Relay does not reshape it, because each tool's result has its own form. ``is_error``
    says the tool failed (its error code is in ``content``).
    """

    TAG: ClassVar[str] = "server_tool_result"
    tool_call_id: str
    kind: str
    content: Any = None
    is_error: bool = False


Part = (
    TextPart
    | ImagePart
    | DocumentPart
    | ToolCallPart
    | ToolResultPart
    | ThinkingPart
    | ServerToolCallPart
    | ServerToolResultPart
)
PART_TYPES: tuple[type, ...] = (
    TextPart,
    ImagePart,
    DocumentPart,
    ToolCallPart,
    ToolResultPart,
    ThinkingPart,
    ServerToolCallPart,
    ServerToolResultPart,
)
SERVER_TOOL_PARTS: tuple[type, ...] = (ServerToolCallPart, ServerToolResultPart)


def _to_parts(value: str | Part | Iterable[str | Part]) -> tuple[Part, ...]:
    if isinstance(value, str):
        return (TextPart(value),)
    if isinstance(value, PART_TYPES):
        return (value,)  # type: ignore[return-value]
    return tuple(TextPart(p) if isinstance(p, str) else p for p in value)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- messages


@frozen
class Message:
    """One turn of a conversation. ``content`` accepts a string, a part, or a list of both.

    The system prompt is not a message: it is :attr:`Request.system`.
    """

    role: Role
    content: tuple[Part, ...] = field(converter=_to_parts)
    cache: bool = field(default=False, kw_only=True)
    """A prompt-cache breakpoint after this message's last part (as :attr:`TextPart.cache`)."""

    @classmethod
    def user(cls, *content: str | Part, cache: bool = False) -> Message:
        """A user turn; ``cache=True`` puts a prompt-cache breakpoint after it."""
        return cls("user", content, cache=cache)

    @classmethod
    def assistant(cls, *content: str | Part, cache: bool = False) -> Message:
        """A model's turn (earlier in a conversation); ``cache=True`` puts a prompt-cache
        breakpoint after it."""
        return cls("assistant", content, cache=cache)

    @classmethod
    def tool(cls, *results: ToolResultPart, cache: bool = False) -> Message:
        """A message carrying tool results, in answer to an assistant's tool calls."""
        return cls("tool", results, cache=cache)

    @property
    def text(self) -> str:
        """The text parts joined, without thinking or tool parts."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> tuple[ToolCallPart, ...]:
        """The tool calls among the content parts, in order (an assistant turn asking for
        tools)."""
        return tuple(p for p in self.content if isinstance(p, ToolCallPart))

    def to_openai(self) -> list[dict[str, Any]]:
        """This message as OpenAI Chat Completions messages: one, or one per tool
        result (see :func:`relay_core.openai_messages`, which adds the system prompt)."""
        from relay_core.messages import message_to_openai

        return message_to_openai(self)


# ---------------------------------------------------------------------------- request


def _to_tuple(value: Iterable[Any] | None) -> tuple[Any, ...]:
    return () if value is None else tuple(value)


def _to_stop(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


_EFFORTS = ("minimal", "low", "medium", "high")


def check_reasoning(value: object) -> None:
    """Raise ValueError unless ``value`` is an effort level, a token budget >= 0 or None."""
    if value is None or value in _EFFORTS:
        return
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return
    raise ValueError(
        f"reasoning must be one of {', '.join(_EFFORTS)} or a token budget >= 0, not {value!r}"
    )


def _check_reasoning(_: object, __: attrs.Attribute[Any], value: object) -> None:
    check_reasoning(value)


def _setting(kind: type, low: float | None = None, high: float | None = None) -> Any:
    """A validator: ``None``, or a finite ``kind`` (a bool is no number) within bounds.

    Checked when the config is made, so a value no provider takes (``max_tokens=nan``)
    is refused where it was written, not when a stored job reads it back."""
    wanted = "an integer" if kind is int else "a number"
    if low is not None:
        wanted += f" >= {low}" if high is None else f" from {low} to {high}"

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            raise TypeError(f"{attribute.name} must be {wanted}, not {value!r}")
        if (
            not math.isfinite(value)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise ValueError(f"{attribute.name} must be {wanted}, not {value!r}")

    return check


def _check_flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be true or false, not {value!r}")


def _check_stop(_: object, attribute: attrs.Attribute[Any], value: tuple[Any, ...] | None) -> None:
    if value is not None and not all(isinstance(item, str) for item in value):
        raise TypeError(f"stop must be a string or a list of strings, not {list(value)!r}")


SETTING_ALIASES: Mapping[str, str] = {"stop_sequences": "stop"}
"""Other names users know a setting by (Anthropic's and Gemini's ``stop_sequences``),
accepted wherever settings are given: call keywords, catalog ``params``, batch lines."""


def resolve_aliases(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with every alias of :data:`SETTING_ALIASES` renamed to the setting.

    Raises ValueError when a setting is given under both names."""
    resolved = dict(settings)
    for alias, name in SETTING_ALIASES.items():
        if alias in resolved:
            if name in resolved:
                raise ValueError(f"give {name!r} or its alias {alias!r}, not both")
            resolved[name] = resolved.pop(alias)
    return resolved


@frozen
class GenerationConfig:
    """Sampling and length settings; ``None`` means the provider's default.

    Values are checked when the config is made (a ``TypeError`` or ``ValueError`` naming
    the setting); the ranges are the widest any provider takes, each provider's own
    limits are its to enforce."""

    temperature: float | None = field(
        default=None,
        validator=_setting(float, 0),
        metadata={
            "doc": "Sampling temperature, 0 or more (higher: more random); "
            "null: the provider's default."
        },
    )
    top_p: float | None = field(
        default=None,
        validator=_setting(float, 0, 1),
        metadata={
            "doc": "Sample from the likeliest tokens whose probabilities add up to top_p, "
            "from 0 to 1; null: the provider's default."
        },
    )
    max_tokens: int | None = field(
        default=None,
        validator=_setting(int, 1),
        metadata={
            "doc": "Most tokens the answer may have, 1 or more; null: the provider's default."
        },
    )
    stop: tuple[str, ...] | None = field(
        default=None,
        converter=_to_stop,
        validator=_check_stop,
        metadata={"doc": "Strings that end the answer where the model would write one."},
    )
    seed: int | None = field(
        default=None,
        validator=_setting(int),
        metadata={
            "doc": "Seed asking for repeatable sampling; a provider without seeds leaves it out."
        },
    )
    reasoning: ReasoningEffort | int | None = field(
        default=None,
        validator=_check_reasoning,
        metadata={
            "doc": "How hard the model may think: an effort (minimal, low, medium, high) or "
            "a budget of thinking tokens, 0 or more (0: off); null: the provider's default."
        },
    )
    """How hard the model may think: an effort (``"minimal"``, ``"low"``, ``"medium"``,
    ``"high"``) or a budget of thinking tokens (``0`` turns thinking off). One setting for
    every provider: those that take a budget read :meth:`reasoning_budget`, those that
    take an effort read :meth:`reasoning_effort`."""
    top_k: int | None = field(
        default=None,
        validator=_setting(int, 1),
        metadata={
            "doc": "Sample from the top_k likeliest tokens only, 1 or more; "
            "a provider without it refuses the call."
        },
    )
    """Sample from the ``top_k`` likeliest tokens only."""
    frequency_penalty: float | None = field(
        default=None,
        validator=_setting(float, -2, 2),
        metadata={
            "doc": "Penalise a token by how often it has appeared so far, from -2 to 2 (0: none)."
        },
    )
    """Penalise a token by how often it has appeared so far."""
    presence_penalty: float | None = field(
        default=None,
        validator=_setting(float, -2, 2),
        metadata={
            "doc": "Penalise a token that has appeared at all so far, from -2 to 2 (0: none)."
        },
    )
    """Penalise a token that has appeared at all so far."""
    logprobs: bool | None = field(
        default=None,
        validator=_check_flag,
        metadata={"doc": "Return the log probability of each output token (Response.logprobs)."},
    )
    """Return the log probability of each output token (:attr:`Response.logprobs`)."""
    top_logprobs: int | None = field(
        default=None,
        validator=_setting(int, 0, 20),
        metadata={
            "doc": "With logprobs: also this many likeliest alternatives at each token, 0 to 20."
        },
    )
    """With ``logprobs``: also return this many likeliest alternatives at each token."""

    def reasoning_budget(
        self, budgets: Mapping[ReasoningEffort, int] = REASONING_BUDGETS
    ) -> int | None:
        """The thinking budget in tokens: as given, or the effort looked up in
        ``budgets``. ``None`` when no reasoning was asked for."""
        if self.reasoning is None or isinstance(self.reasoning, int):
            return self.reasoning
        return budgets[self.reasoning]

    def reasoning_effort(
        self, budgets: Mapping[ReasoningEffort, int] = REASONING_BUDGETS
    ) -> ReasoningEffort | None:
        """The effort level: as given, or for a budget the lowest level whose budget in
        ``budgets`` covers it (the highest when none does). ``None`` when no reasoning
        was asked for, or the budget is ``0`` (thinking off)."""
        if self.reasoning is None or self.reasoning == 0:
            return None
        if isinstance(self.reasoning, str):
            return self.reasoning
        levels = sorted(budgets.items(), key=lambda item: item[1])
        for level, budget in levels:
            if self.reasoning <= budget:
                return level
        return levels[-1][0]

    @property
    def thinks(self) -> bool:
        """Whether this config asks the model to think (a budget of 0 does not)."""
        return self.reasoning is not None and self.reasoning != 0

    def settings(self) -> frozenset[str]:
        """The names of the settings this config sets (not left to the provider)."""
        return frozenset(name for name in _SETTING_NAMES if getattr(self, name) is not None)

    def merged(self, override: GenerationConfig) -> GenerationConfig:
        """This config with every field that ``override`` sets replaced."""
        changes = {
            name: value for name in _SETTING_NAMES if (value := getattr(override, name)) is not None
        }
        # Most calls set nothing over the catalog's params: no copy to make then.
        return attrs.evolve(self, **changes) if changes else self


# Read on every call (merged, settings): the names once, not attrs.fields each time.
_SETTING_NAMES: tuple[str, ...] = tuple(a.name for a in attrs.fields(GenerationConfig))


@frozen
class Tool:
    """A function the model may call. ``parameters`` is a JSON Schema of an object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(factory=lambda: {"type": "object", "properties": {}})


@frozen
class ResponseSchema:
    """Ask for JSON output valid against ``schema`` (structured output).

    ``python_type`` is the class the answer is parsed into (``Response.parsed``); it is
    kept in memory only, never serialised, and does not change the request's
    fingerprint. Build both at once with :meth:`from_type`.
    """

    schema: dict[str, Any]
    name: str = "response"
    strict: bool = True
    python_type: Any = field(default=None, eq=False, repr=False)

    @classmethod
    def from_type(cls, python_type: type, *, strict: bool = True) -> ResponseSchema:
        """The schema of an attrs class, or of a Pydantic model (``model_json_schema``)."""
        model_json_schema = getattr(python_type, "model_json_schema", None)
        if callable(model_json_schema):
            schema = model_json_schema()
        else:
            from relay_core.schema import schema_for

            schema = schema_for(python_type)
        return cls(schema, name=python_type.__name__, strict=strict, python_type=python_type)


@frozen(kw_only=True)
class Request:
    """Everything a provider needs for one call.

    ``model`` is an alias from the catalog or a ``provider/model`` string; the hub fills it
    with the concrete target before handing the request to a provider. ``provider_kwargs``
    are merged into the provider's wire payload untouched. ``custom_id`` identifies the
    request in batches, errors and results. ``tags`` and ``metadata`` are for routing, audit
    and your own bookkeeping, and never change the request's :meth:`fingerprint`.
    """

    messages: tuple[Message, ...] = field(converter=_to_tuple)
    model: str = ""
    system: str | None = None
    config: GenerationConfig = field(factory=GenerationConfig)
    tools: tuple[Tool, ...] = field(default=(), converter=_to_tuple)
    tool_choice: str | None = None
    response_schema: ResponseSchema | None = None
    provider_kwargs: dict[str, Any] = field(factory=dict)
    custom_id: str | None = None
    tags: tuple[str, ...] = field(default=(), converter=_to_tuple)
    metadata: dict[str, Any] = field(factory=dict)
    cache_system: bool = False
    """A prompt-cache breakpoint after the system prompt (as :attr:`TextPart.cache`)."""
    cache_tools: bool = False
    """A prompt-cache breakpoint after the tool definitions (as :attr:`TextPart.cache`)."""

    @classmethod
    def from_prompt(cls, prompt: str, *, model: str = "", **kwargs: Any) -> Request:
        """A one-turn request: ``prompt`` as the user message."""
        return cls(messages=(Message.user(prompt),), model=model, **kwargs)

    def fingerprint(self) -> str:
        """A stable SHA-256 of what the provider would see: the same in every process and
        Python version, unchanged by ``custom_id``, ``tags`` and ``metadata``. Fields left
        at their defaults do not contribute, so adding a field to Relay later does not
        change the fingerprint of existing requests."""
        from relay_core.serialize import fingerprint

        return fingerprint(attrs.evolve(self, custom_id=None, tags=(), metadata={}))

    @property
    def parts(self) -> Iterable[Part]:
        """Every content part of every message, in order."""
        for message in self.messages:
            yield from message.content


# ---------------------------------------------------------------------------- response


@frozen
class Usage:
    """Token counts. ``cached_input_tokens`` and ``reasoning_tokens`` are subsets of
    ``input_tokens`` and ``output_tokens`` respectively, as providers report them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input and output tokens together."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, a.name) + getattr(other, a.name) for a in attrs.fields(Usage)))


@frozen
class Cost:
    """What a call cost, and where the price came from.

    ``amount`` is ``None`` whenever no price is known (``source="unknown"``): Relay never
    reports a number it cannot stand behind.
    """

    amount: float | None = None
    currency: str = "USD"
    source: CostSource = "unknown"
    input: float | None = None
    output: float | None = None
    batch_discount_applied: bool = False
    priced_by: str | None = None
    """The pricing source (or ``catalog``, or the pricing profile) the price came from."""
    as_of: str | None = None
    """The date the price was read, when its source says."""

    @classmethod
    def unknown(cls) -> Cost:
        """The cost of a call no price is known for: ``amount`` is ``None``, ``source``
        is ``"unknown"``."""
        return cls()


def _to_pairs(value: Iterable[Iterable[Any]]) -> tuple[tuple[str, float], ...]:
    return tuple((token, logprob) for token, logprob in value)


@frozen
class TokenLogprob:
    """One output token's log probability, and the likeliest alternatives at that
    position (``(token, logprob)`` pairs, likeliest first) when ``top_logprobs`` was asked."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = field(default=(), converter=_to_pairs)


@frozen(kw_only=True)
class Response:
    """One answer, whatever the provider.

    ``content`` holds the parts in the order the model produced them (thinking, text,
    tool calls, the tools the provider ran itself and their results). ``raw`` is the
    provider's payload as received. ``latency`` is seconds from send to the last byte;
    ``metadata`` records routing decisions and retries.
    """

    content: tuple[Part, ...] = field(default=(), converter=_to_parts)
    model: str = ""
    provider: str = ""
    id: str | None = None
    custom_id: str | None = None
    finish_reason: FinishReason = "stop"
    usage: Usage = field(factory=Usage)
    cost: Cost = field(factory=Cost)
    latency: float | None = None
    raw: Any = None
    metadata: dict[str, Any] = field(factory=dict)
    parsed: Any = field(default=None, eq=False, repr=False)
    """The structured answer as an instance of the request's ``response_schema``
    class, when one was given; in memory only, like the class itself."""
    logprobs: tuple[TokenLogprob, ...] = field(default=(), converter=_to_tuple)
    """Each output token's log probability, in order, when the request asked for
    ``logprobs`` (and the provider gave them: see the provider's README)."""
    steps: tuple[ToolStep, ...] = field(default=(), converter=_to_tuple)
    """The tool loop's rounds, in order, when the answer came from
    :meth:`Hub.run_tools <relay_core.Hub.arun_tools>`: each model answer that asked for
    tools and the tools run for it. Empty for a plain call."""

    @property
    def text(self) -> str:
        """The answer's text parts joined (no thinking, no tool calls)."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def thinking(self) -> str:
        """The thinking parts' text joined (empty when the model showed none; redacted
        thinking has no text)."""
        return "".join(p.text for p in self.content if isinstance(p, ThinkingPart))

    @property
    def tool_calls(self) -> tuple[ToolCallPart, ...]:
        """The calls the caller is to run; tools the provider ran itself are
        :attr:`server_tool_calls`."""
        return tuple(p for p in self.content if isinstance(p, ToolCallPart))

    @property
    def server_tool_calls(self) -> tuple[ServerToolCallPart, ...]:
        """The tools the provider ran on its own side (web search...), in order."""
        return tuple(p for p in self.content if isinstance(p, ServerToolCallPart))

    @property
    def citations(self) -> tuple[Citation, ...]:
        """The citations of every text part, in order."""
        return tuple(c for p in self.content if isinstance(p, TextPart) for c in p.citations)

    def json(self) -> Any:
        """The text parsed as JSON: the value of a structured-output call."""
        return json.loads(self.text)

    def to_message(self) -> Message:
        """This answer as an assistant message, to continue the conversation."""
        return Message("assistant", self.content)


@frozen(kw_only=True)
class ToolRun:
    """One tool call the tool loop ran: the model's call, the result sent back, which
    toolset ran it under which of its own names, and how long it took in seconds."""

    call: ToolCallPart
    result: ToolResultPart
    toolset: str
    tool: str
    seconds: float = 0.0


@frozen(kw_only=True)
class ToolStep:
    """One round of the tool loop: the model's answer asking for tools (with its own
    usage and cost) and the tool calls run for it, in the order the model made them."""

    response: Response
    runs: tuple[ToolRun, ...] = field(default=(), converter=_to_tuple)


# ---------------------------------------------------------------------------- stream events


@frozen
class TextDelta:
    """A piece of the answer's text. A piece with a ``signature`` ends its text part,
    which carries that signature; the next piece starts a new part."""

    TAG: ClassVar[str] = "text_delta"
    text: str
    signature: str | None = None


@frozen
class ThinkingDelta:
    """A piece of the model's reasoning. The piece that carries the ``signature`` ends
    its thinking part; the next piece starts a new one. A ``redacted`` piece is a whole
    block of encrypted thinking on its own (its data in ``signature``)."""

    TAG: ClassVar[str] = "thinking_delta"
    text: str
    signature: str | None = None
    redacted: bool = False


@frozen
class ToolCallDelta:
    """A piece of a tool call. Pieces with the same ``index`` belong to one call: the first
    carries ``id`` and ``name``, the rest append to ``arguments`` (JSON text); any piece
    may carry the call's ``signature``."""

    TAG: ClassVar[str] = "tool_call_delta"
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    signature: str | None = None


@frozen
class CitationDelta:
    """A source for the text part being streamed (see :class:`Citation`). It belongs to
    the text that follows it up to the end of that part; the assembler starts a new
    text part for it when the text before it had no citations."""

    TAG: ClassVar[str] = "citation_delta"
    citation: Citation


@frozen
class ServerToolCallDelta:
    """A piece of a tool call the provider runs itself (see
    :class:`ServerToolCallPart`), never one for the caller to run. Pieces with the same
    ``index`` belong to one call: the first carries ``id``, ``name`` and ``server``, the
    rest append to ``arguments`` (JSON text)."""

    TAG: ClassVar[str] = "server_tool_call_delta"
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    server: str | None = None


@frozen
class ServerToolResultDelta:
    """The result of a server tool call, whole in one event (providers send it so):
    the fields of :class:`ServerToolResultPart`."""

    TAG: ClassVar[str] = "server_tool_result_delta"
    tool_call_id: str
    kind: str
    content: Any = None
    is_error: bool = False


@frozen
class UsageEvent:
    """Token usage so far; the last one in a stream is the total."""

    TAG: ClassVar[str] = "usage"
    usage: Usage


@frozen
class EndEvent:
    """The last event of every stream: the assembled response, equal to what the
    non-streaming call returns for the same content."""

    TAG: ClassVar[str] = "end"
    response: Response


StreamEvent = (
    TextDelta
    | ThinkingDelta
    | ToolCallDelta
    | CitationDelta
    | ServerToolCallDelta
    | ServerToolResultDelta
    | UsageEvent
    | EndEvent
)
EVENT_TYPES: tuple[type, ...] = (
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    CitationDelta,
    ServerToolCallDelta,
    ServerToolResultDelta,
    UsageEvent,
    EndEvent,
)


# ---------------------------------------------------------------------------- batches


@frozen
class ErrorInfo:
    """An error as data, for result files.

    ``kind`` is the Relay error class name (``RateLimitError``...), or, for a request a
    batch never ran, the batch's final state: ``cancelled`` or ``expired``.
    """

    kind: str
    message: str
    status_code: int | None = None
    retryable: bool = False

    @classmethod
    def from_exception(cls, error: BaseException) -> ErrorInfo:
        """The error as a result item carries it: its class name, its message with
        secrets masked, its HTTP status and whether a retry could succeed."""
        return cls(
            kind=type(error).__name__,
            message=mask(str(error)),
            status_code=getattr(error, "status_code", None),
            retryable=isinstance(error, ProviderError) and error.retryable,
        )


@frozen
class BatchCounts:
    """How many requests of a batch are done, failed, and in all."""

    total: int = 0
    completed: int = 0
    failed: int = 0

    @property
    def pending(self) -> int:
        """How many are neither completed nor failed yet: ``total - completed - failed``."""
        return self.total - self.completed - self.failed


@frozen(kw_only=True)
class ProviderBatch:
    """A batch as the provider reports it. Times are Unix seconds."""

    id: str
    provider: str
    state: BatchState
    counts: BatchCounts = field(factory=BatchCounts)
    created_at: float | None = None
    ended_at: float | None = None
    metadata: dict[str, Any] = field(factory=dict)
    raw: Any = None

    @property
    def done(self) -> bool:
        """Whether the batch has ended: its state is ``completed``, ``failed``,
        ``cancelled`` or ``expired``."""
        return self.state in ("completed", "failed", "cancelled", "expired")


@frozen
class BatchItem:
    """One request's outcome in a batch: an answer or an error, never both. The answer
    is ``response`` for a chat request, ``embedding`` for an embedding request.

    ``raw`` is the provider's output line for this request as received (parsed JSON, or
    the text itself when it was not JSON), kept so a failed parse loses nothing.
    """

    custom_id: str
    response: Response | None = None
    error: ErrorInfo | None = None
    raw: Any = None
    embedding: EmbeddingResponse | None = None

    @property
    def ok(self) -> bool:
        """Whether the request was answered: ``response`` or ``embedding`` is set."""
        return self.response is not None or self.embedding is not None

    @property
    def answer(self) -> Response | EmbeddingResponse | None:
        """The answer whichever its kind: ``response`` or ``embedding``."""
        return self.response if self.response is not None else self.embedding


# ---------------------------------------------------------------------------- audit


@frozen(kw_only=True)
class AuditEvent:
    """What audit sinks receive for every call, batch and job event.

    ``kind`` is one of ``call.succeeded``, ``call.failed`` (a provider error, a
    guardrail's refusal, a capability the provider lacks), ``call.cached``,
    ``stream.succeeded``, ``stream.failed``, ``stream.cached``, ``batch.submitted``,
    ``batch.retrieved``, ``batch.cancelled`` (provider batch jobs), ``job.started``,
    ``job.finished`` (engine jobs; ``cost`` and the counts in ``metadata``) and
    ``job.cancel_requested``; the tool loop adds ``tool.succeeded`` and ``tool.failed``
    (one per tool run: ``metadata`` has ``toolset``, ``tool``, ``call_id``, ``step`` and
    ``loop``; ``tool_run`` holds the arguments and result, as content, redacted like a
    model call's) and
    ``tool_loop.finished`` (``metadata``: ``loop``, ``model_calls``, ``stopped``), and
    its model calls carry ``loop`` and ``step`` in ``metadata``. Embedding calls end in
    ``embed.succeeded``, ``embed.cached`` or ``embed.failed`` (``metadata``: ``inputs``,
    the number of texts; ``request`` holds the texts as one user message each; no
    ``response``). ``at`` is Unix time in
    seconds. ``group`` names the group (or router) that routed the call to ``alias``.
    ``caller`` is the request's ``metadata["caller"]`` when it is a string (who
    made the call: relay-serve puts the API key's name there), ``tags`` the request's
    tags. ``request`` and ``response`` are the call's content, already redacted when a
    redactor is installed; they are here for sinks that are asked to record content,
    never serialized by default (``eq=False``, not in ``repr``).
    """

    kind: str
    at: float
    alias: str | None = None
    provider: str | None = None
    model: str | None = None
    custom_id: str | None = None
    job_id: str | None = None
    usage: Usage | None = None
    cost: Cost | None = None
    latency: float | None = None
    error: ErrorInfo | None = None
    metadata: dict[str, Any] = field(factory=dict)
    group: str | None = None
    caller: str | None = None
    tags: tuple[str, ...] = ()
    request: Request | None = field(default=None, eq=False, repr=False)
    response: Response | None = field(default=None, eq=False, repr=False)
    tool_run: ToolRun | None = field(default=None, eq=False, repr=False)
