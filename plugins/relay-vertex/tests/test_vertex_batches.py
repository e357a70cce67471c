"""Vertex batch prediction: the input lines (custom ids in request labels), upload and
create, every state, results with a failed line, cancel, list with the metadata given at
submit, and the mistakes a user can make. Wire-format tests replay the hand-written
``batch_*`` cassettes, after the token is fetched from the test's token endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import pytest
from vertex_support import MODEL, PROJECT, RECORDING

from relay_core import (
    ConfigError,
    InvalidRequestError,
    NotFoundError,
    ProviderSettings,
    Request,
    Secret,
)
from relay_core.http import HttpClient, HttpPool
from relay_vertex._adapter import VertexProvider, _custom_id, _id_labels

T = TypeVar("T")
Cassette = Callable[[str], AbstractContextManager[Any]]
JOB = f"projects/{PROJECT}/locations/global/batchPredictionJobs/1234567890123456789"
METADATA = {"relay_job": "eval-001", "relay_tag": "t-7f3a"}
REQUESTS = [
    Request.from_prompt("Capital of France? One word.", model=MODEL, custom_id="q-1"),
    Request.from_prompt("Capital of Spain? One word.", model=MODEL, custom_id="Question #2"),
    Request.from_prompt("", model=MODEL, custom_id="q-3"),
]


@pytest.fixture
def run(key_file: Path, cassette: Cassette) -> Callable[..., Any]:
    """``run(call, cassette_name, **options)``: ``call`` on an adapter with the test's key
    over a pool of its own, the token fetched before the cassette plays."""

    def run(call: Callable[[VertexProvider], Awaitable[T]], name: str | None, **options: Any) -> T:
        async def main() -> T:
            settings = ProviderSettings(
                name="vertex",
                # Recording: the shell's application-default credentials and project.
                api_key=None if RECORDING else Secret(key_file.read_text()),
                max_retries=0,
                options=options if RECORDING else {"project": PROJECT, **options},
            )
            pool = HttpPool()
            http = HttpClient(pool, settings, base_url=None, rules=VertexProvider.error_rules)
            adapter = VertexProvider(settings, http)
            try:
                await adapter.auth.token()
                with cassette(name) if name else nullcontext():
                    return await call(adapter)
            finally:
                await pool.aclose()

        return asyncio.run(main())

    return run


def test_custom_ids_travel_in_labels_and_come_back() -> None:
    assert _id_labels("q-1", "vertex") == {"relay_custom_id": "q-1"}
    for custom_id in ("Question #2", "ünïcode/ids?", "x" * 64, "A" * 2000):
        labels = _id_labels(custom_id, "vertex")
        assert all(len(v) <= 63 and v == v.lower() for v in labels.values())
        assert _custom_id(labels) == custom_id
    with pytest.raises(InvalidRequestError, match="too long"):
        _id_labels("x" * 3000, "vertex")
    with pytest.raises(InvalidRequestError, match="custom_id"):
        _id_labels("", "vertex")


def test_a_batch_line_is_the_chat_payload_with_the_id_label(run: Callable[..., Any]) -> None:
    async def lines(adapter: VertexProvider) -> list[dict[str, Any]]:
        return [adapter.batch_line(r) for r in REQUESTS[:2]]

    first, second = run(lines, None)
    assert first["request"]["contents"] == [
        {"role": "user", "parts": [{"text": "Capital of France? One word."}]}
    ]
    assert first["request"]["labels"] == {"relay_custom_id": "q-1"}
    assert set(second["request"]["labels"]) == {"relay_custom_id_b32_0"}


def test_submit_uploads_the_lines_and_creates_the_job(run: Callable[..., Any]) -> None:
    async def submit(adapter: VertexProvider) -> Any:
        return await adapter.submit_batch(REQUESTS, metadata=METADATA)

    batch = run(submit, "batch_submit", batch={"gcs_uri": "gs://my-bucket/relay"})
    assert batch.id == JOB
    assert batch.state == "validating"
    assert batch.metadata == METADATA
    assert batch.provider == "vertex"


def test_the_states_of_a_job(run: Callable[..., Any]) -> None:
    async def poll(adapter: VertexProvider) -> list[Any]:
        return [await adapter.batch_status(JOB) for _ in range(3)]

    pending, running, done = run(poll, "batch_states")
    assert [b.state for b in (pending, running, done)] == ["validating", "in_progress", "completed"]
    assert (running.counts.total, running.counts.completed) == (3, 1)
    assert (done.counts.total, done.counts.completed, done.counts.failed) == (3, 2, 1)
    assert done.ended_at is not None
    assert done.created_at is not None
    assert done.ended_at > done.created_at


def test_results_with_a_failed_line(run: Callable[..., Any]) -> None:
    async def results(adapter: VertexProvider) -> list[Any]:
        return [item async for item in adapter.batch_results(JOB)]

    items = {item.custom_id: item for item in run(results, "batch_results")}
    assert set(items) == {"q-1", "Question #2", "q-3"}
    assert items["q-1"].response.text == "Paris"
    assert items["q-1"].response.custom_id == "q-1"
    assert items["Question #2"].response.text == "Madrid"
    failed = items["q-3"]
    assert failed.response is None
    assert failed.error.kind == "InvalidRequestError"
    assert "empty text parameter" in failed.error.message
    assert not failed.error.retryable
    assert failed.raw["status"].startswith("Bad Request")


def test_cancel(run: Callable[..., Any]) -> None:
    async def cancel(adapter: VertexProvider) -> Any:
        return await adapter.cancel_batch(JOB)

    assert run(cancel, "batch_cancel").state == "cancelling"


def test_list_reports_the_metadata_given_at_submit(run: Callable[..., Any]) -> None:
    async def listing(adapter: VertexProvider) -> Any:
        return await adapter.list_batches()

    newest, older = run(listing, "batch_list")
    assert newest.id == JOB
    assert newest.metadata == METADATA
    assert newest.state == "in_progress"
    assert older.metadata == {}  # a job someone made by hand


def test_a_batch_needs_a_gcs_uri(run: Callable[..., Any]) -> None:
    async def submit(adapter: VertexProvider) -> Any:
        return await adapter.submit_batch(REQUESTS, metadata=METADATA)

    with pytest.raises(ConfigError, match=r"batch\.gcs_uri"):
        run(submit, None)


def test_a_batch_runs_one_model(run: Callable[..., Any]) -> None:
    other = Request.from_prompt("hi", model="gemini-2.5-pro", custom_id="x")

    async def submit(adapter: VertexProvider) -> Any:
        return await adapter.submit_batch([REQUESTS[0], other], metadata=METADATA)

    with pytest.raises(InvalidRequestError, match="one model"):
        run(submit, None, batch={"gcs_uri": "gs://my-bucket/relay"})


def test_an_id_that_cannot_be_a_job_is_not_found(run: Callable[..., Any]) -> None:
    async def status(adapter: VertexProvider) -> Any:
        return await adapter.batch_status("batches/abc")

    with pytest.raises(NotFoundError, match="batchPredictionJobs"):
        run(status, None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch": {"gcs_uri": "s3://bucket"}}, "gs://bucket/prefix"),
        ({"batch": {"bucket": "b"}}, "takes only gcs_uri"),
        ({"location": "US Central"}, "Vertex location"),
        ({"project": "No Such Project!"}, "project id"),
        ({"region": "us-central1"}, "unknown option"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], message: str) -> None:
    settings = ProviderSettings(name="vertex", options=options)
    with pytest.raises(ConfigError, match=message):
        VertexProvider(settings)


def test_gemini_of_another_publisher_goes_to_vertex_openai() -> None:
    adapter = VertexProvider(ProviderSettings(name="vertex", options={"project": PROJECT}))
    with pytest.raises(InvalidRequestError, match="vertex-openai/meta/llama"):
        adapter.batch_line(
            Request.from_prompt("hi", model="meta/llama-3.3-70b-instruct-maas", custom_id="a")
        )
    line = adapter.batch_line(Request.from_prompt("hi", model=f"google/{MODEL}", custom_id="a"))
    assert json.dumps(line)  # google/ is Gemini's own publisher: accepted
