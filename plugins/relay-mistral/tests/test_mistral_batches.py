"""Mistral batch jobs: the upload and the job sent, every status mapped, results with a
per-request error and a garbled line, cancel, listing with Relay's metadata, unknown ids.

Wire-format tests replay the hand-written cassettes ``cassettes/relay-mistral/batch_*``
(the request bodies are part of the match, so they pin what is sent); the rest answer
through ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx
import pytest
from mistral_support import KEY, MODEL, completion, ok_server

from relay_core import (
    BatchCounts,
    BatchItem,
    ContextWindowExceeded,
    GenerationConfig,
    Hub,
    InvalidRequestError,
    NotFoundError,
    ProviderBatch,
    ProviderSettings,
    Request,
    Secret,
    TextPart,
    Usage,
)
from relay_core.batching import jsonl
from relay_core.http import HttpClient, HttpPool
from relay_core.testing import FakeServer, json_answer
from relay_mistral._adapter import MistralProvider

Cassette = Callable[[str], AbstractContextManager[Any]]
MakeAdapter = Callable[..., MistralProvider]
JOB = "3f7b1c2e-5a9d-4e8b-9c61-2d4f8a0e7b35"
OLDER = "7e2a9c4f-1b6d-4f3a-8e5c-0d9b2f7a4c18"
META = {"relay_job": "eval-001", "relay_tag": "eval-001.0"}


@pytest.fixture
async def adapter() -> AsyncIterator[MakeAdapter]:
    """An adapter with its own pool: through ``handler`` when given, else through the
    real transport (which a cassette replaces); the pool is closed after the test."""
    pools: list[HttpPool] = []

    def make(
        handler: Callable[[httpx.Request], httpx.Response] | None = None, **options: Any
    ) -> MistralProvider:
        transport = httpx.MockTransport(handler) if handler is not None else None
        pool = HttpPool(transport=transport)
        pools.append(pool)
        settings = ProviderSettings(name="mistral", api_key=Secret(KEY), options=options)
        http = HttpClient(
            pool,
            settings,
            base_url=MistralProvider.default_base_url,
            rules=MistralProvider.error_rules,
        )
        return MistralProvider(settings, http)

    yield make
    for pool in pools:
        await pool.aclose()


def _requests() -> list[Request]:
    return [
        Request.from_prompt(
            "What is the capital of France?",
            model=MODEL,
            system="Be brief.",
            config=GenerationConfig(temperature=0),
            custom_id="r1",
        ),
        Request.from_prompt(
            "Name one French cheese.",
            model=MODEL,
            config=GenerationConfig(max_tokens=20),
            custom_id="r2",
        ),
    ]


def _job(status: str, **fields: Any) -> dict[str, Any]:
    """A batch job as ``GET /v1/batch/jobs/{id}`` answers it."""
    return {
        "id": JOB,
        "object": "batch",
        "input_files": ["a1c5e9f3-7b2d-4c86-8e0a-5f3b9d1c7e42"],
        "metadata": META,
        "endpoint": "/v1/chat/completions",
        "model": MODEL,
        "agent_id": None,
        "output_file": None,
        "error_file": None,
        "errors": [],
        "outputs": None,
        "status": status,
        "created_at": 1783332000,
        "total_requests": 2,
        "completed_requests": 0,
        "succeeded_requests": 0,
        "failed_requests": 0,
        "started_at": None,
        "completed_at": None,
        **fields,
    }


# -- the input -------------------------------------------------------------------------


def test_a_batch_line_is_the_chat_body_without_the_model(make_hub: Callable[..., Hub]) -> None:
    request = _requests()[0]
    server = ok_server()
    hub = make_hub(server)
    hub.chat(
        f"mistral/{MODEL}", "What is the capital of France?", system="Be brief.", temperature=0
    )
    line = hub.get(f"mistral/{MODEL}").adapter.batch_line(request)
    assert line == {
        "custom_id": "r1",
        "body": {key: value for key, value in server.payload.items() if key != "model"},
    }
    assert server.payload["model"] == MODEL


def test_provider_kwargs_reach_the_batch_line_but_never_a_model(adapter: MakeAdapter) -> None:
    request = Request.from_prompt(
        "Hi", model=MODEL, custom_id="a", provider_kwargs={"safe_prompt": True, "model": "x"}
    )
    assert adapter().batch_line(request) == {
        "custom_id": "a",
        "body": {"messages": [{"role": "user", "content": "Hi"}], "safe_prompt": True},
    }


def test_the_declared_limits_and_metadata() -> None:
    assert MistralProvider.batch_limits.max_requests == 100_000
    assert MistralProvider.batch_limits.max_bytes == 512_000_000
    assert MistralProvider.batch_metadata is True


# -- submit ----------------------------------------------------------------------------


async def test_submit_uploads_the_lines_then_creates_the_job(
    adapter: MakeAdapter, cassette: Cassette
) -> None:
    with cassette("batch_submit"):
        batch = await adapter().submit_batch(_requests(), metadata=META)
    assert isinstance(batch, ProviderBatch)
    assert (batch.id, batch.provider, batch.state) == (JOB, "mistral", "validating")
    assert batch.counts == BatchCounts(total=2)
    assert (batch.created_at, batch.ended_at) == (1783332000, None)
    assert batch.metadata == META
    assert batch.raw["object"] == "batch"


async def test_what_submit_sends(adapter: MakeAdapter) -> None:
    server = FakeServer(
        json_answer({"id": "a1c5e9f3-7b2d-4c86-8e0a-5f3b9d1c7e42", "object": "file"}),
        json_answer(_job("QUEUED")),
    )
    provider = adapter(server, batch_timeout_hours=48)
    requests = _requests()
    await provider.submit_batch(requests, metadata=META)
    upload, create = server.requests
    assert (upload.method, str(upload.url)) == ("POST", "https://api.mistral.ai/v1/files")
    assert upload.headers["authorization"] == f"Bearer {KEY}"
    form = BytesParser(policy=HTTP).parsebytes(
        b"content-type: " + upload.headers["content-type"].encode() + b"\r\n\r\n" + upload.content
    )
    parts = {p.get_param("name", header="content-disposition"): p for p in form.iter_parts()}
    assert parts["purpose"].get_content() == "batch"
    assert parts["file"].get_filename() == "relay-batch.jsonl"
    assert parts["file"].get_payload(decode=True) == jsonl(provider.batch_line(r) for r in requests)
    assert (create.method, str(create.url)) == ("POST", "https://api.mistral.ai/v1/batch/jobs")
    assert json.loads(create.content) == {
        "input_files": ["a1c5e9f3-7b2d-4c86-8e0a-5f3b9d1c7e42"],
        "model": MODEL,
        "endpoint": "/v1/chat/completions",
        "metadata": META,
        "timeout_hours": 48,
    }


async def test_one_job_runs_one_model(adapter: MakeAdapter) -> None:
    server = ok_server()
    other = Request.from_prompt("x", model="mistral-large-latest", custom_id="r3")
    requests = [*_requests(), other]
    with pytest.raises(InvalidRequestError, match="one model"):
        await adapter(server).submit_batch(requests, metadata=META)
    assert server.requests == []


# -- status ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state", "done"),
    [
        ("QUEUED", "validating", False),
        ("RUNNING", "in_progress", False),
        ("SUCCESS", "completed", True),
        ("FAILED", "failed", True),
        ("TIMEOUT_EXCEEDED", "expired", True),
        ("CANCELLATION_REQUESTED", "cancelling", False),
        ("CANCELLED", "cancelled", True),
        ("SOMETHING_NEW", "in_progress", False),
    ],
)
async def test_every_status_is_mapped(
    adapter: MakeAdapter, status: str, state: str, done: bool
) -> None:
    server = FakeServer(json_answer(_job(status)))
    batch = await adapter(server).batch_status(JOB)
    assert (batch.state, batch.done) == (state, done)
    assert str(server.requests[0].url) == f"https://api.mistral.ai/v1/batch/jobs/{JOB}"


async def test_a_job_seen_through_its_life(adapter: MakeAdapter, cassette: Cassette) -> None:
    provider = adapter()
    with cassette("batch_status"):
        seen = [await provider.batch_status(JOB) for _ in range(3)]
    assert [(b.state, b.counts, b.ended_at) for b in seen] == [
        ("validating", BatchCounts(3, 0, 0), None),
        ("in_progress", BatchCounts(3, 1, 0), None),
        ("completed", BatchCounts(3, 2, 1), 1783332600),
    ]
    assert all(b.created_at == 1783332000 and b.metadata == META for b in seen)


async def test_an_unknown_batch_id_is_not_found(adapter: MakeAdapter, cassette: Cassette) -> None:
    provider = adapter()
    with cassette("batch_not_found"):
        with pytest.raises(NotFoundError) as missing:
            await provider.batch_status("00000000-0000-4000-8000-000000000000")
        # Not a UUID: Mistral's path validation answers 422, which still means no such batch.
        with pytest.raises(NotFoundError) as malformed:
            await provider.batch_status("nope")
    assert (missing.value.status_code, malformed.value.status_code) == (404, 422)
    assert KEY not in str(missing.value)


# -- results ---------------------------------------------------------------------------


async def test_results_from_the_output_and_error_files(
    adapter: MakeAdapter, cassette: Cassette
) -> None:
    with cassette("batch_results"):
        items = [item async for item in adapter().batch_results(JOB)]
    assert all(isinstance(item, BatchItem) for item in items)
    by_id = {item.custom_id: item for item in items}
    assert [item.custom_id for item in items] == ["r1", "r2", "r4", "r3", "r5"]

    paris = by_id["r1"]
    assert paris.ok
    assert paris.response is not None
    assert paris.response.content == (TextPart("Paris."),)
    assert paris.response.usage == Usage(input_tokens=15, output_tokens=4)
    assert (paris.response.id, paris.response.model) == (
        "0b1c2d3e4f5a46b7c8d9e0f1a2b3c4d5",
        MODEL,
    )
    assert paris.raw["response"]["status_code"] == 200
    assert by_id["r4"].response is not None
    assert by_id["r4"].response.text == "Brie."

    garbled = by_id["r2"]
    assert garbled.error is not None
    assert garbled.response is None
    assert garbled.error.kind == "MalformedResponse"
    assert "line 2 of the output file" in garbled.error.message
    assert isinstance(garbled.raw, str)
    assert garbled.raw.startswith('{"id":"batch-3f7b1c2e-r2"')

    too_long = by_id["r3"]
    assert too_long.error is not None
    assert (too_long.error.kind, too_long.error.status_code) == (
        ContextWindowExceeded.__name__,
        400,
    )
    assert "too large for model" in too_long.error.message
    assert too_long.raw["response"]["body"]["type"] == "invalid_request_error"

    internal = by_id["r5"]
    assert internal.error is not None
    assert (internal.error.kind, internal.error.retryable) == ("ProviderUnavailable", True)
    assert "Internal error" in internal.error.message
    assert internal.raw["error"]["code"] == "internal_error"


async def test_a_line_the_parser_rejects_keeps_its_id_and_raw(adapter: MakeAdapter) -> None:
    odd = {"id": "x", "custom_id": "r7", "response": {"status_code": 200, "body": ["odd"]}}
    good = {"custom_id": "r8", "response": {"status_code": 200, "body": completion("Hi")}}
    files = "\n".join(json.dumps(line) for line in (odd, good))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/content"):
            return httpx.Response(200, content=files.encode())
        return json_answer(_job("SUCCESS", output_file="c2e6f0a4-8c3e-4d97-9f1b-6a4c0e2d8f53"))

    items = [item async for item in adapter(handler).batch_results(JOB)]
    assert [(item.custom_id, item.ok) for item in items] == [("r7", False), ("r8", True)]
    assert items[0].error is not None
    assert items[0].error.kind == "MalformedResponse"
    assert items[0].raw == odd


# -- cancel and list -------------------------------------------------------------------


async def test_cancel_a_running_job_and_a_finished_one(
    adapter: MakeAdapter, cassette: Cassette
) -> None:
    provider = adapter()
    with cassette("batch_cancel"):
        running = await provider.cancel_batch(JOB)
        # The cassette holds no cancel call for the finished job: none may be sent.
        finished = await provider.cancel_batch(OLDER)
    assert (running.state, running.counts.completed) == ("cancelling", 1)
    assert (finished.state, finished.id, finished.ended_at) == ("completed", OLDER, 1783330600)


async def test_a_job_that_finishes_while_being_cancelled(adapter: MakeAdapter) -> None:
    server = FakeServer(
        json_answer(_job("RUNNING")),
        json_answer({"object": "error", "message": "Job already completed"}, status=400),
        json_answer(_job("SUCCESS", completed_at=1783332600)),
    )
    batch = await adapter(server).cancel_batch(JOB)
    assert batch.state == "completed"
    assert [r.method for r in server.requests] == ["GET", "POST", "GET"]


async def test_list_gives_the_newest_first_with_their_metadata(
    adapter: MakeAdapter, cassette: Cassette
) -> None:
    with cassette("batch_list"):
        batches = await adapter().list_batches()
    assert [(b.id, b.state) for b in batches] == [(JOB, "validating"), (OLDER, "completed")]
    assert [b.metadata for b in batches] == [
        META,
        {"relay_job": "older", "relay_tag": "older.0"},
    ]
    assert batches[1].counts == BatchCounts(total=3, completed=3, failed=0)
