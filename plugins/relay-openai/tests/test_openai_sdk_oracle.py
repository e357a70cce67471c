"""The official ``openai`` SDK as the oracle of OpenAI's wire format.

Requests: each call is made through the SDK and through Relay, both answered by a fake
server that records them; method, path, the headers OpenAI reads and the JSON body must
match, but for the differences listed once in ``INTENDED`` with their reasons. Relay's
bodies must also be what the SDK's own request types (TypedDicts) allow, no unknown key.

Answers: every answer body in cassettes/relay-openai (chat completions, each stream
chunk, Responses API objects and events, errors, batches, files, each line of a batch
output file) must validate as the SDK's response type, with no field the type lacks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
from openai.types import Batch, CreateEmbeddingResponse, FileObject
from openai.types.batch_create_params import BatchCreateParams
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from openai.types.embedding_create_params import EmbeddingCreateParams
from openai.types.responses import Response as ResponsesObject
from openai.types.responses import ResponseStreamEvent
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from openai.types.shared import ErrorObject
from typing_extensions import NotRequired, Required, TypedDict

import relay_openai
from relay_core import (
    GenerationConfig,
    ImagePart,
    Message,
    Request,
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

KEY = "sk-test-relayopenaiFAKE0123456789abcdef"
CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-openai"
# What OpenAI reads of the headers; user-agent and x-stainless-* describe the client.
HEADERS = ("authorization", "content-type", "openai-organization", "openai-project")
MODEL = "gpt-4.1-mini"
# The same tool as an SDK user writes it for strict mode, which Relay compiles to.
WEATHER_STRICT = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PIXEL_URL = "data:image/png;base64," + base64.b64encode(PIXEL).decode()
PHOTO = "https://example.com/cat.png"
ANSWER_SCHEMA = ResponseSchema(
    {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]},
    name="answer",
)
ANSWER_SCHEMA_WIRE = {
    "type": "object",
    "properties": {"value": {"type": "integer"}},
    "required": ["value"],
    "additionalProperties": False,
}
CALL = ToolCallPart("call_1", "get_weather", {"city": "Paris"})
ROUND_TRIP = [
    Message.user("Weather in Paris?"),
    Message("assistant", (CALL,)),
    Message("user", (ToolResultPart("call_1", '{"temp": 21}'),)),
]

# Each difference Relay means to keep, once: (case, or "*" for every case, JSON path) ->
# (the SDK's value, Relay's, the reason).
INTENDED: dict[tuple[str, str], tuple[Any, Any, str]] = {}

# -- the two clients ------------------------------------------------------------------

CHAT_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1748944800,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
CHAT_STREAM = [
    {**CHAT_ANSWER, "object": "chat.completion.chunk", "choices": [], "usage": None},
    {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1748944800,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}],
    },
]
RESPONSES_ANSWER = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1748944800,
    "status": "completed",
    "model": MODEL,
    "output": [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok", "annotations": []}],
        }
    ],
    "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
}


EMBEDDINGS_ANSWER = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": "AACAPwAAAEA="}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 1, "total_tokens": 1},
}


def _answer(path: str, stream: bool) -> tuple[int, dict[str, str], bytes]:
    if path.endswith("/embeddings"):
        return 200, {"content-type": "application/json"}, json.dumps(EMBEDDINGS_ANSWER).encode()
    if not stream:
        body = RESPONSES_ANSWER if path.endswith("/responses") else CHAT_ANSWER
        return 200, {"content-type": "application/json"}, json.dumps(body).encode()
    if path.endswith("/responses"):
        events = [
            {"type": "response.completed", "sequence_number": 0, "response": RESPONSES_ANSWER}
        ]
        text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    else:
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in CHAT_STREAM) + "data: [DONE]\n\n"
    return 200, {"content-type": "text/event-stream"}, text.encode()


def sdk_request(call: str, **kwargs: Any) -> dict[str, Any]:
    """What the SDK sends for ``client.<call>(**kwargs)``."""
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        status, headers, body = _answer(request.url.path, bool(kwargs.get("stream")))
        return httpx2.Response(status, headers=headers, content=body)

    client = openai.OpenAI(
        api_key=KEY,
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with client:
        target: Any = client
        for name in call.split("."):
            target = getattr(target, name)
        answer = target(**kwargs)
        if kwargs.get("stream"):
            for _ in answer:
                pass
    return wire_request(seen[-1], HEADERS)


def relay_request(
    prompt: Any, *, stream: bool = False, api: str = "chat", **options: Any
) -> dict[str, Any]:
    """What Relay sends for the same call."""
    path = "/v1/responses" if api == "responses" else "/v1/chat/completions"
    status, headers, body = _answer(path, stream)
    server = FakeServer(httpx.Response(status, headers=headers, content=body))
    catalog = f"providers:\n  openai:\n    options:\n      api: {api}\n"
    with hub_for(catalog, relay_openai, transport=server.transport) as hub:
        model = options.pop("model", MODEL)
        if stream:
            list(hub.stream(f"openai/{model}", prompt, **options))
        else:
            hub.chat(f"openai/{model}", prompt, **options)
    return wire_request(server.requests[-1], HEADERS)


# -- embeddings requests ------------------------------------------------------------------


def test_an_embeddings_request_matches_the_sdk() -> None:
    """The SDK asks for base64 unless told otherwise; Relay does the same."""
    from relay_core import EmbeddingRequest

    sdk = sdk_request(
        "embeddings.create", model="text-embedding-3-small", input=["a", "b"], dimensions=2
    )
    server = FakeServer(
        httpx.Response(
            200,
            json={
                **EMBEDDINGS_ANSWER,
                "data": [
                    {"object": "embedding", "index": i, "embedding": "AACAPwAAAEA="}
                    for i in range(2)
                ],
            },
        )
    )
    request = EmbeddingRequest(inputs=["a", "b"], model="text-embedding-3-small", dimensions=2)
    with hub_for("", relay_openai, transport=server.transport) as hub:
        adapter = hub.get("openai/text-embedding-3-small").adapter
        answer = asyncio.run(adapter.embed(request))
    assert answer.vectors == ((1.0, 2.0), (1.0, 2.0))
    relay = wire_request(server.requests[-1], HEADERS)
    assert relay == sdk
    assert typed_dict_problems(relay["body"], EmbeddingCreateParams) == []


# -- Chat Completions requests ----------------------------------------------------------

CHAT_CASES: dict[str, tuple[dict[str, Any], tuple[Any, dict[str, Any]]]] = {
    "system and user text": (
        {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 2+2?"},
            ],
        },
        ("What is 2+2?", {"system": "Be brief."}),
    ),
    "generation settings": (
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Hi"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "max_completion_tokens": 50,
            "stop": ["END"],
            "seed": 7,
        },
        ("Hi", {"temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "stop": ["END"], "seed": 7}),
    ),
    "tools": (
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"type": "function", "function": WEATHER_STRICT}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
        ("Weather in Paris?", {"tools": [WEATHER], "tool_choice": "get_weather"}),
    ),
    "tool result round trip": (
        {
            "model": MODEL,
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
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
            ],
            "tools": [{"type": "function", "function": WEATHER_STRICT}],
            "tool_choice": "auto",
        },
        (ROUND_TRIP, {"tools": [WEATHER], "tool_choice": "auto"}),
    ),
    "structured output": (
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "2+2?"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA_WIRE, "strict": True},
            },
        },
        ("2+2?", {"response_schema": ANSWER_SCHEMA}),
    ),
    "images by URL and base64": (
        {
            "model": MODEL,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare."},
                        {"type": "image_url", "image_url": {"url": PHOTO, "detail": "low"}},
                        {"type": "image_url", "image_url": {"url": PIXEL_URL}},
                    ],
                }
            ],
        },
        (
            [
                Message(
                    "user",
                    (
                        TextPart("Compare."),
                        ImagePart(url=PHOTO, detail="low"),
                        ImagePart(data=PIXEL, media_type="image/png"),
                    ),
                )
            ],
            {},
        ),
    ),
    "reasoning": (
        {
            "model": "o4-mini",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": "Prove it."},
            ],
            "reasoning_effort": "low",
            "max_completion_tokens": 2000,
        },
        (
            "Prove it.",
            {"model": "o4-mini", "system": "Be brief.", "reasoning": "low", "max_tokens": 2000},
        ),
    ),
}


@pytest.mark.parametrize("case", CHAT_CASES)
def test_chat_requests_match_the_sdk(case: str) -> None:
    sdk_kwargs, (prompt, options) = CHAT_CASES[case]
    sdk = sdk_request("chat.completions.create", **sdk_kwargs)
    relay = relay_request(prompt, **dict(options))
    assert_as_intended(case, sdk, relay, INTENDED)
    assert typed_dict_problems(relay["body"], CompletionCreateParamsNonStreaming) == []


def test_a_streamed_chat_request_matches_the_sdk() -> None:
    sdk = sdk_request(
        "chat.completions.create",
        model=MODEL,
        messages=[{"role": "user", "content": "Count to three."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    relay = relay_request("Count to three.", stream=True)
    assert_as_intended("stream", sdk, relay, INTENDED)
    assert typed_dict_problems(relay["body"], CompletionCreateParamsStreaming) == []


# -- Responses API requests -------------------------------------------------------------

RESPONSES_TOOL = {"type": "function", **WEATHER_STRICT}
RESPONSES_CASES: dict[str, tuple[dict[str, Any], tuple[Any, dict[str, Any]]]] = {
    "system and user text": (
        {
            "model": MODEL,
            "instructions": "Be brief.",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "2+2?"}]}],
        },
        ("2+2?", {"system": "Be brief."}),
    ),
    "generation settings": (
        {
            "model": MODEL,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
            "temperature": 0.2,
            "top_p": 0.9,
            "max_output_tokens": 50,
        },
        ("Hi", {"temperature": 0.2, "top_p": 0.9, "max_tokens": 50}),
    ),
    "tools": (
        {
            "model": MODEL,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]}],
            "tools": [RESPONSES_TOOL],
            "tool_choice": {"type": "function", "name": "get_weather"},
        },
        ("Weather?", {"tools": [WEATHER], "tool_choice": "get_weather"}),
    ),
    "tool result round trip": (
        {
            "model": MODEL,
            "input": [
                {
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Weather in Paris?"}],
                },
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"city": "Paris"}',
                },
                {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}'},
            ],
            "tools": [RESPONSES_TOOL],
        },
        (ROUND_TRIP, {"tools": [WEATHER]}),
    ),
    "structured output": (
        {
            "model": MODEL,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "2+2?"}]}],
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "answer",
                    "schema": ANSWER_SCHEMA_WIRE,
                    "strict": True,
                }
            },
        },
        ("2+2?", {"response_schema": ANSWER_SCHEMA}),
    ),
    "images by URL and base64": (
        {
            "model": MODEL,
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Compare."},
                        {"type": "input_image", "image_url": PHOTO, "detail": "low"},
                        {"type": "input_image", "image_url": PIXEL_URL, "detail": "auto"},
                    ],
                }
            ],
        },
        (
            [
                Message(
                    "user",
                    (
                        TextPart("Compare."),
                        ImagePart(url=PHOTO, detail="low"),
                        ImagePart(data=PIXEL, media_type="image/png"),
                    ),
                )
            ],
            {},
        ),
    ),
    "reasoning": (
        {
            "model": "o4-mini",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Prove it."}]}],
            "reasoning": {"effort": "low"},
        },
        ("Prove it.", {"model": "o4-mini", "reasoning": "low"}),
    ),
}


@pytest.mark.parametrize("case", RESPONSES_CASES)
def test_responses_requests_match_the_sdk(case: str) -> None:
    sdk_kwargs, (prompt, options) = RESPONSES_CASES[case]
    sdk = sdk_request("responses.create", **sdk_kwargs)
    relay = relay_request(prompt, api="responses", **dict(options))
    assert_as_intended(f"responses: {case}", sdk, relay, INTENDED)
    assert typed_dict_problems(relay["body"], ResponseCreateParamsNonStreaming) == []


def test_a_streamed_responses_request_matches_the_sdk() -> None:
    sdk = sdk_request(
        "responses.create",
        model=MODEL,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Count."}]}],
        stream=True,
    )
    relay = relay_request("Count.", stream=True, api="responses")
    assert_as_intended("responses: stream", sdk, relay, INTENDED)
    assert typed_dict_problems(relay["body"], ResponseCreateParamsStreaming) == []


# -- batches: the lines Relay uploads and the batch it creates ----------------------------


async def test_batch_lines_and_the_create_call_match_the_sdk() -> None:
    server = FakeServer()
    server.reply(
        {
            "id": "file-1",
            "object": "file",
            "bytes": 1,
            "created_at": 1,
            "filename": "relay-batch.jsonl",
            "purpose": "batch",
            "status": "processed",
        }
    )
    server.reply(BATCH)
    hub = hub_for("", relay_openai, transport=server.transport)
    try:
        adapter = hub.get(f"openai/{MODEL}").adapter
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
            Request.from_prompt(
                "2+2?",
                model=MODEL,
                custom_id="r3",
                provider_kwargs={"openai": {"api": "responses"}},
            ),
        ]
        for request in requests:
            line = adapter.batch_line(request)
            assert set(line) == {"custom_id", "method", "url", "body"}
            params = (
                ResponseCreateParamsNonStreaming
                if line["url"] == "/v1/responses"
                else CompletionCreateParamsNonStreaming
            )
            assert typed_dict_problems(line["body"], params) == [], line
        await adapter.submit_batch(requests[:2], metadata={"relay_job": "j1"})
    finally:
        await hub.aclose()
    upload, create = (wire_request(r, HEADERS) for r in server.requests)
    assert (upload["method"], upload["path"]) == ("POST", "/v1/files")
    assert typed_dict_problems(create["body"], BatchCreateParams) == []

    sdk_upload = sdk_request("files.create", file=("relay-batch.jsonl", b"{}\n"), purpose="batch")
    sdk_create = sdk_request(
        "batches.create",
        input_file_id="file-1",
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"relay_job": "j1"},
    )
    assert (sdk_upload["method"], sdk_upload["path"]) == ("POST", "/v1/files")
    upload_headers = {k: v for k, v in upload["headers"].items() if k != "content-type"}
    assert upload_headers == {k: v for k, v in sdk_upload["headers"].items() if k != "content-type"}
    assert upload["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert_as_intended("batch create", sdk_create, create, INTENDED)


BATCH = {
    "id": "batch_1",
    "object": "batch",
    "endpoint": "/v1/chat/completions",
    "errors": None,
    "input_file_id": "file-1",
    "completion_window": "24h",
    "status": "validating",
    "output_file_id": None,
    "error_file_id": None,
    "created_at": 1748944800,
    "in_progress_at": None,
    "expires_at": 1749031200,
    "finalizing_at": None,
    "completed_at": None,
    "failed_at": None,
    "expired_at": None,
    "cancelling_at": None,
    "cancelled_at": None,
    "request_counts": {"total": 0, "completed": 0, "failed": 0},
    "metadata": {"relay_job": "j1"},
}


# -- answers: every cassette body against the SDK's response types -----------------------


class BatchOutputResponse(TypedDict):
    status_code: Required[int]
    request_id: Required[str]
    body: Required[dict[str, Any]]


class BatchOutputError(TypedDict):
    code: Required[str]
    message: Required[str]


class BatchOutputLine(TypedDict):
    """A line of a batch's output or error file: the SDK has no type for it, so it is
    written here from the API reference's "The request output object"."""

    id: Required[str]
    custom_id: Required[str]
    response: Required[BatchOutputResponse | None]
    error: Required[BatchOutputError | None]


