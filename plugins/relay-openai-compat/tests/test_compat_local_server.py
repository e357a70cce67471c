"""A real HTTP round trip: an OpenAI-compatible server on 127.0.0.1 (stdlib http.server,
started and stopped by each test) called through the generic ``openai-compat`` entry."""

from __future__ import annotations

from typing import Any

from relay_core import EndEvent, TextDelta, TextPart, ThinkingDelta, ThinkingPart, Usage


def catalog(base_url: str, options: str = "") -> str:
    text = f"providers:\n  local:\n    plugin: openai-compat\n    base_url: {base_url}\n"
    return text + (f"    options: {options}\n" if options else "")


ANSWER = {
    "id": "chatcmpl-local-1",
    "object": "chat.completion",
    "created": 1,
    "model": "qwen3-8b",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "reasoning_content": "Two plus two.",
                "content": "4",
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
}


def piece(delta: Any, finish: str | None = None) -> Any:
    return {
        "id": "chatcmpl-local-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "qwen3-8b",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def test_chat_against_a_local_server(local_server: Any, make_hub: Any) -> None:
    local_server.answer = ANSWER
    hub = make_hub(catalog(local_server.base_url), network=True)
    said = hub.chat("local/qwen3-8b", "2+2?", system="Be brief.", max_tokens=32)
    assert said.content == (ThinkingPart("Two plus two."), TextPart("4"))
    assert (said.provider, said.model, said.id) == ("local", "qwen3-8b", "chatcmpl-local-1")
    assert said.usage == Usage(12, 9)
    [request] = local_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert "authorization" not in request["headers"]
    assert request["body"] == {
        "model": "qwen3-8b",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "2+2?"},
        ],
        "max_tokens": 32,
    }


def test_stream_against_a_local_server(local_server: Any, make_hub: Any) -> None:
    local_server.stream = [
        piece({"role": "assistant", "content": ""}),
        piece({"reasoning_content": "Two plus "}),
        piece({"reasoning_content": "two."}),
        piece({"content": "4"}),
        piece({}, finish="stop"),
        {
            "id": "chatcmpl-local-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "qwen3-8b",
            "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
        },
    ]
    hub = make_hub(catalog(local_server.base_url), network=True)
    events = list(hub.stream("local/qwen3-8b", "2+2?"))
    assert [e.text for e in events if isinstance(e, ThinkingDelta)] == ["Two plus ", "two."]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["4"]
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.content == (ThinkingPart("Two plus two."), TextPart("4"))
    assert end.response.usage == Usage(12, 9)
    [request] = local_server.requests
    assert request["headers"]["accept"] == "text/event-stream"
    assert request["body"]["stream_options"] == {"include_usage": True}


def test_stream_options_switched_off_for_a_strict_server(local_server: Any, make_hub: Any) -> None:
    local_server.stream = [piece({"content": "4"}, finish="stop")]
    hub = make_hub(catalog(local_server.base_url, "{stream_usage: false}"), network=True)
    events = list(hub.stream("local/qwen3-8b", "2+2?"))
    assert events[-1].response.text == "4"
    assert "stream_options" not in local_server.requests[0]["body"]


def test_a_key_given_to_a_local_server_is_sent(
    local_server: Any, make_hub: Any, monkeypatch: Any
) -> None:
    # vLLM and llama.cpp take --api-key; then the catalog names one.
    monkeypatch.setenv("LOCAL_VLLM_KEY", "local-key-0123456789abcdefghij")
    local_server.answer = ANSWER
    text = catalog(local_server.base_url) + "    api_key: $env.LOCAL_VLLM_KEY\n"
    make_hub(text, network=True).chat("local/qwen3-8b", "2+2?")
    headers = local_server.requests[0]["headers"]
    assert headers["authorization"] == "Bearer local-key-0123456789abcdefghij"
