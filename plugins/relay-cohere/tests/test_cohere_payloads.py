"""What the adapter sends: Relay's request types mapped onto Cohere's v2 chat body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cohere_support import MODEL, TARGET, ok_server

from relay_core import (
    DocumentPart,
    Hub,
    ImagePart,
    InvalidRequestError,
    Message,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)

MakeHub = Callable[..., Hub]
WEATHER = Tool("get_weather", "Weather.", {"type": "object", "properties": {}})
CLOCK = Tool("get_time")


def sent(make_hub: MakeHub, prompt: Any = "Hi", catalog: str = "", **options: Any) -> Any:
    server = ok_server()
    make_hub(server, catalog).chat(TARGET, prompt, **options)
    return server.payload


def test_generation_settings_use_cohere_names(make_hub: MakeHub) -> None:
    payload = sent(
        make_hub,
        system="Be brief.",
        temperature=0.3,
        top_p=0.9,
        max_tokens=50,
        stop=["\n\n"],
        seed=7,
    )
    assert payload == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "max_tokens": 50,
        "temperature": 0.3,
        "p": 0.9,
        "stop_sequences": ["\n\n"],
        "seed": 7,
        "stream": False,
    }


def test_catalog_params_and_provider_kwargs(make_hub: MakeHub) -> None:
    catalog = (
        "models:\n  fast:\n    target: cohere/command-a-03-2025\n"
        "    params: {temperature: 0.1}\n"
        "    provider_kwargs: {k: 40, safety_mode: STRICT}\n"
    )
    server = ok_server()
    make_hub(server, catalog).chat("fast", "Hi", provider_kwargs={"frequency_penalty": 0.5})
    payload = server.payload
    assert (payload["temperature"], payload["k"], payload["safety_mode"]) == (0.1, 40, "STRICT")
    assert payload["frequency_penalty"] == 0.5


@pytest.mark.parametrize(
    ("reasoning", "thinking"),
    [
        ("low", {"type": "enabled", "token_budget": 2048}),
        ("high", {"type": "enabled", "token_budget": 16384}),
        (3000, {"type": "enabled", "token_budget": 3000}),
        (0, {"type": "disabled"}),
    ],
)
def test_reasoning_is_a_thinking_budget(
    make_hub: MakeHub, reasoning: Any, thinking: dict[str, Any]
) -> None:
    assert sent(make_hub, reasoning=reasoning)["thinking"] == thinking


def test_no_reasoning_sends_no_thinking(make_hub: MakeHub) -> None:
    assert "thinking" not in sent(make_hub)


@pytest.mark.parametrize(
    ("choice", "wire", "tools"),
    [
        (None, None, ["get_weather", "get_time"]),
        ("auto", None, ["get_weather", "get_time"]),
        ("none", "NONE", ["get_weather", "get_time"]),
        ("required", "REQUIRED", ["get_weather", "get_time"]),
        ("any", "REQUIRED", ["get_weather", "get_time"]),
        # One named tool: only that one is offered, and a call is required.
        ("get_time", "REQUIRED", ["get_time"]),
    ],
)
def test_tools_and_tool_choice(
    make_hub: MakeHub, choice: str | None, wire: str | None, tools: list[str]
) -> None:
    payload = sent(make_hub, tools=[WEATHER, CLOCK], tool_choice=choice)
    assert payload.get("tool_choice") == wire
    assert [t["function"]["name"] for t in payload["tools"]] == tools
    assert payload["tools"][0]["type"] == "function"
    assert "parameters" in payload["tools"][0]["function"]


def test_a_tool_choice_naming_no_tool_is_refused(make_hub: MakeHub) -> None:
    server = ok_server()
    with pytest.raises(InvalidRequestError, match="not among the tools"):
        make_hub(server).chat(TARGET, "Hi", tools=[WEATHER], tool_choice="get_time")
    assert server.requests == []


def test_a_conversation_with_thinking_tool_calls_and_results(make_hub: MakeHub) -> None:
    history = [
        Message.user("Weather in Paris?"),
        Message.assistant(
            ThinkingPart("The user wants Paris."),
            ThinkingPart("opaque", redacted=True),
            TextPart("I will look it up."),
            ToolCallPart("call_1", "get_weather", {"city": "Paris"}),
        ),
        Message.tool(ToolResultPart("call_1", "sunny")),
        Message.assistant(ThinkingPart("Easy."), TextPart("It is sunny.")),
        Message.user("Thanks."),
    ]
    assert sent(make_hub, history, tools=[WEATHER])["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "The user wants Paris."}],
            "tool_plan": "I will look it up.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Easy."},
                {"type": "text", "text": "It is sunny."},
            ],
        },
        {"role": "user", "content": "Thanks."},
    ]


def test_images_are_image_url_blocks(make_hub: MakeHub) -> None:
    prompt = Message.user(
        "Compare.",
        ImagePart(url="https://example.test/a.png"),
        ImagePart(data=b"\x89PNG", media_type="image/png", detail="high"),
    )
    assert sent(make_hub, prompt)["messages"][0]["content"] == [
        {"type": "text", "text": "Compare."},
        {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw==", "detail": "high"},
        },
    ]


def test_text_documents_become_cohere_documents(make_hub: MakeHub) -> None:
    prompt = Message.user(
        "What do the notes say?",
        DocumentPart(
            data=b"Gym memberships are covered.", media_type="text/plain", name="benefits.txt"
        ),
        DocumentPart(data=b'{"days": 25}', media_type="application/json"),
    )
    payload = sent(make_hub, prompt)
    assert payload["messages"] == [{"role": "user", "content": "What do the notes say?"}]
    assert payload["documents"] == [
        {
            "id": "benefits.txt",
            "data": {"title": "benefits.txt", "text": "Gym memberships are covered."},
        },
        {"id": "doc_1", "data": {"text": '{"days": 25}'}},
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (DocumentPart(url="https://example.test/report.pdf"), "by URL"),
        (DocumentPart(data=b"%PDF-1.4"), "application/pdf bytes"),
        (DocumentPart(data=b"\xff\xfe", media_type="text/plain"), "not UTF-8"),
    ],
)
def test_documents_cohere_cannot_read_are_refused_before_sending(
    make_hub: MakeHub, document: DocumentPart, message: str
) -> None:
    server = ok_server()
    with pytest.raises(InvalidRequestError, match=message):
        make_hub(server).chat(TARGET, Message.user("Read.", document))
    assert server.requests == []


def test_an_assistant_image_is_refused(make_hub: MakeHub) -> None:
    history = [Message.user("Hi"), Message.assistant(ImagePart(url="https://x.test/a.png"))]
    with pytest.raises(InvalidRequestError, match="assistant message"):
        make_hub(ok_server()).chat(TARGET, history)


def test_a_base_url_from_the_catalog_is_used(make_hub: MakeHub) -> None:
    server = ok_server()
    hub = make_hub(server, "providers:\n  cohere:\n    base_url: https://gateway.example.test\n")
    hub.chat(TARGET, "Hi")
    assert str(server.requests[-1].url) == "https://gateway.example.test/v2/chat"
