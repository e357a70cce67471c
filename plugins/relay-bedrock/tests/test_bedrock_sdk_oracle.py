"""AWS's official SDK core (``botocore``) as the oracle of Relay's Bedrock wire format.

Requests: each scenario is built by botocore's ``bedrock-runtime`` client (Converse,
ConverseStream, InvokeModel), stopped at its ``before-send`` event, and sent by Relay to
a fake server; method, URL, the headers that matter and the JSON bodies must be equal
but for the differences in INTENDED, each with its reason. Relay's bodies also pass
botocore's ``ParamValidator`` against the operation's input shape, which refuses unknown
keys. The batch job Relay creates (``bedrock``'s CreateModelInvocationJob) and its
status, list and stop calls are compared the same way.

Responses: every answer in ``cassettes/relay-bedrock`` is matched to its operation by
the service model's HTTP route and walked against the operation's output shape (each
event of an event stream against its event's shape, an error against the shape its
``x-amzn-errortype`` names), with unknown and missing required members reported; and
botocore's own parser must read each JSON answer. Not checked: S3's objects (the batch
input and output files, whose records carry Anthropic's bodies) and the Anthropic events
inside InvokeModel's answers (relay-anthropic's oracle).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import botocore.session
import httpx
import pytest
from bedrock_support import (
    CASSETTES,
    MODEL,
    REGION,
    anthropic_message,
    chunk,
    converse,
    stream_answer,
    text_stream,
)
from botocore.eventstream import EventStreamBuffer
from botocore.model import OperationModel, Shape
from botocore.parsers import create_parser
from botocore.validate import ParamValidator

from relay_core import (
    Hub,
    ImagePart,
    Message,
    ResponseSchema,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from relay_core.testing import (
    MISSING,
    FakeServer,
    cassette_interactions,
    cassette_problems,
    header_differences,
    json_answer,
    json_differences,
    unexplained_differences,
)
from relay_core.testing import (
    PNG_PIXEL as PIXEL,
)

MakeHub = Callable[..., Hub]
TARGET = f"bedrock/{MODEL}"
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = Tool("get_weather", "Current weather in a city.", PARAMETERS)
SDK_WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "inputSchema": {"json": PARAMETERS},
    }
}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
CALL_ID = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


# Each scenario: Relay's chat arguments and options, botocore's operation parameters
# (modelId added), streamed.
CACHE_POINT = {"cachePoint": {"type": "default"}}
SCENARIOS: dict[str, tuple[tuple[Any, ...], dict[str, Any], dict[str, Any], bool]] = {
    "system_text_and_settings": (
        ("Hi",),
        dict(system="Be brief.", temperature=0.3, top_p=0.9, max_tokens=64, stop=["END"]),
        dict(
            messages=[_user("Hi")],
            system=[{"text": "Be brief."}],
            inferenceConfig={
                "maxTokens": 64,
                "temperature": 0.3,
                "topP": 0.9,
                "stopSequences": ["END"],
            },
        ),
        False,
    ),
    "tools": (
        ("Weather in Paris?",),
        dict(tools=[WEATHER], tool_choice="get_weather", max_tokens=64),
        dict(
            messages=[_user("Weather in Paris?")],
            inferenceConfig={"maxTokens": 64},
            toolConfig={"tools": [SDK_WEATHER], "toolChoice": {"tool": {"name": "get_weather"}}},
        ),
        False,
    ),
    "cache_points": (
        (Message.user("Hi", cache=True),),
        dict(system="Be brief.", cache_system=True, tools=[WEATHER], cache_tools=True),
        dict(
            messages=[{"role": "user", "content": [{"text": "Hi"}, CACHE_POINT]}],
            system=[{"text": "Be brief."}, CACHE_POINT],
            toolConfig={"tools": [SDK_WEATHER, CACHE_POINT]},
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
        dict(tools=[WEATHER], max_tokens=64),
        dict(
            messages=[
                _user("Weather in Paris?"),
                {
                    "role": "assistant",
                    "content": [
                        {
                            "toolUse": {
                                "toolUseId": CALL_ID,
                                "name": "get_weather",
                                "input": {"city": "Paris"},
                            }
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "toolResult": {
                                "toolUseId": CALL_ID,
                                "content": [{"text": '{"temp": 21}'}],
                            }
                        }
                    ],
                },
            ],
            inferenceConfig={"maxTokens": 64},
            toolConfig={"tools": [SDK_WEATHER]},
        ),
        False,
    ),
    "structured_output": (
        ("Name a city.",),
        dict(response_schema=ResponseSchema(SCHEMA, "city"), max_tokens=64),
        dict(
            messages=[_user("Name a city.")],
            inferenceConfig={"maxTokens": 64},
            # Converse has no JSON-schema mode every model takes: a forced tool carries it.
            toolConfig={
                "tools": [
                    {
                        "toolSpec": {
                            "name": "city",
                            "description": "Answer with a value for city, following its schema.",
                            "inputSchema": {"json": SCHEMA},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": "city"}},
            },
        ),
        False,
    ),
    "stream_with_usage": (
        ("Hi",),
        dict(max_tokens=64),
        dict(messages=[_user("Hi")], inferenceConfig={"maxTokens": 64}),
        True,
    ),
    "image_s3_and_bytes": (
        (
            [
                Message(
                    "user",
                    [
                        TextPart("Compare."),
                        ImagePart(url="s3://amzn-s3-demo-bucket/cat.png"),
                        ImagePart(data=PIXEL, media_type="image/png"),
                    ],
                )
            ],
        ),
        dict(max_tokens=64),
        dict(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"text": "Compare."},
                        {
                            "image": {
                                "format": "png",
                                "source": {
                                    "s3Location": {"uri": "s3://amzn-s3-demo-bucket/cat.png"}
                                },
                            }
                        },
                        {"image": {"format": "png", "source": {"bytes": PIXEL}}},
                    ],
                }
            ],
            inferenceConfig={"maxTokens": 64},
        ),
        False,
    ),
    "reasoning": (
        ("Think.",),
        dict(reasoning=2048, max_tokens=4096),
        dict(
            messages=[_user("Think.")],
            inferenceConfig={"maxTokens": 4096},
            additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 2048}},
        ),
        False,
    ),
}

# The differences between what botocore and Relay send, each once, with its reason:
# (scenario or "*" for all, JSON path or header) -> (botocore's value, Relay's, why).
INTENDED: dict[tuple[str, str], tuple[Any, Any, str]] = {
    ("*", "header:accept"): (
        MISSING,
        "*/*",
        "botocore sends no accept header; Relay's HTTP client accepts any type",
    ),
    ("stream_with_usage", "header:accept"): (
        MISSING,
        "application/vnd.amazon.eventstream",
        "Relay names the event stream it reads; the stream comes without it as well",
    ),
}
HEADERS = ("content-type", "accept")


class _Stop(Exception):
    """Raised from botocore's before-send: the request is built and signed, not sent."""


