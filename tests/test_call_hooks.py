"""What the per-call hooks receive: the call's context for guardrails, content and
caller for audit, and restorers putting back what a redactor replaced."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from relay_core import (
    AuditEvent,
    EndEvent,
    GuardrailViolation,
    ModelPrice,
    Request,
    Response,
    TextDelta,
    hookimpl,
)
from relay_core.calls import CallInfo, Restorer

CATALOG = """\
models:
  fast:
    target: scripted/one
    pricing: {input: 1.0, output: 2.0}
"""


class Masking:
    """Replaces 'alice@example.com' with '<EMAIL_1>' and puts it back."""

    ORIGINAL = "alice@example.com"
    PLACEHOLDER = "<EMAIL_1>"

    def __init__(self) -> None:
        self.restorers: list[Any] = []

    @hookimpl
    def relay_redact(self, request: Request) -> Request | None:
        messages = tuple(
            attrs.evolve(m, content=m.text.replace(self.ORIGINAL, self.PLACEHOLDER))
            for m in request.messages
        )
        return attrs.evolve(request, messages=messages, metadata={**request.metadata, "masked": 1})

    @hookimpl
    def relay_restorer(self, request: Request) -> Restorer | None:
        if not request.metadata.get("masked"):
            return None
        restorer = StreamingRestorer(self.PLACEHOLDER, self.ORIGINAL)
        self.restorers.append(restorer)
        return restorer


class StreamingRestorer:
    def __init__(self, placeholder: str, original: str) -> None:
        self.placeholder, self.original = placeholder, original
        self.held = ""

    def feed(self, text: str) -> str:
        text = (self.held + text).replace(self.placeholder, self.original)
        start = text.rfind("<")
        self.held = text[start:] if start != -1 and ">" not in text[start:] else ""
        return text[: len(text) - len(self.held)]

    def flush(self) -> str:
        held, self.held = self.held, ""
        return held

    def restore(self, response: Response) -> Response:
        return attrs.evolve(
            response, content=response.text.replace(self.placeholder, self.original)
        )


def test_the_provider_sees_placeholders_the_caller_the_original(
    make_hub: Any, scripted: Any
) -> None:
    hub = make_hub(CATALOG)
    hub.plugins.register(Masking())
    response = hub.chat("fast", "write to alice@example.com")
    assert scripted.received[-1].messages[-1].text == "write to <EMAIL_1>"
    assert response.text == "echo: write to alice@example.com"


def test_streams_are_restored_even_across_deltas(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    hub.plugins.register(Masking())
    # The scripted provider streams word by word: "<EMAIL_1>" arrives whole in one delta;
    # a restorer that holds back a '<' shows the joined text only once it is known.
    events = list(hub.stream("fast", "mail alice@example.com now"))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "echo: mail alice@example.com now"
    assert "<EMAIL" not in text
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.text == text


def test_guardrails_get_the_call_and_its_price(make_hub: Any) -> None:
    seen: list[CallInfo] = []

    class Budget:
        @hookimpl
        def relay_guardrail_pre(self, request: Request, call: CallInfo) -> None:
            seen.append(call)
            if (
                call.quote().price == ModelPrice(input=1.0, output=2.0)
                and "expensive" in request.tags
            ):
                raise GuardrailViolation("budget", "too expensive for this caller")

    hub = make_hub(CATALOG)
    hub.plugins.register(Budget())
    hub.chat("fast", "x")
    call = seen[-1]
    assert (call.alias, call.target, call.job_id, call.streaming) == (
        "fast",
        "scripted/one",
        None,
        False,
    )
    with pytest.raises(GuardrailViolation, match="too expensive"):
        hub.chat("fast", "x", tags=["expensive"])
    list(hub.stream("fast", "x"))
    assert seen[-1].streaming


def test_audit_events_carry_caller_tags_and_redacted_content(make_hub: Any) -> None:
    events: list[AuditEvent] = []

    class Sink:
        @hookimpl
        def relay_audit(self, event: AuditEvent) -> None:
            events.append(event)

    hub = make_hub(CATALOG)
    hub.plugins.register(Masking())
    hub.plugins.register(Sink())
    hub.chat("fast", "to alice@example.com", tags=["eval"], metadata={"caller": "team-a"})
    event = events[-1]
    assert (event.kind, event.caller, event.tags) == ("call.succeeded", "team-a", ("eval",))
    assert event.request is not None
    assert event.response is not None
    assert "alice@example.com" not in event.request.messages[-1].text
    assert "alice@example.com" not in event.response.text
    assert event.cost is not None
    assert event.cost.amount is not None
    assert "request" not in repr(event)


class Configurable:
    """A plugin with settings: each hub gets an object configured from its catalog."""

    @hookimpl
    def relay_register_settings(self, register: Any) -> None:
        register("prefix")

    @hookimpl
    def relay_configure(self, catalog: Any) -> object | None:
        settings = catalog.plugins.get("prefix")
        if settings is None:
            return None
        if not isinstance(settings.get("tag"), str):
            raise catalog.error("tag must be a string", ("plugins", "prefix", "tag"))
        return Tagging(settings["tag"])


class Tagging:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    @hookimpl
    def relay_guardrail_pre(self, request: Request, call: CallInfo) -> None:
        if self.tag not in request.tags:
            raise GuardrailViolation("tag", f"requests must carry the tag {self.tag!r}")


def test_each_hub_gets_the_plugin_configured_for_its_catalog(make_hub: Any) -> None:
    strict = make_hub(CATALOG + "plugins:\n  prefix: {tag: red}\n")
    strict.plugins.register(Configurable())
    other = make_hub(CATALOG + "plugins:\n  prefix: {tag: blue}\n")
    other.plugins.register(Configurable())
    assert strict.chat("fast", "x", tags=["red"]).text == "echo: x"
    with pytest.raises(GuardrailViolation, match="'red'"):
        strict.chat("fast", "x", tags=["blue"])
    assert other.chat("fast", "x", tags=["blue"]).text == "echo: x"
    plain = make_hub(CATALOG)
    plain.plugins.register(Configurable())
    assert plain.chat("fast", "x").text == "echo: x"  # no settings: nothing configured


def test_bad_plugin_settings_point_at_the_catalog(make_hub: Any) -> None:
    from relay_core import ConfigError

    hub = make_hub(CATALOG + "plugins:\n  prefix: {tag: 3}\n")
    hub.plugins.register(Configurable())
    with pytest.raises(ConfigError, match="tag must be a string") as caught:
        hub.chat("fast", "x")
    assert caught.value.line == 6


GROUP_CATALOG = """\
models:
  fast: scripted/one
  other: scripted/two
