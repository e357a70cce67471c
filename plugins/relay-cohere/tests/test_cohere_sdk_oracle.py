"""Cohere's official SDK (``cohere``) as the oracle of Relay's wire format.

Requests: each scenario is sent through the SDK's v2 client and through Relay, both
captured by a fake server; method, path, the headers that matter and the JSON bodies
must be equal but for the differences in INTENDED, each with its reason. Relay's bodies
are validated against the types of the SDK's ``v2.chat`` parameters with unknown keys
refused (the SDK has no request model: its parameters are the request).

Responses: every answer in ``cassettes/relay-cohere`` (chat answers and each stream
event) validates as the SDK's ``V2ChatResponse`` / ``V2ChatStreamResponse``, with
missing and unknown fields reported. Cohere's error bodies have no SDK type (its errors
carry the body as it came). Cohere has no batch API that Relay uses.
"""

from __future__ import annotations

import base64
import json
import typing
from collections.abc import Callable
from typing import Any

import cohere
import httpx
import pytest
from cohere.v2.client import V2Client
from cohere_support import CASSETTES, KEY, MODEL, TARGET, answer, text, text_stream

from relay_core import (
    DocumentPart,
    Hub,
    ImagePart,
    Message,
    ResponseSchema,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from relay_core.testing import (
    PNG_PIXEL as PIXEL,
)
from relay_core.testing import (
    WEATHER_TOOL as WEATHER,
)
from relay_core.testing import (
    FakeServer,
    answer_text,
    cassette_problems,
    header_differences,
    json_answer,
    json_differences,
    model_problems,
    sse_answer,
    sse_payloads,
    unexplained_differences,
)

MakeHub = Callable[..., Hub]

SDK_WEATHER = {
    "type": "function",
    "function": {
        "name": WEATHER.name,
        "description": WEATHER.description,
        "parameters": WEATHER.parameters,
    },
}
DATA_URL = "data:image/png;base64," + base64.b64encode(PIXEL).decode()
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
CALL_ID = "get_weather_0xq3v1pa4f2d"

# Each scenario: Relay's chat arguments and options, the SDK's chat arguments, streamed.
SCENARIOS: dict[str, tuple[tuple[Any, ...], dict[str, Any], dict[str, Any], bool]] = {
    "system_text_and_settings": (
        ("Hi",),
        dict(system="Be brief.", temperature=0.3, top_p=0.9, max_tokens=64, stop=["END"], seed=7),
        dict(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            temperature=0.3,
            p=0.9,
            max_tokens=64,
            stop_sequences=["END"],
            seed=7,
        ),
        False,
    ),
    "tools": (
        ("Weather in Paris?",),
        dict(tools=[WEATHER], tool_choice="required"),
        dict(
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[SDK_WEATHER],
            tool_choice="REQUIRED",
        ),
        False,
    ),
    "tool_result_round_trip": (
        (
            [
                Message("user", [TextPart("Weather in Paris?")]),
                Message(
                    "assistant",
                    [
                        TextPart("I will look it up."),
                        ToolCallPart(CALL_ID, "get_weather", {"city": "Paris"}),
                    ],
                ),
                Message("user", [ToolResultPart(CALL_ID, '{"temp": 21}')]),
            ],
        ),
        dict(tools=[WEATHER]),
        dict(
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "tool_plan": "I will look it up.",
                    "tool_calls": [
                        {
                            "id": CALL_ID,
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": CALL_ID,
                    "content": [{"type": "text", "text": '{"temp": 21}'}],
                },
            ],
            tools=[SDK_WEATHER],
        ),
        False,
    ),
    "structured_output": (
        ("Name a city.",),
        dict(response_schema=ResponseSchema(SCHEMA, "city")),
        dict(
            messages=[{"role": "user", "content": "Name a city."}],
            response_format={"type": "json_object", "json_schema": SCHEMA},
        ),
        False,
    ),
    "stream_with_usage": (
        ("Hi",),
        {},
        dict(messages=[{"role": "user", "content": "Hi"}]),
        True,
    ),
    "image_url_and_base64": (
        (
            [
                Message(
                    "user",
                    [
                        TextPart("Compare."),
                        ImagePart(url="https://example.com/cat.png"),
                        ImagePart(data=PIXEL, media_type="image/png"),
                    ],
                )
            ],
        ),
        {},
        dict(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare."},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                        {"type": "image_url", "image_url": {"url": DATA_URL}},
                    ],
                }
            ]
        ),
        False,
    ),
    "text_document": (
        (
            [
                Message(
                    "user",
                    [
                        TextPart("Summarize."),
                        DocumentPart(
                            data=b"Paris is in France.", media_type="text/plain", name="notes"
                        ),
                    ],
                )
            ],
        ),
        {},
        dict(
            messages=[{"role": "user", "content": "Summarize."}],
            documents=[{"id": "notes", "data": {"title": "notes", "text": "Paris is in France."}}],
        ),
        False,
    ),
    "reasoning": (
        ("Think.",),
        dict(reasoning=2048),
        dict(
            messages=[{"role": "user", "content": "Think."}],
            thinking={"type": "enabled", "token_budget": 2048},
        ),
        False,
    ),
}

