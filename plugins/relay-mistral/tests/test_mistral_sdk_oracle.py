"""Mistral's official SDK (``mistralai``) as the oracle of Relay's wire format.

Requests: each scenario is sent through the SDK and through Relay, both captured by a
fake server, and the method, path, the headers that matter and the JSON bodies must be
equal but for the differences listed in INTENDED, each with its reason (a new difference
fails). Relay's bodies are also validated against the SDK's ``ChatCompletionRequest``
with unknown keys refused.

Responses: every answer body in ``cassettes/relay-mistral`` (chat answers, each stream
chunk, batch jobs and listings, each line of a batch output file, error bodies) is
validated against the SDK's own type, with missing and unknown fields reported.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from mistral_support import CASSETTES, KEY, MODEL, chunk, completion
from mistralai.client import Mistral, errors, models

from relay_core import (
    DocumentPart,
    EmbeddingRequest,
    Hub,
    ImagePart,
    Message,
    ResponseSchema,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from relay_core.testing import (
    MISSING,
    FakeServer,
    answer_text,
    cassette_interactions,
    cassette_problems,
    header_differences,
    json_answer,
    json_differences,
    model_problems,
    sse_answer,
    sse_payloads,
    unexplained_differences,
)
from relay_core.testing import (
    PNG_PIXEL as PIXEL,
)
from relay_core.testing import (
    WEATHER_TOOL as WEATHER,
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
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
    "additionalProperties": False,
}
# Relay's ids are its own; on the wire they become Mistral's nine-letter ids.
CALL_ID = "D681PevKs"

# Each scenario: Relay's chat arguments, the SDK's chat.complete arguments, streamed or not.
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
            top_p=0.9,
            max_tokens=64,
            stop=["END"],
            random_seed=7,
        ),
        False,
    ),
    "tools": (
        ("Weather in Paris?",),
        dict(tools=[WEATHER], tool_choice="get_weather"),
        dict(
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[SDK_WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
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
        dict(
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
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
                    "name": "get_weather",
                    "content": '{"temp": 21}',
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
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": SCHEMA, "strict": True},
            },
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
                        {"type": "image_url", "image_url": "https://example.com/cat.png"},
                        {"type": "image_url", "image_url": DATA_URL},
                    ],
                }
            ]
        ),
        False,
    ),
    "document_url": (
        (
            [
                Message(
                    "user",
                    [
                        TextPart("Summarize."),
                        DocumentPart(url="https://example.com/paper.pdf", name="paper.pdf"),
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
                        {"type": "text", "text": "Summarize."},
                        {
                            "type": "document_url",
                            "document_url": "https://example.com/paper.pdf",
                            "document_name": "paper.pdf",
                        },
                    ],
                }
            ]
        ),
        False,
    ),
    "reasoning": (
        ("Think.",),
        dict(reasoning="high"),
        dict(messages=[{"role": "user", "content": "Think."}], reasoning_effort="high"),
        False,
    ),
}

# The differences between what the SDK and Relay send, each once, with its reason:
# (scenario or "*" for all, JSON path or header) -> (the SDK's value, Relay's, why).
INTENDED: dict[tuple[str, str], tuple[Any, Any, str]] = {
    ("*", "$.stream"): (
        False,
        MISSING,
        "false is the API's default; Relay sends stream only when true",
    ),
    ("*", "header:accept"): (
        "application/json",
        "*/*",
        "Relay's HTTP client accepts any type and reads errors whatever their type",
    ),
    ("stream_with_usage", "header:accept"): (
        "text/event-stream",
        "*/*",
        "Mistral streams on stream=true alone, whatever the accept header",
    ),
    ("tool_result_round_trip", "$.messages[1].prefix"): (
        False,
        MISSING,
        "the SDK writes its model's default; false is the API's default too",
    ),
    ("tool_result_round_trip", "$.messages[1].tool_calls[0].index"): (
        0,
        MISSING,
        "the SDK writes its model's default; an index only orders a stream's deltas",
    ),
}
# user-agent is left out: each client names itself.
HEADERS = ("content-type", "authorization", "accept")


def _answer(stream: bool) -> httpx.Response:
    if stream:
        done = chunk(
            {"content": ""},
            "stop",
            usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        )
        return sse_answer([chunk({"role": "assistant", "content": "ok"}), done], done=True)
    return json_answer(completion("ok"))


def _through_sdk(sdk_args: dict[str, Any], stream: bool) -> httpx.Request:
    server = FakeServer(_answer(stream))
    with httpx.Client(transport=server.transport) as client:
        sdk = Mistral(api_key=KEY, client=client)
        if stream:
            with sdk.chat.stream(model=MODEL, **sdk_args) as events:
                list(events)
        else:
            sdk.chat.complete(model=MODEL, **sdk_args)
    return server.requests[-1]


def _through_relay(
    make_hub: MakeHub, args: tuple[Any, ...], options: dict[str, Any], stream: bool
) -> httpx.Request:
    server = FakeServer(_answer(stream))
    hub = make_hub(server)
    if stream:
        list(hub.stream(f"mistral/{MODEL}", *args, **options))
    else:
        hub.chat(f"mistral/{MODEL}", *args, **options)
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


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_relay_bodies_are_valid_sdk_requests(make_hub: MakeHub, scenario: str) -> None:
    args, options, _, stream = SCENARIOS[scenario]
    body = json.loads(_through_relay(make_hub, args, options, stream).content)
    model: Any = models.ChatCompletionStreamRequest if stream else models.ChatCompletionRequest
    assert model_problems(model, body) == []


# ---------------------------------------------------------------------------- responses

# What the SDK's types find in the cassettes that stays, as "<type>:<problem>", each with
# its reason. Empty:
# a field Relay reads that the SDK does not know is a defect until a real source shows it.
ALLOWED_UNKNOWN: dict[str, str] = {}


def _response_type(method: str, url: str, status: int) -> Any:
    """The SDK type a cassette's answer to ``method url`` must be, by endpoint."""
    path = httpx.URL(url).path
    if status >= 400:
        # The SDK types only the 422 body; its other errors are raw SDKErrors.
        return errors.HTTPValidationErrorData if status == 422 else None
    if path == "/v1/chat/completions":
        return models.ChatCompletionResponse
    if path == "/v1/embeddings":
        return models.EmbeddingResponse
    if path == "/v1/batch/jobs" and method == "GET":
        return models.ListBatchJobsResponse
    if path.startswith("/v1/batch/jobs"):
        return models.BatchJob
    if path == "/v1/files" and method == "POST":
        return models.CreateFileResponse
    if path.endswith("/content"):
        return "batch_lines"
    return None


