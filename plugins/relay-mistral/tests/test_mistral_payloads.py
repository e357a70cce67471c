"""What the adapter sends: every mapping from Relay's request to Mistral's JSON body,
checked through a hub over ``httpx.MockTransport``."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from mistral_support import KEY, MODEL, chunk, ok_server

from relay_core import (
    DocumentPart,
    Hub,
    ImagePart,
    InvalidRequestError,
    Message,
    ResponseSchema,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from relay_core.testing import FakeServer, sse_answer
from relay_mistral._adapter import wire_tool_call_id

WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

MakeHub = Callable[..., Hub]


def sent(make_hub: MakeHub, *args: Any, **options: Any) -> Any:
    server = ok_server()
    make_hub(server).chat(f"mistral/{MODEL}", *args, **options)
    return server.payload


def test_endpoint_headers_and_a_plain_prompt(make_hub: MakeHub) -> None:
    server = ok_server()
    make_hub(server).chat(f"mistral/{MODEL}", "Hi")
    request = server.requests[-1]
    assert (request.method, str(request.url)) == (
        "POST",
        "https://api.mistral.ai/v1/chat/completions",
    )
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert server.payload == {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}


def test_system_prompt_and_generation_config(make_hub: MakeHub) -> None:
    payload = sent(
        make_hub,
        "Hi",
        system="Be brief.",
        temperature=0.3,
        top_p=0.9,
        max_tokens=64,
        stop=["\n\n", "END"],
        seed=42,
    )
    assert payload["messages"][0] == {"role": "system", "content": "Be brief."}
    assert payload["temperature"] == 0.3
    assert payload["top_p"] == 0.9
    assert payload["max_tokens"] == 64
    assert payload["stop"] == ["\n\n", "END"]
    assert payload["random_seed"] == 42
    for openai_name in ("seed", "max_completion_tokens", "stream_options"):
        assert openai_name not in payload


def test_unset_config_sends_nothing(make_hub: MakeHub) -> None:
    payload = sent(make_hub, "Hi")
    assert set(payload) == {"model", "messages"}


def test_catalog_params_reach_the_payload(make_hub: MakeHub) -> None:
    server = ok_server()
    catalog = (
        "models:\n  m:\n    target: mistral/mistral-large-latest\n"
        "    params: {temperature: 0.1, max_tokens: 10}\n"
    )
    make_hub(server, catalog).chat("m", "Hi", max_tokens=20)
    assert server.payload["model"] == "mistral-large-latest"
    assert (server.payload["temperature"], server.payload["max_tokens"]) == (0.1, 20)


def test_provider_kwargs_are_merged_last(make_hub: MakeHub) -> None:
    payload = sent(
        make_hub,
        "Hi",
        temperature=0.5,
        provider_kwargs={"safe_prompt": True, "parallel_tool_calls": False, "temperature": 0.0},
    )
    assert payload["safe_prompt"] is True
    assert payload["parallel_tool_calls"] is False
    assert payload["temperature"] == 0.0


@pytest.mark.parametrize("effort", ["minimal", "low", "medium", "high"])
def test_reasoning_effort_is_sent_as_is(make_hub: MakeHub, effort: str) -> None:
    assert sent(make_hub, "Hi", reasoning=effort)["reasoning_effort"] == effort


def test_a_thinking_budget_asks_for_high_effort(make_hub: MakeHub) -> None:
    assert sent(make_hub, "Hi", reasoning=2048)["reasoning_effort"] == "high"
    assert "reasoning_effort" not in sent(make_hub, "Hi", reasoning=0)


def test_tools_and_tool_choice(make_hub: MakeHub) -> None:
    payload = sent(make_hub, "Weather?", tools=[WEATHER, Tool("now")], tool_choice="auto")
    assert payload["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": WEATHER.parameters,
            },
        },
        {
            "type": "function",
            "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    assert payload["tool_choice"] == "auto"


@pytest.mark.parametrize("choice", ["auto", "none", "any", "required"])
def test_tool_choice_keywords_pass_through(make_hub: MakeHub, choice: str) -> None:
    assert sent(make_hub, "x", tools=[WEATHER], tool_choice=choice)["tool_choice"] == choice


def test_a_named_tool_choice_forces_that_function(make_hub: MakeHub) -> None:
    payload = sent(make_hub, "x", tools=[WEATHER], tool_choice="get_weather")
    assert payload["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_structured_output_is_a_json_schema_response_format(make_hub: MakeHub) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    payload = sent(make_hub, "x", response_schema=ResponseSchema(schema, name="count"))
    assert payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "count", "schema": schema, "strict": True},
    }
    loose = sent(make_hub, "x", response_schema=ResponseSchema(schema, strict=False))
    assert loose["response_format"]["json_schema"]["strict"] is False
    assert loose["response_format"]["json_schema"]["name"] == "response"


def test_json_mode_through_provider_kwargs(make_hub: MakeHub) -> None:
    payload = sent(make_hub, "x", provider_kwargs={"response_format": {"type": "json_object"}})
    assert payload["response_format"] == {"type": "json_object"}


def test_images_are_string_image_urls(make_hub: MakeHub) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    message = Message.user(
        "What is this?",
        ImagePart(url="https://example.com/cat.jpg"),
        ImagePart(data=png, media_type="image/png"),
    )
    payload = sent(make_hub, [message])
    assert payload["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": "https://example.com/cat.jpg"},
        {
            "type": "image_url",
            "image_url": "data:image/png;base64," + base64.b64encode(png).decode(),
        },
    ]


def test_an_image_detail_uses_the_object_form(make_hub: MakeHub) -> None:
    message = Message.user(ImagePart(url="https://example.com/a.png", detail="low"))
    [chunk] = sent(make_hub, [message])["messages"][0]["content"]
    assert chunk == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/a.png", "detail": "low"},
    }


def test_documents_by_url_and_as_pdf_bytes(make_hub: MakeHub) -> None:
    pdf = b"%PDF-1.7 fake"
    message = Message.user(
        "Summarise.",
        DocumentPart(url="https://arxiv.org/pdf/1805.04770"),
        DocumentPart(data=pdf, name="report.pdf"),
    )
    payload = sent(make_hub, [message])
    assert payload["messages"][0]["content"] == [
        {"type": "text", "text": "Summarise."},
        {"type": "document_url", "document_url": "https://arxiv.org/pdf/1805.04770"},
        {
            "type": "document_url",
            "document_url": "data:application/pdf;base64," + base64.b64encode(pdf).decode(),
            "document_name": "report.pdf",
        },
    ]


def test_non_pdf_document_bytes_are_refused_before_sending(make_hub: MakeHub) -> None:
    server = ok_server()
    part = DocumentPart(data=b"hello", media_type="text/plain")
    with pytest.raises(InvalidRequestError, match="PDF bytes, not text/plain"):
        make_hub(server).chat(f"mistral/{MODEL}", [Message.user("Read", part)])
    assert server.requests == []


def test_a_tool_turn_round_trip(make_hub: MakeHub) -> None:
    ask = Message.user("Weather in Paris and Tokyo?")
    answer = Message.assistant(
        ToolCallPart("D681PevKs", "get_weather", {"city": "Paris"}),
        ToolCallPart("T0ky0Call", "get_weather", {"city": "Tokyo"}),
    )
    results = Message.tool(
        ToolResultPart("D681PevKs", '{"celsius": 21}'),
        ToolResultPart("T0ky0Call", "rain", name="get_weather"),
    )
    payload = sent(make_hub, [ask, answer, results], tools=[WEATHER])
    assert payload["messages"][1:] == [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "D681PevKs",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "T0ky0Call",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'},
                },
            ],
        },
        # The name comes from the call when the result does not carry it.
        {
            "role": "tool",
            "tool_call_id": "D681PevKs",
            "content": '{"celsius": 21}',
            "name": "get_weather",
        },
        {"role": "tool", "tool_call_id": "T0ky0Call", "content": "rain", "name": "get_weather"},
    ]


def test_foreign_tool_call_ids_become_nine_alphanumerics_consistently(make_hub: MakeHub) -> None:
    foreign = "call_Qx7dV1pZk9R2aL4mN6bT8cY0"
    messages = [
        Message.user("Weather?"),
        Message.assistant("Checking.", ToolCallPart(foreign, "get_weather", {"city": "Oslo"})),
        Message.tool(ToolResultPart(foreign, "snow")),
    ]
    payload = sent(make_hub, messages, tools=[WEATHER])
    wire = payload["messages"][1]["tool_calls"][0]["id"]
    assert len(wire) == 9
    assert wire.isalnum()
    assert wire.isascii()
    assert payload["messages"][1]["content"] == "Checking."
    assert payload["messages"][2]["tool_call_id"] == wire
    assert wire == wire_tool_call_id(foreign)
    assert wire_tool_call_id("toolu_01") != wire


def test_assistant_thinking_is_sent_back_as_thinking_chunks(make_hub: MakeHub) -> None:
    history = [
        Message.user("17 * 23?"),
        Message.assistant(ThinkingPart("17*20=340, 17*3=51."), TextPart("391")),
        Message.user("Times 3?"),
    ]
    payload = sent(make_hub, history)
    assert payload["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": [{"type": "text", "text": "17*20=340, 17*3=51."}]},
            {"type": "text", "text": "391"},
        ],
    }


def test_signed_thinking_keeps_its_signature_and_redacted_thinking_is_dropped(
    make_hub: MakeHub,
) -> None:
    history = [
        Message.user("Hi"),
        Message.assistant(
            ThinkingPart("", signature="opaque", redacted=True),
            ThinkingPart("hmm", signature="sig-1"),
            TextPart("Hello"),
        ),
        Message.user("Again"),
    ]
    content = sent(make_hub, history)["messages"][1]["content"]
    assert content == [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}], "signature": "sig-1"},
        {"type": "text", "text": "Hello"},
    ]


def test_an_assistant_turn_with_only_redacted_thinking_is_left_out(make_hub: MakeHub) -> None:
    history = [
        Message.user("Hi"),
        Message.assistant(ThinkingPart("", signature="x", redacted=True)),
        Message.user("Again"),
    ]
    assert [m["role"] for m in sent(make_hub, history)["messages"]] == ["user", "user"]


def test_an_image_in_an_assistant_turn_is_refused(make_hub: MakeHub) -> None:
    history = [Message.user("Hi"), Message.assistant(ImagePart(url="https://x/y.png"))]
    with pytest.raises(InvalidRequestError, match="assistant message can carry only"):
        make_hub(ok_server()).chat(f"mistral/{MODEL}", history)


def test_streaming_asks_for_a_stream_without_stream_options(make_hub: MakeHub) -> None:
    server = FakeServer(
        sse_answer([chunk({"role": "assistant", "content": "Hi"}, "stop")], done=True)
    )
    list(make_hub(server).stream(f"mistral/{MODEL}", "Hi"))
    assert server.payload == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }
    assert server.requests[-1].headers["accept"] == "text/event-stream"