groups:
  g: {strategy: fallback, members: [fast, other]}
"""


class OnlyTwo:
    @hookimpl
    def relay_guardrail_pre(self, request: Request, call: CallInfo) -> None:
        if call.model != "two":
            raise GuardrailViolation(
                "allowed_models", f"{call.alias} is not allowed", try_next="try" in request.tags
            )


def test_a_refusal_about_the_model_lets_a_group_try_the_next(make_hub: Any) -> None:
    hub = make_hub(GROUP_CATALOG)
    hub.plugins.register(OnlyTwo())
    route = hub.chat("g", "x", tags=["try"]).metadata["route"]
    assert route["member"] == "other"
    assert route["failed"] == [{"member": "fast", "error": "GuardrailViolation"}]
    with pytest.raises(GuardrailViolation):  # a refusal of the request itself stops it
        hub.chat("g", "x")


def test_refusals_and_groups_are_audited(make_hub: Any) -> None:
    events: list[AuditEvent] = []

    class Sink:
        @hookimpl
        def relay_audit(self, event: AuditEvent) -> None:
            events.append(event)

    hub = make_hub(GROUP_CATALOG)
    hub.plugins.register(OnlyTwo())
    hub.plugins.register(Sink())
    hub.chat("g", "x", tags=["try"])
    assert [(e.kind, e.alias, e.group) for e in events] == [
        ("call.failed", "fast", "g"),
        ("call.succeeded", "other", "g"),
    ]
    assert events[0].error is not None
    assert events[0].error.kind == "GuardrailViolation"
    with pytest.raises(GuardrailViolation):
        list(hub.stream("fast", "x"))
    assert (events[-1].kind, events[-1].group) == ("stream.failed", None)


def test_configured_plugins_are_closed_with_the_hub(make_hub: Any) -> None:
    closed: list[str] = []

    class Closing:
        def close(self) -> None:
            closed.append("closed")

    class Plugin:
        @hookimpl
        def relay_configure(self, catalog: Any) -> object:
            return Closing()

    hub = make_hub(CATALOG)
    hub.plugins.register(Plugin())
    hub.chat("fast", "x")
    hub.close()
    assert closed == ["closed"]


def test_engine_jobs_are_audited_from_start_to_finish(make_hub: Any, tmp_path: Any) -> None:
    from relay_core import BatchRequest, RelayClient

    events: list[AuditEvent] = []

    class Sink:
        @hookimpl
        def relay_audit(self, event: AuditEvent) -> None:
            events.append(event)

    hub = make_hub(CATALOG)
    hub.plugins.register(Sink())
    with RelayClient(tmp_path / "ws", hub=hub) as client:
        requests = [BatchRequest(id=f"r{i}", prompt=f"q{i}") for i in range(3)]
        client.submit_batch(requests, job_id="audited", model="fast", mode="engine")
    kinds = [(e.kind, e.job_id) for e in events]
    assert kinds[0] == ("job.started", "audited")
    assert kinds[-1] == ("job.finished", "audited")
    assert sorted(kinds[1:-1]) == [("call.succeeded", "audited")] * 3
    finished = events[-1]
    assert finished.metadata == {"status": "completed", "completed": 3, "failed": 0}
    assert finished.cost is not None
    assert finished.cost.amount == pytest.approx(
        sum(e.cost.amount or 0 for e in events[1:-1] if e.cost)
    )


def test_a_section_no_plugin_reads_stops_the_first_call(make_hub: Any) -> None:
    from relay_core import ConfigError

    hub = make_hub(CATALOG + "plugins:\n  prefx: {tag: red}\n")
    hub.plugins.register(Configurable())
    with pytest.raises(ConfigError, match=r"plugins\.prefx; did you mean 'prefix'") as caught:
        hub.chat("fast", "x")
    assert (caught.value.line, caught.value.column) == (6, 3)


def test_an_optional_section_no_plugin_reads_lets_calls_run(make_hub: Any) -> None:
    hub = make_hub(CATALOG + "plugins:\n  prefix: {optional: true, tag: red}\n")
    assert hub.chat("fast", "x").text == "echo: x"
