"""Converse and ConverseStream: the request body, the answer, streamed events equal to
the answer, and every failure as Relay's typed error."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from bedrock_support import (
    MODEL,
    anthropic_message,
    aws_error,
    converse,
    event,
    exception,
    stream_answer,
    text_stream,
)

from relay_bedrock._converse import converse_payload
from relay_core import (
    AuthenticationError,
    ContextWindowExceeded,
    DocumentPart,
    EndEvent,
    Hub,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
    NotFoundError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    Request,
    TextDelta,
    ThinkingDelta,
    ThinkingPart,
    Timeout,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    UsageEvent,
)
from relay_core.testing import FakeServer

TARGET = f"bedrock/{MODEL}"
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def _body(server: FakeServer) -> Any:
    return json.loads(server.requests[-1].content)


def test_the_request_body(make_hub: Callable[..., Hub]) -> None:
    server = FakeServer(httpx.Response(200, json=converse({"text": "ok"})))
    history = [
        Message.user("Weather in Paris?"),
        Message.assistant(
            ThinkingPart("Use the tool.", signature="c2lnbmVk"),
            ToolCallPart("tooluse_1", "get_weather", {"city": "Paris"}),
        ),
        Message.tool(ToolResultPart("tooluse_1", "18C, sunny")),
        Message.tool(ToolResultPart("tooluse_2", "failed", is_error=True)),
        Message.user(
            ImagePart(data=b"\x89PNG", media_type="image/png"),
            DocumentPart(data=b"%PDF", name="Q3 report_final.pdf"),
        ),
    ]
    make_hub(server).chat(
        TARGET,
        history,
        system="Be brief.",
        max_tokens=200,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        seed=7,
        tools=[WEATHER],
        tool_choice="required",
        provider_kwargs={
            "guardrailConfig": {"guardrailIdentifier": "gr1", "guardrailVersion": "1"}
        },
    )
    assert _body(server) == {
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "reasoningContent": {
                            "reasoningText": {"text": "Use the tool.", "signature": "c2lnbmVk"}
                        }
                    },
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        }
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "18C, sunny"}]}},
                    {
                        "toolResult": {
                            "toolUseId": "tooluse_2",
                            "content": [{"text": "failed"}],
                            "status": "error",
                        }
                    },
                    {"image": {"format": "png", "source": {"bytes": "iVBORw=="}}},
                    {
                        "document": {
                            "format": "pdf",
                            "name": "Q3 report final pdf",
                            "source": {"bytes": "JVBERg=="},
                        }
                    },
                ],
            },
        ],
        "inferenceConfig": {
            "maxTokens": 200,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Current weather for a city.",
                        "inputSchema": {"json": WEATHER.parameters},
                    }
                }
            ],
            "toolChoice": {"any": {}},
        },
        "guardrailConfig": {"guardrailIdentifier": "gr1", "guardrailVersion": "1"},
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"auto": {}}), ("get_weather", {"tool": {"name": "get_weather"}})],
)
def test_tool_choice(make_hub: Callable[..., Hub], choice: str, expected: Any) -> None:
    server = FakeServer(httpx.Response(200, json=converse({"text": "ok"})))
    make_hub(server).chat(TARGET, "Hi", tools=[WEATHER], tool_choice=choice)
    assert _body(server)["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_leaves_the_tools_out(make_hub: Callable[..., Hub]) -> None:
    server = FakeServer(httpx.Response(200, json=converse({"text": "ok"})))
    make_hub(server).chat(TARGET, "Hi", tools=[WEATHER], tool_choice="none")
    assert "toolConfig" not in _body(server)


def test_reasoning_asks_for_claude_thinking(make_hub: Callable[..., Hub]) -> None:
    server = FakeServer(httpx.Response(200, json=converse({"text": "ok"})))
    make_hub(server).chat(
        TARGET,
        "Hi",
        reasoning="low",
        provider_kwargs={"additionalModelRequestFields": {"top_k": 5}},
    )
    body = _body(server)
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "top_k": 5,
    }
    assert body["inferenceConfig"] == {"maxTokens": 4096 + 2048}


def _dropped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "sampling settings dropped" in r.getMessage()]


@pytest.mark.parametrize("api", ["converse", "invoke"])
def test_sampling_settings_claude_refuses_while_thinking_are_dropped(
    make_hub: Callable[..., Hub], caplog: pytest.LogCaptureFixture, api: str
) -> None:
    # Claude answers a temperature other than 1 (or top_p under 0.95) with a 400 when
    # thinking is on; a catalog default plus a call's reasoning= is enough to send one.
    model = f"anthropic.claude-sonnet-4-sampling-{api}"
    catalog = f"""
