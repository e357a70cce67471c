"""Azure OpenAI Global Batch: submit (upload + create), statuses, results from the output
and error files, cancel, list, replayed from the hand-written cassettes
cassettes/relay-azure/batch_*.yaml."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure_support import CATALOG, DEPLOYMENT, ENDPOINT, completion

import relay_azure
from relay_core import (
    BatchCounts,
    ContentPolicyError,
    GenerationConfig,
    InvalidRequestError,
    RelayClient,
    Request,
    Response,
)
from relay_core.testing import hub_for, json_answer

META = {"relay_job": "eval-001", "relay_tag": "rly-7f3a9c2e"}
VERSION = "api-version=2024-10-21"
VIOLENCE = {"violence": {"filtered": True, "severity": "high"}}
COMPLETED = "batch_11111111-aaaa-4bbb-8ccc-000000000003"


def two_requests() -> list[Request]:
    return [
        Request.from_prompt(
            "What is 2+2?",
            model=DEPLOYMENT,
            system="Be brief.",
            custom_id="r1",
            config=GenerationConfig(temperature=0),
        ),
        Request.from_prompt(
            "Name a primary colour.",
            model=DEPLOYMENT,
            custom_id="r2",
            config=GenerationConfig(max_tokens=10),
        ),
    ]


def form(recorded: Any) -> dict[str, str]:
    """The fields of a recorded multipart body, by name."""
    boundary = recorded.headers["content-type"].split("boundary=")[1]
    body = recorded.body if isinstance(recorded.body, str) else recorded.body.decode()
    fields = {}
    for chunk in body.split(f"--{boundary}")[1:-1]:
        head, _, value = chunk[2:-2].partition("\r\n\r\n")
        fields[re.findall(r'name="([^"]+)"', head)[0]] = value
    return fields


@pytest.fixture
async def adapter(make_hub: Any) -> AsyncIterator[Any]:
    """The adapter of a hub that reaches the network (i.e. the cassettes)."""
    hub = make_hub()
    yield hub.get(f"azure/{DEPLOYMENT}").adapter
    await hub.aclose()


async def test_submit_uploads_the_lines_then_creates_the_batch(adapter: Any, cassette: Any) -> None:
    with cassette("batch_submit") as recorded:
        batch = await adapter.submit_batch(two_requests(), metadata=META)
    upload, create = recorded.requests
    assert upload.uri == f"{ENDPOINT}/openai/files?{VERSION}"
    fields = form(upload)
    assert fields["purpose"] == "batch"
    lines = [json.loads(line) for line in fields["file"].splitlines()]
    assert [(line["custom_id"], line["url"], line["body"]["model"]) for line in lines] == [
        ("r1", "/chat/completions", DEPLOYMENT),
        ("r2", "/chat/completions", DEPLOYMENT),
    ]
    assert create.uri == f"{ENDPOINT}/openai/batches?{VERSION}"
    assert json.loads(create.body) == {
        "input_file_id": "file-9f3b1c2d4e5f46a7b8c9d0e1f2a3b4c5",
        "endpoint": "/chat/completions",
        "completion_window": "24h",
        "metadata": META,
    }
    assert (batch.id, batch.state, batch.metadata) == (
        "batch_0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "validating",
        META,
    )


@pytest.mark.parametrize(
    ("batch_id", "state", "counts"),
    [
        ("batch_11111111-aaaa-4bbb-8ccc-000000000001", "in_progress", BatchCounts(4, 1, 0)),
        ("batch_11111111-aaaa-4bbb-8ccc-000000000002", "finalizing", BatchCounts(4, 3, 1)),
        ("batch_11111111-aaaa-4bbb-8ccc-000000000003", "completed", BatchCounts(4, 3, 1)),
        ("batch_11111111-aaaa-4bbb-8ccc-000000000004", "failed", BatchCounts(0, 0, 0)),
    ],
)
async def test_status_in_each_state(
    adapter: Any, cassette: Any, batch_id: str, state: str, counts: BatchCounts
) -> None:
    with cassette(f"batch_status_{state}"):
        batch = await adapter.batch_status(batch_id)
    assert (batch.id, batch.state, batch.counts) == (batch_id, state, counts)
    assert batch.done == (state in ("completed", "failed"))
    assert batch.metadata == META


async def test_results_read_the_output_and_error_files(adapter: Any, cassette: Any) -> None:
    with cassette("batch_results") as recorded:
        items = [item async for item in adapter.batch_results(COMPLETED)]
    assert [r.uri for r in recorded.requests][1:] == [
        f"{ENDPOINT}/openai/files/file-0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c6/content?{VERSION}",
        f"{ENDPOINT}/openai/files/file-0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c7/content?{VERSION}",
    ]
    texts = {i.custom_id: i.response.text for i in items if i.response is not None}
    errors = {i.custom_id: (i.error.kind, i.error.status_code) for i in items if i.error}
    assert texts == {"r1": "4.", "r2": "Red."}
    # The error file's lines: a prompt the filter refused, and one too long.
    assert errors == {"r3": ("ContentPolicyError", 400), "r4": ("ContextWindowExceeded", 400)}


async def test_results_of_a_running_batch_are_refused(adapter: Any, cassette: Any) -> None:
    with cassette("batch_status_in_progress"), pytest.raises(InvalidRequestError):
        [i async for i in adapter.batch_results("batch_11111111-aaaa-4bbb-8ccc-000000000001")]


async def test_cancel(adapter: Any, cassette: Any) -> None:
    with cassette("batch_cancel") as recorded:
        batch = await adapter.cancel_batch("batch_11111111-aaaa-4bbb-8ccc-000000000001")
    assert recorded.requests[0].method == "POST"
    assert recorded.requests[0].uri == (
        f"{ENDPOINT}/openai/batches/batch_11111111-aaaa-4bbb-8ccc-000000000001/cancel?{VERSION}"
    )
    assert batch.state == "cancelling"


async def test_list_newest_first_with_metadata(adapter: Any, cassette: Any) -> None:
    with cassette("batch_list") as recorded:
        batches = await adapter.list_batches()
    assert recorded.requests[0].uri == f"{ENDPOINT}/openai/batches?{VERSION}&limit=100"
    assert [b.id for b in batches] == [
        "batch_11111111-aaaa-4bbb-8ccc-000000000001",
        "batch_11111111-aaaa-4bbb-8ccc-000000000003",
    ]
    assert batches[0].metadata == META


async def test_an_answer_withheld_by_the_filter_fails_its_request(adapter: Any) -> None:
    body = completion(
        None,
        finish_reason="content_filter",
        filters={"violence": {"filtered": True, "severity": "high"}},
    )
    response = adapter._parse_chat(body, Request(messages=(), model=DEPLOYMENT))
    request = two_requests()[0]
    with pytest.raises(ContentPolicyError, match="violence"):
        adapter.finish_batch_response(request, response)
    kept = Response(content="partial", finish_reason="content_filter")
    assert adapter.finish_batch_response(request, kept) == kept


def test_a_job_through_the_core_reaches_azure_and_fails_a_withheld_answer(
    tmp_path: Path,
) -> None:
    """Through the core's job API: the lines go to Azure's files endpoint, and an answer
    the content filter withheld fails its request alone, as ContentPolicyError."""
    withheld = completion(None, finish_reason="content_filter", filters=VIOLENCE)
    lines = [
        {"custom_id": "ok", "response": {"status_code": 200, "body": completion("4.")}},
        {"custom_id": "filtered", "response": {"status_code": 200, "body": withheld}},
    ]
    done = {
        "id": "batch_job",
        "object": "batch",
        "endpoint": "/chat/completions",
        "status": "completed",
        "output_file_id": "file-out",
        "error_file_id": None,
        "created_at": 1761300000,
        "completed_at": 1761303600,
        "request_counts": {"total": 2, "completed": 2, "failed": 0},
        "metadata": {},
    }
    received: list[httpx.Request] = []

    def azure(request: httpx.Request) -> httpx.Response:
        received.append(request)
        path = request.url.path
        if path == "/openai/files":
            return json_answer({"id": "file-in", "object": "file", "purpose": "batch"})
        if path.endswith("/content"):
            text = "".join(json.dumps(line) + "\n" for line in lines)
            return httpx.Response(200, text=text)
        return json_answer(done)

    target = f"azure/{DEPLOYMENT}"
    requests = [
        Request.from_prompt("2+2?", model=target, custom_id="ok"),
        Request.from_prompt("Violent story.", model=target, custom_id="filtered"),
    ]
    with (
        hub_for(CATALOG, relay_azure, transport=httpx.MockTransport(azure)) as hub,
        RelayClient(tmp_path / "ws", hub=hub) as client,
    ):
        job = client.submit_batch(requests, job_id="azure-job", provider="azure")
        assert job.mode == "batch"
        items = {item.custom_id: item for item in client.retrieve_batch_results("azure-job")}
    assert all(r.url.params["api-version"] == "2024-10-21" for r in received)
    uploaded = received[0].content.decode()
    assert f'"model":"{DEPLOYMENT}"' in uploaded
    assert '"url":"/chat/completions"' in uploaded
    assert items["ok"].response is not None
    assert items["ok"].response.text == "4."
    assert items["filtered"].error is not None
    assert items["filtered"].error.kind == "ContentPolicyError"
    assert "violence" in items["filtered"].error.message
