"""OpenAI's Batch API: submit (upload + create), every status, results from the output
and error files, cancel, list, unknown ids. Wire-format tests replay the hand-written
cassettes in cassettes/relay-openai/batch_*.yaml; the rest answer through MockTransport."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from relay_core import (
    BatchCounts,
    GenerationConfig,
    InvalidRequestError,
    NotFoundError,
    Request,
    TextPart,
    Tool,
    ToolCallPart,
    Usage,
)

META = {"relay_job": "eval-001", "relay_tag": "rly-7f3a9c2e"}
T0 = 1748944800.0
WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def two_requests() -> list[Request]:
    return [
        Request.from_prompt(
            "What is 2+2?",
            model="gpt-4.1-mini",
            system="Be brief.",
            custom_id="r1",
            config=GenerationConfig(temperature=0),
        ),
        Request.from_prompt(
            "Name a primary colour.",
            model="gpt-4.1-mini",
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
    """The OpenAI adapter of a hub that reaches the network (i.e. the cassettes)."""
    hub = make_hub(network=True)
    yield hub.get("openai/gpt-4.1-mini").adapter
    await hub.aclose()


async def test_submit_uploads_the_lines_then_creates_the_batch(adapter: Any, cassette: Any) -> None:
    requests = two_requests()
    with cassette("batch_submit") as recorded:
        batch = await adapter.submit_batch(requests, metadata=META)
    assert (batch.id, batch.provider, batch.state) == (
        "batch_6840b1c2d3e4f5a60718293a4b5c6d7e",
        "openai",
        "validating",
    )
    assert batch.counts == BatchCounts(0, 0, 0)
    assert (batch.created_at, batch.ended_at) == (T0, None)
    assert batch.metadata == META
    assert batch.raw["object"] == "batch"

    upload, create = recorded.requests
    assert (upload.method, upload.uri) == ("POST", "https://api.openai.com/v1/files")
    fields = form(upload)
    assert fields["purpose"] == "batch"
    assert fields["filename"] == "relay-batch.jsonl"
    lines = [json.loads(text) for text in fields["file"].splitlines()]
    assert lines == [adapter.batch_line(request) for request in requests]
    assert lines[0] == {
        "custom_id": "r1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4.1-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 2+2?"},
            ],
            "temperature": 0,
        },
    }
    assert (create.method, create.uri) == ("POST", "https://api.openai.com/v1/batches")
    assert json.loads(create.body) == {
        "input_file_id": "file-8Q1r4m6NcT2xW9bYvK3pZs",
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": META,
    }


_CHAT_ANSWER = {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}
_RESPONSES_ANSWER = {"status": "completed", "output": []}


@pytest.mark.parametrize(
    ("catalog", "url", "answer"),
    [
        ("", "/v1/chat/completions", _CHAT_ANSWER),
        (
            "providers:\n  openai:\n    options: {api: responses}\n",
            "/v1/responses",
            _RESPONSES_ANSWER,
        ),
    ],
)
def test_a_batch_line_holds_what_the_chat_path_sends(
    make_hub: Any, server: Any, catalog: str, url: str, answer: Any
) -> None:
    server.reply(answer)
    hub = make_hub(catalog)
    request = Request.from_prompt(
        "Weather in Paris?",
        model="openai/gpt-4.1-mini",
        system="Be brief.",
        tools=[WEATHER],
        config=GenerationConfig(temperature=0.2, max_tokens=50),
        provider_kwargs={"user": "eval"},
        custom_id="w1",
    )
    hub.chat(request)
    handle = hub.get("openai/gpt-4.1-mini")
    line = handle.adapter.batch_line(handle.prepare(request))
    assert line == {"custom_id": "w1", "method": "POST", "url": url, "body": server.payload}


async def test_one_batch_goes_to_one_endpoint(make_hub: Any, server: Any) -> None:
    adapter = make_hub().get("openai/gpt-4.1-mini").adapter
    chat, responses = two_requests()
    responses = Request.from_prompt(
        "Hi", model="gpt-4.1-mini", custom_id="q", provider_kwargs={"openai": {"api": "responses"}}
    )
    with pytest.raises(InvalidRequestError, match="one batch goes to one endpoint"):
        await adapter.submit_batch([chat, responses], metadata=META)
    assert server.requests == []  # refused before anything was uploaded


_IDS = {
    state: f"batch_6841{n:02d}a0b1c2d3e4f5a6b7c8d9e0f1a2b3"
    for n, state in enumerate(
        [
            "validating",
            "failed",
            "in_progress",
            "finalizing",
            "completed",
            "expired",
            "cancelling",
            "cancelled",
        ]
    )
}


async def test_every_batch_status_maps_to_its_state(adapter: Any, cassette: Any) -> None:
    expected = {
        "validating": (BatchCounts(0, 0, 0), None),
        "failed": (BatchCounts(0, 0, 0), T0 + 20),
        "in_progress": (BatchCounts(100, 40, 2), None),
        "finalizing": (BatchCounts(100, 97, 3), None),
        "completed": (BatchCounts(100, 97, 3), T0 + 3100),
        "expired": (BatchCounts(100, 60, 40), T0 + 86400),
        "cancelling": (BatchCounts(100, 10, 0), None),
        "cancelled": (BatchCounts(100, 10, 90), T0 + 660),
    }
    with cassette("batch_status"):
        for state, batch_id in _IDS.items():
            batch = await adapter.batch_status(batch_id)
            assert (batch.id, batch.state) == (batch_id, state)
            assert (batch.counts, batch.ended_at) == expected[state], state
            assert batch.created_at == T0
            assert batch.done == (state in ("failed", "completed", "expired", "cancelled"))
            assert batch.metadata == {}  # these carry none (null)
            assert batch.raw["status"] == state


async def test_results_read_the_output_and_the_error_file(adapter: Any, cassette: Any) -> None:
    with cassette("batch_results"):
        items = [
            item async for item in adapter.batch_results("batch_6842c3d4e5f6a7b8c9d0e1f2a3b4c5d6")
        ]
    by_id = {item.custom_id: item for item in items}
    assert [item.custom_id for item in items] == ["r1", "r2", "r3", "r4", "r5"]

    four = by_id["r1"].response
    assert four.content == (TextPart("4."),)
    assert (four.id, four.model, four.finish_reason) == (
        "chatcmpl-BeR1a2b3c4d5e6f7g8h9i0j1",
        "gpt-4.1-mini-2025-04-14",
        "stop",
    )
    assert four.usage == Usage(21, 3)
    assert by_id["r1"].raw["response"]["request_id"] == "req_7a1c0e5b2d9f4a8e9c3b6d1f0a2e4c6b"

    called = by_id["r2"].response
    assert called.tool_calls == (
        ToolCallPart("call_Qx7dV1pZk9R2aL4mN6bT8cY0", "get_weather", {"city": "Paris"}),
    )
    assert called.finish_reason == "tool_calls"

    garbled = by_id["r3"]  # a line cut mid-body: failed, kept, the others unaffected
    assert garbled.response is None
    assert garbled.error.kind == "MalformedResponse"
    assert "line 3 of the output file file-Ro4Tp6Uq8Vr1Ws3Xt5Yu7Zv" in garbled.error.message
    assert isinstance(garbled.raw, str)
    assert garbled.raw.startswith('{"id": "batch_req_6842e0a1b2c3", "custom_id": "r3"')

    too_long = by_id["r4"].error
    assert (too_long.kind, too_long.status_code, too_long.retryable) == (
        "ContextWindowExceeded",
        400,
        False,
    )
    assert "maximum context length" in too_long.message
    assert by_id["r4"].raw["response"]["status_code"] == 400

    expired = by_id["r5"].error
    assert (expired.kind, expired.status_code, expired.retryable) == ("expired", None, True)
    assert "completion window expired" in expired.message


async def test_results_of_a_responses_api_batch(adapter: Any, cassette: Any) -> None:
    with cassette("batch_results_responses"):
        [item] = [
            item async for item in adapter.batch_results("batch_6843d4e5f6a7b8c9d0e1f2a3b4c5d6e7")
        ]
    assert item.custom_id == "q1"
    assert item.response.content == (TextPart("Paris."),)
    assert item.response.id == "resp_6843e1f2a3b4c5d6e7f8091a2b3c4d5e"
    assert item.response.usage == Usage(19, 3)


async def test_results_of_an_unfinished_batch_are_refused(make_hub: Any, server: Any) -> None:
    server.reply({"id": "batch_1", "object": "batch", "status": "in_progress"})
    adapter = make_hub().get("openai/gpt-4.1-mini").adapter
    with pytest.raises(InvalidRequestError, match="not finished"):
        [item async for item in adapter.batch_results("batch_1")]


async def test_error_lines_without_an_http_answer(make_hub: Any, server: Any) -> None:
    server.reply(
        {"id": "batch_2", "object": "batch", "status": "cancelled", "error_file_id": "file-e"}
    )

    def failed(custom_id: str, response: Any = None, **error: str) -> dict[str, Any]:
        return {"id": custom_id, "custom_id": custom_id, "response": response, "error": error}

    slow = {"status_code": 429, "request_id": "r", "body": {"error": {"message": "Slow down."}}}
    lines = [
        failed("c1", code="batch_cancelled", message="This request was cancelled."),
        failed("c2", type="invalid_request_error", message="Bad line."),
        failed("c3", code="server_error", message="Oops."),
        {**failed("c4", slow), "error": None},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    server.answers.append(httpx.Response(200, content=text.encode()))
    adapter = make_hub().get("openai/gpt-4.1-mini").adapter
    items = [item async for item in adapter.batch_results("batch_2")]
    kinds = [(i.custom_id, i.error.kind, i.error.status_code, i.error.retryable) for i in items]
    assert kinds == [
        ("c1", "cancelled", None, True),
        ("c2", "InvalidRequestError", None, False),
        ("c3", "ProviderUnavailable", None, True),
        ("c4", "RateLimitError", 429, True),
    ]
    assert str(server.requests[-1].url) == "https://api.openai.com/v1/files/file-e/content"


async def test_cancel_a_running_batch_and_a_finished_one(adapter: Any, cassette: Any) -> None:
    with cassette("batch_cancel"):
        running = await adapter.cancel_batch("batch_6844e5f6a7b8c9d0e1f2a3b4c5d6e7f8")
        finished = await adapter.cancel_batch("batch_6845f6a7b8c9d0e1f2a3b4c5d6e7f8a9")
    assert (running.state, running.metadata) == ("cancelling", META)
    assert (finished.state, finished.ended_at) == ("completed", T0 + 100)


async def test_list_batches_newest_first_with_their_metadata(adapter: Any, cassette: Any) -> None:
    with cassette("batch_list"):
        batches = await adapter.list_batches()
    assert [b.id for b in batches] == [
        "batch_6840b1c2d3e4f5a60718293a4b5c6d7e",
        "batch_683fa0b1c2d3e4f5a6b7c8d9e0f1a2b3",
    ]
    assert batches[0].metadata == META  # what submit_batch was given
    assert (batches[0].state, batches[0].counts) == ("in_progress", BatchCounts(2, 0, 0))
    assert batches[1].metadata == {"project": "triage"}


async def test_an_unknown_batch_is_not_found(adapter: Any, cassette: Any) -> None:
    with cassette("batch_not_found"), pytest.raises(NotFoundError) as caught:
        await adapter.batch_status("batch_0000000000000000000000000000nope")
    assert caught.value.status_code == 404
    assert "No batch found" in str(caught.value)
