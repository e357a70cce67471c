"""InvokeModel and InvokeModelWithResponseStream in Anthropic's Messages format, through
relay-anthropic's own mapping (``options.api: invoke``)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from bedrock_support import MODEL, anthropic_message, aws_error, chunk, exception, stream_answer

from relay_core import EndEvent, Hub, RateLimitError, TextDelta, Tool, ToolCallPart
from relay_core.testing import FakeServer

INVOKE = "providers:\n  bedrock:\n    options: {api: invoke, default_max_tokens: 512}\n"
TARGET = f"bedrock/{MODEL}"


def test_the_request_and_answer(make_hub: Callable[..., Hub]) -> None:
    server = FakeServer(httpx.Response(200, json=anthropic_message("Paris.")))
    answer = make_hub(server, INVOKE).chat(TARGET, "Capital of France?", system="Be brief.")
    request = server.requests[-1]
    assert request.url.path == f"/model/{MODEL}/invoke"
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert json.loads(request.content) == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 512,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}],
    }
    assert "x-api-key" not in request.headers
    assert "anthropic-version" not in request.headers
    assert answer.text == "Paris."
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (14, 4)
    assert answer.id == "msg_bdrk_01XFDUDYJgAACzvnptvVoYEL"


def test_tools_go_in_anthropic_form(make_hub: Callable[..., Hub]) -> None:
    body = anthropic_message(
        content=[{"type": "tool_use", "id": "toolu_bdrk_1", "name": "f", "input": {"x": 1}}],
        stop_reason="tool_use",
    )
    server = FakeServer(httpx.Response(200, json=body))
    answer = make_hub(server, INVOKE).chat(TARGET, "Hi", tools=[Tool("f")])
    assert json.loads(server.requests[-1].content)["tools"][0]["name"] == "f"
    assert answer.tool_calls == (ToolCallPart("toolu_bdrk_1", "f", {"x": 1}),)


def _events(text: str) -> list[bytes]:
    message = {key: value for key, value in anthropic_message("").items() if key != "content"}
    message["content"] = []
    message["usage"] = {"input_tokens": 14, "output_tokens": 1}
    return [
        chunk({"type": "message_start", "message": message}),
        chunk(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        *(
            chunk(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                }
            )
            for piece in (text[:3], text[3:])
        ),
        chunk({"type": "content_block_stop", "index": 0}),
        chunk(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 4},
            }
        ),
        chunk(
            {
                "type": "message_stop",
                "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": 14,
                    "outputTokenCount": 4,
                    "invocationLatency": 410,
                    "firstByteLatency": 200,
                },
            }
        ),
    ]


def test_a_stream_equals_the_answer(make_hub: Callable[..., Hub]) -> None:
    server = FakeServer(stream_answer(_events("Paris.")))
    events = list(make_hub(server, INVOKE).stream(TARGET, "Capital of France?"))
    request = server.requests[-1]
    assert request.url.path == f"/model/{MODEL}/invoke-with-response-stream"
    assert "stream" not in json.loads(request.content)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris."
    end = events[-1]
    assert isinstance(end, EndEvent)
    chat = make_hub(FakeServer(httpx.Response(200, json=anthropic_message("Paris."))), INVOKE)
    answer = chat.chat(TARGET, "Capital of France?")
    assert (end.response.content, end.response.usage) == (answer.content, answer.usage)


def test_an_exception_in_the_stream(make_hub: Callable[..., Hub]) -> None:
    frames = [*_events("Paris.")[:3], exception("throttlingException", "Too many tokens")]
    catalog = INVOKE.replace("bedrock:\n", "bedrock:\n    max_retries: 0\n")
    with pytest.raises(RateLimitError, match="Too many tokens"):
        list(make_hub(FakeServer(stream_answer(frames)), catalog).stream(TARGET, "Hi"))


def test_errors_are_typed_the_same_way(make_hub: Callable[..., Hub]) -> None:
    catalog = INVOKE.replace("bedrock:\n", "bedrock:\n    max_retries: 0\n")
    server = FakeServer(aws_error(429, "ThrottlingException", "Rate exceeded", retry_after="4"))
    with pytest.raises(RateLimitError) as caught:
        make_hub(server, catalog).chat(TARGET, "Hi")
    assert caught.value.retry_after == 4
