"""relay-redact through a real hub on relay-mock, whose echo model answers with the text
it received: what the provider saw is in ``response.raw``, what the caller gets is the
restored response."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from relay_core import (
    AuditEvent,
    BatchRequest,
    ConfigError,
    CredentialError,
    EndEvent,
    Hub,
    RelayClient,
    Request,
    TextDelta,
    Tool,
    hookimpl,
)

PROMPT = "Email jane@example.org, card 4111 1111 1111 1111, from 203.0.113.45."
REDACTED = "Email <EMAIL_1>, card <CARD_1>, from <IP_1>."

CATALOG = """\
providers:
  mock:
    max_retries: 0
    options:
      faults:
        down: {kind: server_error}
models:
  echo: mock/echo
  thinker: mock/think
  down: mock/down
groups:
  resilient: {strategy: fallback, members: [down, echo]}
"""


def provider_text(raw: Any) -> str:
    return "".join(b.get("text", "") for b in raw["content"] if b["type"] == "text")


class Sink:
    """A tiny audit sink keeping every event."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    @hookimpl
    def relay_audit(self, event: AuditEvent) -> None:
        self.events.append(event)

    def text(self) -> str:
        """Every string the events hold: where personal data could be. Numbers are left
        out: a timestamp or a latency may hold any digits (``7946`` in ``...17946.2``)."""
        from relay_core.serialize import unstructure

        found: list[str] = []

        def collect(value: Any) -> None:
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, dict):
                for key, item in value.items():
                    collect(key)
                    collect(item)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    collect(item)

        for event in self.events:
            collect([unstructure(event), unstructure(event.request), unstructure(event.response)])
        return "\n".join(found)


def test_the_provider_sees_placeholders_and_the_caller_the_originals(
    make_hub: Callable[..., Hub],
) -> None:
    hub = make_hub(CATALOG)
    response = hub.chat("echo", PROMPT)
    assert provider_text(response.raw) == REDACTED
    assert response.text == PROMPT


@pytest.mark.parametrize("name", ["rsa_pkcs8.pem", "openssh_ed25519", "rsa_encrypted.pem"])
def test_a_private_key_never_reaches_the_provider_and_comes_back_to_the_caller(
    make_hub: Callable[..., Hub], name: str
) -> None:
    # Issue 21: an `openssl genrsa` key pasted in a prompt reached the provider line by
    # line. Now no line of it is sent, and the echo of its placeholder is restored.
    key = (Path(__file__).parent / "data" / "keys" / name).read_text().strip()
    prompt = f"Is this key valid?\n{key}\nIt is for jane@example.org."
    stream_hub = make_hub(CATALOG)
    response = stream_hub.chat("echo", prompt)
    sent = json.dumps(response.raw)
    redacted = "Is this key valid?\n<PRIVATE_KEY_1>\nIt is for <EMAIL_1>."
    assert provider_text(response.raw) == redacted
    assert not [line for line in key.splitlines()[1:-1] if line in sent]
    assert response.text == prompt
    streamed = "".join(
        e.text for e in stream_hub.stream("echo", prompt) if isinstance(e, TextDelta)
    )
    assert streamed == prompt


