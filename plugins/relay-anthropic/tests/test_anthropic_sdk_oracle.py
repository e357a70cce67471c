"""The official ``anthropic`` SDK as the oracle of the Messages API's wire format.

Requests: each call is made through the SDK and through Relay, both answered by a fake
server that records them; method, path, the headers Anthropic reads and the JSON body
must match, but for the differences listed once in ``INTENDED`` with their reasons.
Relay's bodies must also be what the SDK's own request types (TypedDicts) allow.

Answers: every answer body in cassettes/relay-anthropic (messages, each stream event,
errors, message batches, batch listings, each line of a results file) must validate as
the SDK's response type, with no field the type lacks.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import ErrorResponse, Message, MessageTokensCount, RawMessageStreamEvent
from anthropic.types.message_count_tokens_params import MessageCountTokensParams
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse
from anthropic.types.messages.batch_create_params import BatchCreateParams
from anthropic_support import CASSETTES, KEY
from typing_extensions import NotRequired, Required, TypedDict

import relay_anthropic
from relay_anthropic.messages import count_payload
from relay_core import (
    GenerationConfig,
    ImagePart,
    Request,
    ResponseSchema,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from relay_core import Message as RelayMessage
from relay_core.testing import (
    WEATHER_TOOL as WEATHER,
)
from relay_core.testing import (
    FakeServer,
    answer_text,
    assert_as_intended,
    cassette_interactions,
    hub_for,
    json_answer,
    model_problems,
    sse_payloads,
    typed_dict_problems,
    wire_request,
)

# What Anthropic reads of the headers; user-agent and x-stainless-* describe the client.
HEADERS = ("x-api-key", "anthropic-version", "anthropic-beta", "content-type")
MODEL = "claude-sonnet-4-5"
MAX_TOKENS = 4096  # Relay's default_max_tokens: the API requires max_tokens
WEATHER_WIRE = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": WEATHER.parameters,
}
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PHOTO = "https://example.com/cat.png"
ANSWER_SCHEMA = ResponseSchema(
    {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]},
    name="answer",
)
ROUND_TRIP = [
    RelayMessage.user("Weather in Paris?"),
    RelayMessage("assistant", (ToolCallPart("toolu_1", "get_weather", {"city": "Paris"}),)),
    RelayMessage("user", (ToolResultPart("toolu_1", '{"temp": 21}'),)),
]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


# Each difference Relay means to keep, once: (case, or "*" for every case, JSON path) ->
# (the SDK's value, Relay's, the reason).
INTENDED: dict[tuple[str, str], tuple[Any, Any, str]] = {}

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    # The structured-output tool's call too, so every case's answer parses.
    "content": [
        {"type": "text", "text": "ok"},
        {"type": "tool_use", "id": "toolu_2", "name": "answer", "input": {"value": 4}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
STREAM = [
    {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 1},
    },
    {"type": "message_stop"},
]


def _answer(stream: bool) -> tuple[dict[str, str], bytes]:
    if not stream:
        return {"content-type": "application/json"}, json.dumps(MESSAGE).encode()
    text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in STREAM)
    return {"content-type": "text/event-stream"}, text.encode()


def sdk_request(**kwargs: Any) -> dict[str, Any]:
    """What the SDK sends for ``client.messages.create(**kwargs)``."""
    headers, body = _answer(bool(kwargs.get("stream")))
    server = FakeServer(httpx.Response(200, headers=headers, content=body))

    client = anthropic.Anthropic(
        api_key=KEY,
        base_url="https://api.anthropic.com",
        max_retries=0,
        http_client=httpx.Client(transport=server.transport),
    )
    with client:
        answer = client.messages.create(**kwargs)
        if kwargs.get("stream"):
            for _ in answer:
                pass
    return wire_request(server.requests[-1], HEADERS)


def relay_request(prompt: Any, *, stream: bool = False, **options: Any) -> dict[str, Any]:
    """What Relay sends for the same call."""
    headers, body = _answer(stream)
    server = FakeServer(httpx.Response(200, headers=headers, content=body))

    with hub_for("", relay_anthropic, transport=server.transport) as hub:
        if stream:
            list(hub.stream(f"anthropic/{MODEL}", prompt, **options))
        else:
            hub.chat(f"anthropic/{MODEL}", prompt, **options)
    return wire_request(server.requests[-1], HEADERS)


CASES: dict[str, tuple[dict[str, Any], tuple[Any, dict[str, Any]]]] = {
    "system and user text": (
        {"system": "Be brief.", "messages": [user("2+2?")]},
        ("2+2?", {"system": "Be brief."}),
    ),
    "generation settings": (
        {
            "messages": [user("Hi")],
            "temperature": 0.2,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "max_tokens": 50,
        },
        ("Hi", {"temperature": 0.2, "top_p": 0.9, "stop": ["END"], "max_tokens": 50}),
    ),
    "tools": (
        {
            "messages": [user("Weather?")],
            "tools": [WEATHER_WIRE],
            "tool_choice": {"type": "tool", "name": "get_weather"},
        },
        ("Weather?", {"tools": [WEATHER], "tool_choice": "get_weather"}),
    ),
    "tool result round trip": (
        {
            "messages": [
                user("Weather in Paris?"),
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp": 21}'}
                    ],
                },
            ],
            "tools": [WEATHER_WIRE],
            "tool_choice": {"type": "auto"},
        },
        (ROUND_TRIP, {"tools": [WEATHER], "tool_choice": "auto"}),
    ),
    "structured output": (
        {
            "messages": [user("2+2?")],
            "tools": [
                {
                    "name": "answer",
                    "description": "Answer with a value for answer, following its schema.",
                    "input_schema": ANSWER_SCHEMA.schema,
                }
            ],
            "tool_choice": {"type": "tool", "name": "answer"},
        },
        ("2+2?", {"response_schema": ANSWER_SCHEMA}),
    ),
    "images by URL and base64": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare."},
                        {"type": "image", "source": {"type": "url", "url": PHOTO}},
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": base64.b64encode(PIXEL).decode(),
                            },
                        },
                    ],
                }
            ]
        },
        (
            [
                RelayMessage(
                    "user",
                    (
                        TextPart("Compare."),
                        ImagePart(url=PHOTO),
                        ImagePart(data=PIXEL, media_type="image/png"),
                    ),
                )
            ],
            {},
        ),
    ),
    "thinking": (
        {
            "messages": [user("Prove it.")],
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "max_tokens": MAX_TOKENS + 2048,
        },
        ("Prove it.", {"reasoning": 2048}),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_requests_match_the_sdk(case: str) -> None:
    sdk_kwargs, (prompt, options) = CASES[case]
    sdk = sdk_request(**{"model": MODEL, "max_tokens": MAX_TOKENS, **sdk_kwargs})
    relay = relay_request(prompt, **options)
    assert_as_intended(case, sdk, relay, INTENDED)
    assert typed_dict_problems(relay["body"], MessageCreateParamsNonStreaming) == []


@pytest.mark.parametrize("case", CASES)
def test_count_bodies_are_what_the_sdk_counts(case: str) -> None:
    # The same requests, as the count endpoint takes them: no max_tokens or sampling.
    _, (prompt, options) = CASES[case]
    body = count_payload(relay_request(prompt, **options)["body"])
    assert typed_dict_problems(body, MessageCountTokensParams) == []


def test_a_streamed_request_matches_the_sdk() -> None:
    sdk = sdk_request(model=MODEL, max_tokens=MAX_TOKENS, messages=[user("Count.")], stream=True)
    relay = relay_request("Count.", stream=True)
    assert_as_intended("stream", sdk, relay, INTENDED)
    assert typed_dict_problems(relay["body"], MessageCreateParamsStreaming) == []


async def test_batch_requests_are_what_the_sdk_sends() -> None:
    requests = [
        Request.from_prompt(
            "Weather in Paris?",
            model=MODEL,
            system="Be brief.",
            tools=[WEATHER],
            config=GenerationConfig(temperature=0.2, max_tokens=50),
            custom_id="r1",
        ),
        Request.from_prompt("2+2?", model=MODEL, response_schema=ANSWER_SCHEMA, custom_id="r2"),
    ]
    server = FakeServer()
    server.reply(BATCH)
    hub = hub_for("", relay_anthropic, transport=server.transport)
    try:
        adapter = hub.get(f"anthropic/{MODEL}").adapter
        await adapter.submit_batch(requests, metadata={"relay_job": "j1"})
    finally:
        await hub.aclose()
    relay = wire_request(server.requests[-1], HEADERS)
    assert typed_dict_problems(relay["body"], BatchCreateParams) == []

    sdk_server = FakeServer(json_answer(BATCH))

    client = anthropic.Anthropic(
        api_key=KEY,
        base_url="https://api.anthropic.com",
        max_retries=0,
        http_client=httpx.Client(transport=sdk_server.transport),
    )
    with client:
        client.messages.batches.create(requests=relay["body"]["requests"])
    assert_as_intended(
        "batch create", wire_request(sdk_server.requests[-1], HEADERS), relay, INTENDED
    )


BATCH = {
    "id": "msgbatch_1",
    "type": "message_batch",
    "processing_status": "in_progress",
    "request_counts": {"processing": 2, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
    "ended_at": None,
    "created_at": "2025-06-03T10:00:00Z",
    "expires_at": "2025-06-04T10:00:00Z",
    "archived_at": None,
    "cancel_initiated_at": None,
    "results_url": None,
}


# -- answers: every cassette body against the SDK's response types -----------------------


class BatchList(TypedDict):
    data: Required[list[dict[str, Any]]]
    has_more: Required[bool]
    first_id: NotRequired[str | None]
    last_id: NotRequired[str | None]


# What the SDK's types find in the cassettes that stays, once, each with its reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("batch_results.yaml", "line 3: not JSON"): (
        "cut mid-body on purpose: test_anthropic_batches reads a garbled line as a failed item"
    ),
}


def answer_problems(method: str, uri: str, status: int, text: str) -> list[str]:
    """What the SDK's types find wrong in one recorded answer."""
    path = httpx.URL(uri).path
    if status >= 400:
        return model_problems(ErrorResponse, json.loads(text))
    if path == "/v1/messages":
        if text.lstrip().startswith(("event:", "data:")):
            # ping keeps the connection alive: documented, and no SDK type carries it.
            return [
                f"event {i}: {p}"
                for i, event in enumerate(sse_payloads(text))
                if event.get("type") != "ping"
                for p in model_problems(
                    ErrorResponse if event.get("type") == "error" else RawMessageStreamEvent,
                    event,
                )
            ]
        return model_problems(Message, json.loads(text))
    if path == "/v1/messages/count_tokens":
        return model_problems(MessageTokensCount, json.loads(text))
    if path.endswith("/results"):
        problems = []
        for number, line in enumerate(text.splitlines()):
            try:
                item = json.loads(line) if line.strip() else None
            except ValueError:
                problems.append(f"line {number}: not JSON")
                continue
            if item is not None:
                found = model_problems(MessageBatchIndividualResponse, item)
                problems += [f"line {number}: {p}" for p in found]
        return problems
    if path == "/v1/messages/batches" and method == "GET":
        page = json.loads(text)
        return typed_dict_problems(page, BatchList) + [
            f"data[{i}]: {p}"
            for i, b in enumerate(page["data"])
            for p in model_problems(MessageBatch, b)
        ]
    if path.startswith("/v1/messages/batches"):
        return model_problems(MessageBatch, json.loads(text))
    return [f"no SDK type is known for {method} {path}"]


@pytest.mark.parametrize("cassette", sorted(p.name for p in CASSETTES.glob("*.yaml")))
def test_cassette_answers_are_what_the_sdk_describes(cassette: str) -> None:
    problems, allowed = [], set()
    for number, interaction in enumerate(cassette_interactions(CASSETTES / cassette)):
        request, status = interaction["request"], interaction["response"]["status"]["code"]
        method, uri = request["method"], request["uri"]
        where = f"{cassette}#{number} {method} {uri}"
        for problem in answer_problems(method, uri, status, answer_text(interaction)):
            if (cassette, problem) in ALLOWED:
                allowed.add(problem)
            else:
                problems.append(f"{where}: {problem}")
    assert not problems, "\n".join(problems)
    stale = [p for (c, p) in ALLOWED if c == cassette and p not in allowed]
    assert not stale, f"allowed, but no longer found: {stale}"
