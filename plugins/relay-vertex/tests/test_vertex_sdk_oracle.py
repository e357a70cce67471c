"""Google's official SDK (``google-genai`` in Vertex mode) as the oracle of Relay's
Vertex Gemini wire format. The bodies are relay-gemini's, checked scenario by scenario
in its own oracle; here the Vertex side: the URL of each call, the bearer token, the
bodies once more, and every Vertex cassette answer.

Responses: Gemini answers, stream chunks and each line of a batch predictions file
validate as the SDK's ``GenerateContentResponse``; batch prediction jobs and listings go
through the SDK's own REST converter (``_BatchJob_from_vertex``) into ``BatchJob``, with
the REST keys it never reads reported unless ALLOWED_UNREAD gives the reason. Error
bodies are what the SDK's ``APIError`` reads. Not checked here: the model garden's
OpenAI-compatible answers (``openai_*.yaml``, the openai SDK's business, relay-openai's
oracle) and Cloud Storage's object listings (no SDK of this set types them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import google.oauth2.credentials
import httpx
import pytest
from google import genai
from google.genai import batches, errors, types
from vertex_support import CASSETTES, MODEL, PROJECT

from relay_core import Hub, ResponseSchema, Tool
from relay_core.testing import (
    MISSING,
    FakeServer,
    answer_text,
    cassette_interactions,
    cassette_problems,
    json_answer,
    json_differences,
    model_problems,
    sse_answer,
    sse_payloads,
    unexplained_differences,
    unread_keys,
)
from relay_gemini.payload import camel_case

MakeHub = Callable[..., Hub]
TARGET = f"vertex/{MODEL}"
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
ANSWER = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}
    ],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
    "modelVersion": MODEL,
    "responseId": "r1",
}

SCENARIOS: dict[str, tuple[dict[str, Any], Any, bool]] = {
    "system_text_and_settings": (
        dict(system="Be brief.", temperature=0.3, max_tokens=64),
        types.GenerateContentConfig(
            system_instruction="Be brief.", temperature=0.3, max_output_tokens=64
        ),
        False,
    ),
    "tools": (
        dict(tools=[Tool("get_weather", "Weather.", PARAMETERS)]),
        types.GenerateContentConfig(
            tools=[
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(
                            name="get_weather",
                            description="Weather.",
                            parameters_json_schema=PARAMETERS,
                        )
                    ]
                )
            ],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
        False,
    ),
    "structured_output": (
        dict(response_schema=ResponseSchema(SCHEMA, "city")),
        types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=SCHEMA
        ),
        False,
    ),
    "stream_with_usage": ({}, None, True),
}
# (scenario, JSON path) -> (the SDK's value, Relay's, why): as in relay-gemini's oracle.
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
}


def _answer(stream: bool) -> httpx.Response:
    return sse_answer([ANSWER]) if stream else json_answer(ANSWER)


def _sdk_client(server: FakeServer) -> genai.Client:
    return genai.Client(
        vertexai=True,
        project=PROJECT,
        location="global",
        credentials=google.oauth2.credentials.Credentials(token="vertex-token-1"),
        # v1, as Relay: the SDK's default is v1beta1.
        http_options=types.HttpOptions(
            api_version="v1", client_args={"transport": server.transport}
        ),
    )


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_relay_sends_what_the_sdk_sends(
    make_hub: MakeHub, catalog: Callable[..., str], scenario: str
) -> None:
    options, config, stream = SCENARIOS[scenario]
    server = FakeServer(_answer(stream))
    client = _sdk_client(server)
    if stream:
        list(client.models.generate_content_stream(model=MODEL, contents="Hi", config=config))
    else:
        client.models.generate_content(model=MODEL, contents="Hi", config=config)
    client.close()
    sdk = server.requests[-1]

    server = FakeServer(_answer(stream))
    hub = make_hub(catalog(project=PROJECT), server)
    if stream:
        list(hub.stream(TARGET, "Hi", **options))
    else:
        hub.chat(TARGET, "Hi", **options)
    relay = server.requests[-1]

    assert (relay.method, relay.url) == (sdk.method, sdk.url)
    assert relay.headers["authorization"].startswith("Bearer ")
    assert relay.headers["content-type"] == sdk.headers["content-type"]
    found = json_differences(camel_case(json.loads(sdk.content)), json.loads(relay.content))
    unexplained = unexplained_differences(scenario, found, INTENDED)
    assert unexplained == {}, f"{scenario}: SDK vs Relay differ at {unexplained}"


# ---------------------------------------------------------------------------- responses

# The SDK's type for each key of a Vertex GenerateContentRequest (a batch line's request).
REQUEST_TYPES: dict[str, Any] = {
    "contents": list[types.Content],
    "systemInstruction": types.Content,
    "generationConfig": types.GenerationConfig,
    "tools": list[types.Tool],
    "toolConfig": types.ToolConfig,
    "safetySettings": list[types.SafetySetting],
    "labels": dict[str, str],
}

# REST fields of a BatchPredictionJob the SDK's converter does not read, with why they
# may be there: each is a field of Vertex's BatchPredictionJob resource.
ALLOWED_UNREAD: dict[str, str] = {
    "$.modelVersionId": "BatchPredictionJob.modelVersionId, output only",
}
_SEEN_UNREAD: set[str] = set()


def _batch(body: dict[str, Any]) -> list[str]:
    converted, unread = unread_keys(batches._BatchJob_from_vertex, body)
    _SEEN_UNREAD.update(unread)
    job = types.BatchJob.model_validate(converted)
    assert job.state is not None
    assert job.state.name == body["state"]
    return [f"BatchJob REST field {path}" for path in unread if path not in ALLOWED_UNREAD]


def _listing(body: dict[str, Any]) -> list[str]:
    converted, unread = unread_keys(batches._ListBatchJobsResponse_from_vertex, body)
    types.ListBatchJobsResponse.model_validate(converted)
    problems = [
        f"listing REST field {path}"
        for path in unread
        if not path.startswith("$.batchPredictionJobs[]")
    ]
    return problems + [p for job in body["batchPredictionJobs"] for p in _batch(job)]


def _answer_body(body: dict[str, Any]) -> list[str]:
    return model_problems(types.GenerateContentResponse, body)


def _embeddings(body: dict[str, Any]) -> list[str]:
    """A text embedding model's predict answer, as google-genai converts it."""
    from google.genai import models

    converted, unread = unread_keys(models._EmbedContentResponse_from_vertex, body)
    types.EmbedContentResponse.model_validate(converted)
    return [f"predict REST field {path}" for path in unread]