def _botocore(service: str) -> Any:
    # The aws_profile fixture has set up the fake default profile and its region.
    return botocore.session.get_session().create_client(service, region_name=REGION)


def through_botocore(service: str, operation: str, params: dict[str, Any]) -> Any:
    """The AWSPreparedRequest botocore builds for ``operation(**params)``."""
    client = _botocore(service)
    sent: list[Any] = []

    def stop(request: Any, **_: Any) -> None:
        sent.append(request)
        raise _Stop

    client.meta.events.register("before-send", stop)
    with pytest.raises(_Stop):
        getattr(client, operation)(**params)
    client.close()
    return sent[0]


def _through_relay(
    make_hub: MakeHub, args: tuple[Any, ...], options: dict[str, Any], stream: bool
) -> httpx.Request:
    if stream:
        body = b"".join(text_stream("ok"))
        answer = httpx.Response(
            200, content=body, headers={"content-type": "application/vnd.amazon.eventstream"}
        )
    elif "response_schema" in options:
        call = {"toolUseId": CALL_ID, "name": "city", "input": {"name": "Paris"}}
        answer = json_answer(converse({"toolUse": call}, stop="tool_use"))
    else:
        answer = json_answer(converse({"text": "ok"}))
    server = FakeServer(answer)
    hub = make_hub(server)
    if stream:
        list(hub.stream(TARGET, *args, **options))
    else:
        hub.chat(TARGET, *args, **options)
    return server.requests[-1]