class BatchList(TypedDict):
    object: Required[str]
    data: Required[list[dict[str, Any]]]
    first_id: NotRequired[str | None]
    last_id: NotRequired[str | None]
    has_more: Required[bool]


class ErrorBody(TypedDict):
    error: Required[dict[str, Any]]


# A real Responses API answer: pydantic/pydantic-ai, commit 00178b14,
# tests/models/cassettes/test_openai_responses/test_openai_responses_model_simple_response.yaml
REAL_RESPONSES = "pydantic-ai's recorded test_openai_responses_model_simple_response"
_NO_CACHE_WRITES = (
    f"the SDK requires usage.input_tokens_details.cache_write_tokens, which {REAL_RESPONSES} "
    "does not have (the API added it later); Relay does not read it"
)
_STORE = f"{REAL_RESPONSES} has store: true, which the SDK's Response model lacks"
# What the SDK's types find in the cassettes that stays, once, each with its evidence.
_CACHE_WRITES = "$.usage.input_tokens_details.cache_write_tokens: Field required"
ALLOWED: dict[tuple[str, str], str] = {
    ("batch_results_responses.yaml", f"line 0: {_CACHE_WRITES}"): _NO_CACHE_WRITES,
    ("chat_documents.yaml", _CACHE_WRITES): _NO_CACHE_WRITES,
    ("responses_answer.yaml", _CACHE_WRITES): _NO_CACHE_WRITES,
    ("responses_stream.yaml", _CACHE_WRITES): _NO_CACHE_WRITES,
    ("responses_stream.yaml", "event 14: $.response" + _CACHE_WRITES[1:]): _NO_CACHE_WRITES,
    ("responses_stream.yaml", "event 0: $.response: unknown field 'store'"): _STORE,
    ("responses_stream.yaml", "event 1: $.response: unknown field 'store'"): _STORE,
    # "event *" stands for every event of the stream that shows the problem.
    ("responses_reasoning_summary_stream.yaml", "event *: $.response" + _CACHE_WRITES[1:]): (
        _NO_CACHE_WRITES
    ),
    ("responses_reasoning_summary_stream.yaml", "event *: $.response: unknown field 'store'"): (
        _STORE
    ),
    ("responses_reasoning_summary_stream.yaml", "event *: $: unknown field 'obfuscation'"): (
        "OpenAI pads streamed delta events with an obfuscation string (pydantic-ai's recorded "
        "test_openai_include_raw_annotations_streaming has it); the SDK's event models lack "
        "it and Relay does not read it"
    ),
    ("batch_results.yaml", "line 2: not JSON"): (
        "cut mid-body on purpose: test_openai_batches reads a garbled line as a failed item"
    ),
}