providers:
  bedrock:
    options: {{api: {api}}}
models:
  claude:
    target: bedrock/{model}
    params: {{temperature: 0.2, top_p: 0.9}}
"""
    caplog.set_level(logging.WARNING, logger="relay")
    answer = converse({"text": "ok"}) if api == "converse" else anthropic_message("ok")
    server = FakeServer(httpx.Response(200, json=answer), httpx.Response(200, json=answer))
    hub = make_hub(server, catalog)
    hub.chat("claude", "Think", reasoning="low")
    body = _body(server)
    sent = body.get("inferenceConfig", body)
    assert not {"temperature", "top_p", "topP"} & set(sent)
    (warning,) = _dropped(caplog)
    for word in ("bedrock", model, "temperature", "top_p", "extended thinking"):
        assert word in warning
    hub.chat("claude", "Hi")  # thinking off: the catalog's settings go out
    body = _body(server)
    assert body.get("inferenceConfig", body)["temperature"] == 0.2


def test_thinking_turned_on_through_additional_fields_drops_them_too(
    make_hub: Callable[..., Hub], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="relay")
    server = FakeServer(httpx.Response(200, json=converse({"text": "ok"})))
    make_hub(server).chat(
        "bedrock/anthropic.claude-sampling-fields",
        "Think",
        temperature=0.5,
        top_p=0.97,
        provider_kwargs={
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}
        },
    )
    assert _body(server)["inferenceConfig"] == {"topP": 0.97}  # 0.95..1 is accepted
    assert len(_dropped(caplog)) == 1


@pytest.mark.parametrize("api", ["converse", "invoke"])
@pytest.mark.parametrize("choice", ["required", "get_weather"])
def test_a_forced_tool_choice_with_thinking_is_refused_before_sending(
    make_hub: Callable[..., Hub], api: str, choice: str
) -> None:
    server = FakeServer(httpx.Response(200, json=converse({"text": "ok"})))
    catalog = f"providers:\n  bedrock:\n    options: {{api: {api}}}\n"
    with pytest.raises(InvalidRequestError, match="does not allow with extended thinking"):
        make_hub(server, catalog).chat(
            TARGET, "Weather?", tools=[WEATHER], tool_choice=choice, reasoning="low"
        )
    assert server.requests == []


def test_a_schema_with_thinking_is_refused_before_sending_naming_the_provider(
    make_hub: Callable[..., Hub],
) -> None:
    server = FakeServer(httpx.Response(200, json=converse({"text": "ok"})))
    with pytest.raises(InvalidRequestError, match="structured output forces") as caught:
        make_hub(server).chat(
            TARGET, "Weather?", response_schema={"type": "object"}, reasoning="low"
        )
    assert caught.value.provider == "bedrock"
    assert server.requests == []


def test_an_invalid_model_id_without_the_error_type_header_is_not_found(
    make_hub: Callable[..., Hub],
) -> None:
    # What Bedrock may answer for an unknown model id (or one the region does not
    # offer): NotFoundError, so a fallback group tries its next member.
    invalid = httpx.Response(400, json={"message": "The provided model identifier is invalid."})
    server = FakeServer(invalid, invalid, httpx.Response(200, json=converse({"text": "from b"})))
    catalog = """
providers:
  bedrock: {max_retries: 0}
