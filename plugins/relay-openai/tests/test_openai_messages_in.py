"""The OpenAI SDK quickstart's ``messages`` list, unchanged through ``hub.chat``: what
goes on the wire is what the SDK itself sends for it, and every message list Relay
writes (``openai_messages``) is one the SDK's own request types accept."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletionMessageParam
from test_openai_sdk_oracle import relay_request, sdk_request

from relay_core import (
    DocumentPart,
    ImagePart,
    Message,
    Request,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    openai_messages,
)
from relay_core.testing import OPENAI_QUICKSTART, FakeServer, typed_dict_problems

PIRATE = OPENAI_QUICKSTART["pirate"]
CLASSIC = OPENAI_QUICKSTART["classic"]


CHAT_OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4.1",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


@pytest.fixture
def chat(server: FakeServer, make_hub: Any) -> Any:
    """Send a Chat Completions call to gpt-4.1 and return the JSON body that went out."""
    server.reply(CHAT_OK)
    hub = make_hub()

    def send(**kwargs: Any) -> Any:
        hub.chat("openai/gpt-4.1", **kwargs)
        return server.payload

    return send


@pytest.mark.parametrize(
    ("model", "messages"),
    [("gpt-5", PIRATE), ("gpt-4.1-mini", CLASSIC)],
    ids=["pirate-developer", "classic-system"],
)
def test_the_quickstart_messages_go_on_the_wire_as_the_sdk_sends_them(
    model: str, messages: list[dict[str, Any]]
) -> None:
    sdk = sdk_request("chat.completions.create", model=model, messages=messages)
    relay = relay_request(None, model=model, messages=messages)
    assert relay == sdk  # method, path, the headers OpenAI reads, and the body


def test_a_developer_message_is_the_system_message_for_a_model_that_takes_no_developer(
    chat: Any,
) -> None:
    sent = chat(messages=PIRATE)  # gpt-4.1 reads its system prompt as "system"
    assert sent["messages"] == [
        {"role": "system", "content": "Talk like a pirate."},
        {"role": "user", "content": "Are semicolons optional in JavaScript?"},
    ]


def test_tool_calls_and_images_round_trip_through_the_adapter(chat: Any) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather where this is?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/a.png", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]
    assert chat(messages=messages)["messages"] == messages


def test_every_list_relay_writes_is_one_the_sdk_accepts() -> None:
    request = Request(
        messages=[
            Message.user(
                "Look.",
                ImagePart(data=b"png", media_type="image/png", detail="high"),
                DocumentPart(data=b"%PDF", name="a.pdf"),
            ),
            Message("assistant", (TextPart("Calling."), ToolCallPart("c1", "w", {"a": 1}))),
            Message.tool(ToolResultPart("c1", "one", "w")),
            Message.assistant("Done."),
        ],
        system="Be brief.",
    )
    written = openai_messages(request)
    for index, message in enumerate(written):
        assert typed_dict_problems(message, ChatCompletionMessageParam, f"$[{index}]") == []
