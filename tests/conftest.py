"""Fixtures for the core's tests. No entry points load here: each test registers the
in-code plugins it needs, so the core is tested with no plugin installed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from relay_core import (
    Capability,
    EndEvent,
    Hub,
    Provider,
    Request,
    Response,
    StreamAssembler,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
    hookimpl,
)
from relay_core.testing import hub_for, recorded_waits


class ScriptedProvider(Provider):
    """A provider whose answers and failures the test scripts.

    ``script`` maps a model name to a list of outcomes consumed one per call; an outcome
    is an exception to raise or a Response to return. Unscripted calls echo the last
    user message. Every request received is recorded in ``received``.
    """

    name = "scripted"
    capabilities = frozenset(
        {Capability.CHAT, Capability.STREAM, Capability.TOOLS, Capability.STRUCTURED_OUTPUT}
    )
    system_only = True
    script: dict[str, list[Any]]
    received: list[Request]

    async def chat(self, request: Request) -> Response:
        self.received.append(request)
        outcomes = self.script.get(request.model)
        if outcomes:
            outcome = outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome  # type: ignore[no-any-return]
        if request.tools:
            call = ToolCallPart("call_1", request.tools[0].name, {"q": request.messages[-1].text})
            return Response(
                content=(call,), model=request.model, finish_reason="tool_calls", usage=Usage(10, 5)
            )
        said = request.messages[-1].text if request.messages else request.system
        return Response(
            content=f"echo: {said}",
            model=request.model,
            usage=Usage(10, 5),
            raw={"scripted": True},
        )

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        answer = await self.chat(request)
        assembler = StreamAssembler(provider=self.name)
        for position, word in enumerate(answer.text.split(" ") if answer.text else ()):
            yield assembler.feed(TextDelta(word if position == 0 else " " + word))
        for index, call in enumerate(answer.tool_calls):
            yield assembler.feed(ToolCallDelta(index, id=call.id, name=call.name))
            yield assembler.feed(ToolCallDelta(index, arguments=json.dumps(call.arguments)))
        yield assembler.feed(UsageEvent(answer.usage))
        yield EndEvent(assembler.response(model=answer.model, raw=answer.raw))


class ChatOnlyProvider(Provider):
    name = "chatonly"
    capabilities = frozenset({Capability.CHAT})

    async def chat(self, request: Request) -> Response:
        return Response(content="plain", model=request.model)


class ScriptedPlugin:
    """Registers ``scripted`` and ``chatonly`` with a shared script and call log."""

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.received: list[Request] = []

    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        plugin = self

        class Bound(ScriptedProvider):
            script = plugin.script
            received = plugin.received

        register("scripted", Bound)
        register("chatonly", ChatOnlyProvider)


@pytest.fixture
def scripted() -> ScriptedPlugin:
    return ScriptedPlugin()


@pytest.fixture
def make_hub(scripted: ScriptedPlugin) -> Iterator[Callable[..., Hub]]:
    """Build a hub over catalog text with the scripted plugin registered."""
    hubs: list[Hub] = []

    def make(catalog_text: str = "", **kwargs: Any) -> Hub:
        hub = hub_for(catalog_text, **kwargs)
        hub.plugins.register(scripted, name="scripted")
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
def waits() -> Iterator[list[float]]:
    """Retries wait for real in production; here the waits are recorded instead."""
    with recorded_waits() as recorded:
        yield recorded
