"""Tools the hub runs itself: toolsets, and the tool loop of :meth:`Hub.arun_tools`.

A :class:`Toolset` is a named set of tools that can be listed and called: the tools of
an MCP server (relay-mcp), or Python functions (:class:`FunctionToolset`). Plugins offer
toolsets through the ``relay_toolsets`` hook; a caller may also pass them to
``run_tools`` directly.

The loop: the model is called with the toolsets' tools; when its answer asks for tool
calls, the hub runs them (concurrently, each on the toolset that offered it), sends the
results back as a ``tool`` message and calls the model again, until an answer asks for
no tool, asks for one no toolset runs (a tool the caller passed in ``tools=``: the
answer is returned for the caller to run it), or ``max_steps`` model calls were made.
Every round is kept in :attr:`Response.steps` and reported to audit sinks.
"""

from __future__ import annotations

import inspect
import json
import time
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import attrs
from attrs import frozen

from relay_core.errors import ConfigError, InvalidRequestError
from relay_core.pipeline import CallOptions, GroupTarget, ModelTarget, Pipeline
from relay_core.plugins import PluginRegistry
from relay_core.pricing import TIER_RANK
from relay_core.schema import _for_type
from relay_core.secrets import mask
from relay_core.serialize import structure, unstructure
from relay_core.types import (
    AuditEvent,
    Cost,
    ErrorInfo,
    Message,
    Request,
    Response,
    Tool,
    ToolCallPart,
    ToolResultPart,
    ToolRun,
    ToolStep,
    Usage,
)

__all__ = [
    "FunctionToolset",
    "LoopStop",
    "ToolOutput",
    "Toolset",
    "choose_toolsets",
    "function_tool",
    "offered_toolsets",
]

LoopStop = Literal["answer", "max_steps", "caller_tool"]
"""Why a tool loop ended: an answer that asks for no tool; the bound on model calls
(the last answer's tool calls were not run); a call of a tool no toolset runs, left to
the caller."""


@frozen
class ToolOutput:
    """What running a tool gave: the text sent back to the model, and whether it is an
    error the model should see as one (a tool that failed, arguments it refused)."""

    content: str
    is_error: bool = False
    tool: str | None = None
    """The tool's own name in its toolset when the model knew it by another (a name
    compiled for the provider's alphabet): :attr:`ToolRun.tool` and audit events
    carry it."""


@runtime_checkable
class Toolset(Protocol):
    """A named set of tools the hub can list and run. The protocol plugin authors
    implement (relay-mcp's servers do); :class:`FunctionToolset` is the built-in one.

    ``name`` identifies the toolset in ``run_tools(toolsets=[...])``, in
    :attr:`ToolRun.toolset` and in audit events; names are unique among a hub's toolsets.
    """

    name: str

    async def list_tools(self, provider: str | None) -> Sequence[Tool]:
        """The tools to offer the model, compiled for ``provider``: the provider plugin's
        name (``openai``, ``gemini``, ``bedrock``...) of the model about to be called,
        or ``None`` when a group may route to any provider (then compile for all).

        Compiling means whatever that provider needs: tool names within its alphabet
        and length, schema keywords it refuses removed or rewritten. Names must be
        unique within the toolset; the names returned are the ones :meth:`call_tool`
        receives. Called once per loop, before the first model call."""
        ...

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolOutput:
        """Run tool ``name`` (as :meth:`list_tools` named it) with the model's
        ``arguments`` and return its output. A failure the model should hear about
        (bad arguments, the tool's own error) is ``ToolOutput(..., is_error=True)``;
        an exception is caught by the loop and sent to the model as an error too, with
        its message (secrets masked)."""
        ...


# ---------------------------------------------------------------------------- functions