def _text(value: Any) -> Any:
    """A header value as text (botocore keeps the ones it signs as bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def _compare(scenario: str, sdk: Any, relay: httpx.Request) -> dict[str, tuple[Any, Any]]:
    """The unexplained differences between botocore's request and Relay's."""
    assert (relay.method, str(relay.url)) == (sdk.method, sdk.url)
    # Both sign with SigV4 for the same key, region and service.
    for request in (sdk.headers, relay.headers):
        scheme, credential = _text(request["authorization"]).split(" ")[:2]
        assert scheme == "AWS4-HMAC-SHA256"
        assert credential.endswith(f"/{REGION}/bedrock/aws4_request,")
    found = json_differences(json.loads(sdk.body), json.loads(relay.content))
    found.update(header_differences(sdk.headers, relay.headers, HEADERS))
    return unexplained_differences(scenario, found, INTENDED)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_relay_sends_what_botocore_sends(make_hub: MakeHub, scenario: str) -> None:
    args, options, params, stream = SCENARIOS[scenario]
    operation = "converse_stream" if stream else "converse"
    sdk = through_botocore("bedrock-runtime", operation, {"modelId": MODEL, **params})
    relay = _through_relay(make_hub, args, options, stream)
    unexplained = _compare(scenario, sdk, relay)
    assert unexplained == {}, f"{scenario}: botocore vs Relay differ at {unexplained}"


def _service(name: str) -> Any:
    return botocore.session.get_session().get_service_model(name)


def valid_params(operation: OperationModel, params: dict[str, Any]) -> None:
    """Assert that ``params`` (a JSON body with its blobs still base64 text, plus the
    URI's members) are what botocore accepts for ``operation``: no unknown key, no
    missing required one, every type right."""
    report = ParamValidator().validate(params, operation.input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_relay_bodies_are_valid_botocore_params(make_hub: MakeHub, scenario: str) -> None:
    args, options, _, stream = SCENARIOS[scenario]
    body = json.loads(_through_relay(make_hub, args, options, stream).content)
    operation = _service("bedrock-runtime").operation_model(
        "ConverseStream" if stream else "Converse"
    )
    valid_params(operation, {"modelId": MODEL, **body})


def test_relay_invokes_the_model_as_botocore_does(make_hub: MakeHub) -> None:
    """InvokeModel carries the model's own body (Anthropic's Messages for Claude, checked
    by relay-anthropic): here the route and headers around it."""
    server = FakeServer(
        json_answer(
            {
                "id": "msg_bdrk_01",
                "type": "message",
                "role": "assistant",
                "model": "claude-3-5-haiku-20241022",
                "content": [{"type": "text", "text": "ok"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 1},
            }
        )
    )
    catalog = "providers:\n  bedrock:\n    options: {api: invoke, default_max_tokens: 64}\n"
    make_hub(server, catalog=catalog).chat(TARGET, "Hi")
    relay = server.requests[-1]
    sdk = through_botocore(
        "bedrock-runtime",
        "invoke_model",
        {
            "modelId": MODEL,
            "body": relay.content,
            "contentType": "application/json",
            "accept": "application/json",
        },
    )
    assert (relay.method, str(relay.url)) == (sdk.method, sdk.url)
    assert relay.content == sdk.body
    # botocore sends the content type and accept the caller names; Relay names JSON.
    assert relay.headers["content-type"] == "application/json"


def test_relay_streams_an_invocation_as_botocore_does(make_hub: MakeHub) -> None:
    message = anthropic_message("ok")
    events = [
        {"type": "message_start", "message": {**message, "content": [], "stop_reason": None}},
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
    server = FakeServer(stream_answer([chunk(e) for e in events]))
    catalog = "providers:\n  bedrock:\n    options: {api: invoke, default_max_tokens: 64}\n"
    list(make_hub(server, catalog=catalog).stream(TARGET, "Hi"))
    relay = server.requests[-1]
    sdk = through_botocore(
        "bedrock-runtime",
        "invoke_model_with_response_stream",
        {
            "modelId": MODEL,
            "body": relay.content,
            "contentType": "application/json",
            "accept": "application/json",
        },
    )
    assert (relay.method, str(relay.url)) == (sdk.method, sdk.url)
    assert relay.content == sdk.body


# ---------------------------------------------------------------------------- batches


def _batch_calls() -> Iterator[dict[str, Any]]:
    for name in ("batch_submit", "batch_status", "batch_list", "batch_cancel", "batch_results"):
        for interaction in cassette_interactions(CASSETTES / f"{name}.yaml"):
            if httpx.URL(interaction["request"]["uri"]).host.startswith("bedrock."):
                yield interaction["request"]


def _route(service: Any, method: str, url: httpx.URL) -> tuple[OperationModel, dict[str, Any]]:
    """The operation whose HTTP route ``method url`` is, and the URI members it fills."""
    path = url.raw_path.decode().split("?")[0]
    for name in service.operation_names:
        operation = service.operation_model(name)
        http = operation.http
        if http["method"] != method:
            continue
        template = http["requestUri"].split("?")[0]
        pattern = re.sub(r"\{(\w+)\+?\}", r"(?P<\1>[^/]+)", template)
        match = re.fullmatch(pattern, path)
        if match:
            return operation, {k: unquote(v) for k, v in match.groupdict().items()}
    raise AssertionError(f"no {service.service_name} operation routes {method} {path}")


def _query_params(operation: OperationModel, url: httpx.URL) -> dict[str, Any]:
    by_wire = {
        member.serialization.get("name"): (name, member)
        for name, member in operation.input_shape.members.items()
        if member.serialization.get("location") == "querystring"
    }
    params: dict[str, Any] = {}
    for key, value in url.params.items():
        assert key in by_wire, f"{operation.name} has no query parameter {key}"
        name, member = by_wire[key]
        params[name] = int(value) if member.type_name == "integer" else value
    return params


# Differences in the batch calls, with their reasons: (operation, path) -> (botocore, Relay).
BATCH_INTENDED: dict[tuple[str, str], tuple[Any, Any, str]] = {
    ("*", "header:accept"): (
        MISSING,
        "*/*",
        "botocore sends no accept header; Relay's HTTP client accepts any type",
    ),
    ("stream_with_usage", "header:accept"): (
        MISSING,
        "application/vnd.amazon.eventstream",
        "Relay names the event stream it reads; the stream comes without it as well",
    ),
}


def test_relay_batch_calls_are_botocore_calls() -> None:
    service = _service("bedrock")
    seen = set()
    for request in _batch_calls():
        url = httpx.URL(request["uri"])
        operation, params = _route(service, request["method"], url)
        params.update(_query_params(operation, url))
        body = json.loads(request["body"]) if request.get("body") else {}
        params.update(body)
        valid_params(operation, params)
        sdk = through_botocore("bedrock", _snake(operation.name), params)
        assert (sdk.method, sdk.url) == (request["method"], request["uri"])
        if body:
            found = json_differences(json.loads(sdk.body), body)
            unexplained = unexplained_differences(operation.name, found, BATCH_INTENDED)
            assert unexplained == {}, f"{operation.name}: {unexplained}"
        seen.add(operation.name)
    assert seen == {
        "CreateModelInvocationJob",
        "GetModelInvocationJob",
        "ListModelInvocationJobs",
        "StopModelInvocationJob",
    }


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# ---------------------------------------------------------------------------- responses


def shape_problems(shape: Shape, value: Any, path: str = "$") -> list[str]:
    """Members of ``value`` that ``shape`` does not have, required members it lacks and
    values of the wrong JSON type, at every depth."""
    kind = shape.type_name
    if kind == "structure":
        if shape.serialization.get("eventstream") or shape.metadata.get("document"):
            return []
        if not isinstance(value, dict):
            return [f"{path} is not an object"]
        members = {
            member.serialization.get("name", name): member
            for name, member in shape.members.items()
            if member.serialization.get("location") is None
        }
        problems = [f"{path}.{key} is not in {shape.name}" for key in value if key not in members]
        problems += [
            f"{path}.{name} ({shape.name}) is required"
            for name in shape.required_members
            if name in members and name not in value
        ]
        if shape.metadata.get("union") and len(value) != 1:
            problems.append(f"{path} sets {len(value)} members of the union {shape.name}")
        for key, item in value.items():
            if key in members:
                problems += shape_problems(members[key], item, f"{path}.{key}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path} is not a list"]
        return [
            p
            for i, item in enumerate(value)
            for p in shape_problems(shape.member, item, f"{path}[{i}]")
        ]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path} is not a map"]
        return [
            p for k, item in value.items() for p in shape_problems(shape.value, item, f"{path}.{k}")
        ]
    expected = {
        "string": str,
        "blob": str,
        "timestamp": (str, int, float),
        "integer": int,
        "long": int,
        "float": (int, float),
        "double": (int, float),
        "boolean": bool,
    }.get(kind)
    if expected is not None and not isinstance(value, expected):
        return [f"{path} is not a {kind}"]
    if kind == "string" and shape.enum and value not in shape.enum:
        return [f"{path}: {value!r} is not one of {shape.name}"]
    return []


def _events(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    return [(message.headers, message.payload) for message in buffer]


def _error_shape(service: Any, name: str) -> Shape:
    return next(s for s in service.error_shapes if s.name == name.split(":")[0])


# Members the cassettes carry that botocore's shapes lack, with reasons. Empty: a field
# Relay reads that the SDK does not know is a defect until a real source shows it.
ALLOWED: dict[str, str] = {}


def check_interaction(interaction: dict[str, Any]) -> tuple[int, list[str]]:
    request, response = interaction["request"], interaction["response"]
    url = httpx.URL(request["uri"])
    if ".s3." in url.host:
        return 0, []  # see the module's docstring
    service = _service("bedrock-runtime" if url.host.startswith("bedrock-runtime.") else "bedrock")
    operation, _ = _route(service, request["method"], url)
    body = response["body"]["string"]
    headers = {k.lower(): v[0] for k, v in response.get("headers", {}).items()}
    status = response["status"]["code"]
    if status >= 400:
        error = headers.get("x-amzn-errortype")
        if error is None:
            # Some errors come without the header (an invalid model id's 400 does): the
            # body must still be one of the service's error shapes.
            fits = [s.name for s in service.error_shapes if not shape_problems(s, json.loads(body))]
            return 1, [] if fits else [f"{status} answer fits no error shape"]
        return 1, shape_problems(_error_shape(service, error), json.loads(body))
    if "eventstream" in headers.get("content-type", ""):
        stream = next(
            m for m in operation.output_shape.members.values() if m.serialization.get("eventstream")
        )
        problems: list[str] = []
        events = _events(body if isinstance(body, bytes) else body.encode("latin-1"))
        for number, (event_headers, payload) in enumerate(events):
            data = json.loads(payload)
            if event_headers.get(":message-type") == "exception":
                shape = stream.members[event_headers[":exception-type"]]
            else:
                shape = stream.members[event_headers[":event-type"]]
            problems += shape_problems(shape, data, f"$[{number}]:{shape.name}")
        return len(events), problems
    raw = body if isinstance(body, bytes) else body.encode()
    parsed = create_parser(service.metadata["protocol"]).parse(
        {"status_code": status, "headers": headers, "body": raw}, operation.output_shape
    )
    assert "Error" not in parsed, parsed
    data = json.loads(raw)
    problems = shape_problems(operation.output_shape, data)
    if operation.name == "InvokeModel":
        problems = []  # the model's own body: relay-anthropic's oracle checks it
    return 1, problems


def test_every_cassette_answer_fits_botocore_shapes() -> None:
    def allowed(interaction: dict[str, Any]) -> tuple[int, list[str]]:
        count, found = check_interaction(interaction)
        return count, [p for p in found if p not in ALLOWED]

    checked, problems = cassette_problems(CASSETTES, allowed)
    assert checked > 20
    assert problems == [], "\n".join(problems)