models:
  a: bedrock/anthropic.claude-nonexistent-v9:0
  b: bedrock/anthropic.claude-3-5-haiku-20241022-v1:0
groups:
  either: {strategy: fallback, members: [a, b]}
"""
    hub = make_hub(server, catalog)
    with pytest.raises(NotFoundError, match="provided model identifier is invalid"):
        hub.chat("a", "Hi")
    assert hub.chat("either", "Hi").text == "from b"
    paths = [request.url.path for request in server.requests]
    assert paths == [
        "/model/anthropic.claude-nonexistent-v9:0/converse",
        "/model/anthropic.claude-nonexistent-v9:0/converse",
        "/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse",
    ]


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (ImagePart(url="https://example.test/a.png"), "bytes or from S3"),
        (ImagePart(data=b"x", media_type="image/bmp"), "PNG, JPEG, GIF and WebP"),
        (DocumentPart(data=b"x", media_type="application/zip"), "not 'application/zip'"),
    ],
)
def test_content_bedrock_cannot_read_is_refused(
    make_hub: Callable[..., Hub], part: Any, message: str
) -> None:
    server = FakeServer(httpx.Response(200, json=converse({"text": "ok"})))
    with pytest.raises(InvalidRequestError, match=message):
        make_hub(server).chat(TARGET, Message.user("see", part))
    assert server.requests == []


def test_an_s3_image_is_referenced(make_hub: Callable[..., Hub]) -> None:
    server = FakeServer(httpx.Response(200, json=converse({"text": "ok"})))
    make_hub(server).chat(TARGET, Message.user(ImagePart(url="s3://bucket/cat.jpeg")))
    image = _body(server)["messages"][0]["content"][0]["image"]
    assert image == {"format": "jpeg", "source": {"s3Location": {"uri": "s3://bucket/cat.jpeg"}}}


def test_the_answer(make_hub: Callable[..., Hub]) -> None:
    usage = {
        "inputTokens": 10,
        "outputTokens": 30,
        "totalTokens": 140,
        "cacheReadInputTokens": 80,
        "cacheWriteInputTokens": 20,
    }
    body = converse(
        {"reasoningContent": {"reasoningText": {"text": "Think.", "signature": "c2ln"}}},
        {"reasoningContent": {"redactedContent": "ZW5jcnlwdGVk"}},
        {"text": "Calling."},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
        stop="tool_use",
        usage=usage,
    )
    answer = make_hub(FakeServer(httpx.Response(200, json=body))).chat(
        TARGET, "Hi", tools=[WEATHER]
    )
    assert answer.content == (
        ThinkingPart("Think.", signature="c2ln"),
        ThinkingPart("", signature="ZW5jcnlwdGVk", redacted=True),
        *answer.content[2:3],
        ToolCallPart("tooluse_1", "get_weather", {"city": "Paris"}),
    )
    assert answer.text == "Calling."
    assert answer.finish_reason == "tool_calls"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (110, 30)
    assert (answer.usage.cached_input_tokens, answer.usage.cache_write_tokens) == (80, 20)
    assert answer.model == MODEL
    assert answer.raw == body


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "error"),
        ("a_new_reason", "unknown"),
    ],
)
def test_stop_reasons(make_hub: Callable[..., Hub], stop: str, finish: str) -> None:
    body = converse({"text": "ok"}, stop=stop)
    answer = make_hub(FakeServer(httpx.Response(200, json=body))).chat(TARGET, "Hi")
    assert answer.finish_reason == finish


def test_structured_output_is_a_forced_tool(make_hub: Callable[..., Hub]) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = converse(
        {"toolUse": {"toolUseId": "tooluse_9", "name": "response", "input": {"city": "Paris"}}},
        stop="tool_use",
    )
    server = FakeServer(httpx.Response(200, json=body))
    answer = make_hub(server).chat(TARGET, "Capital of France?", response_schema=schema)
    assert answer.json() == {"city": "Paris"}
    assert answer.finish_reason == "stop"
    assert _body(server)["toolConfig"]["toolChoice"] == {"tool": {"name": "response"}}


@pytest.mark.parametrize(
    "body",
    [
        {"output": {}},
        {"stopReason": "end_turn"},
        [],
        {
            "output": {"message": {"content": [{"toolUse": {"name": "f"}}]}},
            "stopReason": "tool_use",
        },
    ],
)
def test_a_malformed_answer(make_hub: Callable[..., Hub], body: Any) -> None:
    catalog = "providers:\n  bedrock: {max_retries: 0}\n"
    with pytest.raises(MalformedResponse):
        make_hub(FakeServer(httpx.Response(200, json=body)), catalog).chat(TARGET, "Hi")


@pytest.mark.parametrize(
    ("status", "error_type", "message", "error"),
    [
        (429, "ThrottlingException", "Too many requests, please wait.", RateLimitError),
        (400, "ServiceQuotaExceededException", "Your request exceeds the quota.", QuotaExceeded),
        (
            400,
            "ValidationException",
            "Input is too long for requested model.",
            ContextWindowExceeded,
        ),
        (400, "ValidationException", "messages: field required", InvalidRequestError),
        (403, "AccessDeniedException", "You don't have access to the model.", AuthenticationError),
        (
            403,
            "ExpiredTokenException",
            "The security token included in the request is expired",
            AuthenticationError,
        ),
        (404, "ResourceNotFoundException", "Model not found.", NotFoundError),
        (
            400,
            "ValidationException",
            "The provided model identifier is invalid.",
            NotFoundError,
        ),
        (429, "ModelNotReadyException", "Model is not ready.", ProviderUnavailable),
        (503, "ServiceUnavailableException", "Service unavailable.", ProviderUnavailable),
        (408, "ModelTimeoutException", "Model timed out.", Timeout),
        (424, "ModelErrorException", "The model returned an error.", ProviderUnavailable),
    ],
)
def test_errors_by_type(
    make_hub: Callable[..., Hub],
    status: int,
    error_type: str,
    message: str,
    error: type[Exception],
) -> None:
    server = FakeServer(aws_error(status, error_type, message, retry_after="2"))
    catalog = "providers:\n  bedrock: {max_retries: 0}\n"
    with pytest.raises(error) as caught:
        make_hub(server, catalog).chat(TARGET, "Hi")
    assert type(caught.value) is error
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert message in str(caught.value)


def test_a_throttled_call_is_retried_after_its_wait(
    make_hub: Callable[..., Hub], waits: list[float]
) -> None:
    server = FakeServer(
        aws_error(429, "ThrottlingException", "slow down", retry_after="2"),
        httpx.Response(200, json=converse({"text": "ok"})),
    )
    assert make_hub(server).chat(TARGET, "Hi").text == "ok"
    assert waits == [2.0]
    # Each attempt is signed anew.
    assert len({r.headers["authorization"] for r in server.requests}) >= 1
    assert len(server.requests) == 2


# ---------------------------------------------------------------------------- streams


def _stream_server(*frames: bytes) -> FakeServer:
    return FakeServer(stream_answer(list(frames)))


def test_a_text_stream_equals_the_answer(make_hub: Callable[..., Hub]) -> None:
    server = _stream_server(*text_stream("Par", "is."))
    events = list(make_hub(server).stream(TARGET, "Capital of France?"))
    assert server.requests[-1].url.path.endswith("/converse-stream")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris."
    assert isinstance(events[-1], EndEvent)
    response = events[-1].response
    assert response.text == "Paris."
    assert response.usage.output_tokens == 4
    assert [e for e in events if isinstance(e, UsageEvent)][-1].usage == response.usage
    chat = make_hub(FakeServer(httpx.Response(200, json=converse({"text": "Paris."})))).chat(
        TARGET, "x"
    )
    assert (response.content, response.usage, response.finish_reason) == (
        chat.content,
        chat.usage,
        chat.finish_reason,
    )


def test_a_tool_call_and_thinking_stream(make_hub: Callable[..., Hub]) -> None:
    frames = [
        event("messageStart", {"role": "assistant"}),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Need "}}},
        ),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "weather."}}},
        ),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "c2ln"}}},
        ),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event(
            "contentBlockStart",
            {
                "contentBlockIndex": 1,
                "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}},
            },
        ),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city": '}}},
        ),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '"Paris"}'}}},
        ),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "tool_use"}),
        event(
            "metadata",
            {
                "usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29},
                "metrics": {"latencyMs": 1},
            },
        ),
    ]
    events = list(
        make_hub(_stream_server(*frames)).stream(TARGET, "Hi", tools=[WEATHER], reasoning=1024)
    )
    assert [e.text for e in events if isinstance(e, ThinkingDelta)] == ["Need ", "weather.", ""]
    assert [e.arguments for e in events if isinstance(e, ToolCallDelta)] == [
        "",
        '{"city": ',
        '"Paris"}',
    ]
    response = events[-1].response  # type: ignore[union-attr]
    assert response.content == (
        ThinkingPart("Need weather.", signature="c2ln"),
        ToolCallPart("tooluse_1", "get_weather", {"city": "Paris"}),
    )
    assert response.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("throttlingException", RateLimitError),
        ("modelStreamErrorException", ProviderUnavailable),
        ("validationException", InvalidRequestError),
        ("serviceUnavailableException", ProviderUnavailable),
        ("internalServerException", ProviderUnavailable),
    ],
)
def test_an_exception_mid_stream(
    make_hub: Callable[..., Hub], name: str, error: type[Exception]
) -> None:
    frames = [*text_stream("Hel")[:2], exception(name, "Something went wrong.")]
    catalog = "providers:\n  bedrock: {max_retries: 0}\n"
    with pytest.raises(error, match="Something went wrong") as caught:
        list(make_hub(_stream_server(*frames), catalog).stream(TARGET, "Hi"))
    assert type(caught.value) is error


def test_a_stream_cut_before_its_stop_is_malformed(make_hub: Callable[..., Hub]) -> None:
    catalog = "providers:\n  bedrock: {max_retries: 0}\n"
    frames = text_stream("Hel")[:3]
    with pytest.raises(MalformedResponse, match="messageStop"):
        list(make_hub(_stream_server(*frames), catalog).stream(TARGET, "Hi"))


def test_a_stream_cut_inside_a_frame_is_malformed(make_hub: Callable[..., Hub]) -> None:
    catalog = "providers:\n  bedrock: {max_retries: 0}\n"
    data = b"".join(text_stream("Hello"))[:-7]
    server = FakeServer(httpx.Response(200, content=data))
    with pytest.raises(MalformedResponse, match="inside a message"):
        list(make_hub(server, catalog).stream(TARGET, "Hi"))


def test_an_error_answer_to_a_stream_is_typed(make_hub: Callable[..., Hub]) -> None:
    catalog = "providers:\n  bedrock: {max_retries: 0}\n"
    server = FakeServer(aws_error(404, "ResourceNotFoundException", "Model not found."))
    with pytest.raises(NotFoundError, match="Model not found"):
        list(make_hub(server, catalog).stream(TARGET, "Hi"))


def test_structured_output_streams_its_json_once_checked(make_hub: Callable[..., Hub]) -> None:
    frames = [
        event(
            "contentBlockStart",
            {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "response"}}},
        ),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"n": 4}'}}},
        ),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": "tool_use"}),
    ]
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    events = list(make_hub(_stream_server(*frames)).stream(TARGET, "2+2?", response_schema=schema))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ['{"n": 4}']
    assert not any(isinstance(e, ToolCallDelta) for e in events)
    assert events[-1].response.json() == {"n": 4}  # type: ignore[union-attr]


def test_more_than_four_cache_points_are_refused_before_the_call() -> None:
    request = Request(
        messages=[Message.user(f"Part {i}.", cache=True) for i in range(4)],
        system="Be brief.",
        cache_system=True,
    )
    with pytest.raises(InvalidRequestError, match="has 5: system, messages"):
        converse_payload(request, default_max_tokens=4096)