def function_tool(function: Callable[..., Any], *, name: str | None = None) -> Tool:
    """The :class:`Tool` describing a Python function: its name, the first paragraph of
    its docstring, and a JSON Schema of its parameters from their annotations (str,
    int, float, bool, None, Literal, unions, lists, dicts, attrs classes). A parameter
    without a default is required."""
    hints = typing.get_type_hints(function)
    definitions: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        hint = hints.get(parameter.name, Any)
        try:
            properties[parameter.name] = _for_type(hint, definitions)
        except TypeError as error:
            raise InvalidRequestError(
                f"tool {function.__name__!r}: parameter {parameter.name!r}: {error}"
            ) from None
        if parameter.default is parameter.empty:
            required.append(parameter.name)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if definitions:
        schema["$defs"] = definitions
    doc = inspect.getdoc(function) or ""
    return Tool(
        name=name or function.__name__,
        description=doc.split("\n\n")[0].replace("\n", " "),
        parameters=schema,
    )


class FunctionToolset:
    """Python functions (sync or async) as a toolset::

        def add(a: int, b: int) -> int:
            "Add two integers."
            return a + b

        answer = hub.run_tools("smart", "What is 2 + 40?", toolsets=[FunctionToolset("math", add)])

    A function's return value is sent back as it is when a string, else as JSON; an
    exception it raises is sent as an error result with its message.
    """

    def __init__(self, name: str, *functions: Callable[..., Any]) -> None:
        self.name = name
        self._functions: dict[str, Callable[..., Any]] = {}
        self._tools: list[Tool] = []
        for function in functions:
            tool = function_tool(function)
            if tool.name in self._functions:
                raise InvalidRequestError(f"toolset {name!r} has two tools named {tool.name!r}")
            self._functions[tool.name] = function
            self._tools.append(tool)

    def __repr__(self) -> str:
        return f"FunctionToolset({self.name!r}, tools={sorted(self._functions)})"

    async def list_tools(self, provider: str | None) -> Sequence[Tool]:
        """A tool per function, named after it, whatever the provider."""
        return list(self._tools)

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolOutput:
        """Call the function ``name`` with ``arguments`` converted to its annotated
        types (awaited when async). An unknown name or arguments that do not fit its
        signature is an error output; an exception the function raises propagates, and
        the tool loop sends it to the model as an error."""
        function = self._functions.get(name)
        if function is None:
            return ToolOutput(f"no tool named {name!r} in toolset {self.name!r}", is_error=True)
        try:
            inspect.signature(function).bind(**arguments)
            # The model sends JSON; the function gets its annotated types (attrs
            # classes, tuples...), through the same converter as every Relay value.
            typed = _typed_arguments(function, arguments)
        except (TypeError, ValueError) as error:
            return ToolOutput(f"bad arguments for {name!r}: {error}", is_error=True)
        value = function(**typed)
        if inspect.isawaitable(value):
            value = await value
        return ToolOutput(_as_text(value))


def offered_toolsets(plugins: PluginRegistry) -> dict[str, Toolset]:
    """The toolsets ``plugins`` offer (``relay_toolsets``), by name: what
    :meth:`Hub.toolsets` lists. Two of one name are a :class:`ConfigError`, since a
    call could not say which it means."""
    found: dict[str, Toolset] = {}
    for impl in plugins.hook.relay_toolsets.get_hookimpls():
        for toolset in impl.function() or ():
            if toolset.name in found:
                raise ConfigError(
                    f"two toolsets are named {toolset.name!r} (one from plugin "
                    f"{impl.plugin_name!r}): rename one of them"
                )
            found[toolset.name] = toolset
    return found


