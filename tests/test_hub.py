"""The Hub's call pipeline: resolution, params, capabilities, retries, groups, hooks, cost."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from relay_core import (
    AuditEvent,
    AuthenticationError,
    Capability,
    CredentialError,
    EndEvent,
    GuardrailViolation,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
    ModelPrice,
    PluginNotInstalled,
    Provider,
    ProviderUnavailable,
    RateLimitError,
    Request,
    Response,
    StreamEvent,
    TextDelta,
    Tool,
    UnknownAlias,
    UnsupportedCapability,
    Usage,
    hookimpl,
)
from relay_core.testing import hub_for, recorded_waits

CATALOG = """\
providers:
  scripted:
    max_retries: 2
models:
  fast:
    target: scripted/one
    params: {temperature: 0.2, max_tokens: 100}
    provider_kwargs: {mode: catalog, keep: yes, metadata: {team: search, tier: gold}}
  priced:
    target: scripted/two
    pricing: {input: 2.0, output: 8.0, cached_input: 0.5}
    pricing_profile: discount
  plain: chatonly/x
groups:
  resilient: {strategy: fallback, members: [flaky, fast]}
  rotation: {strategy: round_robin, members: [fast, priced]}
  flaky: {strategy: fallback, members: [scripted/flaky]}
pricing_profiles:
  discount: {multiplier: 0.5}
defaults:
  model: fast
