"""The hub's public API for code that drives calls itself (tool loops, batch jobs, the
engine, servers, plugins): ``hub.resolve``, ``hub.pipeline``, ``hub.run_sync``."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from relay_core import AuditEvent, InvalidRequestError, Message, Request, hookimpl
from relay_core.hub import GroupHandle, ModelHandle

CATALOG = """\
models:
  fast: scripted/one
groups:
  both: {strategy: fallback, members: [fast]}
"""


class PhoneRedactor:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    @hookimpl
    def relay_redact(self, request: Request) -> Request:
        return Request(
            messages=[
                Message(m.role, m.text.replace("555-0100", "[PHONE]")) for m in request.messages
            ],
            model=request.model,
        )

    @hookimpl
    def relay_audit(self, event: AuditEvent) -> None:
        self.events.append(event)


def test_resolve_gives_a_model_or_a_group_handle(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    assert isinstance(hub.resolve("fast"), ModelHandle)
    assert isinstance(hub.resolve("both"), GroupHandle)
    assert hub.resolve("fast") is hub.resolve("fast")


async def test_a_pipeline_call_is_redacted_audited_and_routed(make_hub: Any, scripted: Any) -> None:
    hub = make_hub(CATALOG)
    hooks = PhoneRedactor()
    hub.plugins.register(hooks)
    options = hub.pipeline.options(job_id="job-1")
    request = Request(messages=[Message.user("call 555-0100")])
    response = await hub.pipeline.call(hub.resolve("both"), request, options)
    assert scripted.received[-1].messages[-1].text == "call [PHONE]"
    assert response.metadata["route"]["member"] == "fast"
    assert [(e.kind, e.job_id) for e in hooks.events] == [("call.succeeded", "job-1")]


def test_a_deadline_that_is_not_above_zero_is_refused(make_hub: Any) -> None:
    with pytest.raises(InvalidRequestError, match="deadline"):
        make_hub(CATALOG).pipeline.options(deadline=0)


def test_an_audit_view_is_redacted_and_a_failing_sink_is_only_logged(
    make_hub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        @hookimpl
        def relay_audit(self, event: AuditEvent) -> None:
            raise OSError("disk full")

    hub = make_hub(CATALOG)
    assert not hub.pipeline.audited
    hooks = PhoneRedactor()
    hub.plugins.register(hooks)
    hub.plugins.register(Broken(), name="broken-sink")
    assert hub.pipeline.audited
    seen = hub.pipeline.audit_view(Request(messages=[Message.user("555-0100")]))
    assert seen.messages[0].text == "[PHONE]"
    with caplog.at_level(logging.ERROR, logger="relay"):
        hub.pipeline.audit(AuditEvent(kind="custom.step", at=time.time(), request=seen))
    assert [e.kind for e in hooks.events] == ["custom.step"]
    assert "disk full" in caplog.text


def test_audit_job_stamps_the_job(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    hooks = PhoneRedactor()
    hub.plugins.register(hooks)
    hub.pipeline.audit_job("job.started", "job-7", requests=3)
    (event,) = hooks.events
    assert (event.kind, event.job_id, event.metadata) == ("job.started", "job-7", {"requests": 3})


def test_run_sync_runs_a_coroutine_on_the_hubs_loop(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    request = Request(messages=[Message.user("hi")])
    response = hub.run_sync(hub.pipeline.call(hub.resolve("fast"), request))
    assert response.text == "echo: hi"
    assert hub.response_cache is None  # no call asked for the cache