def choose_toolsets(
    chosen: Sequence[str | Toolset] | None, offered: Callable[[], dict[str, Toolset]]
) -> list[Toolset]:
    """The toolsets of ``run_tools(toolsets=chosen)``: every offered one for ``None``,
    else each named one (``offered`` is asked only when a name needs it) or given
    object. An unknown name is a :class:`ConfigError` listing the offered ones."""
    named = offered() if chosen is None or any(isinstance(t, str) for t in chosen) else {}
    if chosen is None:
        return list(named.values())
    picked: list[Toolset] = []
    for toolset in chosen:
        if not isinstance(toolset, str):
            picked.append(toolset)
        elif toolset in named:
            picked.append(named[toolset])
        else:
            known = ", ".join(sorted(named)) or "none (is relay-mcp installed and configured?)"
            raise ConfigError(f"no toolset named {toolset!r}; the hub has: {known}")
    return picked


def _typed_arguments(function: Callable[..., Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(function)
    typed: dict[str, Any] = {}
    for name, value in arguments.items():
        hint = hints.get(name, Any)
        try:
            typed[name] = value if hint is Any else structure(value, hint)
        except Exception as error:  # cattrs raises its own exception groups
            raise ValueError(f"{name}: {value!r} is not a valid {hint}") from error
    return typed


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value

    return json.dumps(unstructure(value), ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------- the loop


def _total_cost(costs: Sequence[Cost]) -> Cost:
    """The sum of several calls' costs; unknown when any of them is (never a number
    that leaves a call out)."""
    if any(cost.amount is None for cost in costs):
        return Cost.unknown()

    # The sum is only as sure as its least sure part.
    weakest = max(costs, key=lambda cost: TIER_RANK.get(cost.source, len(TIER_RANK)))
    sources = {(cost.source, cost.priced_by, cost.as_of) for cost in costs}
    return Cost(
        amount=sum(cost.amount or 0.0 for cost in costs),
        currency=weakest.currency,
        source=weakest.source,
        input=sum(cost.input or 0.0 for cost in costs),
        output=sum(cost.output or 0.0 for cost in costs),
        batch_discount_applied=all(cost.batch_discount_applied for cost in costs),
        priced_by=weakest.priced_by if len(sources) == 1 else None,
        as_of=weakest.as_of if len(sources) == 1 else None,
    )


@attrs.define
class ToolLoop:
    """One run of the tool loop (internal: :meth:`Hub.arun_tools` builds it)."""

    pipeline: Pipeline
    handle: ModelTarget | GroupTarget
    options: CallOptions
    toolsets: Sequence[Toolset]
    max_steps: int
    id: str = attrs.field(factory=lambda: uuid.uuid4().hex[:16])
    _owners: dict[str, Toolset] = attrs.field(factory=dict)

    async def run(self, request: Request) -> Response:
        if self.max_steps < 1:
            raise InvalidRequestError(f"max_steps must be 1 or more, not {self.max_steps}")
        request = attrs.evolve(request, tools=(*request.tools, *await self._tools(request)))
        steps: list[ToolStep] = []
        stopped: LoopStop = "max_steps"
        for number in range(1, self.max_steps + 1):
            asked = attrs.evolve(
                request,
                metadata={**request.metadata, "tool_loop": {"id": self.id, "step": number}},
            )
            response = await self.pipeline.call(self.handle, asked, self.options)
            calls = response.tool_calls
            if not calls:
                stopped = "answer"
                break
            if any(call.name not in self._owners for call in calls):
                stopped = "caller_tool"
                break
            if number == self.max_steps:
                break
            import asyncio  # loads with the first tool run: asyncio costs a cold start

            runs = await asyncio.gather(*(self._run(call, response, number) for call in calls))
            steps.append(ToolStep(response=response, runs=runs))
            request = attrs.evolve(
                request,
                messages=(
                    *request.messages,
                    response.to_message(),
                    Message.tool(*(run.result for run in runs)),
                ),
            )
        self._audit_finished(response, len(steps) + 1, stopped)
        answers = [step.response for step in steps] + [response]
        return attrs.evolve(
            response,
            steps=steps,
            usage=sum((answer.usage for answer in answers), Usage()),
            cost=_total_cost([answer.cost for answer in answers]),
            metadata={
                **response.metadata,
                "tool_loop": {"id": self.id, "model_calls": len(answers), "stopped": stopped},
            },
        )

    async def _tools(self, request: Request) -> list[Tool]:
        provider = self.handle.adapter.name if self.handle.router is None else None
        taken = {tool.name: "the request's tools" for tool in request.tools}
        offered: list[Tool] = []
        for toolset in self.toolsets:
            for tool in await toolset.list_tools(provider):
                if tool.name in taken:
                    raise ConfigError(
                        f"tool {tool.name!r} of toolset {toolset.name!r} has the name of "
                        f"a tool of {taken[tool.name]}: give one of them another name"
                    )
                taken[tool.name] = f"toolset {toolset.name!r}"
                self._owners[tool.name] = toolset
                offered.append(tool)
        return offered

    async def _run(self, call: ToolCallPart, response: Response, step: int) -> ToolRun:
        import asyncio

        toolset = self._owners[call.name]
        started = time.perf_counter()
        error: ErrorInfo | None = None
        left = self.options.left()
        try:
            # The call's deadline bounds the whole loop: a tool's time counts too.
            output = await asyncio.wait_for(
                toolset.call_tool(call.name, call.arguments),
                None if left is None else max(left, 0.0),
            )
        except asyncio.TimeoutError:
            output = ToolOutput(
                f"the tool did not finish within the call's deadline of {self.options.deadline:g}s",
                is_error=True,
            )
            error = ErrorInfo(kind="Timeout", message=output.content)
        except Exception as failure:
            message = mask(f"{type(failure).__name__}: {failure}")
            output = ToolOutput(f"the tool failed: {message}", is_error=True)
            error = ErrorInfo(kind=type(failure).__name__, message=message)
        run = ToolRun(
            call=call,
            result=ToolResultPart(
                tool_call_id=call.id,
                content=output.content,
                name=call.name,
                is_error=output.is_error,
            ),
            toolset=toolset.name,
            tool=output.tool or call.name,
            seconds=time.perf_counter() - started,
        )
        if output.is_error and error is None:
            error = ErrorInfo(kind="ToolError", message=mask(output.content[:500]))
        self._audit_run(run, response, step, error)
        return run

    def _audit_run(
        self, run: ToolRun, response: Response, step: int, error: ErrorInfo | None
    ) -> None:
        if not self.pipeline.audited:
            return
        # The run holds what the tool saw: restored values. Sinks get the redacted view,
        # as for a model call (placeholders numbered for this run alone).
        seen = self.pipeline.audit_view(
            Request(messages=(Message.assistant(run.call), Message.tool(run.result)))
        )
        call, result = seen.messages[0].content[0], seen.messages[1].content[0]
        if isinstance(call, ToolCallPart) and isinstance(result, ToolResultPart):
            run = attrs.evolve(run, call=call, result=result)
            if error is not None and result.is_error:
                error = attrs.evolve(error, message=result.content[:500])
        self.pipeline.audit(
            AuditEvent(
                kind="tool.failed" if run.result.is_error else "tool.succeeded",
                at=time.time(),
                alias=self.handle.alias,
                provider=response.provider or None,
                model=response.model or None,
                job_id=self.options.job_id,
                latency=run.seconds,
                error=error,
                metadata={
                    "loop": self.id,
                    "step": step,
                    "toolset": run.toolset,
                    "tool": run.tool,
                    "call_id": run.call.id,
                },
                tool_run=run,
            )
        )

    def _audit_finished(self, response: Response, model_calls: int, stopped: LoopStop) -> None:
        if not self.pipeline.audited:
            return
        self.pipeline.audit(
            AuditEvent(
                kind="tool_loop.finished",
                at=time.time(),
                alias=self.handle.alias,
                provider=response.provider or None,
                model=response.model or None,
                job_id=self.options.job_id,
                metadata={"loop": self.id, "model_calls": model_calls, "stopped": stopped},
            )
        )
