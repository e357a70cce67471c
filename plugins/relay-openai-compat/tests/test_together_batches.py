"""Together's Batch API through relay-openai's batch code: submit (upload + create), every
status, results, cancel, list with the tag read back from the input file's name, unknown
ids. Wire-format tests replay cassettes/relay-openai-compat/batch_together_*.yaml."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest

from relay_core import (
    BatchCounts,
    GenerationConfig,
    NotFoundError,
    Request,
    TextPart,
    UnsupportedCapability,
    Usage,
)
from relay_openai_compat._together import input_file_name, read_file_name

MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
TARGET = f"together/{MODEL}"
META = {"relay_job": "eval-001", "relay_tag": "rly-7f3a9c2e"}


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def two_requests() -> list[Request]:
    return [
        Request.from_prompt(
            "What is 2+2?",
            model=MODEL,
            system="Be brief.",
            custom_id="r1",
            config=GenerationConfig(temperature=0),
        ),
        Request.from_prompt(
            "Name a primary colour.",
            model=MODEL,
            custom_id="r2",
            config=GenerationConfig(max_tokens=10),
        ),
    ]


def form(recorded: Any) -> dict[str, str]:
    """The fields of a recorded multipart body, by name (``filename``: the file part's)."""
    boundary = recorded.headers["content-type"].split("boundary=")[1]
    body = recorded.body if isinstance(recorded.body, str) else recorded.body.decode()
    fields = {}
    for chunk in body.split(f"--{boundary}")[1:-1]:
        head, _, value = chunk[2:-2].partition("\r\n\r\n")
        fields[re.findall(r'name="([^"]+)"', head)[0]] = value
        for filename in re.findall(r'filename="([^"]+)"', head):
            fields["filename"] = filename
    return fields


@pytest.fixture
async def adapter(make_hub: Any) -> AsyncIterator[Any]:
    hub = make_hub(network=True)
    yield hub.get(TARGET).adapter
    await hub.aclose()


async def test_submit_uploads_the_lines_then_creates_the_batch(adapter: Any, cassette: Any) -> None:
    requests = two_requests()
    with cassette("batch_together_submit") as recorded:
        batch = await adapter.submit_batch(requests, metadata=META)
    assert (batch.id, batch.provider, batch.state) == (
        "7f3c2a1b-4d5e-4f60-8a9b-0c1d2e3f4a5b",
        "together",
        "validating",
    )
    assert batch.counts == BatchCounts(2, 0, 0)
    assert batch.metadata == META
    assert (batch.created_at, batch.ended_at) == (at("2025-06-03T10:00:00"), None)

    upload, create = recorded.requests
    assert (upload.method, upload.uri) == ("POST", "https://api.together.ai/v1/files/upload")
    fields = form(upload)
    assert (fields["purpose"], fields["file_type"]) == ("batch-api", "jsonl")
    assert fields["file_name"] == fields["filename"] == input_file_name(2, META)
    lines = [json.loads(text) for text in fields["file"].splitlines()]
    assert lines == [adapter.batch_line(request) for request in requests]
    assert lines[0] == {
        "custom_id": "r1",
        "body": {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 2+2?"},
            ],
            "temperature": 0,
        },
    }
    assert lines[1]["body"]["max_tokens"] == 10  # the compat mapping, not OpenAI's
    assert (create.method, create.uri) == ("POST", "https://api.together.ai/v1/batches")
    assert json.loads(create.body) == {
        "input_file_id": "file-3b1f6c2e-8d4a-4f7b-9e2c-5a6d7b8c9d0e",
        "endpoint": "/v1/chat/completions",
    }


def test_a_batch_line_holds_what_the_chat_path_sends(make_hub: Any, server: Any) -> None:
    server.reply({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]})
    hub = make_hub()
    request = Request.from_prompt(
        "Count to three.",
        model=TARGET,
        system="Be brief.",
        config=GenerationConfig(temperature=0, max_tokens=20),
        provider_kwargs={"top_k": 40},
        custom_id="c1",
    )
    hub.chat(request)
    handle = hub.get(TARGET)
    assert handle.adapter.batch_line(handle.prepare(request)) == {
        "custom_id": "c1",
        "body": server.payload,
    }


