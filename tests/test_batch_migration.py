"""What users of other batch clients write on day one works in Relay: a bare model name
beside ``provider=``, and the jobs ``list_jobs`` returns used as job ids."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay_core import BatchInputError, BatchRequest, RelayClient, Request
from relay_core.testing import hub_for
from relay_core.types import Message

CATALOG = """\
models:
  chat: scripted/s-1
  other: elsewhere/e-1
groups:
  both: {strategy: fallback, members: [chat, other]}
"""


@pytest.fixture
def relay(tmp_path: Path, scripted: Any) -> Iterator[RelayClient]:
    hub = hub_for(CATALOG)
    hub.plugins.register(scripted, name="scripted")
    with RelayClient(tmp_path / "ws", hub=hub) as client:
        yield client
    hub.close()


def _models(relay: RelayClient, job_id: str) -> list[str]:
    return [item.response.model for item in relay.get_results(job_id) if item.response is not None]


def test_a_bare_model_with_provider_is_that_providers_model(relay: RelayClient) -> None:
    bare = BatchRequest(id="a", prompt="hi", model="s-2", provider="scripted")
    full = BatchRequest(id="b", prompt="hi", model="scripted/s-2")
    job = relay.submit_batch([bare, full], job_id="j", mode="engine")
    assert job.status == "completed"
    assert _models(relay, "j") == ["s-2", "s-2"]
    assert (
        relay.workspace.job_dir("j")
        .joinpath("requests.jsonl")
        .read_text()
        .count('"model":"scripted/s-2"')
        == 2
    )


def test_the_jobs_provider_qualifies_each_requests_bare_model(relay: RelayClient) -> None:
    # As the seed batch client writes it: the provider on the job, bare names per request.
    requests = [
        BatchRequest(id="a", prompt="hi", model="s-2"),
        Request(messages=[Message.user("hi")], model="s-3", custom_id="b"),
        BatchRequest(id="c", prompt="hi", model="chat"),  # an alias of that provider
        BatchRequest(id="d", prompt="hi"),  # the job's default model, bare too
    ]
    job = relay.submit_batch(requests, job_id="j", provider="scripted", model="s-4", mode="engine")
    assert job.status == "completed"
    assert _models(relay, "j") == ["s-2", "s-3", "s-1", "s-4"]


def test_a_jsonl_line_may_name_its_provider(relay: RelayClient, tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text('{"id": "a", "prompt": "hi", "model": "s-9", "provider": "scripted"}\n')
    relay.submit_batch(path, job_id="j", mode="engine")
    assert _models(relay, "j") == ["s-9"]


@pytest.mark.parametrize(
    ("model", "provider", "says"),
    [
        ("openai/gpt-4.1-mini", "scripted", "names provider 'openai', not provider 'scripted'"),
        ("other", "scripted", "'other' is served by 'elsewhere' (elsewhere/e-1)"),
        ("both", "scripted", "'both' is a group"),
    ],
)
def test_a_model_another_provider_serves_is_refused_by_name(
    relay: RelayClient, model: str, provider: str, says: str
) -> None:
    requests = [
        BatchRequest(id="ok", prompt="hi", model="chat"),
        BatchRequest(id="bad", prompt="hi", model=model, provider=provider),
    ]
    with pytest.raises(BatchInputError, match=re.escape(says)) as caught:
        relay.submit_batch(requests, job_id="j", mode="engine")
    assert caught.value.custom_id == "bad"
    assert caught.value.index == 1
    assert relay.list_jobs() == []  # nothing was submitted


def test_a_request_may_not_leave_the_jobs_provider(relay: RelayClient) -> None:
    request = BatchRequest(id="a", prompt="hi", model="e-1", provider="elsewhere")
    with pytest.raises(BatchInputError, match="differs from the job's provider 'scripted'"):
        relay.submit_batch([request], job_id="j", provider="scripted", mode="engine")


def test_the_jobs_list_jobs_returns_are_usable_as_job_ids(relay: RelayClient) -> None:
    relay.submit_batch([BatchRequest(id="a", prompt="hi")], job_id="j1", model="chat")
    relay.submit_batch([BatchRequest(id="b", prompt="yo")], job_id="j2", model="chat")
    jobs = relay.list_jobs()
    assert [job.job_id for job in jobs] == ["j2", "j1"]
    for job in jobs:
        assert relay.get_job(job).job_id == job.job_id
        assert relay.monitor_batch(job).status == "completed"
        assert relay.has_results(job)
        assert relay.retrieve(job).has_results
        assert relay.cancel_batch(job).status == "completed"  # finished: nothing to cancel
    assert [i.custom_id for i in relay.retrieve_batch_results(jobs[0])] == ["b"]
    assert [i.custom_id for i in relay.get_results(jobs[1])] == ["a"]
    assert [i.custom_id for i in relay.iter_results(jobs[1])] == ["a"]
    assert relay.wait(jobs[1]).done
    assert relay.resume(jobs[1]).status == "completed"
