"""Google's official SDK (``google-genai``) as the oracle of Relay's Gemini wire format.

Requests: each scenario is sent through ``genai.Client`` and through Relay, both captured
by a fake server; method, path, query, the headers that matter and the JSON bodies must
be equal but for the differences in INTENDED, each with its reason. Relay's bodies are
validated against the SDK's types (``Content``, ``GenerationConfig``, ``Tool``,
``ToolConfig``), which refuse unknown keys; the wire is camelCase, which the types
accept as their aliases.

Responses: every answer in ``cassettes/relay-gemini`` validates as the SDK's type:
``GenerateContentResponse`` for answers, stream chunks and each line of a batch results
file; batch operations and listings go through the SDK's own REST converter
(``_BatchJob_from_mldev``) into ``BatchJob``, and the REST keys that converter never
reads are reported unless ALLOWED_UNREAD gives the reason Relay reads them. Error bodies
must be the ``{"error": {code, message, status, details}}`` the SDK's ``APIError`` reads.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from gemini_support import CASSETTES, KEY, MODEL, Recorder, answer, sse_answer
from google import genai
from google.genai import batches, errors, types

from relay_core import (
    Hub,
    ImagePart,
    Message,
    ResponseSchema,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from relay_core.testing import (
    MISSING,
    answer_text,
    cassette_interactions,
    cassette_problems,
    header_differences,
    json_answer,
    json_differences,
    model_problems,
    sse_payloads,
    unexplained_differences,
    unread_keys,
)
from relay_core.testing import (
    PNG_PIXEL as PIXEL,
)
from relay_gemini.payload import camel_case

MakeHub = Callable[..., Hub]
TARGET = f"gemini/{MODEL}"

PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER = Tool("get_weather", "Current weather in a city.", PARAMETERS)
SDK_WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather in a city.",
            parameters_json_schema=PARAMETERS,
        )
    ]
)
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
CALL_ID = "call-7f3a9c"
# Gemini's thought signatures are opaque base64 that must come back as they went out.
SIGNATURE = base64.b64encode(b"an opaque thought signature").decode()

# Each scenario: Relay's chat arguments and options, the SDK's contents and config, streamed.
SCENARIOS: dict[str, tuple[tuple[Any, ...], dict[str, Any], Any, Any, bool]] = {
    "system_text_and_settings": (
        ("Hi",),
        dict(system="Be brief.", temperature=0.3, top_p=0.9, max_tokens=64, stop=["END"], seed=7),
        "Hi",
        types.GenerateContentConfig(
            system_instruction="Be brief.",
            temperature=0.3,
            top_p=0.9,
            max_output_tokens=64,
            stop_sequences=["END"],
            seed=7,
        ),
        False,
    ),
    "tools": (
        ("Weather in Paris?",),
        dict(tools=[WEATHER], tool_choice="get_weather"),
        "Weather in Paris?",
        types.GenerateContentConfig(
            tools=[SDK_WEATHER],
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(
                    mode=types.FunctionCallingConfigMode.ANY,
                    allowed_function_names=["get_weather"],
                )
            ),
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
        False,
    ),
    "tool_result_round_trip": (
        (
            [
                Message("user", [TextPart("Weather in Paris?")]),
                Message("assistant", [ToolCallPart(CALL_ID, "get_weather", {"city": "Paris"})]),
                Message("user", [ToolResultPart(CALL_ID, '{"temp": 21}')]),
            ],
        ),
        dict(tools=[WEATHER]),
        [
            types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]),
            types.Content(
                role="model",
                parts=[
                    types.Part(
                        function_call=types.FunctionCall(
                            id=CALL_ID, name="get_weather", args={"city": "Paris"}
                        )
                    )
                ],
            ),
            types.Content(
                role="user",
                parts=[
                    types.Part(
                        function_response=types.FunctionResponse(
                            id=CALL_ID, name="get_weather", response={"temp": 21}
                        )
                    )
                ],
            ),
        ],
        types.GenerateContentConfig(
            tools=[SDK_WEATHER],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
        False,
    ),
    "signed_call_and_thought": (
        (
            [
                Message("user", [TextPart("Weather in Paris?")]),
                Message(
                    "assistant",
                    [
                        ThinkingPart("The user wants weather.", signature=SIGNATURE),
                        ToolCallPart(CALL_ID, "get_weather", {"city": "Paris"}, SIGNATURE),
                    ],
                ),
                Message("user", [ToolResultPart(CALL_ID, "21 C")]),
            ],
        ),
        dict(tools=[WEATHER]),
        [
            types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]),
            types.Content(
                role="model",
                parts=[
                    types.Part(
                        text="The user wants weather.",
                        thought=True,
                        thought_signature=base64.b64decode(SIGNATURE),
                    ),
                    types.Part(
                        function_call=types.FunctionCall(
                            id=CALL_ID, name="get_weather", args={"city": "Paris"}
                        ),
                        thought_signature=base64.b64decode(SIGNATURE),
                    ),
                ],
            ),
            types.Content(
                role="user",
                parts=[
                    types.Part(
                        function_response=types.FunctionResponse(
                            id=CALL_ID, name="get_weather", response={"result": "21 C"}
                        )
                    )
                ],
            ),
        ],
        types.GenerateContentConfig(
            tools=[SDK_WEATHER],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
        False,
    ),
    "structured_output": (
        ("Name a city.",),
        dict(response_schema=ResponseSchema(SCHEMA, "city")),
        "Name a city.",
        types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=SCHEMA
        ),
        False,
    ),
    "stream_with_usage": (("Hi",), {}, "Hi", None, True),
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
        [
            types.Content(
                role="user",
                parts=[
                    types.Part(text="Compare."),
                    types.Part.from_uri(
                        file_uri="https://example.com/cat.png", mime_type="image/png"
                    ),
                    types.Part.from_bytes(data=PIXEL, mime_type="image/png"),
                ],
            )
        ],
        None,
        False,
    ),
    "reasoning": (
        ("Think.",),
        dict(reasoning=2048),
        "Think.",
        types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_budget=2048, include_thoughts=True)
        ),
        False,
    ),
}

# The differences between what the SDK and Relay send, each once, with its reason:
# (scenario or "*" for all, JSON path or header) -> (the SDK's value, Relay's, why).
INTENDED: dict[tuple[str, str], tuple[Any, Any, str]] = {
    ("system_text_and_settings", "$.systemInstruction.role"): (
        "user",
        MISSING,
        "the API takes a system instruction without a role; the SDK fills in its default",
    ),
    ("tools", "$.generationConfig"): (
        {},
        MISSING,
        "the SDK sends an empty generationConfig; Relay sends none when nothing is set",
    ),
    ("signed_call_and_thought", "$.generationConfig"): (
        {},
        MISSING,
        "the SDK sends an empty generationConfig; Relay sends none when nothing is set",
    ),
    ("tool_result_round_trip", "$.generationConfig"): (
        {},
        MISSING,
        "the SDK sends an empty generationConfig; Relay sends none when nothing is set",
    ),
    ("image_url_and_base64", "$.contents[0].parts[2].inlineData.data"): (
        base64.urlsafe_b64encode(PIXEL).decode(),
        base64.b64encode(PIXEL).decode(),
        "the SDK writes URL-safe base64; the API reads both alphabets and Relay writes the "
        "standard one, as the API's own examples do",
    ),
}
HEADERS = ("content-type", "x-goog-api-key")


def _answer(stream: bool) -> httpx.Response:
    if stream:
        return sse_answer([answer([{"text": "ok"}])])
    return json_answer(answer([{"text": "ok"}]))


def _through_sdk(contents: Any, config: Any, stream: bool) -> httpx.Request:
    server = Recorder(_answer(stream))
    client = genai.Client(
        api_key=KEY,
        # v1beta, as Relay: the API's batch mode and JSON-Schema fields are there.
        http_options=types.HttpOptions(
            api_version="v1beta", client_args={"transport": server.transport}
        ),
    )
    if stream:
        list(client.models.generate_content_stream(model=MODEL, contents=contents, config=config))
    else:
        client.models.generate_content(model=MODEL, contents=contents, config=config)
    client.close()
    return server.requests[-1]


def _through_relay(
    make_hub: MakeHub, args: tuple[Any, ...], options: dict[str, Any], stream: bool
) -> httpx.Request:
    server = Recorder(_answer(stream))
    hub = make_hub(server)
    if stream:
        list(hub.stream(TARGET, *args, **options))
    else:
        hub.chat(TARGET, *args, **options)
    return server.requests[-1]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_relay_sends_what_the_sdk_sends(make_hub: MakeHub, scenario: str) -> None:
    args, options, contents, config, stream = SCENARIOS[scenario]
    sdk = _through_sdk(contents, config, stream)
    relay = _through_relay(make_hub, args, options, stream)
    assert (relay.method, relay.url.path, relay.url.params) == (
        sdk.method,
        sdk.url.path,
        sdk.url.params,
    )
    found = json_differences(camel_case(json.loads(sdk.content)), json.loads(relay.content))
    found.update(header_differences(sdk.headers, relay.headers, HEADERS))
    unexplained = unexplained_differences(scenario, found, INTENDED)
    assert unexplained == {}, f"{scenario}: SDK vs Relay differ at {unexplained}"


# The SDK's type for each key of a GenerateContentRequest body (the model is in the URL).
REQUEST_TYPES: dict[str, Any] = {
    "contents": list[types.Content],
    "systemInstruction": types.Content,
    "generationConfig": types.GenerationConfig,
    "tools": list[types.Tool],
    "toolConfig": types.ToolConfig,
    "safetySettings": list[types.SafetySetting],
    "cachedContent": str,
}


def valid_request(body: dict[str, Any]) -> None:
    """Assert that ``body`` is a GenerateContentRequest the SDK's types accept: they
    refuse unknown keys themselves; from JSON, as bytes arrive base64-encoded."""
    assert set(body) <= set(REQUEST_TYPES), set(body) - set(REQUEST_TYPES)
    for key, value in body.items():
        assert model_problems(REQUEST_TYPES[key], value, f"$.{key}", from_json=True) == []


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_relay_bodies_are_valid_sdk_requests(make_hub: MakeHub, scenario: str) -> None:
    args, options, _, _, stream = SCENARIOS[scenario]
    valid_request(json.loads(_through_relay(make_hub, args, options, stream).content))


# ---------------------------------------------------------------------------- responses


# REST fields of a batch operation that the SDK's converter does not read, with why Relay
# may: each is in the Gemini API's reference for the Operation / GenerateContentBatch.
ALLOWED_UNREAD: dict[str, str] = {
    "$.done": "Operation.done: the long-running operation's own flag",
    "$.metadata.@type": "the Any type URL of an Operation's metadata",
    "$.metadata.name": "GenerateContentBatch.name, the same as the Operation's",
    "$.metadata.inputConfig.fileName": "GenerateContentBatch.inputConfig: the input file",
    "$.metadata.batchStats.requestCount": "GenerateContentBatch.batchStats: counts",
    "$.metadata.batchStats.successfulRequestCount": "GenerateContentBatch.batchStats",
    "$.metadata.batchStats.failedRequestCount": "GenerateContentBatch.batchStats",
    "$.metadata.batchStats.pendingRequestCount": "GenerateContentBatch.batchStats",
    "$.response.@type": "the Any type URL of a finished Operation's response",
    "$.response.responsesFile": "GenerateContentBatchOutput.responsesFile",
    "$.error.code": "Operation.error: a google.rpc.Status",
    "$.error.message": "Operation.error: a google.rpc.Status",
}


_SEEN_UNREAD: set[str] = set()


def _batch(body: dict[str, Any]) -> list[str]:
    converted, unread = unread_keys(batches._BatchJob_from_mldev, body)
    _SEEN_UNREAD.update(unread)
    types.BatchJob.model_validate(converted)
    return [f"BatchJob REST field {path}" for path in unread if path not in ALLOWED_UNREAD]


def _listing(body: dict[str, Any]) -> list[str]:
    converted, unread = unread_keys(batches._ListBatchJobsResponse_from_mldev, body)
    types.ListBatchJobsResponse.model_validate(converted)
    problems = [
        f"listing REST field {path}" for path in unread if not path.startswith("$.operations[]")
    ]
    return problems + [
        problem for operation in body.get("operations", []) for problem in _batch(operation)
    ]


def _answer_body(body: dict[str, Any]) -> list[str]:
    return model_problems(types.GenerateContentResponse, body)


def _error(body: dict[str, Any]) -> list[str]:
    error = errors.APIError(body["error"]["code"], body)
    assert (error.message, error.status) == (body["error"]["message"], body["error"]["status"])
    return [
        f"error field {key}"
        for key in body["error"]
        if key not in ("code", "message", "status", "details")
    ]


def _results_line(line: str) -> list[str]:
    try:
        row = json.loads(line)
    except ValueError:
        # batch_results.yaml garbles one line on purpose, for Relay's report of it.
        assert line.startswith('{"key": "r3"'), f"not JSON: {line[:80]}"
        return []
    problems = [
        f"results line field {key}" for key in row if key not in ("key", "response", "error")
    ]
    if "response" in row:
        problems += _answer_body(row["response"])
    if "error" in row:
        problems += model_problems(types.JobError, row["error"])
    return problems


def check_interaction(interaction: dict[str, Any]) -> tuple[int, list[str]]:
    """How many bodies of one cassette interaction were checked, and what was wrong."""
    request, response = interaction["request"], interaction["response"]
    text = answer_text(interaction)
    url = httpx.URL(request["uri"])
    path = url.path
    if response["status"]["code"] >= 400:
        return 1, _error(json.loads(text))
    if ":streamGenerateContent" in path:
        chunks = sse_payloads(text)
        return len(chunks), [
            p for c in chunks for p in (_error(c) if "error" in c else _answer_body(c))
        ]
    if ":generateContent" in path:
        return 1, _answer_body(json.loads(text))
    if ":countTokens" in path:
        # The REST answer's promptTokensDetails (in the real recording the cassette's
        # evidence names) is a field the SDK's type leaves out; Relay reads totalTokens.
        answer = {k: v for k, v in json.loads(text).items() if k != "promptTokensDetails"}
        return 1, model_problems(types.CountTokensResponse, answer)
    if ":download" in path:
        lines = [line for line in text.split("\n") if line.strip()]
        return len(lines), [p for line in lines for p in _results_line(line)]
    if path.endswith("/batches"):
        return 1, _listing(json.loads(text))
    if ("/batches/" in path and not path.endswith(":cancel")) or ":batchGenerateContent" in path:
        return 1, _batch(json.loads(text))
    if path.endswith(":cancel"):
        assert json.loads(text) == {}  # google.protobuf.Empty
        return 1, []
    if "/upload/" in path and text.strip():
        return 1, model_problems(types.File, json.loads(text)["file"])
    return 0, []


def test_every_cassette_answer_is_an_sdk_type() -> None:
    checked, problems = cassette_problems(CASSETTES, check_interaction)
    assert checked > 40
    assert problems == [], "\n".join(problems)
    assert set(ALLOWED_UNREAD) <= _SEEN_UNREAD, "stale: " + str(set(ALLOWED_UNREAD) - _SEEN_UNREAD)


# ---------------------------------------------------------------------------- batches


def _submitted() -> list[dict[str, Any]]:
    """Relay's upload start, upload and create-batch requests as ``batch_submit.yaml``
    holds them (the cassette player refuses any other body: this is what Relay sends)."""
    return cassette_interactions(CASSETTES / "batch_submit.yaml")


def test_relay_creates_the_batch_the_sdk_creates() -> None:
    *_, create = _submitted()
    relay = json.loads(create["request"]["body"])
    server = Recorder(json_answer(json.loads(create["response"]["body"]["string"])))
    client = genai.Client(
        api_key=KEY,
        http_options=types.HttpOptions(
            api_version="v1beta", client_args={"transport": server.transport}
        ),
    )
    client.batches.create(
        model=MODEL,
        src=relay["batch"]["inputConfig"]["fileName"],
        config=types.CreateBatchJobConfig(display_name=relay["batch"]["displayName"]),
    )
    client.close()
    sdk = server.requests[-1]
    assert (sdk.method, str(sdk.url)) == (create["request"]["method"], create["request"]["uri"])
    assert json.loads(sdk.content) == relay


def test_relay_batch_lines_are_sdk_requests() -> None:
    _, upload, _ = _submitted()
    lines = [json.loads(line) for line in upload["request"]["body"].split("\n") if line]
    assert len(lines) == 2
    for line in lines:
        # A line of a Gemini batch input file: a key and one GenerateContentRequest.
        assert set(line) == {"key", "request"}
        valid_request(line["request"])
