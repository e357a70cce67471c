"""The adapter helpers for provider batch output: no line is ever lost."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from relay_core.batching import error_info, jsonl, parse_lines
from relay_core.errors import ProviderUnavailable
from relay_core.http import HttpClient, HttpPool
from relay_core.providers import ProviderSettings
from relay_core.types import BatchItem, Response


def _item(line: Any) -> BatchItem:
    return BatchItem(line["custom_id"], response=Response(content=line["text"]), raw=line)


def _collect(lines: Any) -> list[BatchItem]:
    async def run() -> list[BatchItem]:
        return [item async for item in parse_lines(lines, _item, source="output file")]

    return asyncio.run(run())


def test_jsonl_is_one_compact_object_per_line() -> None:
    data = jsonl([{"custom_id": "a", "text": "é"}, {"custom_id": "b"}])
    assert data == '{"custom_id":"a","text":"é"}\n{"custom_id":"b"}\n'.encode()


def test_good_lines_become_items_and_blank_lines_are_skipped() -> None:
    items = _collect(['{"custom_id": "a", "text": "hi"}', "", '{"custom_id": "b", "text": "yo"}'])
    assert [(i.custom_id, i.response.text if i.response else None) for i in items] == [
        ("a", "hi"),
        ("b", "yo"),
    ]


def test_a_line_that_is_not_json_is_a_failed_item_keeping_its_text() -> None:
    cut = '{"custom_id": "r-7", "text": "the answer was cut'
    items = _collect(['{"custom_id": "a", "text": "hi"}', cut, '{"custom_id": "c", "text": "x"}'])
    assert [i.custom_id for i in items] == ["a", "r-7", "c"]
    failed = items[1]
    assert failed.response is None
    assert failed.error is not None
    assert failed.error.kind == "MalformedResponse"
    assert "line 2 of the output file" in failed.error.message
    assert failed.raw == cut


def test_a_line_the_parser_rejects_is_a_failed_item_keeping_its_json() -> None:
    items = _collect(['{"custom_id": "r-1", "unexpected": true}'])
    [failed] = items
    assert failed.custom_id == "r-1"
    assert failed.error is not None
    assert "KeyError" in failed.error.message
    assert failed.raw == {"custom_id": "r-1", "unexpected": True}


def test_a_line_without_a_recoverable_custom_id_has_an_empty_one() -> None:
    [failed] = _collect(["garbage"])
    assert failed.custom_id == ""
    assert failed.error is not None


def test_async_line_sources_work_too() -> None:
    async def lines() -> Any:
        yield json.dumps({"custom_id": "z", "text": "async"})

    [item] = _collect(lines())
    assert item.response is not None
    assert item.response.text == "async"


def test_error_info_classifies_and_masks() -> None:
    key = "sk-proj-" + "A" * 40
    info = error_info(429, {"error": {"message": f"slow down {key}"}}, provider="acme")
    assert info.kind == "RateLimitError"
    assert info.retryable
    assert info.status_code == 429
    assert key not in info.message
    assert error_info(400, "maximum context length exceeded", provider="acme").kind == (
        "ContextWindowExceeded"
    )


def test_stream_lines_yields_lines_and_raises_typed_errors() -> None:
    body = b"".join(f'{{"n": {n}}}\n'.encode() for n in range(1000))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/broken":
            return httpx.Response(503, text="down")
        return httpx.Response(200, content=body)

    client = HttpClient(
        HttpPool(transport=httpx.MockTransport(handler)),
        ProviderSettings(name="acme"),
        base_url="https://acme.test",
    )

    async def run() -> list[str]:
        return [line async for line in client.stream_lines("GET", "/file")]

    lines = asyncio.run(run())
    assert len(lines) == 1000
    assert lines[-1] == '{"n": 999}'

    async def broken() -> None:
        async for _ in client.stream_lines("GET", "/broken"):
            pass

    with pytest.raises(ProviderUnavailable):
        asyncio.run(broken())


def test_upload_sends_a_reproducible_multipart_form_and_returns_the_json() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        assert request.headers["content-type"].startswith("multipart/form-data; boundary=relay-")
        return httpx.Response(200, json={"id": "file-1", "bytes": 12})

    client = HttpClient(
        HttpPool(transport=httpx.MockTransport(handler)),
        ProviderSettings(name="acme"),
        base_url="https://acme.test",
    )
    data = b'{"a": 1}\n{"b": 2}\n'

    async def upload() -> object:
        return await client.upload(
            "/files",
            data,
            filename="in.jsonl",
            media_type="application/jsonl",
            fields={"purpose": "batch"},
        )

    assert asyncio.run(upload()) == {"id": "file-1", "bytes": 12}
    asyncio.run(upload())
    # The same lines upload as the same bytes, so a recorded upload replays.
    assert bodies[0] == bodies[1]
    text = bodies[0].decode()
    assert 'name="purpose"\r\n\r\nbatch\r\n' in text
    assert 'name="file"; filename="in.jsonl"\r\nContent-Type: application/jsonl' in text
    assert text.index('name="purpose"') < text.index('name="file"')
    assert '{"a": 1}\n{"b": 2}\n' in text
