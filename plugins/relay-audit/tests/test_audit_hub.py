"""What lands in the audit trail for calls, streams, groups, cached answers and batch
jobs, through a real hub in front of relay-mock."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from audit_support import MakeHub, read_jsonl

import relay_audit
import relay_mock
from relay_audit import verify
from relay_core import BatchRequest, ProviderUnavailable, RelayClient, Response, hookimpl
from relay_core.testing import hub_for

KEY = "sk-proj-Zx81Qw7Rt2Yu6Io0Pa4Sd9Fg3Hj5Kl"


def catalog(path: Path, **settings: str) -> str:
    extra = "".join(f"    {name}: {value}\n" for name, value in settings.items())
    return f"""\
providers:
  mock:
    max_retries: 0
    options:
      faults:
        down: {{kind: server_error}}
models:
  fast: mock/echo
  broken: mock/down
groups:
  resilient: {{strategy: fallback, members: [broken, fast]}}
plugins:
  audit:
    sinks: [{{type: jsonl, path: {path}}}]
{extra}"""


def test_a_call_is_recorded_with_who_what_and_how_much(tmp_path: Path, make_hub: MakeHub) -> None:
    path = tmp_path / "audit.jsonl"
    hub = make_hub(catalog(path))
    response = hub.chat("fast", "2+2?", tags=["eval"], metadata={"caller": "team-a"})
    [record] = read_jsonl(path)
    assert record["schema"] == relay_audit.SCHEMA_VERSION
    assert (record["kind"], record["outcome"]) == ("call.succeeded", "ok")
    assert (record["alias"], record["provider"], record["model"]) == ("fast", "mock", "echo")
    assert (record["caller"], record["tags"]) == ("team-a", ["eval"])
    assert record["response_id"] == response.id
    assert record["usage"]["input_tokens"] == response.usage.input_tokens
    assert record["usage"]["total_tokens"] == response.usage.total_tokens
    assert record["cost"] == {
        "amount": response.cost.amount,
        "currency": "USD",
        "source": response.cost.source,
    }
    assert record["latency"] == response.latency
    at = datetime.fromisoformat(record["at"].replace("Z", "+00:00"))
    assert at.timestamp() == pytest.approx(record["at_epoch"], abs=1e-6)
    assert record["error"] is None
    assert "request" not in record
    assert "response" not in record  # content is off unless asked for
    assert verify(path).ok


async def test_async_calls_and_streams_are_recorded(tmp_path: Path, make_hub: MakeHub) -> None:
    path = tmp_path / "audit.jsonl"
    hub = make_hub(catalog(path))
    await hub.achat("fast", "one")
    events = [event async for event in hub.astream("fast", "two")]
    assert events[-1].response.text == "two"
    assert [r["kind"] for r in read_jsonl(path)] == ["call.succeeded", "stream.succeeded"]
    assert verify(path).events == 2


def test_a_group_records_one_event_per_member_tried(tmp_path: Path, make_hub: MakeHub) -> None:
    path = tmp_path / "audit.jsonl"
    hub = make_hub(catalog(path))
    assert hub.chat("resilient", "still there?").text == "still there?"
    list(hub.stream("resilient", "streamed"))
    records = read_jsonl(path)
    assert [(r["alias"], r["kind"], r["outcome"]) for r in records] == [
        ("broken", "call.failed", "error"),
        ("fast", "call.succeeded", "ok"),
        ("broken", "stream.failed", "error"),
        ("fast", "stream.succeeded", "ok"),
    ]
    assert records[0]["error"]["kind"] == "ProviderUnavailable"
    assert records[0]["error"]["status_code"] == 500
    assert records[0]["usage"] is None


def test_a_failed_call_is_recorded_and_still_raised(tmp_path: Path, make_hub: MakeHub) -> None:
    path = tmp_path / "audit.jsonl"
    hub = make_hub(catalog(path))
    with pytest.raises(ProviderUnavailable):
        hub.chat("broken", "x")
    [record] = read_jsonl(path)
    assert (record["kind"], record["error"]["kind"]) == ("call.failed", "ProviderUnavailable")
    assert record["error"]["retryable"] is True


class DictCache:
    """A response cache in a dict: enough to see a cached answer audited."""

    def __init__(self) -> None:
        self.answers: dict[str, Response] = {}

    async def get(self, key: str) -> Response | None:
        return self.answers.get(key)

    async def put(self, key: str, response: Response) -> None:
        self.answers[key] = response

    async def aclose(self) -> None:
        pass


class CachePlugin:
    @hookimpl
    def relay_register_response_caches(self, register: Any) -> None:
        register("dict-cache", lambda settings: DictCache())


def test_a_cached_answer_is_recorded_as_cached(tmp_path: Path, make_hub: MakeHub) -> None:
    path = tmp_path / "audit.jsonl"
    hub = make_hub(catalog(path), CachePlugin())
    hub.chat("fast", "again", cache=True)
    hub.chat("fast", "again", cache=True)
    first, second = read_jsonl(path)
    assert (first["outcome"], second["outcome"]) == ("ok", "cached")
    assert second["kind"] == "call.cached"
    assert second["cost"]["amount"] == 0.0


def test_content_is_recorded_only_when_asked(tmp_path: Path, make_hub: MakeHub) -> None:
    path = tmp_path / "audit.jsonl"
    hub = make_hub(catalog(path, include_content="true"))
    hub.chat("fast", "the plan", system="Be brief.")
    [record] = read_jsonl(path)
    assert record["request"] == {
        "system": "Be brief.",
        "messages": [{"role": "user", "text": "the plan"}],
    }
    assert record["response"] == {"text": "the plan", "finish_reason": "stop", "tool_calls": []}


def test_a_tool_loop_is_recorded_round_by_round(tmp_path: Path, make_hub: MakeHub) -> None:
    from relay_core import FunctionToolset

    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: 21 C"

    path = tmp_path / "audit.jsonl"
    hub = make_hub(catalog(path, include_content="true"), PartsRedactor())
    scripted = [{"id": "c1", "name": "lookup", "arguments": {"city": "alice@example.com"}}]
    hub.run_tools(
        "fast",
        "Weather?",
        toolsets=[FunctionToolset("weather", lookup)],
        provider_kwargs={"mock": {"tool_calls": scripted}},
    )
    records = read_jsonl(path)
    assert [r["kind"] for r in records] == [
        "call.succeeded",
        "tool.succeeded",
        "call.succeeded",
        "tool_loop.finished",
    ]
    tool = records[1]
    assert tool["metadata"]["toolset"] == "weather"
    assert tool["metadata"]["step"] == 1
    # The tool's arguments and result are content: recorded as the redactor left them.
    assert tool["tool"] == {"arguments": {"city": "<EMAIL>"}, "result": "<EMAIL>: 21 C"}
    assert records[2]["metadata"]["step"] == 2
    assert verify(path).ok


class PartsRedactor:
    """A redactor that keeps tool calls and results as such (relay-redact does too)."""

    @hookimpl
    def relay_redact(self, request: Any) -> Any:
        import json

        import attrs

        from relay_core import TextPart, ToolCallPart, ToolResultPart

        def hide(text: str) -> str:
            return text.replace("alice@example.com", "<EMAIL>")

        def part(value: Any) -> Any:
            if isinstance(value, TextPart):
                return attrs.evolve(value, text=hide(value.text))
            if isinstance(value, ToolResultPart):
                return attrs.evolve(value, content=hide(value.content))
            if isinstance(value, ToolCallPart):
                arguments = json.loads(hide(json.dumps(value.arguments)))
                return attrs.evolve(value, arguments=arguments)
            return value

        messages = tuple(
            attrs.evolve(m, content=tuple(part(p) for p in m.content)) for m in request.messages
        )
        return attrs.evolve(request, messages=messages)


class Redactor:
    """Stands in for relay-redact: the audit must see only what it returns."""

    @hookimpl
    def relay_redact(self, request: Any) -> Any:
        import attrs

        messages = tuple(
            attrs.evolve(m, content=m.text.replace("alice@example.com", "<EMAIL>"))
            for m in request.messages
        )
        return attrs.evolve(request, messages=messages)


def test_recorded_content_is_the_redacted_content(tmp_path: Path, make_hub: MakeHub) -> None:
    path = tmp_path / "audit.jsonl"
    hub = make_hub(catalog(path, include_content="true"), Redactor())
    hub.chat("fast", "write to alice@example.com")
    text = path.read_text()
    assert "alice@example.com" not in text
    assert read_jsonl(path)[0]["request"]["messages"][0]["text"] == "write to <EMAIL>"


def test_secrets_are_never_written(tmp_path: Path, make_hub: MakeHub) -> None:
    path = tmp_path / "audit.jsonl"
    db = tmp_path / "audit.db"
    text = catalog(path, include_content="true").replace(
        "sinks: [", f"sinks: [{{type: sqlite, path: {db}}}, "
    )
    hub = make_hub(text)
    hub.chat("fast", f"my key is {KEY}", metadata={"caller": "ci", "token": KEY, "nested": [KEY]})
    with pytest.raises(ProviderUnavailable):
        hub.chat(
            "fast",
            "x",
            provider_kwargs={"mock": {"fault": {"kind": "server_error"}, "reply": f"leaked {KEY}"}},
        )
    records = read_jsonl(path)
    assert [r["kind"] for r in records] == ["call.succeeded", "call.failed"]
    assert records[0]["metadata"] == {"caller": "ci", "token": "***", "nested": ["***"]}
    assert records[0]["request"]["messages"][0]["text"] == "my key is ***"
    assert KEY not in path.read_text()
    assert KEY.encode() not in db.read_bytes()
    assert verify(path).ok


def test_an_engine_batch_job_records_each_request_with_its_job(
    tmp_path: Path, waits: list[float]
) -> None:
    path = tmp_path / "audit.jsonl"
    hub = hub_for(catalog(path), relay_mock, relay_audit)
    requests = [BatchRequest(id=f"r{i}", prompt=f"question {i}") for i in range(6)]
    requests.append(
        BatchRequest(
            id="bad",
            prompt="x",
            provider_args={"mock": {"fault": {"kind": "server_error"}}},
        )
    )
    with hub, RelayClient(tmp_path / "ws", hub=hub) as client:
        job = client.submit_batch(requests, job_id="eval-1", model="resilient", mode="engine")
        assert (job.counts.completed, job.counts.failed) == (6, 1)
    records = read_jsonl(path)
    assert {r["job_id"] for r in records} == {"eval-1"}
    answered = {r["custom_id"] for r in records if r["kind"] == "call.succeeded"}
    assert answered == {f"r{i}" for i in range(6)}
    failed = [r for r in records if r["custom_id"] == "bad"]
    assert {r["alias"] for r in failed} == {"broken", "fast"}  # every member tried
    assert {r["outcome"] for r in failed} == {"error"}
    assert verify(path).ok


def test_provider_batch_events_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    text = f"""\
providers:
  mock:
    options: {{batch_duration: 0, state_dir: {tmp_path / "state"}}}
  slow:
    plugin: mock
    options: {{batch_duration: 600, state_dir: {tmp_path / "state"}}}