def answer_problems(method: str, uri: str, status: int, text: str) -> list[str]:
    """What the SDK's types find wrong in one recorded answer."""
    path = httpx.URL(uri).path
    if status >= 400:
        body = json.loads(text)
        return typed_dict_problems(body, ErrorBody) + model_problems(ErrorObject, body["error"])
    if path.endswith("/chat/completions"):
        if text.lstrip().startswith("data:"):
            return [
                f"chunk {i}: {p}"
                for i, chunk in enumerate(sse_payloads(text))
                for p in (
                    model_problems(ErrorObject, chunk["error"])
                    if "error" in chunk
                    else model_problems(ChatCompletionChunk, chunk)
                )
            ]
        return model_problems(ChatCompletion, json.loads(text))
    if path.endswith("/responses"):
        if text.lstrip().startswith(("event:", "data:")):
            return [
                f"event {i}: {p}"
                for i, event in enumerate(sse_payloads(text))
                for p in model_problems(ResponseStreamEvent, event)
            ]
        return model_problems(ResponsesObject, json.loads(text))
    if path.endswith("/content"):
        problems = []
        for number, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                problems.append(f"line {number}: not JSON")
                continue
            found = typed_dict_problems(item, BatchOutputLine)
            answer = item.get("response") or {}
            body = answer.get("body")
            if isinstance(body, dict) and answer.get("status_code") == 200:
                kind = ResponsesObject if body.get("object") == "response" else ChatCompletion
                found += model_problems(kind, body)
            elif isinstance(body, dict):
                found += typed_dict_problems(body, ErrorBody)
                found += model_problems(ErrorObject, body.get("error"))
            problems += [f"line {number}: {p}" for p in found]
        return problems
    if path.endswith("/files"):
        return model_problems(FileObject, json.loads(text))
    if path.endswith("/embeddings"):
        # The SDK asks for base64 and decodes it before its model sees the vectors.
        body = json.loads(text)
        for item in body.get("data") or ():
            if isinstance(item.get("embedding"), str):
                item["embedding"] = list(decode_base64(item["embedding"]))
        return model_problems(CreateEmbeddingResponse, body)
    if path.endswith("/batches") and method == "GET":
        page = json.loads(text)
        return typed_dict_problems(page, BatchList) + [
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
        for found in answer_problems(method, uri, status, answer_text(interaction)):
            problem = found
            if (cassette, found) not in ALLOWED:
                problem = re.sub(r"^event \d+: ", "event *: ", found)
            if (cassette, problem) in ALLOWED:
                allowed.add(problem)
            else:
                problems.append(f"{where}: {found}")
    assert not problems, "\n".join(problems)
    stale = [p for (c, p) in ALLOWED if c == cassette and p not in allowed]
    assert not stale, f"allowed, but no longer found: {stale}"
