"""The official ``openai`` SDK's ``AzureOpenAI`` client as the oracle of Azure OpenAI's
wire format.

Requests: each call is made through the SDK and through Relay, both answered by a fake
server that records them; method, path, api-version, the api-key header and the JSON body
must match, and Relay's bodies must be what the SDK's request types allow.

Answers: every answer body in cassettes/relay-azure must validate as the SDK's response
type; what Azure adds to OpenAI's shapes (its content filter annotations) is allowed by
name, once, with the reason.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import httpx2
import openai
import pytest
from azure_support import API_VERSION, CASSETTES, CATALOG, DEPLOYMENT, ENDPOINT, KEY, completion
from openai.types import Batch, CreateEmbeddingResponse, FileObject
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from openai.types.shared import ErrorObject

import relay_azure
from relay_core import (
    ImagePart,
    Message,
    ResponseSchema,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from relay_core.testing import (
    WEATHER_TOOL as WEATHER,
)
from relay_core.testing import (
    FakeServer,
    answer_text,
    assert_as_intended,
    cassette_interactions,
    hub_for,
    model_problems,
    sse_payloads,
    typed_dict_problems,
    wire_request,
)
from relay_openai.embeddings import decode_base64

HEADERS = ("api-key", "authorization", "content-type")
WEATHER_WIRE = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {**WEATHER.parameters, "additionalProperties": False},
        "strict": True,
    },
}
PIXEL = b"\x89PNG\r\n\x1a\n"
ANSWER_SCHEMA = ResponseSchema(
    {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]},
    name="answer",
)
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}

# Each difference Relay means to keep, once: (case, or "*" for every case, JSON path) ->
# (the SDK's value, Relay's, the reason).
INTENDED: dict[tuple[str, str], tuple[Any, Any, str]] = {}


def _answer(stream: bool) -> tuple[dict[str, str], bytes]:
    body = completion()
    if not stream:
        return {"content-type": "application/json"}, json.dumps(body).encode()
    chunk = {**body, "object": "chat.completion.chunk", "usage": None}
    chunk["choices"] = [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]
    text = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
    return {"content-type": "text/event-stream"}, text.encode()


def sdk_request(**kwargs: Any) -> dict[str, Any]:
    headers, body = _answer(bool(kwargs.get("stream")))
    server = FakeServer(httpx2.Response(200, headers=headers, content=body))

    client = openai.AzureOpenAI(
        api_key=KEY,
        azure_endpoint=ENDPOINT,
        api_version=API_VERSION,
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(server)),
    )
    with client:
        answer = client.chat.completions.create(model=DEPLOYMENT, **kwargs)
        if kwargs.get("stream"):
            for _ in answer:
                pass
    return wire_request(server.requests[-1], HEADERS)


def relay_request(prompt: Any, *, stream: bool = False, **options: Any) -> dict[str, Any]:
    headers, body = _answer(stream)
    server = FakeServer(httpx.Response(200, headers=headers, content=body))

    with hub_for(CATALOG, relay_azure, transport=server.transport) as hub:
        if stream:
            list(hub.stream(f"azure/{DEPLOYMENT}", prompt, **options))
        else:
            hub.chat(f"azure/{DEPLOYMENT}", prompt, **options)
    return wire_request(server.requests[-1], HEADERS)


CASES: dict[str, tuple[dict[str, Any], tuple[Any, dict[str, Any]]]] = {
    "system, user text and settings": (
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            "temperature": 0.2,
            "max_completion_tokens": 50,
            "stop": ["END"],
            "seed": 7,
        },
        (
            "Hi",
            {
                "system": "Be brief.",
                "temperature": 0.2,
                "max_tokens": 50,
                "stop": ["END"],
                "seed": 7,
            },
        ),
    ),
    "tool result round trip": (
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
            ],
            "tools": [WEATHER_WIRE],
            "tool_choice": "auto",
        },
        (
            [
                Message.user("Weather in Paris?"),
                Message("assistant", (ToolCallPart("call_1", "get_weather", {"city": "Paris"}),)),
                Message("user", (ToolResultPart("call_1", '{"temp": 21}'),)),
            ],
            {"tools": [WEATHER], "tool_choice": "auto"},
        ),
    ),
    "structured output": (
        {
            "messages": [{"role": "user", "content": "2+2?"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {**ANSWER_SCHEMA.schema, "additionalProperties": False},
                    "strict": True,
                },
            },
        },
        ("2+2?", {"response_schema": ANSWER_SCHEMA}),
    ),
    "image as base64": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is it?"},
                        {
                            "type": "image_url",
                            "image_url": {
                                "url": "data:image/png;base64," + base64.b64encode(PIXEL).decode()
                            },
                        },
                    ],
                }
            ]
        },
        (
            [
                Message(
                    "user",
                    (TextPart("What is it?"), ImagePart(data=PIXEL, media_type="image/png")),
                )
            ],
            {},
        ),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_requests_match_the_sdk(case: str) -> None:
    sdk_kwargs, (prompt, options) = CASES[case]
    relay = relay_request(prompt, **options)
    assert_as_intended(case, sdk_request(**sdk_kwargs), relay, INTENDED)
    assert typed_dict_problems(relay["body"], CompletionCreateParamsNonStreaming) == []


def test_a_streamed_request_matches_the_sdk() -> None:
    sdk = sdk_request(
        messages=[{"role": "user", "content": "Count."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    relay = relay_request("Count.", stream=True)
    assert_as_intended("stream", sdk, relay, INTENDED)
    assert typed_dict_problems(relay["body"], CompletionCreateParamsStreaming) == []


# -- answers ------------------------------------------------------------------------------

# Azure's additions to OpenAI's shapes, documented in its REST reference ("content
# filtering"); the openai SDK's models do not carry them. Allowed wherever they appear.
AZURE_FIELDS = {
    "prompt_filter_results": "the prompt's content filter results",
    "content_filter_results": "a choice's content filter results",
    "innererror": "an error's content filter details",
    "status": "an error's HTTP status, repeated in Azure's error body",
}
_NO_ERROR_TYPE = (
    "Azure's own errors carry code and message with no type, or a null one (its REST "
    "reference's ErrorResponse); OpenAI's ErrorObject requires a string"
)
# Answers the SDK's types refuse that stay, once, each with its reason.
ALLOWED: dict[tuple[str, str], str] = {
    **{
        (cassette, "$.type: Field required"): _NO_ERROR_TYPE
        for cassette in (
            "deployment_not_found.yaml",
            "embeddings_deployment_not_found.yaml",
            "rate_limit.yaml",
            "unauthorized.yaml",
        )
    },
    ("content_filter_prompt.yaml", "$.type: Input should be a valid string"): _NO_ERROR_TYPE,
    ("batch_submit.yaml", "$.status: Input should be 'uploaded', 'processed' or 'error'"): (
        "Azure's file statuses include pending, running, deleting and deleted (its REST "
        "reference, Files - Upload); an upload answers pending"
    ),
    ("stream.yaml", "chunk 0: $.object: Input should be 'chat.completion.chunk'"): (
        "Azure's first chunk carries only the prompt's filter results, with an empty "
        "object; test_azure_answers reads past it"
    ),
}


def _azure_extra(problem: str) -> bool:
    return any(problem.endswith(f"unknown field {name!r}") for name in AZURE_FIELDS)


def answer_problems(method: str, uri: str, status: int, text: str) -> list[str]:
    path = httpx.URL(uri).path
    if status >= 400:
        body = json.loads(text)
        return [f"$ has {sorted(body)}"] * (set(body) != {"error"}) + model_problems(
            ErrorObject, body["error"]
        )
    if path.endswith("/chat/completions"):
        if text.lstrip().startswith("data:"):
            return [
                f"chunk {i}: {p}"
                for i, chunk in enumerate(sse_payloads(text))
                for p in model_problems(ChatCompletionChunk, chunk)
            ]
        return model_problems(ChatCompletion, json.loads(text))
    if path.endswith("/embeddings"):
        # Asked for base64 (as the SDK asks too), the vectors come as text the SDK
        # decodes before its type applies.
        body = json.loads(text)
        for item in body.get("data") or ():
            if isinstance(item.get("embedding"), str):
                item["embedding"] = list(decode_base64(item["embedding"]))
        return model_problems(CreateEmbeddingResponse, body)
    if path.endswith("/content"):
        problems = []
        for number, line in enumerate(text.splitlines()):
            if line.strip():
                item = json.loads(line)
                body = (item.get("response") or {}).get("body")
                kind = (
                    ChatCompletion
                    if (item.get("response") or {}).get("status_code") == 200
                    else None
                )
                found = model_problems(kind, body) if kind and isinstance(body, dict) else []
                problems += [f"line {number}: {p}" for p in found]
        return problems
    if path.endswith("/files"):
        return model_problems(FileObject, json.loads(text))
    if path.endswith("/batches") and method == "GET":
        page = json.loads(text)
        return [
            f"data[{i}]: {p}" for i, b in enumerate(page["data"]) for p in model_problems(Batch, b)
        ]
    if "/batches" in path:
        return model_problems(Batch, json.loads(text))
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
            elif not _azure_extra(problem):
                problems.append(f"{where}: {problem}")
    assert not problems, "\n".join(problems)
    stale = [p for (c, p) in ALLOWED if c == cassette and p not in allowed]
    assert not stale, f"allowed, but no longer found: {stale}"