def _json_line(line: str) -> Any:
    """A results-file line; the one line ``batch_results.yaml`` garbles on purpose (for
    Relay's report of an unreadable line) is the only one allowed not to parse."""
    try:
        return json.loads(line)
    except ValueError:
        assert line.startswith('{"id":"batch-3f7b1c2e-r2"'), f"not JSON: {line[:80]}"
        return None


def _bodies(interaction: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(SDK type, body) for each JSON body in the cassette's answer."""
    request, response = interaction["request"], interaction["response"]
    status = response["status"]["code"]
    text = answer_text(interaction)
    content_type = (response.get("headers", {}).get("content-type") or [""])[0]
    if "event-stream" in content_type:
        return [(models.CompletionChunk, data) for data in sse_payloads(text) if "choices" in data]
    kind = _response_type(request["method"], request["uri"], status)
    if kind == "batch_lines":
        # The SDK types no output line (its download is raw bytes); each line's answer
        # body is a ChatCompletionResponse when the request succeeded.
        lines = [_json_line(line) for line in text.split("\n") if line.strip()]
        return [
            (models.ChatCompletionResponse, line["response"]["body"])
            for line in lines
            if line is not None and (line.get("response") or {}).get("status_code") == 200
        ]
    return [(kind, json.loads(text))] if kind is not None else []


def test_every_cassette_answer_is_an_sdk_type() -> None:
    def check(interaction: dict[str, Any]) -> tuple[int, list[str]]:
        bodies = _bodies(interaction)
        return len(bodies), [
            f"{kind.__name__}: {problem}"
            for kind, body in bodies
            for problem in model_problems(kind, body)
            if f"{kind.__name__}:{problem}" not in ALLOWED_UNKNOWN
        ]

    checked, problems = cassette_problems(CASSETTES, check)
    assert checked > 30
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------------------- embeddings


def test_relay_sends_the_embeddings_request_the_sdk_sends(make_hub: MakeHub) -> None:
    answer = {
        "id": "e1",
        "object": "list",
        "model": "codestral-embed",
        "data": [{"object": "embedding", "embedding": [0.5, 0.25], "index": i} for i in (0, 1)],
        "usage": {"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2},
    }
    sdk_server = FakeServer(json_answer(answer))
    with httpx.Client(transport=sdk_server.transport) as client:
        Mistral(api_key=KEY, client=client).embeddings.create(
            model="codestral-embed", inputs=["a", "b"], output_dimension=2
        )
    relay_server = FakeServer(json_answer(answer))
    adapter = make_hub(relay_server).get("mistral/codestral-embed").adapter
    request = EmbeddingRequest(inputs=["a", "b"], model="codestral-embed", dimensions=2)
    vectors = asyncio.run(adapter.embed(request)).vectors
    assert vectors == ((0.5, 0.25), (0.5, 0.25))
    sdk, relay = sdk_server.requests[-1], relay_server.requests[-1]
    assert (relay.method, relay.url.path) == (sdk.method, sdk.url.path)
    assert json.loads(relay.content) == json.loads(sdk.content)


# ---------------------------------------------------------------------------- batches


def _submitted() -> tuple[dict[str, Any], dict[str, Any]]:
    """Relay's upload and create-job requests, as ``batch_submit.yaml`` holds them (the
    cassette player refuses any other body, so this is what Relay sends)."""
    upload, create = cassette_interactions(CASSETTES / "batch_submit.yaml")
    return upload["request"], create["request"]


def test_relay_creates_the_batch_job_the_sdk_creates() -> None:
    _, create = _submitted()
    relay = json.loads(create["body"])
    server = FakeServer(
        json_answer(
            json.loads(
                cassette_interactions(CASSETTES / "batch_submit.yaml")[1]["response"]["body"][
                    "string"
                ]
            )
        )
    )
    with httpx.Client(transport=server.transport) as client:
        Mistral(api_key=KEY, client=client).batch.jobs.create(
            endpoint=relay["endpoint"],
            input_files=relay["input_files"],
            model=relay["model"],
            metadata=relay["metadata"],
        )
    sdk = server.requests[-1]
    assert (create["method"], httpx.URL(create["uri"]).path) == (sdk.method, sdk.url.path)
    # The SDK writes its default timeout; Relay leaves the API's own (the same 24 hours).
    assert json_differences(json.loads(sdk.content), relay) == {"$.timeout_hours": (24, MISSING)}
    assert model_problems(models.CreateBatchJobRequest, relay) == []


def test_relay_batch_lines_are_sdk_batch_requests() -> None:
    upload, create = _submitted()
    model = json.loads(create["body"])["model"]
    text = upload["body"]
    lines = [line for line in text.split("\r\n") if line.startswith('{"custom_id"')]
    lines = [row for line in lines for row in line.split("\n") if row]
    assert len(lines) == 2
    for line in map(json.loads, lines):
        assert model_problems(models.BatchRequest, line) == []
        # The model is the job's: a line's body is a chat request without it.
        body = {"model": model, **line["body"]}
        assert model_problems(models.ChatCompletionRequest, body) == []
    # The upload's form fields are the ones the SDK's upload sends.
    answer = cassette_interactions(CASSETTES / "batch_submit.yaml")[0]["response"]
    server = FakeServer(json_answer(json.loads(answer["body"]["string"])))
    with httpx.Client(transport=server.transport) as client:
        Mistral(api_key=KEY, client=client).files.upload(
            file={"file_name": "relay-batch.jsonl", "content": b"{}"}, purpose="batch"
        )
    sdk = server.requests[-1]
    assert (upload["method"], httpx.URL(upload["uri"]).path) == (sdk.method, sdk.url.path)
    for field in ('name="purpose"\r\n\r\nbatch', 'name="file"; filename="relay-batch.jsonl"'):
        assert field in sdk.content.decode()
        assert field in text