models:
  fast: mock/echo
  patient: slow/echo
plugins:
  audit:
    sinks: [{{type: jsonl, path: {path}}}]
"""
    hub = hub_for(text, relay_mock, relay_audit)
    requests = [BatchRequest(id=f"r{i}", prompt=f"q {i}") for i in range(3)]
    with hub, RelayClient(tmp_path / "ws", hub=hub) as client:
        client.submit_batch(requests, job_id="done", model="fast", mode="batch")
        client.retrieve_batch_results("done")
        client.submit_batch(requests, job_id="stopped", model="patient", mode="batch")
        client.cancel_batch("stopped")
    records = read_jsonl(path)
    assert [(r["kind"], r["job_id"], r["outcome"]) for r in records] == [
        ("batch.submitted", "done", "ok"),
        ("batch.retrieved", "done", "ok"),
        ("batch.submitted", "stopped", "ok"),
        ("job.cancel_requested", "stopped", "ok"),
        ("batch.cancelled", "stopped", "ok"),
    ]
    assert records[0]["provider"] == "mock"
    assert records[0]["metadata"]["batch_id"]
    assert verify(path).ok


def test_fields_keep_only_what_is_chosen(tmp_path: Path, make_hub: MakeHub) -> None:
    path = tmp_path / "audit.jsonl"
    hub = make_hub(catalog(path, fields="[alias, cost]"))
    hub.chat("fast", "x", metadata={"caller": "someone"})
    [record] = read_jsonl(path)
    assert set(record) == {
        "schema",
        "kind",
        "outcome",
        "at",
        "at_epoch",
        "alias",
        "cost",
        "prev",
        "hash",
    }


def test_a_hub_without_audit_settings_records_nothing(tmp_path: Path) -> None:
    with hub_for("", relay_mock, relay_audit) as hub:
        hub.chat("mock/echo", "x")
        assert relay_audit.audit_plugin(hub) is None
