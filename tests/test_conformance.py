"""The provider conformance suite, run against a tiny HTTP adapter written here, and
shown to catch an adapter that breaks its promises."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest

from relay_core import (
    AuthenticationError,
    Capability,
    EndEvent,
    Provider,
    Request,
    Response,
    StreamAssembler,
    StreamEvent,
    TextDelta,
    ToolCallPart,
    UnsupportedCapability,
    Usage,
    UsageEvent,
    hookimpl,
)
from relay_core.streaming import closing_stream
from relay_core.testing import CONFORMANCE_KEY, CONFORMANCE_TEXT, ProviderConformance


class TinyProvider(Provider):
    """A provider with a made-up wire format:
    {"id": ..., "say": ..., "calls": [...], "used": [in, out]}, streamed as one line each."""

    capabilities = frozenset({Capability.CHAT, Capability.STREAM, Capability.TOOLS})
    api_key_env = "TINY_API_KEY"
    default_base_url = "https://tiny.test"

    def _headers(self) -> dict[str, str]:
        if self.settings.api_key is None:
            raise AuthenticationError("tiny: no API key: set TINY_API_KEY", provider="tiny")
        return {"authorization": f"Bearer {self.settings.api_key.reveal()}"}

    async def chat(self, request: Request) -> Response:
        body = await self.http.json(
            "POST",
            "/say",
            json={"q": request.messages[-1].text},
            headers=self._headers(),
            model=request.model,
        )
        calls = tuple(ToolCallPart(c["id"], c["name"], c["args"]) for c in body.get("calls", ()))
        return Response(
            content=(*((body["say"],) if body.get("say") else ()), *calls),
            model=request.model,
            finish_reason="tool_calls" if calls else "stop",
            usage=Usage(*body["used"]),
            id=body["id"],
            raw=body,
        )

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        assembler = StreamAssembler()
        events = self.http.stream_sse(
            "POST",
            "/say",
            json={"q": "", "stream": True},
            headers=self._headers(),
            model=request.model,
        )
        chunks = []
        async with closing_stream(events):
            async for event in events:
                data = event.json()
                chunks.append(data)
                if "say" in data:
                    yield assembler.feed(TextDelta(data["say"]))
                if "used" in data:
                    yield assembler.feed(UsageEvent(Usage(*data["used"])))
        yield EndEvent(self.finish(assembler, request, chunks))

    def finish(self, assembler: StreamAssembler, request: Request, chunks: list[Any]) -> Response:
        return assembler.response(model=request.model, id=chunks[0]["id"], raw=chunks)


class Plugin:
    def __init__(self, adapter: type[Provider] = TinyProvider) -> None:
        self.adapter = adapter

    @hookimpl
    def relay_register_providers(self, register: Any) -> None:
        register("tiny", self.adapter)


def _serve(scenario: str, stream: bool) -> httpx.Response:
    if scenario == "text" and stream:
        lines = [{"id": "t1", "say": "Conformance "}, {"say": "answer."}, {"used": [4, 2]}]
        text = "".join(f"data: {json.dumps(line)}\n\n" for line in lines)
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
    if scenario == "text":
        return httpx.Response(200, json={"id": "t1", "say": CONFORMANCE_TEXT, "used": [4, 2]})
    if scenario == "tool_call":
        call = {"id": "c1", "name": "get_weather", "args": {"city": "Paris"}}
        return httpx.Response(200, json={"id": "t2", "calls": [call], "used": [4, 2]})
    if scenario == "rate_limit":
        return httpx.Response(429, json={"error": "slow down"}, headers={"retry-after": "3"})
    return httpx.Response(401, json={"error": f"bad key {CONFORMANCE_KEY}"})


class TestTinyConformance(ProviderConformance):
    plugin = Plugin()
    provider = "tiny"

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {CONFORMANCE_KEY}"
        return _serve(scenario, stream)


class DropsTheLastDelta(TinyProvider):
    def finish(self, assembler: StreamAssembler, request: Request, chunks: list[Any]) -> Response:
        answer = super().finish(assembler, request, chunks)
        return attrs.evolve(answer, content=answer.text[:-1])


class LeavesTheStreamsIdEmpty(TinyProvider):
    """The guide's stream as it was: ``assembler.response(model=..., finish_reason=...)``."""

    def finish(self, assembler: StreamAssembler, request: Request, chunks: list[Any]) -> Response:
        return attrs.evolve(super().finish(assembler, request, chunks), id=None)


class LeavesTheStreamsRawEmpty(TinyProvider):
    def finish(self, assembler: StreamAssembler, request: Request, chunks: list[Any]) -> Response:
        return attrs.evolve(super().finish(assembler, request, chunks), raw=None)


