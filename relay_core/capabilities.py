"""What a model can do, what a call needs of it, and the tasks routing scores models for.

The vocabulary both sides of a call share: an adapter declares its :class:`Capability`
set, :func:`required_capabilities` reads what a request needs, the catalog names a group's
``task`` from :data:`TASKS`, and routing ranks models against them. Nothing here imports
more than the unified types, so the catalog, the adapters and routing can all stand on it.
"""

from __future__ import annotations

import enum

from attrs import frozen

from relay_core.types import DocumentPart, ImagePart, Request, ThinkingPart

__all__ = ["TASKS", "Capability", "Task", "required_capabilities"]


class Capability(str, enum.Enum):
    """What an adapter can do. The hub checks a request's needs against these before
    calling, so an adapter never receives a request it declared it cannot serve."""

    CHAT = "chat"
    STREAM = "stream"
    TOOLS = "tools"
    STRUCTURED_OUTPUT = "structured_output"
    VISION = "vision"
    DOCUMENTS = "documents"
    THINKING = "thinking"
    BATCH = "batch"
    SERVER_TOOLS = "server_tools"
    """Runs tools on its own side (web search, code execution...) and takes their
    records (:class:`~relay_core.types.ServerToolCallPart`, ``ServerToolResultPart``)
    back in a conversation. Nothing requires it: for a provider without it, the hub
    leaves those parts out of the request (see
    :func:`relay_core.call_forms.without_server_tools`)."""

    EMBEDDINGS = "embeddings"
    """Turns texts into vectors (:meth:`Provider.embed <relay_core.providers.Provider.embed>`)."""
    TOKEN_COUNT = "token_count"
    """Counts a prompt's tokens exactly (:meth:`Provider.count_tokens
    <relay_core.providers.Provider.count_tokens>`); without it the hub estimates."""

    def __str__(self) -> str:
        return self.value


def required_capabilities(request: Request) -> set[Capability]:
    """What a provider must support to serve ``request``."""
    needs = {Capability.CHAT}
    if request.tools:
        needs.add(Capability.TOOLS)
    if request.response_schema is not None:
        needs.add(Capability.STRUCTURED_OUTPUT)
    for part in request.parts:
        if isinstance(part, ImagePart):
            needs.add(Capability.VISION)
        elif isinstance(part, DocumentPart):
            needs.add(Capability.DOCUMENTS)
        elif isinstance(part, ThinkingPart):
            needs.add(Capability.THINKING)
    if request.config.thinks:
        needs.add(Capability.THINKING)
    return needs


# ---------------------------------------------------------------------------- tasks


@frozen(kw_only=True)
class Task:
    """What a task asks of a model: capabilities it cannot do without, ones it is better
    with, and the context window it wants."""

    needs: frozenset[str] = frozenset()
    prefers: frozenset[str] = frozenset()
    min_context: int | None = None
    description: str = ""


TASKS: dict[str, Task] = {
    "chat": Task(description="conversation and short answers"),
    "code": Task(
        prefers=frozenset({"tools", "structured_output"}),
        min_context=64_000,
        description="writing and editing code",
    ),
    "extraction": Task(
        needs=frozenset({"structured_output"}),
        description="structured data out of text",
    ),
    "vision": Task(needs=frozenset({"vision"}), description="images in the prompt"),
    "reasoning": Task(
        prefers=frozenset({"thinking"}), description="multi-step problems worth thinking"
    ),
    "agents": Task(
        needs=frozenset({"tools"}),
        prefers=frozenset({"structured_output"}),
        min_context=64_000,
        description="tool-calling loops",
    ),
    "long_context": Task(min_context=200_000, description="whole documents at once"),
}
