"""The OpenAI wire format to Relay's types and back, as pure functions."""

from __future__ import annotations

import base64
import json

import pytest

import relay_core.errors as errors
from relay_core.types import (
    Citation,
    CitationDelta,
    DocumentPart,
    EndEvent,
    ImagePart,
    Response,
    ServerToolCallDelta,
    ServerToolCallPart,
    ServerToolResultDelta,
    ServerToolResultPart,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    TokenLogprob,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageEvent,
)
from relay_serve._wire import (
    ChunkEncoder,
    WireError,
    completion,
    error_answer,
    parse_chat,
)

PNG = base64.b64encode(b"\x89PNG fake").decode()


def test_a_whole_conversation_becomes_one_request() -> None:
    call = parse_chat(
        {
            "model": "fast",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is here?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
                        },
                        {
                            "type": "file",
                            "file": {
                                "filename": "a.pdf",
                                "file_data": f"data:application/pdf;base64,{PNG}",
                            },
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "look", "arguments": '{"x": 1}'},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "look", "arguments": ""},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "one"},
                {
                    "role": "tool",
                    "tool_call_id": "c2",
                    "content": [{"type": "text", "text": "two"}],
                },
            ],
            "temperature": 0.5,
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "stop": "END",
            "seed": 3,
            "reasoning_effort": "low",
            "user": "u-1",
            "metadata": {"team": "evals"},
            "parallel_tool_calls": True,
        },
        request_id="rid-1",
    )
    request = call.request
    assert call.model == request.model == "fast"
    assert request.custom_id == "rid-1"
    assert request.system == "Be brief.\n\nUse metric."
    user, assistant, tools = request.messages
    assert user.content == (
        TextPart("What is here?"),
        ImagePart(data=b"\x89PNG fake", media_type="image/png", detail="low"),
        DocumentPart(data=b"\x89PNG fake", media_type="application/pdf", name="a.pdf"),
    )
    assert assistant.content == (
        ToolCallPart(id="c1", name="look", arguments={"x": 1}),
        ToolCallPart(id="c2", name="look", arguments={}),
    )
    # Consecutive tool messages answer one turn: one message.
    assert tools.role == "tool"
    assert tools.content == (ToolResultPart("c1", "one"), ToolResultPart("c2", "two"))
    config = request.config
    assert (config.temperature, config.max_tokens, config.stop, config.seed) == (
        0.5,
        20,
        ("END",),
        3,
    )
    assert config.reasoning == "low"
    assert request.metadata == {"user": "u-1", "metadata": {"team": "evals"}}
    assert not call.stream


def test_tools_choice_and_formats() -> None:
    tool = {
        "type": "function",
        "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
    }
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [tool]}
    call = parse_chat(
        {**base, "tool_choice": {"type": "function", "function": {"name": "f"}}}, request_id="r"
    )
    assert call.request.tools[0].name == "f"
    assert call.request.tools[0].parameters == {"type": "object"}
    assert call.request.tool_choice == "f"
    assert parse_chat({**base, "tool_choice": "required"}, request_id="r").request.tool_choice == (
        "required"
    )
    json_object = parse_chat({**base, "response_format": {"type": "json_object"}}, request_id="r")
    assert json_object.request.response_schema is not None
    assert json_object.request.response_schema.schema == {"type": "object"}
    text = parse_chat({**base, "response_format": {"type": "text"}}, request_id="r")
    assert text.request.response_schema is None
    off = parse_chat({**base, "reasoning_effort": "none"}, request_id="r")
    assert off.request.config.reasoning == 0
    streaming = parse_chat(
        {**base, "stream": True, "stream_options": {"include_usage": True}}, request_id="r"
    )
    assert streaming.stream
    assert streaming.include_usage


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": 5}, "stop"),
        ({"seed": "x"}, "seed"),
        ({"frequency_penalty": 3}, "frequency_penalty"),
        ({"top_logprobs": 50}, "top_logprobs"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
         "messages[0].content[0].image_url.url"),
        ({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]},
         "messages[0].content[0].image_url.url"),
        ({"messages": [{"role": "assistant", "content": ""}]}, "messages[0].content"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
    ],
)  # fmt: skip
def test_wrong_values_name_their_field(change: dict[str, object], param: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **change}
    with pytest.raises(WireError) as caught:
        parse_chat(body, request_id="r")
    assert caught.value.param == param


def test_a_completion_carries_text_tool_calls_reasoning_and_usage() -> None:
    response = Response(
        content=(
            ThinkingPart("hmm"),
            TextPart("Calling."),
            ToolCallPart(id="c1", name="f", arguments={"a": [1, 2]}),
        ),
        finish_reason="tool_calls",
        usage=Usage(10, 5, cached_input_tokens=4, reasoning_tokens=2),
    )
    body = completion(response, id="rid", model="fast", created=123)
    assert body["id"] == "rid"
    assert body["object"] == "chat.completion"
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "Calling."
    assert message["reasoning_content"] == "hmm"
    (call,) = message["tool_calls"]
    assert call["type"] == "function"
    assert json.loads(call["function"]["arguments"]) == {"a": [1, 2]}
    assert body["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


def test_sampling_settings_reach_the_request_and_logprobs_come_back() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "frequency_penalty": 0.5,
        "presence_penalty": -1,
        "logprobs": True,
        "top_logprobs": 1,
        "top_k": 20,
    }
    config = parse_chat(body, request_id="r").request.config
    assert (config.frequency_penalty, config.presence_penalty, config.top_k) == (0.5, -1, 20)
    assert (config.logprobs, config.top_logprobs) == (True, 1)
    answer = Response(content="hé", logprobs=[TokenLogprob("hé", -0.5, [("hé", -0.5)])])
    (choice,) = completion(answer, id="rid", model="m", created=1)["choices"]
    assert choice["logprobs"] == {
        "content": [
            {
                "token": "hé",
                "logprob": -0.5,
                "bytes": [104, 195, 169],
                "top_logprobs": [{"token": "hé", "logprob": -0.5, "bytes": [104, 195, 169]}],
            }
        ],
        "refusal": None,
    }