def _error(body: dict[str, Any]) -> list[str]:
    error = errors.APIError(body["error"]["code"], body)
    assert (error.message, error.status) == (body["error"]["message"], body["error"]["status"])
    allowed = ("code", "message", "status", "details")
    return [f"error field {key}" for key in body["error"] if key not in allowed]


def _prediction_line(row: dict[str, Any]) -> list[str]:
    """A line of a Vertex batch predictions file: the request as sent, then the answer
    or a status message."""
    problems = [
        f"predictions line field {key}"
        for key in row
        if key not in ("request", "response", "status", "processed_time")
    ]
    for key, value in row["request"].items():
        problems += model_problems(REQUEST_TYPES[key], value, f"$.request.{key}", from_json=True)
    if row.get("response"):
        problems += _answer_body(row["response"])
    return problems


def check_interaction(interaction: dict[str, Any]) -> tuple[int, list[str]]:
    request, response = interaction["request"], interaction["response"]
    text = answer_text(interaction)
    url = httpx.URL(request["uri"])
    path = url.path
    if "/endpoints/openapi/" in path or (
        url.host == "storage.googleapis.com" and ("alt" not in url.params)
    ):
        return 0, []  # see the module's docstring
    if response["status"]["code"] >= 400:
        return 1, _error(json.loads(text))
    if ":streamGenerateContent" in path:
        chunks = sse_payloads(text)
        return len(chunks), [p for c in chunks for p in _answer_body(c)]
    if ":generateContent" in path:
        return 1, _answer_body(json.loads(text))
    if ":predict" in path:
        return 1, _embeddings(json.loads(text))
    if ":countTokens" in path:
        # Both are in the REST reference's CountTokensResponse; the SDK's type leaves them
        # out. Relay reads totalTokens.
        rest_only = {"promptTokensDetails", "totalBillableCharacters"}
        answer = {k: v for k, v in json.loads(text).items() if k not in rest_only}
        return 1, model_problems(types.CountTokensResponse, answer)
    if url.host == "storage.googleapis.com":
        lines = [json.loads(line) for line in text.split("\n") if line.strip()]
        return len(lines), [p for line in lines for p in _prediction_line(line)]
    if path.endswith("/batchPredictionJobs") and request["method"] == "GET":
        return 1, _listing(json.loads(text))
    if path.endswith(":cancel"):
        assert json.loads(text) == {}  # google.protobuf.Empty
        return 1, []
    if "batchPredictionJobs" in path:
        return 1, _batch(json.loads(text))
    raise AssertionError(f"no SDK type for {request['method']} {url}")


def test_every_cassette_answer_is_an_sdk_type() -> None:
    checked, problems = cassette_problems(CASSETTES, check_interaction)
    assert checked > 20
    assert problems == [], "\n".join(problems)
    assert set(ALLOWED_UNREAD) <= _SEEN_UNREAD, "stale: " + str(set(ALLOWED_UNREAD) - _SEEN_UNREAD)


# ---------------------------------------------------------------------------- batches


def test_relay_creates_the_batch_job_the_sdk_creates() -> None:
    _, create = cassette_interactions(CASSETTES / "batch_submit.yaml")
    relay = json.loads(create["request"]["body"])
    server = FakeServer(json_answer(json.loads(create["response"]["body"]["string"])))
    client = _sdk_client(server)
    client.batches.create(
        model=MODEL,
        src=relay["inputConfig"]["gcsSource"]["uris"][0],
        config=types.CreateBatchJobConfig(
            display_name=relay["displayName"],
            dest=relay["outputConfig"]["gcsDestination"]["outputUriPrefix"],
        ),
    )
    client.close()
    sdk = server.requests[-1]
    assert (sdk.method, str(sdk.url)) == (create["request"]["method"], create["request"]["uri"])
    # Relay names the model by its full publisher path, which the SDK's bare name becomes.
    assert json_differences(json.loads(sdk.content), relay) == {}


def test_relay_batch_lines_are_sdk_requests() -> None:
    upload, _ = cassette_interactions(CASSETTES / "batch_submit.yaml")
    lines = [json.loads(line) for line in upload["request"]["body"].split("\n") if line]
    assert len(lines) == 3
    for line in lines:
        assert set(line) == {"request"}
        assert _prediction_line(line) == []
