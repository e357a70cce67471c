"""The wire format as pure modules under a thin adapter: requests, answers, streams and
batch lines are plain functions of their JSON, testable without an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

from relay_core.plugin import EndEvent, Message, Request, SSEEvent, TextPart
from relay_mistral import _batches, _events, _parse, _payload


def test_a_request_and_its_answer_without_an_adapter() -> None:
    request = Request(model="mistral-small-latest", messages=(Message("user", (TextPart("Hi"),)),))
    assert _payload.payload(request, provider="acme", stream=True) == {
        "model": "mistral-small-latest",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }
    body = {
        "id": "r1",
        "choices": [{"message": {"content": "Hello"}, "finish_reason": "model_length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }
    response = _parse.response(body, "mistral-small-latest", "acme")
    assert (response.text, response.finish_reason, response.usage.input_tokens) == (
        "Hello",
        "length",
        3,
    )


async def test_a_stream_without_an_adapter() -> None:
    async def chunks() -> AsyncIterator[SSEEvent]:
        yield SSEEvent(data='{"id": "r1", "choices": [{"delta": {"content": "He"}}]}')
        yield SSEEvent(data='{"choices": [{"delta": {"content": "llo"}, "finish_reason": "stop"}]}')
        yield SSEEvent(data="[DONE]")

    seen = [e async for e in _events.stream_events(chunks(), model="m", provider="a", rules=())]
    assert isinstance(seen[-1], EndEvent)
    end = seen[-1].response
    assert (end.text, end.id, end.finish_reason) == ("Hello", "r1", "stop")


def test_a_batch_job_and_line_without_an_adapter() -> None:
    job = _batches.job_body("file-1", "m", {"run": "7"}, timeout_hours=None)
    assert job == {
        "input_files": ["file-1"],
        "model": "m",
        "endpoint": "/v1/chat/completions",
        "metadata": {"run": "7"},
    }
    batch = _batches.batch({"id": "j1", "status": "SUCCESS", "total_requests": 2}, "acme")
    assert (batch.id, batch.state, batch.counts.total) == ("j1", "completed", 2)
    line = {"custom_id": "k1", "response": {"status_code": 429, "body": {"message": "slow"}}}
    item = _batches.batch_item(line, model="m", provider="acme", rules=())
    assert (item.custom_id, item.error and item.error.status_code) == ("k1", 429)