"""


def test_chat_merges_catalog_params_under_the_calls(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    response = hub.chat(
        "fast",
        "hello",
        max_tokens=7,
        provider_kwargs={"mode": "call", "metadata": {"tier": "silver", "user": "u1"}},
    )
    sent = scripted.received[-1]
    assert sent.model == "one"
    assert sent.config.temperature == 0.2
    assert sent.config.max_tokens == 7
    # Nested objects merge key by key: the call's metadata does not drop the catalog's.
    assert sent.provider_kwargs == {
        "mode": "call",
        "keep": True,
        "metadata": {"team": "search", "tier": "silver", "user": "u1"},
    }
    assert response.text == "echo: hello"
    assert response.provider == "scripted"
    assert response.metadata["alias"] == "fast"
    assert response.latency is not None
    assert response.latency >= 0


def test_default_model_and_bare_targets(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    assert hub.chat(prompt="via default").text == "echo: via default"
    assert hub.chat("scripted/anything", "bare").model == "anything"
    with pytest.raises(UnknownAlias, match="known aliases: fast"):
        hub.chat("nonexistent", "x")


def test_request_object_and_messages(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    request = Request(
        messages=[Message.user("a"), Message.assistant("b"), Message.user("c")],
        model="fast",
        system="sys",
        custom_id="req-1",
    )
    response = hub.chat(request)
    assert response.custom_id == "req-1"
    assert scripted.received[-1].system == "sys"
    assert [m.text for m in scripted.received[-1].messages] == ["a", "b", "c"]


def test_empty_request_is_rejected(make_hub: Any) -> None:
    with pytest.raises(InvalidRequestError, match="at least one message"):
        make_hub(CATALOG).chat("fast", [])


def test_a_system_prompt_alone_goes_where_the_provider_takes_it(
    make_hub: Any, scripted: Any
) -> None:
    hub = make_hub(CATALOG)
    assert hub.chat("fast", system="Say hi.").text == "echo: Say hi."
    sent = scripted.received[-1]
    assert (sent.messages, sent.system) == ((), "Say hi.")
    assert hub.chat(Request(messages=[], system="Say hi.", model="fast")).text == "echo: Say hi."
    # Refused before any call, naming the provider, by one that does not declare it.
    with pytest.raises(UnsupportedCapability, match="chatonly/x does not support a request with"):
        hub.chat("plain", system="Say hi.")


def test_missing_plugin_names_the_distribution(make_hub: Any) -> None:
    hub = make_hub("models:\n  claude: anthropic/claude-sonnet-4-5\n")
    with pytest.raises(PluginNotInstalled) as caught:
        hub.chat("claude", "hi")
    assert str(caught.value) == "provider 'anthropic' is not installed; pip install relay-anthropic"


def test_capabilities_are_checked_before_the_call(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    with pytest.raises(UnsupportedCapability, match="chatonly/x does not support tools"):
        hub.chat("plain", "x", tools=[Tool("t")])
    with pytest.raises(UnsupportedCapability, match="vision"):
        hub.chat("fast", Message.user("see", ImagePart(url="https://example.test/a.png")))
    with pytest.raises(UnsupportedCapability, match="stream"):
        list(hub.stream("plain", "x"))
    assert scripted.received == []


def test_stream_yields_deltas_then_an_end_equal_to_chat(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    events = list(hub.stream("fast", "one two three"))
    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        "echo:",
        " one",
        " two",
        " three",
    ]
    end = events[-1]
    assert isinstance(end, EndEvent)
    chat = hub.chat("fast", "one two three")
    assert end.response.content == chat.content
    assert end.response.usage == chat.usage
    assert end.response.provider == "scripted"


async def test_async_api_and_handles(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    handle = hub.get("fast")
    responses = await asyncio.gather(*(handle.achat(f"n{i}") for i in range(20)))
    assert [r.text for r in responses] == [f"echo: n{i}" for i in range(20)]
    events = [e async for e in hub.astream("fast", "streamed")]
    assert isinstance(events[-1], EndEvent)
    await hub.aclose()


async def test_sync_api_works_inside_a_running_loop(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    # A notebook cell: an event loop is running and the user calls the sync API.
    assert hub.chat("fast", "inside").text == "echo: inside"
    assert any(isinstance(e, EndEvent) for e in hub.stream("fast", "inside"))


def test_retries_honour_retry_after(make_hub: Any, scripted: Any, waits: list[float]) -> None:
    hub = make_hub(CATALOG)
    scripted.script["one"] = [
        RateLimitError("slow down", retry_after=1.5, provider="scripted"),
        ProviderUnavailable("503", provider="scripted"),
    ]
    response = hub.chat("fast", "x")
    assert response.text == "echo: x"
    assert waits[0] == 1.5
    assert len(waits) == 2
    assert response.metadata["retries"] == ["RateLimitError", "ProviderUnavailable"]


def test_retries_stop_after_max_retries(make_hub: Any, scripted: Any, waits: list[float]) -> None:
    hub = make_hub(CATALOG)
    scripted.script["one"] = [
        ProviderUnavailable(f"down {i}", provider="scripted") for i in range(5)
    ]
    with pytest.raises(ProviderUnavailable, match="down 2"):
        hub.chat("fast", "x")
    assert len(waits) == 2  # max_retries: 2 in the catalog


def test_no_retry_on_fail_fast_errors(make_hub: Any, scripted: Any, waits: list[float]) -> None:
    hub = make_hub(CATALOG)
    scripted.script["one"] = [AuthenticationError("bad key", provider="scripted")]
    with pytest.raises(AuthenticationError):
        hub.chat("fast", "x", custom_id="r9")
    assert waits == []


def test_errors_carry_the_custom_id(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    scripted.script["one"] = [AuthenticationError("bad key", provider="scripted")]
    with pytest.raises(AuthenticationError) as caught:
        hub.chat("fast", "x", custom_id="row-42")
    assert caught.value.custom_id == "row-42"
    assert "row-42" in str(caught.value)


def test_stream_retries_only_before_the_first_event(
    make_hub: Any, scripted: Any, waits: list[float]
) -> None:
    hub = make_hub(CATALOG)
    scripted.script["one"] = [ProviderUnavailable("blip", provider="scripted")]
    events = list(hub.stream("fast", "recovered"))
    assert isinstance(events[-1], EndEvent)
    assert len(waits) == 1


def test_stream_without_end_event_is_malformed(make_hub: Any, scripted: Any) -> None:
    from relay_core import Capability, Provider

    class Cut(Provider):
        capabilities = frozenset({Capability.CHAT, Capability.STREAM})

        async def stream(self, request: Request) -> Any:
            yield TextDelta("partial")

    class Plugin:
        @hookimpl
        def relay_register_providers(self, register: Any) -> None:
            register("cut", Cut)

    hub = make_hub("providers:\n  cut: {max_retries: 0}\n")
    hub.plugins.register(Plugin())
    with pytest.raises(MalformedResponse, match="before its end event"):
        list(hub.stream("cut/m", "x"))


def test_fallback_group_moves_on_and_records_the_route(
    make_hub: Any, scripted: Any, waits: list[float]
) -> None:
    hub = make_hub(CATALOG)
    scripted.script["flaky"] = [ProviderUnavailable("down", provider="scripted")] * 3
    response = hub.chat("resilient", "x")
    route = response.metadata["route"]
    assert route["member"] == "fast"
    assert route["strategy"] == "fallback"
    assert route["failed"] == [{"member": "flaky", "error": "ProviderUnavailable"}]


def test_fallback_does_not_hide_a_bad_request(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    scripted.script["flaky"] = [InvalidRequestError("bad", provider="scripted")]
    with pytest.raises(InvalidRequestError):
        hub.chat("resilient", "x")
    assert len(scripted.received) == 1


def test_fallback_raises_the_last_error_when_all_fail(
    make_hub: Any, scripted: Any, waits: list[float]
) -> None:
    hub = make_hub(CATALOG)
    scripted.script["flaky"] = [ProviderUnavailable("first", provider="scripted")] * 3
    scripted.script["one"] = [AuthenticationError("second", provider="scripted")]
    with pytest.raises(AuthenticationError, match="second"):
        hub.chat("resilient", "x")


def test_fallback_group_streams(make_hub: Any, scripted: Any, waits: list[float]) -> None:
    hub = make_hub(CATALOG)
    scripted.script["flaky"] = [ProviderUnavailable("down", provider="scripted")] * 3
    events = list(hub.stream("resilient", "s"))
    assert isinstance(events[-1], EndEvent)
    assert events[-1].response.metadata["alias"] == "fast"


def test_round_robin_rotates(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    members = [hub.chat("rotation", "x").metadata["route"]["member"] for _ in range(4)]
    assert members == ["fast", "priced", "fast", "priced"]


def test_get_refuses_a_group(make_hub: Any) -> None:
    with pytest.raises(InvalidRequestError, match="is a group"):
        make_hub(CATALOG).get("resilient")


def test_cost_from_catalog_price_and_profile(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    scripted.script["two"] = [
        Response(content="x", usage=Usage(1_000_000, 100_000, cached_input_tokens=200_000))
    ]
    cost = hub.chat("priced", "x").cost
    # 800k fresh at $2 + 200k cached at $0.50 + 100k out at $8, all halved by the profile.
    assert cost.source == "user_override"
    assert cost.input == pytest.approx((1.6 + 0.1) * 0.5)
    assert cost.output == pytest.approx(0.8 * 0.5)
    assert cost.amount == pytest.approx(1.25)


def test_cost_from_the_best_pricing_source(make_hub: Any) -> None:
    class Source:
        def __init__(self, name: str, tier: str, price: float | None) -> None:
            self.name, self.tier, self._price = name, tier, price

        def price(self, provider: str, model: str) -> ModelPrice | None:
            if self._price is None:
                return None
            return ModelPrice(input=self._price, output=self._price)

    class Plugin:
        @hookimpl
        def relay_register_pricing_sources(self, register: Any) -> None:
            register(Source("estimate", "estimated", 100.0))
            register(Source("snapshot", "snapshot", 1.0))
            register(Source("live", "live_api", None))

    hub = make_hub(CATALOG)
    hub.plugins.register(Plugin())
    cost = hub.chat("fast", "x").cost  # 10 in + 5 out tokens
    assert cost.source == "snapshot"
    assert cost.amount == pytest.approx(15 / 1_000_000)


def test_unknown_price_is_none_not_zero(make_hub: Any) -> None:
    cost = make_hub(CATALOG).chat("fast", "x").cost
    assert cost.amount is None
    assert cost.source == "unknown"


class Hooks:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.seen_by_guardrail: list[Request] = []

    @hookimpl
    def relay_redact(self, request: Request) -> Request:
        messages = [
            Message(m.role, m.text.replace("555-0100", "[PHONE]")) for m in request.messages
        ]
        return Request(messages=messages, model=request.model, custom_id=request.custom_id)

    @hookimpl
    def relay_guardrail_pre(self, request: Request) -> None:
        self.seen_by_guardrail.append(request)
        if "forbidden" in request.messages[-1].text:
            raise GuardrailViolation("no-forbidden", "the word 'forbidden' is not allowed")

    @hookimpl
    def relay_guardrail_post(self, request: Request, response: Response) -> None:
        if "leak" in response.text:
            raise GuardrailViolation("no-leak", "response leaks")

    @hookimpl
    def relay_audit(self, event: AuditEvent) -> None:
        self.events.append(event)


def test_redaction_guardrails_and_audit(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    hooks = Hooks()
    hub.plugins.register(hooks)

    response = hub.chat("fast", "call 555-0100", custom_id="c1")
    assert scripted.received[-1].messages[-1].text == "call [PHONE]"
    assert hooks.seen_by_guardrail[-1].model == "one"
    assert response.text == "echo: call [PHONE]"

    with pytest.raises(GuardrailViolation, match="no-forbidden"):
        hub.chat("fast", "forbidden word")
    with pytest.raises(GuardrailViolation, match="no-leak"):
        hub.chat("fast", "leak please")

    kinds = [(e.kind, e.custom_id) for e in hooks.events]
    assert kinds[0] == ("call.succeeded", "c1")
    first = hooks.events[0]
    assert first.alias == "fast"
    assert first.provider == "scripted"
    assert first.usage == Usage(10, 5)


def test_redactors_chain(make_hub: Any, scripted: Any) -> None:
    class Upper:
        @hookimpl
        def relay_redact(self, request: Request) -> Request:
            return Request(messages=[Message.user(request.messages[-1].text.upper())])

    class Suffix:
        @hookimpl
        def relay_redact(self, request: Request) -> Request:
            return Request(messages=[Message.user(request.messages[-1].text + "!")])

    hub = make_hub(CATALOG)
    hub.plugins.register(Upper())
    hub.plugins.register(Suffix())
    hub.chat("fast", "abc")
    assert scripted.received[-1].messages[-1].text in {"ABC!", "ABC!".upper()}
    assert scripted.received[-1].messages[-1].text.startswith("ABC")


def test_failed_calls_are_audited(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    hooks = Hooks()
    hub.plugins.register(hooks)
    scripted.script["one"] = [AuthenticationError("nope", provider="scripted")]
    with pytest.raises(AuthenticationError):
        hub.chat("fast", "x", custom_id="bad-1")
    event = hooks.events[-1]
    assert event.kind == "call.failed"
    assert event.custom_id == "bad-1"
    assert event.error is not None
    assert event.error.kind == "AuthenticationError"


def test_a_failing_audit_sink_does_not_fail_the_call(
    make_hub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        @hookimpl
        def relay_audit(self, event: AuditEvent) -> None:
            raise OSError("disk full")

    hub = make_hub(CATALOG)
    hub.plugins.register(Broken(), name="broken-sink")
    with caplog.at_level(logging.ERROR, logger="relay"):
        assert hub.chat("fast", "x").text == "echo: x"
    assert "broken-sink" in caplog.text
    assert "disk full" in caplog.text


def test_missing_api_key_names_the_variable_not_a_value(
    make_hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay_core import Capability, Provider

    class Keyed(Provider):
        capabilities = frozenset({Capability.CHAT})
        api_key_env = "KEYED_API_KEY"

        async def chat(self, request: Request) -> Response:
            assert self.settings.api_key is not None
            return Response(content=f"key ends {self.settings.api_key.reveal()[-2:]}")

    class Plugin:
        @hookimpl
        def relay_register_providers(self, register: Any) -> None:
            register("keyed", Keyed)
            register("keyed-ref", Keyed)

    hub = make_hub("providers:\n  keyed-ref:\n    api_key: $env.TEAM_KEY\n")
    hub.plugins.register(Plugin())
    monkeypatch.delenv("KEYED_API_KEY", raising=False)
    monkeypatch.delenv("TEAM_KEY", raising=False)
    with pytest.raises(CredentialError, match="set KEYED_API_KEY"):
        hub.chat("keyed/m", "x")
    with pytest.raises(CredentialError) as caught:
        hub.chat("keyed-ref/m", "x")
    assert caught.value.location == "relay.yaml:3:5"
    assert "TEAM_KEY" in str(caught.value)

    monkeypatch.setenv("TEAM_KEY", "sk-test-secret-value-0042")
    hub2 = make_hub("providers:\n  keyed-ref:\n    api_key: $env.TEAM_KEY\n")
    hub2.plugins.register(Plugin())
    assert hub2.chat("keyed-ref/m", "x").text == "key ends 42"
    adapter = hub2.get("keyed-ref/m").adapter
    assert "sk-test-secret-value-0042" not in repr(adapter.settings)


def test_context_managers_close_the_pool(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    with hub:
        hub.chat("fast", "x")
    # A closed hub reopens on the next call.
    assert hub.chat("fast", "again").text == "echo: again"


async def test_async_context_manager(make_hub: Any) -> None:
    async with make_hub(CATALOG) as hub:
        assert (await hub.achat("fast", "x")).text == "echo: x"


def test_a_sync_call_on_the_hubs_own_loop_fails_clearly(make_hub: Any) -> None:
    hub = make_hub(CATALOG)

    class Reentrant:
        @hookimpl
        def relay_guardrail_pre(self, request: Request) -> None:
            if request.messages[-1].text == "outer":
                hub.chat("fast", "inner")

    hub.plugins.register(Reentrant())
    with pytest.raises(RuntimeError, match="use the async form"):
        hub.chat("fast", "outer")


def test_leaving_a_sync_stream_early_closes_the_providers_stream() -> None:
    closed = threading.Event()

    class Endless(Provider):
        name = "endless"
        capabilities = frozenset({Capability.CHAT, Capability.STREAM})

        async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
            try:
                while True:
                    yield TextDelta("more ")
                    await asyncio.sleep(0)
            finally:
                closed.set()  # where an adapter's HTTP stream is released

    class Plugin:
        @hookimpl
        def relay_register_providers(self, register: Any) -> None:
            register("endless", Endless)

    with hub_for("models:\n  e: endless/x\n", Plugin()) as hub:
        for seen, _ in enumerate(hub.stream("e", "go"), start=1):
            if seen == 3:
                break
        assert closed.wait(5)
        # The hub's loop is free again: the next call works.
        assert sum(1 for _, _ in zip(range(2), hub.stream("e", "again"), strict=False)) == 2


def test_an_error_in_a_sync_stream_reaches_the_caller_as_itself(
    make_hub: Any, scripted: Any
) -> None:
    scripted.script["one"] = [RateLimitError("slow down", retry_after=1.0)] * 3
    hub = make_hub(CATALOG)
    with recorded_waits(), pytest.raises(RateLimitError, match="slow down"):
        list(hub.stream("fast", "hello"))


def test_built_adapters_are_those_a_call_needed(make_hub: Any) -> None:
    hub = make_hub()
    assert hub.built_adapters() == {}
    hub.chat("scripted/one", "hi")
    built = hub.built_adapters()
    assert list(built) == ["scripted"]
    assert built["scripted"] is hub.get("scripted/one").adapter


def test_a_response_schema_of_the_wrong_kind_is_a_clear_error(make_hub: Any) -> None:
    with pytest.raises(InvalidRequestError, match="response_schema must be a JSON Schema object"):
        make_hub(CATALOG).chat("fast", "x", response_schema=["not", "a", "schema"])


def test_an_unknown_call_option_is_named_with_the_nearest_one(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    with pytest.raises(
        InvalidRequestError, match=r"no option 'temprature' \(did you mean 'temperature'\?\)"
    ):
        hub.chat("fast", "x", temprature=0.2)
    # Retries are the catalog's, not a call's: named, with no misleading guess.
    with pytest.raises(InvalidRequestError, match=r"no option 'max_retries'$"):
        hub.chat("fast", "x", max_retries=0)
