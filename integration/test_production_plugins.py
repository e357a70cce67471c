"""The four production plugins together — redaction, guardrails, audit and tracing —
registered in every order, in front of a group and a batch job: what leaves the process,
what is recorded and what is traced holds no PII; the caller gets its answers back whole;
a refused request fails alone."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import relay_audit
import relay_guardrails
import relay_mock
import relay_otel
import relay_redact
from relay_core import BatchRequest, Hub, RelayClient, parse_catalog

CATALOG = """\
providers:
  mock:
    max_retries: 0
    options:
      faults:
        down: {{kind: server_error}}
models:
  primary: mock/down
  fast: mock/echo
groups:
  resilient: {{strategy: fallback, members: [primary, fast]}}
plugins:
  redact: {{mode: placeholder}}
  guardrails:
    blocked_patterns:
      - {{name: no-passwords, pattern: "(?i)password\\\\s*[:=]", applies_to: input}}
  audit:
    sinks: [{{type: jsonl, path: "{audit}"}}]
    include_content: true
  otel:
    include_content: true
"""

PII = {
    "r0": ("Write to alice.martin@example.com about the invoice.", "alice.martin@example.com"),
    "r1": ("Call me on +44 20 7946 0958 tomorrow.", "+44 20 7946 0958"),
    "r2": ("Card 4111 1111 1111 1111 was charged twice.", "4111 1111 1111 1111"),
    "r3": ("Wire it to GB82 WEST 1234 5698 7654 32 please.", "GB82 WEST 1234 5698 7654 32"),
    "r4": ("Server 203.0.113.42 keeps timing out.", "203.0.113.42"),
}
REFUSED = ("r5", "My password: hunter2, and bob@example.org wants in.")
PLUGINS = {
    "redact": relay_redact,
    "guardrails": relay_guardrails,
    "audit": relay_audit,
    "otel": relay_otel,
}
ORDERS = list(itertools.permutations(PLUGINS))


def _hub(tmp_path: Path, order: tuple[str, ...], exporter: InMemorySpanExporter) -> Hub:
    catalog = parse_catalog(CATALOG.format(audit=tmp_path / "audit.jsonl"))
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    catalog.plugins["otel"]["tracer_provider"] = tracing
    hub = Hub(catalog, autoload=False)
    hub.plugins.register(relay_mock, name="mock")
    for name in order:
        hub.plugins.register(PLUGINS[name], name=name)
    return hub


def _span_text(exporter: InMemorySpanExporter) -> str:
    spans = exporter.get_finished_spans()
    assert spans, "no spans were recorded"
    return json.dumps(
        [
            {
                "name": s.name,
                "attributes": dict(s.attributes or {}),
                "events": [dict(e.attributes or {}) for e in s.events],
            }
            for s in spans
        ],
        default=str,
    )


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_a_batch_with_pii_through_every_plugin(tmp_path: Path, order: tuple[str, ...]) -> None:
    exporter = InMemorySpanExporter()
    hub = _hub(tmp_path, order, exporter)
    requests = [BatchRequest(id=cid, prompt=text) for cid, (text, _) in PII.items()]
    requests.append(BatchRequest(id=REFUSED[0], prompt=REFUSED[1]))
    with RelayClient(tmp_path / "ws", hub=hub) as client:
        client.submit_batch(requests, job_id="pii", model="resilient", mode="engine")
        items = {item.custom_id: item for item in client.iter_results("pii")}

    # The caller gets every answer whole: the mock echoed placeholders, restored here.
    for cid, (text, _) in PII.items():
        response = items[cid].response
        assert response is not None, items[cid].error
        assert response.text == text
        assert response.metadata["route"]["member"] == "fast"
    refused = items[REFUSED[0]]
    assert refused.response is None
    assert refused.error is not None
    assert refused.error.kind == "GuardrailViolation"
    assert "no-passwords" in refused.error.message

    # Nothing recorded or traced holds the PII, and the audit chain is intact.
    audit_text = (tmp_path / "audit.jsonl").read_text()
    spans_text = _span_text(exporter)
    for _, value in [*PII.values(), ("", "bob@example.org")]:
        assert value not in audit_text
        assert value not in spans_text
    records = [json.loads(line) for line in audit_text.splitlines()]
    # Per answered request: the failed primary and the answering member; the refused
    # request: primary refused (no try_next for a pattern), nothing else.
    kinds = [(r["kind"], r["alias"]) for r in records]
    assert kinds.count(("call.succeeded", "fast")) == len(PII)
    assert "<EMAIL_1>" in audit_text  # the content was recorded, redacted
    assert "<EMAIL_1>" in spans_text  # and traced, redacted
    assert relay_audit.verify(tmp_path / "audit.jsonl").ok
    hub.close()


def test_a_streamed_call_through_every_plugin(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    hub = _hub(tmp_path, tuple(PLUGINS), exporter)
    text, value = PII["r0"]
    events = list(hub.stream("resilient", text))
    streamed = "".join(getattr(e, "text", "") for e in events[:-1])
    assert streamed == text
    assert events[-1].response.text == text
    assert value not in (tmp_path / "audit.jsonl").read_text()
    assert value not in _span_text(exporter)
    hub.close()


def test_a_tool_loop_through_every_plugin(tmp_path: Path) -> None:
    """The tool gets the real values; the model, the audit file and the spans see only
    placeholders, in the model calls and in the tool runs alike."""
    from relay_core import FunctionToolset

    sent: list[str] = []

    def send_mail(to: str, body: str) -> str:
        """Send an e-mail."""
        sent.append(to)
        return f"queued for {to}"

    exporter = InMemorySpanExporter()
    hub = _hub(tmp_path, tuple(PLUGINS), exporter)
    text, address = PII["r0"]
    # The model knows the address only by its placeholder, and calls the tool with it.
    scripted = [{"id": "c1", "name": "send_mail", "arguments": {"to": "<EMAIL_1>", "body": "Hi"}}]

    answer = hub.run_tools(
        "resilient",
        text,
        toolsets=[FunctionToolset("mail", send_mail)],
        provider_kwargs={"mock": {"tool_calls": scripted}},
    )

    assert sent == [address]  # restored before the tool ran
    [step] = answer.steps
    assert step.runs[0].result.content == f"queued for {address}"
    assert answer.metadata["tool_loop"]["stopped"] == "answer"
    audit_text = (tmp_path / "audit.jsonl").read_text()
    kinds = [json.loads(line)["kind"] for line in audit_text.splitlines()]
    assert "tool.succeeded" in kinds
    assert "tool_loop.finished" in kinds
    assert address not in audit_text
    assert address not in _span_text(exporter)
    assert relay_audit.verify(tmp_path / "audit.jsonl").ok
    hub.close()