async def test_every_together_status_maps_to_its_state(adapter: Any, cassette: Any) -> None:
    expected = [
        ("validating", 0, None),
        ("in_progress", 2, None),  # progress 25% of 8
        ("completed", 8, "2025-06-03T10:45:30"),
        ("failed", 0, "2025-06-03T10:45:30"),
        ("expired", 5, "2025-06-03T10:45:30"),  # 60% of 8
        ("cancelling", 4, None),
        ("cancelled", 4, "2025-06-03T10:45:30"),
    ]
    with cassette("batch_together_status"):
        for n, (state, completed, ended) in enumerate(expected):
            batch = await adapter.batch_status(f"0c1d2e3f-4a5b-4c6d-8e7f-90a1b2c3d4{n:02d}")
            assert batch.state == state
            assert batch.counts == BatchCounts(8, completed, 0), state
            assert batch.ended_at == (at(ended) if ended else None), state
            assert batch.metadata == {**META, "relay_tag": f"rly-{n}"}


async def test_results_read_the_output_and_the_error_file(adapter: Any, cassette: Any) -> None:
    with cassette("batch_together_results"):
        items = [
            item async for item in adapter.batch_results("5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9")
        ]
    by_id = {item.custom_id: item for item in items}
    assert sorted(by_id) == ["r1", "r2", "r3"]
    four = by_id["r1"].response
    assert (four.content, four.usage, four.model) == ((TextPart("4."),), Usage(45, 3), MODEL)
    assert by_id["r1"].raw["response"]["status_code"] == 200
    garbled = by_id["r3"]
    assert (garbled.response, garbled.error.kind) == (None, "MalformedResponse")
    assert isinstance(garbled.raw, str)
    limited = by_id["r2"].error
    assert (limited.kind, limited.status_code, limited.retryable) == ("RateLimitError", 429, True)


async def test_cancel(adapter: Any, cassette: Any) -> None:
    with cassette("batch_together_cancel"):
        batch = await adapter.cancel_batch("2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d")
    assert (batch.state, batch.metadata, batch.counts) == ("cancelled", META, BatchCounts(2, 1, 0))


async def test_list_batches_newest_first_with_the_tag_from_the_file_name(
    adapter: Any, cassette: Any
) -> None:
    with cassette("batch_together_list"):
        batches = await adapter.list_batches()
    assert [b.id for b in batches] == [
        "7f3c2a1b-4d5e-4f60-8a9b-0c1d2e3f4a5b",
        "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
    ]
    ours, other = batches
    assert (ours.state, ours.metadata, ours.counts) == ("in_progress", META, BatchCounts(2, 1, 0))
    assert (other.state, other.metadata) == ("completed", {})  # not submitted by Relay


async def test_an_unknown_batch_is_not_found(adapter: Any, cassette: Any) -> None:
    with cassette("batch_together_not_found"), pytest.raises(NotFoundError) as caught:
        await adapter.batch_status("00000000-0000-4000-8000-000000000000")
    assert caught.value.status_code == 404


def test_the_input_file_name_carries_the_count_and_any_metadata() -> None:
    odd = {"relay_job": "eval 7/ä&x=1", "relay_tag": "t.1"}
    name = input_file_name(3, odd)
    assert re.fullmatch(r"relay-batch-3\.[A-Za-z0-9_-]+\.jsonl", name)
    assert read_file_name(name) == (3, odd)
    assert read_file_name("survey_batch.jsonl") == (0, {})
    assert read_file_name("relay-batch-3.!!.jsonl") == (0, {})
    assert read_file_name(None) == (0, {})


async def test_presets_without_a_batch_api_refuse_batches(make_hub: Any, server: Any) -> None:
    adapter = make_hub().get("groq/llama-3.3-70b-versatile").adapter
    with pytest.raises(UnsupportedCapability, match="batch"):
        await adapter.submit_batch(two_requests(), metadata=META)
    with pytest.raises(UnsupportedCapability, match="batch"):
        await adapter.list_batches()
    # Their batch lines are the core's default (for the concurrent engine), not OpenAI's.
    assert "method" not in adapter.batch_line(two_requests()[0])
    assert server.requests == []