class EndsTheStreamWithLength(TinyProvider):
    def finish(self, assembler: StreamAssembler, request: Request, chunks: list[Any]) -> Response:
        return attrs.evolve(super().finish(assembler, request, chunks), finish_reason="length")


class LeavesChatsIdAndRawEmpty(TinyProvider):
    """The guide's chat as it was: content, model and usage only."""

    async def chat(self, request: Request) -> Response:
        return attrs.evolve(await super().chat(request), id=None, raw=None)


class ClaimsVision(TinyProvider):
    capabilities = TinyProvider.capabilities | {Capability.VISION}


class Broken(ProviderConformance):
    provider = "tiny"

    def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
        return _serve(scenario, stream)


@pytest.mark.parametrize(
    ("adapter", "complaint"),
    [
        (DropsTheLastDelta, "parts differ"),
        (LeavesTheStreamsIdEmpty, "stream's end response has no id"),
        (LeavesTheStreamsRawEmpty, "stream's end response has no raw"),
        (EndsTheStreamWithLength, "finish_reason"),
        (LeavesChatsIdAndRawEmpty, "chat's response has no id"),
    ],
)
def test_the_suite_catches_a_stream_that_differs_from_chat(
    monkeypatch: pytest.MonkeyPatch, adapter: type[Provider], complaint: str
) -> None:
    suite = Broken()
    suite.plugin = Plugin(adapter)
    with pytest.raises(AssertionError, match=complaint):
        suite.test_stream_equals_chat(monkeypatch)


def test_a_provider_without_ids_says_so_and_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoIds(Broken):
        not_applicable = {"response_id": "its answers carry no id"}  # noqa: RUF012

    class NoIdsAnywhere(TinyProvider):
        async def chat(self, request: Request) -> Response:
            return attrs.evolve(await super().chat(request), id=None)

        def finish(
            self, assembler: StreamAssembler, request: Request, chunks: list[Any]
        ) -> Response:
            return attrs.evolve(super().finish(assembler, request, chunks), id=None)

    suite = NoIds()
    suite.plugin = Plugin(NoIdsAnywhere)
    suite.test_stream_equals_chat(monkeypatch)
    suite.plugin = Plugin()
    with pytest.raises(AssertionError, match="ids=False, yet an answer has an id"):
        suite.test_stream_equals_chat(monkeypatch)


def test_the_suite_catches_an_error_left_unclassified(monkeypatch: pytest.MonkeyPatch) -> None:
    class Unclassified(Broken):
        def serve(self, scenario: str, request: httpx.Request, stream: bool) -> httpx.Response:
            return httpx.Response(418, json={"error": "teapot"})

    suite = Unclassified()
    suite.plugin = Plugin()
    with pytest.raises(Exception, match="teapot"):
        suite.test_authentication(monkeypatch)


def test_the_suite_runs_the_capability_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # An adapter that claims vision is not asked to refuse it...
    suite = Broken()
    suite.plugin = Plugin(ClaimsVision)
    suite.test_undeclared_capabilities_are_refused(monkeypatch)
    # ...and one that does not claim it is refused by the hub before any request.
    suite.plugin = Plugin()
    suite.test_undeclared_capabilities_are_refused(monkeypatch)


class SendsWithoutAKey(TinyProvider):
    def _headers(self) -> dict[str, str]:
        return {}


class DeclaresVisionButRefusesIt(ClaimsVision):
    def supports(self, capability: Capability) -> bool:
        return capability != Capability.VISION and super().supports(capability)


def test_the_suite_catches_an_adapter_that_sends_without_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suite = Broken()
    suite.plugin = Plugin(SendsWithoutAKey)
    with pytest.raises(AssertionError, match=r"without a key sent POST https://tiny\.test/say"):
        suite.test_a_missing_key_names_its_variable_before_anything_is_sent(monkeypatch)


def test_the_suite_catches_a_declared_capability_that_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suite = Broken()
    suite.plugin = Plugin(DeclaresVisionButRefusesIt)
    with pytest.raises(UnsupportedCapability, match="vision"):
        suite.test_declared_capabilities_are_accepted(monkeypatch)
    suite.plugin = Plugin(ClaimsVision)
    suite.test_declared_capabilities_are_accepted(monkeypatch)


def test_the_suite_registers_the_plugin_in_code() -> None:
    suite = Broken()
    suite.plugin = Plugin()
    suite.test_registered_in_code_gives_the_adapter()
    suite.plugin = object()  # registers no provider
    with pytest.raises(Exception, match="tiny"):
        suite.test_registered_in_code_gives_the_adapter()
