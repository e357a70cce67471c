"""Batch jobs end to end on relay-mock: the workspace, both modes, splitting, cost,
bad input, and a second process sharing the workspace."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay_core import (
    AsyncRelayClient,
    BatchInputError,
    BatchRequest,
    JobConflict,
    JobNotFound,
    RelayClient,
    Request,
    ResultsNotReady,
    UnsupportedCapability,
    parse_catalog,
)

CATALOG = """
providers:
  mock:
    options:
      batch_duration: {duration}
      batch_max_requests: {max_requests}
      state_dir: {state_dir}
models:
  fast: mock/echo
  pricey: mock/think
"""


def _catalog(tmp_path: Path, *, duration: float = 0.0, max_requests: int = 50000) -> Any:
    text = CATALOG.format(
        duration=duration, max_requests=max_requests, state_dir=tmp_path / "mock-state"
    )
    return parse_catalog(text)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RelayClient]:
    with RelayClient(tmp_path / "ws", config=_catalog(tmp_path)) as relay:
        yield relay


def _requests(n: int, *, model: str | None = None) -> list[BatchRequest]:
    return [BatchRequest(id=f"q{i}", prompt=f"question {i}", model=model) for i in range(n)]


def _texts(items: list[Any]) -> list[str | None]:
    return [item.response.text if item.response else None for item in items]


# ---------------------------------------------------------------------------- engine


def test_engine_answers_every_request_in_order_with_cost(client: RelayClient) -> None:
    job = client.submit_batch(_requests(40), job_id="eval-1", model="fast", mode="engine")
    assert (job.status, job.mode, job.n_requests) == ("completed", "engine", 40)
    assert (job.counts.completed, job.counts.failed) == (40, 0)
    results = client.get_results("eval-1")
    assert [item.custom_id for item in results] == [f"q{i}" for i in range(40)]
    assert _texts(results) == [f"question {i}" for i in range(40)]
    total = sum(item.response.cost.amount for item in results)
    assert job.cost.amount == pytest.approx(total)
    assert job.cost.source == "snapshot"
    assert not job.cost.batch_discount_applied


def test_a_rerun_is_answered_from_the_cache_and_costs_nothing(client: RelayClient) -> None:
    client.submit_batch(_requests(10), job_id="first", model="fast", mode="engine")
    assert client.last_engine_stats is not None
    assert client.last_engine_stats.called == 10
    again = client.submit_batch(_requests(10), job_id="second", model="fast", mode="engine")
    stats = client.last_engine_stats
    assert (stats.called, stats.cached) == (0, 10)
    assert again.cost.amount == 0.0
    assert _texts(client.get_results("second")) == _texts(client.get_results("first"))


def test_a_failing_request_is_recorded_and_the_job_goes_on(client: RelayClient) -> None:
    requests: list[Any] = _requests(5, model="fast")
    requests[2] = BatchRequest(
        id="q2",
        prompt="question 2",
        model="fast",
        provider_args={"mock": {"fault": {"kind": "server_error"}}},
    )
    job = client.submit_batch(requests, job_id="flaky", mode="engine")
    assert (job.counts.completed, job.counts.failed) == (4, 1)
    failed = client.get_results("flaky")[2]
    assert failed.error is not None
    assert failed.error.kind == "ProviderUnavailable"
    assert failed.error.retryable


def test_engine_keeps_rate_limits_from_the_catalog(tmp_path: Path) -> None:
    catalog = parse_catalog(
        "models:\n  slow:\n    target: mock/echo\n"
        "    limits: {requests_per_minute: 600, concurrency: 1}\n"
    )
    with RelayClient(tmp_path / "ws", config=catalog) as relay:
        job = relay.submit_batch(_requests(5), job_id="limited", model="slow", mode="engine")
    assert job.counts.completed == 5


# ---------------------------------------------------------------------------- provider batches


def test_batch_mode_submits_waits_and_retrieves_once(client: RelayClient) -> None:
    job = client.submit_batch(_requests(30), job_id="b-1", provider="mock", model="fast")
    assert (job.status, job.mode) == ("submitted", "batch")
    assert len(job.provider_batches) == 1
    done = client.wait("b-1", poll_interval=0.01)
    assert done.status == "completed"
    assert not client.has_results("b-1")
    with pytest.raises(ResultsNotReady):
        client.get_results("b-1")
    results = client.retrieve_batch_results("b-1")
    assert _texts(results) == [f"question {i}" for i in range(30)]
    # Half price at the provider's batch discount, and said so.
    assert all(item.response.cost.batch_discount_applied for item in results)
    job = client.get_job("b-1")
    assert job.has_results
    assert job.cost.batch_discount_applied
    assert job.cost.amount == pytest.approx(sum(i.response.cost.amount for i in results))


def test_saved_results_are_served_from_disk_unless_refreshed(
    client: RelayClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.submit_batch(_requests(3), job_id="b-2", model="fast")
    client.wait("b-2", poll_interval=0.01)
    first = client.retrieve_batch_results("b-2")
    adapter = client.hub.get("fast").adapter
    calls: list[str] = []
    original = adapter.batch_results

    def counting(batch_id: str) -> Any:
        calls.append(batch_id)
        return original(batch_id)

    monkeypatch.setattr(adapter, "batch_results", counting)
    assert client.retrieve_batch_results("b-2") == first
    assert calls == []
    refreshed = client.retrieve_batch_results("b-2", force_refresh=True)
    assert len(calls) == 1
    assert _texts(refreshed) == _texts(first)


def test_a_big_job_is_split_and_merged_back_in_order(tmp_path: Path) -> None:
    with RelayClient(tmp_path / "ws", config=_catalog(tmp_path, max_requests=7)) as relay:
        # Two models interleaved: each provider batch holds one model and at most 7.
        requests = [
            BatchRequest(id=f"q{i}", prompt=f"question {i}", model="fast" if i % 3 else "pricey")
            for i in range(40)
        ]
        job = relay.submit_batch(requests, job_id="split")
        assert len(job.provider_batches) == 6  # 26 "fast" in 4 batches, 14 "pricey" in 2
        relay.wait("split", poll_interval=0.01)
        results = relay.retrieve_batch_results("split")
    assert [item.custom_id for item in results] == [f"q{i}" for i in range(40)]
    assert all(item.response is not None for item in results)
    assert results[0].response.model == "think"
    assert results[1].response.model == "echo"
    chunks = sorted((tmp_path / "ws" / "jobs" / "split" / "chunks").glob("*.input.jsonl"))
    sizes = [len(path.read_text().splitlines()) for path in chunks]
    assert max(sizes) <= 7
    assert sum(sizes) == 40


def test_partial_failure_keeps_raw_text_of_a_malformed_answer(client: RelayClient) -> None:
    requests: list[Any] = _requests(4, model="fast")
    requests[1] = BatchRequest(
        id="q1", prompt="x", model="fast", provider_args={"mock": {"fault": {"kind": "malformed"}}}
    )
    client.submit_batch(requests, job_id="partial")
    client.wait("partial", poll_interval=0.01)
    results = client.retrieve_batch_results("partial")
    assert [item.response is not None for item in results] == [True, False, True, True]
    garbled = results[1]
    assert garbled.error is not None
    assert garbled.error.kind == "MalformedResponse"
    assert isinstance(garbled.raw, str)
    assert '"custom_id": "q1"' in garbled.raw
    output = (client.directory / "jobs" / "partial" / "chunks" / "0000.output.jsonl").read_text()
    assert garbled.raw in output


def test_an_expired_batch_fails_what_did_not_run(tmp_path: Path) -> None:
    catalog = parse_catalog(
        "providers:\n  mock:\n    options: {batch_duration: 10, batch_expiry: 0.05}\n"
    )
    with RelayClient(tmp_path / "ws", config=catalog) as relay:
        relay.submit_batch(_requests(5), job_id="late", model="mock/echo")
        job = relay.wait("late", poll_interval=0.02)
        assert job.status == "expired"
        results = relay.retrieve_batch_results("late")
    assert {item.error.kind for item in results if item.error} == {"expired"}


def test_cancel_a_provider_batch(tmp_path: Path) -> None:
    with RelayClient(tmp_path / "ws", config=_catalog(tmp_path, duration=30.0)) as relay:
        relay.submit_batch(_requests(5), job_id="stop-me", model="fast")
        job = relay.cancel_batch("stop-me")
        assert job.status == "cancelled"
        results = relay.retrieve_batch_results("stop-me")
    assert all(item.error is not None and item.error.kind == "cancelled" for item in results)


def test_batch_mode_on_a_provider_without_batches_is_refused(
    client: RelayClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = client.hub.get("fast").adapter
    monkeypatch.setattr(adapter, "supports", lambda capability: str(capability) != "batch")
    with pytest.raises(UnsupportedCapability, match="batch"):
        client.submit_batch(_requests(2), job_id="nope", model="fast", mode="batch")
    # "auto" runs such a job in the engine instead.
    job = client.submit_batch(_requests(2), job_id="auto", model="fast")
    assert (job.mode, job.status) == ("engine", "completed")


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("job_id", ["../x", "/etc/passwd", "a b", ".hidden", "", "x" * 200])
def test_job_ids_that_could_escape_the_workspace_are_refused(
    client: RelayClient, job_id: str
) -> None:
    with pytest.raises(BatchInputError, match="job id"):
        client.submit_batch(_requests(1), job_id=job_id, model="fast")
    assert not (client.directory.parent / "x").exists()


def test_a_duplicate_custom_id_is_refused_and_nothing_is_submitted(client: RelayClient) -> None:
    requests = [*_requests(3, model="fast"), BatchRequest(id="q1", prompt="again", model="fast")]
    with pytest.raises(BatchInputError, match="'q1' is used twice") as caught:
        client.submit_batch(requests, job_id="dup")
    assert caught.value.custom_id == "q1"
    assert client.list_jobs() == []
    assert client.hub.run_sync(client.hub.get("fast").adapter.list_batches()) == []


def test_a_malformed_jsonl_line_is_named_by_file_and_line(
    client: RelayClient, tmp_path: Path
) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text('{"id": "a", "prompt": "fine"}\n\n{"id": "b", "prompt": \n')
    with pytest.raises(BatchInputError) as caught:
        client.submit_batch(path, job_id="bad-file", model="fast")
    assert (caught.value.file, caught.value.line) == (str(path), 3)
    assert str(caught.value).startswith(f"{path}:3:")
    path.write_text('{"id": "a", "prompt": "fine", "temperature": 0.1}\n')
    with pytest.raises(BatchInputError, match=r"unknown field.*temperature"):
        client.submit_batch(path, job_id="bad-file", model="fast")


def test_an_unknown_alias_names_the_request(client: RelayClient) -> None:
    with pytest.raises(BatchInputError, match=r"request 'q0'.*unknown model 'nonesuch'"):
        client.submit_batch(_requests(1, model="nonesuch"), job_id="who")


def test_full_requests_and_mappings_are_accepted_too(client: RelayClient) -> None:
    requests: list[Any] = [
        Request.from_prompt("as a request", custom_id="r1", system="Be brief."),
        {"id": "r2", "prompt": "as a mapping", "provider_args": {"max_tokens": 2}},
        {
            "custom_id": "r3",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "full"}]}],
        },
    ]
    job = client.submit_batch(requests, job_id="mixed", model="fast", mode="engine")
    assert job.counts.completed == 3
    assert _texts(client.get_results("mixed")) == ["as a request", "as a", "full"]


def test_a_finished_job_id_needs_overwrite(client: RelayClient) -> None:
    client.submit_batch(_requests(2), job_id="taken", model="fast", mode="engine")
    with pytest.raises(JobConflict, match="overwrite"):
        client.submit_batch(_requests(2), job_id="taken", model="fast", mode="engine")
    job = client.submit_batch(
        _requests(3), job_id="taken", model="fast", mode="engine", overwrite=True
    )
    assert job.n_requests == 3


def test_a_job_waiting_on_its_provider_cannot_be_submitted_again(client: RelayClient) -> None:
    client.submit_batch(_requests(2), job_id="busy", model="fast")
    with pytest.raises(JobConflict, match="already submitted"):
        client.submit_batch(_requests(2), job_id="busy", model="fast")


def test_unknown_jobs_are_a_typed_error(client: RelayClient) -> None:
    with pytest.raises(JobNotFound, match="no job 'ghost'"):
        client.get_job("ghost")


# ---------------------------------------------------------------------------- sharing


def test_another_process_sees_every_job_and_its_state(client: RelayClient, tmp_path: Path) -> None:
    client.submit_batch(_requests(3), job_id="seen-engine", model="fast", mode="engine")
    client.submit_batch(_requests(3), job_id="seen-batch", model="fast")
    catalog = CATALOG.format(duration=0.0, max_requests=50000, state_dir=tmp_path / "mock-state")
    script = textwrap.dedent(
        f"""
        import json
        from relay_core import RelayClient, parse_catalog
        catalog = parse_catalog({catalog!r})
        with RelayClient({str(client.directory)!r}, config=catalog) as other:
            jobs = {{job.job_id: job.status for job in other.list_jobs()}}
            other.wait("seen-batch", poll_interval=0.01)
            texts = [i.response.text for i in other.retrieve_batch_results("seen-batch")]
            print(json.dumps({{"jobs": jobs, "texts": texts}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(out.stdout)
    assert seen["jobs"] == {"seen-engine": "completed", "seen-batch": "submitted"}
    assert seen["texts"] == ["question 0", "question 1", "question 2"]
    # ... and this client reads what the other one saved.
    assert client.has_results("seen-batch")
    assert _texts(client.get_results("seen-batch")) == seen["texts"]


async def test_the_async_client_has_the_same_api(tmp_path: Path) -> None:
    async with AsyncRelayClient(tmp_path / "ws", config=_catalog(tmp_path)) as relay:
        job = await relay.submit_batch(_requests(3), job_id="a-1", model="fast")
        await relay.wait(job.job_id, poll_interval=0.01)
        results = await relay.retrieve_batch_results("a-1")
        assert _texts(results) == ["question 0", "question 1", "question 2"]
        assert [job.job_id for job in await relay.list_jobs()] == ["a-1"]


def test_batch_mode_sends_the_provider_redacted_requests(client: RelayClient) -> None:
    import attrs

    from relay_core import hookimpl

    class Redactor:
        @hookimpl
        def relay_redact(self, request: Request) -> Request | None:
            messages = tuple(
                attrs.evolve(m, content=m.text.replace("Alice", "<NAME_1>"))
                for m in request.messages
            )
            return attrs.evolve(request, messages=messages)

    client.hub.plugins.register(Redactor())
    requests = [BatchRequest(id=f"q{i}", prompt=f"Alice asks {i}") for i in range(3)]
    client.submit_batch(requests, job_id="b-redacted", provider="mock", model="fast")
    client.wait("b-redacted", poll_interval=0.01)
    # The mock echoes what it received: what left the process was redacted.
    assert _texts(client.retrieve_batch_results("b-redacted")) == [
        f"<NAME_1> asks {i}" for i in range(3)
    ]


class _NoSecrets:
    """A guardrail refusing requests that mention a password."""

    from relay_core import hookimpl

    @hookimpl
    def relay_guardrail_pre(self, request: Request, call: Any) -> None:
        from relay_core import GuardrailViolation

        assert call.job_id is not None  # the job is named, as in engine jobs
        if "password" in request.messages[-1].text:
            raise GuardrailViolation("no-passwords", "mentions a password")


def test_batch_mode_refuses_a_guarded_request_alone(client: RelayClient) -> None:
    client.hub.plugins.register(_NoSecrets())
    requests = _requests(4)
    requests[2] = BatchRequest(id="q2", prompt="my password is hunter2")
    job = client.submit_batch(requests, job_id="b-guarded", provider="mock", model="fast")
    assert job.mode == "batch"
    client.wait("b-guarded", poll_interval=0.01)
    results = client.retrieve_batch_results("b-guarded")
    assert [r.custom_id for r in results] == ["q0", "q1", "q2", "q3"]
    assert _texts(results) == ["question 0", "question 1", None, "question 3"]
    refused = results[2].error
    assert refused is not None
    assert refused.kind == "GuardrailViolation"
    assert "no-passwords" in refused.message
    job = client.get_job("b-guarded")
    assert (job.counts.completed, job.counts.failed) == (3, 1)


def test_batch_mode_with_every_request_refused_submits_nothing(client: RelayClient) -> None:
    client.hub.plugins.register(_NoSecrets())
    requests = [
        BatchRequest(id="q0", prompt="password one"),
        BatchRequest(id="q1", prompt="password two"),
    ]
    with pytest.raises(BatchInputError, match="every request of the job was refused"):
        client.submit_batch(requests, job_id="b-none", provider="mock", model="fast")