@pytest.mark.parametrize(
    ("relay", "wire"), [("error", "stop"), ("unknown", "stop"), ("length", "length")]
)
def test_finish_reasons_map_onto_openai_s_words(relay: str, wire: str) -> None:
    body = completion(Response(finish_reason=relay), id="r", model="m", created=0)  # type: ignore[arg-type]
    assert body["choices"][0]["finish_reason"] == wire


def test_the_chunk_encoder_follows_the_stream_shape() -> None:
    encoder = ChunkEncoder("rid", "fast", 7, include_usage=True)
    chunks = [
        chunk
        for event in (
            ThinkingDelta("think "),
            TextDelta("Hi"),
            ToolCallDelta(0, id="c1", name="f", arguments='{"a"'),
            ToolCallDelta(0, arguments=": 1}"),
            UsageEvent(Usage(3, 4)),
            EndEvent(Response(content="Hi", finish_reason="tool_calls", usage=Usage(3, 4))),
        )
        for chunk in encoder.encode(event)
    ]
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "think "},
        {"content": "Hi"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "c1",
                    "type": "function",
                    "function": {"arguments": '{"a"', "name": "f"},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]},
        {},
        None,
    ]
    assert [c["choices"][0]["finish_reason"] if c["choices"] else "-" for c in chunks][-2:] == [
        "tool_calls",
        "-",
    ]
    assert {c["id"] for c in chunks} == {"rid"}
    assert [c["usage"] for c in chunks[:-1]] == [None] * 6
    assert chunks[-1]["usage"]["total_tokens"] == 7


def test_server_tools_stay_out_of_the_openai_answer_and_their_text_stays_in() -> None:
    # OpenAI's chat wire has no place for a tool the upstream ran itself: sent as a
    # tool call, a client would try to run it. The text grounded in it is answer text;
    # its citations have no Chat Completions field.
    search = ServerToolCallPart("srvtoolu_1", "web_search", {"query": "Paris"})
    found = ServerToolResultPart("srvtoolu_1", "web_search_tool_result", [{"url": "u"}])
    source = Citation(url="https://example.com", title="T")
    response = Response(
        content=(search, found, TextPart("Sunny.", citations=[source])), usage=Usage(3, 4)
    )
    message = completion(response, id="rid", model="fast", created=1)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Sunny.", "refusal": None}
    encoder = ChunkEncoder("rid", "fast", 7, include_usage=False)
    events = (
        ServerToolCallDelta(0, id="srvtoolu_1", name="web_search", arguments='{"query"'),
        ServerToolResultDelta("srvtoolu_1", "web_search_tool_result", [{"url": "u"}]),
        CitationDelta(source),
        TextDelta("Sunny."),
        EndEvent(response),
    )
    chunks = [chunk for event in events for chunk in encoder.encode(event)]
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Sunny."},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


LEAK = "sk-upstreamSECRET0123456789abcdef"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.UnknownAlias("x"), 404, "model_not_found"),
        (errors.PluginNotInstalled("acme", "relay-acme"), 404, "model_not_found"),
        (errors.RateLimitError(LEAK, retry_after=0.2), 429, "rate_limit_exceeded"),
        (errors.QuotaExceeded(LEAK), 429, "insufficient_quota"),
        (errors.ContextWindowExceeded("too long"), 400, "context_length_exceeded"),
        (errors.ContentPolicyError("refused"), 400, "content_policy_violation"),
        (errors.InvalidRequestError("bad"), 400, None),
        (errors.UnsupportedCapability("mock", "vision"), 400, "unsupported_capability"),
        (errors.GuardrailViolation("pii", "no"), 400, "guardrail_violation"),
        (errors.AuthenticationError(LEAK), 502, "upstream_authentication_failed"),
        (errors.ProviderUnavailable(LEAK), 502, "upstream_unavailable"),
        (errors.MalformedResponse(LEAK), 502, "upstream_malformed_response"),
        (errors.NotFoundError(LEAK), 502, "upstream_not_found"),
        (errors.Timeout(LEAK), 504, "upstream_timeout"),
        (
            errors.CredentialError("$env.OPENAI_API_KEY is not set"),
            503,
            "upstream_credentials_missing",
        ),
        (RuntimeError(f"boom {LEAK}"), 500, None),
    ],
)
def test_every_error_has_its_status_and_code(
    error: Exception, status: int, code: str | None
) -> None:
    answer = error_answer(error, "rid-9")
    assert answer.status == status
    assert answer.body["error"]["code"] == code
    assert LEAK not in json.dumps(answer.body)
    if status >= 500:
        assert "rid-9" in answer.body["error"]["message"]
        assert answer.body["error"]["type"] == "server_error"
    if isinstance(error, errors.RateLimitError):
        assert answer.headers == {"retry-after": "1"}
