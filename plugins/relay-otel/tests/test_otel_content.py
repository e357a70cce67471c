"""Prompts and answers on spans: never by default; when switched on, in the conventions'
JSON shapes, and as a redactor left them (placeholders, never the original values)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
from otel_support import Telemetry

from relay_core import (
    EndEvent,
    Hub,
    ImagePart,
    Message,
    Request,
    Response,
    Tool,
    ToolCallPart,
    ToolResultPart,
    hookimpl,
)
from relay_core.calls import Restorer

MakeHub = Callable[..., Hub]

CONTENT_ON = "plugins: {otel: {include_content: true}}"
CONTENT_KEYS = {
    "gen_ai.system_instructions",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.definitions",
}
WEATHER = Tool(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def attributes(telemetry: Telemetry) -> dict[str, Any]:
    return dict(telemetry.span().attributes or {})


async def test_content_is_not_recorded_by_default(make_hub: MakeHub, telemetry: Telemetry) -> None:
    hub = make_hub()
    await hub.achat("mock/echo", "a secret plan", system="Be brief.", tools=[WEATHER])
    recorded = attributes(telemetry)
    assert not CONTENT_KEYS & set(recorded)
    assert "a secret plan" not in repr(recorded)


async def test_switched_on_prompt_and_answer_follow_the_conventions_shapes(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(CONTENT_ON)
    response = await hub.achat("mock/echo", "What is 2+2?", system="Be brief.")

    recorded = attributes(telemetry)
    assert json.loads(recorded["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert json.loads(recorded["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is 2+2?"}]}
    ]
    assert json.loads(recorded["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": response.text}],
            "finish_reason": "stop",
        }
    ]
    assert "gen_ai.tool.definitions" not in recorded


async def test_a_tool_round_trip_is_recorded_with_calls_results_and_definitions(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(CONTENT_ON)
    first = await hub.achat("mock/echo", "Weather in Paris?", tools=[WEATHER])
    (call,) = first.tool_calls
    messages = [
        Message.user("Weather in Paris?"),
        first.to_message(),
        Message.tool(ToolResultPart(call.id, '{"sky": "clear"}', name=call.name)),
    ]
    await hub.achat("mock/echo", messages, tools=[WEATHER])

    asked, answered = (dict(s.attributes or {}) for s in telemetry.spans())
    assert json.loads(asked["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
            ],
            # the output messages schema's spelling of Relay's "tool_calls"
            "finish_reason": "tool_call",
        }
    ]
    assert json.loads(asked["gen_ai.tool.definitions"]) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": WEATHER.parameters,
        }
    ]
    sent = json.loads(answered["gen_ai.input.messages"])
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["parts"][0]["type"] == "tool_call"
    assert sent[2]["parts"] == [
        {"type": "tool_call_response", "id": call.id, "response": '{"sky": "clear"}'}
    ]


async def test_media_is_named_by_url_and_bytes_are_never_copied(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(CONTENT_ON)
    pixels = b"\x89PNG" + b"\x00" * 60
    message = Message.user(
        "Compare",
        ImagePart(url="https://example.com/a.png", media_type="image/png"),
        ImagePart(data=pixels, media_type="image/png"),
    )
    await hub.achat("mock/echo", [message])

    (sent,) = json.loads(attributes(telemetry)["gen_ai.input.messages"])
    assert sent["parts"] == [
        {"type": "text", "content": "Compare"},
        {
            "type": "uri",
            "modality": "image",
            "mime_type": "image/png",
            "uri": "https://example.com/a.png",
        },
        {"type": "image", "mime_type": "image/png", "bytes": len(pixels)},
    ]


class Masking:
    """A redactor that replaces an e-mail address with a placeholder and a restorer
    that puts it back for the caller, as relay-redact does."""

    ORIGINAL = "alice@example.com"
    PLACEHOLDER = "<EMAIL_1>"

    @hookimpl
    def relay_redact(self, request: Request) -> Request | None:
        messages = tuple(
            attrs.evolve(m, content=m.text.replace(self.ORIGINAL, self.PLACEHOLDER))
            for m in request.messages
        )
        return attrs.evolve(request, messages=messages, metadata={**request.metadata, "masked": 1})

    @hookimpl
    def relay_restorer(self, request: Request) -> Restorer | None:
        return Unmasking() if request.metadata.get("masked") else None


class Unmasking:
    def feed(self, text: str) -> str:
        return text.replace(Masking.PLACEHOLDER, Masking.ORIGINAL)

    def flush(self) -> str:
        return ""

    def restore(self, response: Response) -> Response:
        return attrs.evolve(response, content=self.feed(response.text))


async def test_spans_carry_the_redacted_content_never_the_original(
    make_hub: MakeHub, telemetry: Telemetry
) -> None:
    hub = make_hub(CONTENT_ON, Masking())
    prompt = "Write to alice@example.com today"
    response = await hub.achat("mock/echo", prompt)
    events = [e async for e in hub.astream("mock/echo", prompt)]

    assert response.text == prompt  # the caller gets the original back
    assert isinstance(events[-1], EndEvent)
    assert events[-1].response.text == prompt
    for span in telemetry.spans():
        recorded = dict(span.attributes or {})
        assert "<EMAIL_1>" in recorded["gen_ai.input.messages"]
        assert "<EMAIL_1>" in recorded["gen_ai.output.messages"]
        assert "alice@example.com" not in repr(recorded)


async def test_thinking_is_recorded_as_reasoning(make_hub: MakeHub, telemetry: Telemetry) -> None:
    response = await make_hub(CONTENT_ON).achat("mock/think", "Why?")
    (output,) = json.loads(attributes(telemetry)["gen_ai.output.messages"])
    assert output["parts"] == [
        {"type": "reasoning", "content": response.thinking},
        {"type": "text", "content": response.text},
    ]


def test_a_tool_call_part_keeps_its_arguments_as_json() -> None:
    from relay_otel._content import output_messages

    response = Response(
        content=(ToolCallPart("c1", "f", {"n": 1, "city": "Zürich"}),), finish_reason="tool_calls"
    )
    (message,) = json.loads(output_messages(response))
    assert message["parts"][0]["arguments"] == {"n": 1, "city": "Zürich"}


def test_server_tool_parts_are_recorded_apart_from_tool_calls() -> None:
    from relay_core import ServerToolCallPart, ServerToolResultPart, TextPart
    from relay_otel._content import output_messages

    results = [{"type": "web_search_result", "url": "https://example.com"}]
    response = Response(
        content=(
            ServerToolCallPart("s1", "web_search", {"query": "Zürich"}),
            ServerToolResultPart("s1", "web_search_tool_result", results),
            TextPart("Sunny."),
        )
    )
    (message,) = json.loads(output_messages(response))
    assert message["parts"] == [
        {
            "type": "server_tool_call",
            "id": "s1",
            "name": "web_search",
            "arguments": {"query": "Zürich"},
        },
        {"type": "server_tool_call_response", "id": "s1", "response": results},
        {"type": "text", "content": "Sunny."},
    ]
