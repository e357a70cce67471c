"""The call pipeline's shape: the layers a call passes are the configured ones, in the
order of ``LAYERS``, rebuilt when plugins come; chat and stream get the same treatment
from one definition of each layer."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from relay_core import GuardrailViolation, Message, Request, Response, hookimpl
from relay_core.calls import CallInfo
from relay_core.pipeline import LAYERS
from relay_core.testing import AuditRecorder
from relay_core.types import EndEvent, TextDelta, TextPart

CATALOG = """\
models:
  fast: scripted/one
groups:
  both: {strategy: fallback, members: [fast]}
"""

BREAKERS = CATALOG + "defaults:\n  circuit_breaker: {failures: 3, reset_after: 30}\n"


def names(layers: list[Any]) -> list[str]:
    return [type(layer).__name__ for layer in layers]


class Shouting:
    """Redacts 'secret' to 'XXXX' and restores it in the answer."""

    @hookimpl
    def relay_redact(self, request: Request) -> Request:
        return Request(
            messages=[Message(m.role, m.text.replace("secret", "XXXX")) for m in request.messages],
            model=request.model,
        )

    @hookimpl
    def relay_restorer(self, request: Request) -> Any:
        return Restore()


class Restore:
    def feed(self, text: str) -> str:
        return text.replace("XXXX", "secret")

    def flush(self) -> str:
        return ""

    def restore(self, response: Response) -> Response:
        return attrs.evolve(response, content=(TextPart(response.text.replace("XXXX", "secret")),))


class NoSecretsOut:
    @hookimpl
    def relay_guardrail_post(self, request: Request, response: Response, call: CallInfo) -> None:
        if "XXXX" in response.text:
            raise GuardrailViolation("test", "no secrets out")


async def answer(hub: Any, model: str, prompt: str, *, streaming: bool) -> Response:
    if not streaming:
        response: Response = await hub.achat(model, prompt)
        return response
    events = [e async for e in hub.astream(model, prompt)]
    assert isinstance(events[-1], EndEvent)
    return events[-1].response


def test_an_unconfigured_hub_passes_only_the_layers_every_call_needs(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    assert names(hub.pipeline.layers()) == ["Preparing", "Accounting", "Retrying"]
    assert names(hub.pipeline.layers(group=True)) == [
        "Routing",
        "Preparing",
        "Accounting",
        "Retrying",
    ]


def test_each_configured_concern_adds_its_layer_in_the_declared_order(make_hub: Any) -> None:
    hub = make_hub(BREAKERS)
    hub.plugins.register(AuditRecorder())
    hub.plugins.register(Shouting())
    hub.plugins.register(NoSecretsOut())
    built = names(hub.pipeline.layers(group=True, cache_asked=True))
    assert built == [
        "Redaction",
        "Routing",
        "Auditing",
        "Preparing",
        "Guardrails",
        "ResponseCaching",
        "Accounting",
        "CircuitBreaking",
        "Retrying",
    ]
    # An embedding call has no guardrails and splits its inputs; between the two
    # chains, every layer of LAYERS, in its order.
    embedding = names(hub.pipeline.layers(group=True, cache_asked=True, embedding=True))
    assert [n for n in embedding if n != "Splitting"] == [n for n in built if n != "Guardrails"]
    assert sorted({*built, *embedding}, key=names_order) == [k.__name__ for k in LAYERS]
    assert embedding.index("Splitting") == embedding.index("Accounting") + 1


def names_order(name: str) -> int:
    return [kind.__name__ for kind in LAYERS].index(name)


async def test_a_plugin_registered_after_the_first_call_joins_the_chain(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    await hub.achat("fast", "hello")
    sink = AuditRecorder()
    hub.plugins.register(sink)
    await hub.achat("fast", "hello")
    assert [e.kind for e in sink.events] == ["call.succeeded"]


@pytest.mark.parametrize("streaming", [False, True])
async def test_chat_and_stream_are_redacted_restored_and_audited_alike(
    make_hub: Any, scripted: Any, streaming: bool
) -> None:
    hub = make_hub(CATALOG)
    sink = AuditRecorder()
    hub.plugins.register(sink)
    hub.plugins.register(Shouting())
    if streaming:
        events = [e async for e in hub.astream("both", "my secret word")]
        assert isinstance(events[-1], EndEvent)
        response = events[-1].response
        shown = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert shown == "echo: my secret word"
    else:
        response = await hub.achat("both", "my secret word")
    assert scripted.received[-1].messages[-1].text == "my XXXX word"
    assert response.text == "echo: my secret word"
    assert response.metadata["route"]["member"] == "fast"
    kind = "stream" if streaming else "call"
    assert [e.kind for e in sink.events] == [f"{kind}.succeeded"]
    assert "secret" not in sink.events[0].request.messages[-1].text


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_refused_answer_fails_the_call_and_is_audited_as_failed(
    make_hub: Any, streaming: bool
) -> None:
    hub = make_hub(CATALOG)
    sink = AuditRecorder()
    hub.plugins.register(sink)
    hub.plugins.register(Shouting())
    hub.plugins.register(NoSecretsOut())
    with pytest.raises(GuardrailViolation):
        await answer(hub, "fast", "my secret word", streaming=streaming)
    kind = "stream" if streaming else "call"
    assert [e.kind for e in sink.events] == [f"{kind}.failed"]
    assert sink.events[0].error is not None
    assert sink.events[0].error.kind == "GuardrailViolation"