# The differences between what the SDK and Relay send, each once, with its reason:
# (scenario or "*" for all, JSON path or header) -> (the SDK's value, Relay's, why).
INTENDED: dict[tuple[str, str], tuple[Any, Any, str]] = {
    ("*", "header:accept"): (
        "application/json",
        "*/*",
        "Relay's HTTP client accepts any type and reads errors whatever their type",
    ),
    ("stream_with_usage", "header:accept"): (
        "*/*",
        "text/event-stream",
        "Relay names the stream it asks for; the SDK's stream sends no accept of its own",
    ),
}
# user-agent and the SDK's x-fern-* headers are left out: each client names itself.
HEADERS = ("content-type", "authorization", "accept")


def _answer(stream: bool) -> httpx.Response:
    if stream:
        return sse_answer(text_stream("ok"))
    return json_answer(answer(text("ok")))


def _through_sdk(sdk_args: dict[str, Any], stream: bool) -> httpx.Request:
    server = FakeServer(_answer(stream))
    with httpx.Client(transport=server.transport) as client:
        sdk = cohere.ClientV2(api_key=KEY, httpx_client=client)
        if stream:
            list(sdk.chat_stream(model=MODEL, **sdk_args))
        else:
            sdk.chat(model=MODEL, **sdk_args)
    return server.requests[-1]


def _through_relay(
    make_hub: MakeHub, args: tuple[Any, ...], options: dict[str, Any], stream: bool
) -> httpx.Request:
    server = FakeServer(_answer(stream))
    hub = make_hub(server)
    if stream:
        list(hub.stream(TARGET, *args, **options))
    else:
        hub.chat(TARGET, *args, **options)
    return server.requests[-1]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_relay_sends_what_the_sdk_sends(make_hub: MakeHub, scenario: str) -> None:
    args, options, sdk_args, stream = SCENARIOS[scenario]
    sdk = _through_sdk(sdk_args, stream)
    relay = _through_relay(make_hub, args, options, stream)
    assert (relay.method, relay.url.path) == (sdk.method, sdk.url.path)
    found = json_differences(json.loads(sdk.content), json.loads(relay.content))
    found.update(header_differences(sdk.headers, relay.headers, HEADERS))
    unexplained = unexplained_differences(scenario, found, INTENDED)
    assert unexplained == {}, f"{scenario}: SDK vs Relay differ at {unexplained}"


def _chat_parameters() -> dict[str, Any]:
    hints = typing.get_type_hints(V2Client.chat)
    return {name: hint for name, hint in hints.items() if name not in ("request_options", "return")}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_relay_bodies_are_valid_sdk_requests(make_hub: MakeHub, scenario: str) -> None:
    args, options, _, stream = SCENARIOS[scenario]
    body = json.loads(_through_relay(make_hub, args, options, stream).content)
    parameters = _chat_parameters()
    # The SDK's chat and chat_stream put "stream" in the body themselves.
    assert body.pop("stream") is stream
    assert set(body) <= set(parameters), set(body) - set(parameters)
    for key, value in body.items():
        assert model_problems(parameters[key], value, f"$.{key}") == []


# ---------------------------------------------------------------------------- responses

# Fields the cassettes carry that the SDK's types lack, each with its reason. Empty:
# a field Relay reads that the SDK does not know is a defect until a real source shows it.
_SKELETON = (
    "real streams open with the answer's empty skeleton (content, tool_plan, tool_calls, "
    "citations), as curl transcripts of Cohere's v2 stream show (M-Lai-ai/"
    "LLM-Provider-reference, Cohere/streaming.md); the SDK declares only the role and "
    "keeps the rest as extras. Relay reads none of them"
)
# Keyed "<event type>:<problem>" (message-start: MessageStartV2ChatStreamResponse).
ALLOWED_UNKNOWN: dict[str, str] = {
    f"message-start:$.delta.message: unknown field {name!r}": _SKELETON
    for name in ("content", "tool_plan", "tool_calls", "citations")
}


def _bodies(interaction: dict[str, Any]) -> list[tuple[Any, Any]]:
    response = interaction["response"]
    body = answer_text(interaction)
    if response["status"]["code"] >= 400:
        return []  # no SDK type: the SDK's errors carry the body as it came
    content_type = (response.get("headers", {}).get("content-type") or [""])[0]
    if "event-stream" in content_type:
        # The SDK's stream reader stops at "[DONE]" as Relay does: it is no event.
        return [(cohere.V2ChatStreamResponse, data) for data in sse_payloads(body)]
    answer = json.loads(body)
    if answer.get("response_type") == "embeddings_by_type":
        return [(cohere.EmbedByTypeResponse, answer)]
    return [(cohere.V2ChatResponse, answer)]


def test_every_cassette_answer_is_an_sdk_type() -> None:
    def check(interaction: dict[str, Any]) -> tuple[int, list[str]]:
        bodies = _bodies(interaction)
        return len(bodies), [
            f"{body.get('type')}: {problem}"
            for kind, body in bodies
            for problem in model_problems(kind, body)
            if f"{body.get('type')}:{problem}" not in ALLOWED_UNKNOWN
        ]

    checked, problems = cassette_problems(CASSETTES, check)
    assert checked > 20
    assert problems == [], "\n".join(problems)