async def test_async_calls_are_redacted_and_restored(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(CATALOG)
    response = await hub.achat("thinker", PROMPT, system="Reply to ops@example.org")
    # The system prompt is redacted first, so its address is <EMAIL_1>.
    assert provider_text(response.raw) == REDACTED.replace("EMAIL_1", "EMAIL_2")
    assert "ops@example.org" not in json.dumps(response.raw)
    assert response.text == PROMPT
    assert "jane@example.org" in response.thinking  # thinking restored too


def test_a_stream_is_restored_delta_by_delta(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(CATALOG)
    events = list(hub.stream("echo", PROMPT))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(deltas) == PROMPT
    assert not any("<" in d for d in deltas)
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.text == PROMPT
    assert provider_text(end.response.raw) == REDACTED


async def test_a_scripted_reply_splitting_a_placeholder_is_restored_whole(
    make_hub: Callable[..., Hub],
) -> None:
    # The model writes the placeholder glued to other words: "to:<EMAIL_1>," is one
    # delta; the redactor's own map decides what is restored.
    hub = make_hub(CATALOG)
    reply = {"mock": {"reply": "Reply to:<EMAIL_1>, cc <EMAIL_1>"}}
    events = [e async for e in hub.astream("echo", PROMPT, provider_kwargs=reply)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Reply to:jane@example.org, cc jane@example.org"


def test_tool_call_arguments_are_restored_and_history_is_redacted(
    make_hub: Callable[..., Hub],
) -> None:
    seen: list[Request] = []

    class Spy:
        @hookimpl
        def relay_guardrail_pre(self, request: Request) -> None:
            seen.append(request)

    hub = make_hub(CATALOG, Spy())
    send = Tool("send_mail", "Send an e-mail", {"type": "object", "properties": {}})
    script = {"mock": {"tool_calls": [{"name": "send_mail", "arguments": {"to": "<EMAIL_1>"}}]}}
    first = hub.chat("echo", "mail jane@example.org", tools=[send], provider_kwargs=script)
    assert first.tool_calls[0].arguments == {"to": "jane@example.org"}
    from relay_core import Message, ToolResultPart

    follow = [
        Message.user("mail jane@example.org"),
        first.to_message(),
        Message.tool(ToolResultPart(first.tool_calls[0].id, "delivered to jane@example.org")),
    ]
    hub.chat("echo", follow, tools=[send])
    assert "jane@example.org" not in repr(seen[-1].messages)
    assert seen[-1].messages[1].tool_calls[0].arguments == {"to": "<EMAIL_1>"}


def test_a_fallback_group_redacts_for_every_member(make_hub: Callable[..., Hub]) -> None:
    sink = Sink()
    hub = make_hub(CATALOG, sink)
    response = hub.chat("resilient", PROMPT)
    assert response.text == PROMPT
    assert response.metadata["route"]["member"] == "echo"
    assert [e.kind for e in sink.events] == ["call.failed", "call.succeeded"]
    assert "jane@example.org" not in sink.text()
    assert "4111" not in sink.text()


def test_audit_sees_only_redacted_content_in_chat_and_stream(
    make_hub: Callable[..., Hub],
) -> None:
    sink = Sink()
    hub = make_hub(CATALOG, sink)
    hub.chat("echo", PROMPT, metadata={"caller": "team-a"})
    list(hub.stream("echo", PROMPT))
    assert [e.kind for e in sink.events] == ["call.succeeded", "stream.succeeded"]
    for event in sink.events:
        assert event.request is not None
        assert event.response is not None
        assert event.request.messages[-1].text == REDACTED
        assert event.response.text == REDACTED
    dumped = sink.text()
    for value in ("jane@example.org", "4111", "203.0.113.45"):
        assert value not in dumped


def test_an_engine_batch_job_is_redacted_audited_clean_and_restored(
    make_hub: Callable[..., Hub], tmp_path: Path
) -> None:
    sink = Sink()
    hub = make_hub(CATALOG, sink)
    requests = [
        BatchRequest(id=f"r{i}", prompt=f"Customer {i}: c{i}@example.org, +44 20 7946 09{i:02d}")
        for i in range(6)
    ]
    with RelayClient(tmp_path / "ws", hub=hub) as client:
        client.submit_batch(requests, job_id="pii", model="resilient", mode="engine")
        items = list(client.iter_results("pii"))
    assert [item.response.text for item in items if item.response] == [
        f"Customer {i}: c{i}@example.org, +44 20 7946 09{i:02d}" for i in range(6)
    ]
    calls = [e for e in sink.events if e.kind == "call.succeeded"]
    assert len(calls) == 6
    assert {e.job_id for e in calls} == {"pii"}
    text = sink.text()
    assert "Customer 5: <EMAIL_1>, <PHONE_1>" in text  # the content is searched
    assert "example.org" not in text
    assert "7946" not in text


def test_structured_answers_are_parsed_from_the_restored_text(
    make_hub: Callable[..., Hub],
) -> None:
    @attrs.frozen
    class Contact:
        email: str

    hub = make_hub(CATALOG)
    reply = {"mock": {"reply": '{"email": "<EMAIL_1>"}'}}
    response = hub.chat("echo", "jane@example.org", response_schema=Contact, provider_kwargs=reply)
    assert response.parsed == Contact("jane@example.org")


def test_the_catalog_configures_mode_entities_and_allow_list(
    make_hub: Callable[..., Hub],
) -> None:
    hub = make_hub(
        CATALOG
        + """\
plugins:
  redact:
    mode: mask
    entities: [email, card]
    allow: [support@acme.example, {pattern: '.*@partner\\.example'}]
"""
    )
    text = "jane@example.org a@partner.example support@acme.example 4111111111111111 10.0.0.1"
    response = hub.chat("echo", text)
    assert response.text == "[EMAIL] a@partner.example support@acme.example [CARD] 10.0.0.1"


def test_hash_mode_takes_its_salt_from_a_credential_reference(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDACT_SALT", "pepper-for-tests")
    catalog = CATALOG + "plugins:\n  redact: {mode: hash, salt: $env.REDACT_SALT}\n"
    first = make_hub(catalog).chat("echo", "jane@example.org").text
    second = make_hub(catalog).chat("echo", "jane@example.org").text
    assert first == second
    assert "jane" not in first
    import hashlib
    import hmac

    digest = hmac.new(b"pepper-for-tests", b"jane@example.org", hashlib.sha256).hexdigest()
    assert first == f"<EMAIL:{digest[:8]}>"


def test_a_missing_salt_is_a_credential_error_that_shows_no_value(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDACT_MISSING", raising=False)
    hub = make_hub(CATALOG + "plugins:\n  redact: {mode: hash, salt: $env.REDACT_MISSING}\n")
    with pytest.raises(CredentialError, match="REDACT_MISSING") as caught:
        hub.chat("echo", "x")
    assert caught.value.line == 14


@pytest.mark.parametrize(
    ("settings", "message", "line", "column"),
    [
        ("{mode: scramble}", "mode must be one of mask, hash, placeholder", 14, 12),
        ("{entities: [EMAIL, PASSPORT]}", "unknown entity 'PASSPORT'", 14, 30),
        ("{allow: [{pattern: '(unclosed'}]}", "not a valid regular expression", 14, 21),
        ("{salt: sk-proj-abcdefghijklmnop1234}", "not inline values", 14, 12),
        ("{mask: stars}", "unknown field 'mask'; expected one of allow", 14, 12),
        ("{max_maps: 0}", "max_maps must be a whole number", 14, 12),
    ],
)
def test_bad_settings_point_at_their_line_and_column(
    make_hub: Callable[..., Hub], settings: str, message: str, line: int, column: int
) -> None:
    hub = make_hub(CATALOG + f"plugins:\n  redact: {settings}\n")
    with pytest.raises(ConfigError, match=message) as caught:
        hub.chat("echo", "x")
    assert (caught.value.file, caught.value.line, caught.value.column) == (
        "relay.yaml",
        line,
        column,
    )
    assert "abcdefghijklmnop" not in str(caught.value)


def test_enabled_false_turns_the_plugin_off(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(CATALOG + "plugins:\n  redact: {enabled: false}\n")
    assert provider_text(hub.chat("echo", PROMPT).raw) == PROMPT


def test_embedding_inputs_are_redacted_before_the_provider_and_the_audit_see_them(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay_mock._provider import MockProvider

    sent: list[tuple[str, ...]] = []
    embed = MockProvider.embed

    async def spying(self: MockProvider, request: Any) -> Any:
        sent.append(request.inputs)
        return await embed(self, request)

    monkeypatch.setattr(MockProvider, "embed", spying)
    sink = Sink()
    hub = make_hub(CATALOG, sink)
    answer = hub.embed("mock/embed", [PROMPT, "nothing to hide"])
    assert sent == [(REDACTED, "nothing to hide")]
    assert len(answer.vectors) == 2
    # The same text redacted gives the same vector: no original reached the provider.
    assert answer.vectors[0] == hub.embed("mock/embed", REDACTED).vectors[0]
    [event, _] = sink.events
    assert event.kind == "embed.succeeded"
    assert event.request is not None
    assert [m.text for m in event.request.messages] == [REDACTED, "nothing to hide"]
