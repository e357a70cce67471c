"""The OpenAI routes beside chat, as the official openai SDK sees them: embeddings,
the Responses API (text, tools, structured output, streaming) and one model, against
relay-mock behind the real server."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import openai
import pydantic
import pytest
from serve_support import Served

Serve = Callable[..., Served]

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def _bad_request(call: Callable[[], object]) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as caught:
        call()
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "invalid_request_error"
    return body


# ---------------------------------------------------------------------------- embeddings


def test_embeddings_come_back_one_per_input_in_order(serve: Serve) -> None:
    client = serve().client()
    answer = client.embeddings.create(
        model="fast", input=["a cat", "a dog", "a cat"], encoding_format="float"
    )
    assert answer.object == "list"
    assert answer.model == "fast"
    assert [item.index for item in answer.data] == [0, 1, 2]
    assert all(item.object == "embedding" for item in answer.data)
    cat, dog, again = (item.embedding for item in answer.data)
    assert len(cat) == 256  # the mock's default length
    assert math.isclose(math.fsum(v * v for v in cat), 1.0, rel_tol=1e-9)
    assert cat == again
    assert cat != dog
    assert answer.usage.prompt_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens


def test_base64_vectors_decode_to_the_float_ones(serve: Serve) -> None:
    client = serve().client()
    floats = client.embeddings.create(model="fast", input="hello", encoding_format="float")
    # The SDK asks for base64 when no format is given, and decodes it as float32.
    default = client.embeddings.create(model="fast", input="hello")
    raw = client.embeddings.with_raw_response.create(
        model="fast", input="hello", encoding_format="base64"
    )
    assert isinstance(json.loads(raw.text)["data"][0]["embedding"], str)
    for got, want in zip(default.data[0].embedding, floats.data[0].embedding, strict=True):
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-7)


def test_dimensions_shorten_the_vectors(serve: Serve) -> None:
    answer = (
        serve()
        .client()
        .embeddings.create(model="fast", input="short", dimensions=64, encoding_format="float")
    )
    assert len(answer.data[0].embedding) == 64


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": [[1, 2], [3]]}, "input[0]"),
        ({"input": []}, "input"),
        ({"input": ["ok", ""]}, "input[1]"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "extra_body": {"truncate": True}}, "truncate"),
    ],
)
def test_bad_embedding_input_is_a_400_naming_the_field(
    serve: Serve, options: dict[str, Any], param: str
) -> None:
    client = serve().client()
    body = _bad_request(lambda: client.embeddings.create(model="fast", **options))
    assert body["param"] == param


def test_an_unknown_or_non_embedding_model_is_refused(serve: Serve) -> None:
    client = serve().client()
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="nonexistent", input="x")
    assert caught.value.code == "model_not_found"
    # The trouble provider does not embed.
    body = _bad_request(lambda: client.embeddings.create(model="trouble/x", input="x"))
    assert body["code"] == "unsupported_capability"


def test_embeddings_are_counted_under_their_own_route(serve: Serve) -> None:
    server = serve()
    server.client().embeddings.create(model="fast", input="x")
    metrics = server.metrics()
    assert (
        metrics['relay_serve_requests_total{route="/v1/embeddings",model="fast",status="200"}'] == 1
    )


# ---------------------------------------------------------------------------- responses


def test_a_response_answers_with_text_and_usage(serve: Serve) -> None:
    answer = (
        serve()
        .client()
        .responses.create(model="fast", instructions="Be brief.", input="Hello, world!")
    )
    assert answer.object == "response"
    assert answer.id.startswith("resp_")
    assert answer.status == "completed"
    assert answer.model == "fast"
    assert answer.instructions == "Be brief."
    assert answer.output_text == "Hello, world!"
    (message,) = answer.output
    assert message.type == "message"
    assert message.role == "assistant"
    assert answer.usage is not None
    assert answer.usage.output_tokens == 4  # "Hello , world !"
    assert answer.usage.total_tokens == answer.usage.input_tokens + 4


def test_input_items_and_settings_reach_the_model(serve: Serve) -> None:
    answer = (
        serve()
        .client()
        .responses.create(
            model="fast",
            input=[
                {"role": "developer", "content": "Answer plainly."},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "one two three four five"},
                        {"type": "input_image", "image_url": "https://example.com/a.png"},
                    ],
                },
            ],
            max_output_tokens=2,
            temperature=0.3,
            metadata={"team": "search"},
        )
    )
    assert answer.output_text == "one two"
    assert answer.status == "incomplete"
    assert answer.incomplete_details is not None
    assert answer.incomplete_details.reason == "max_output_tokens"
    assert answer.metadata == {"team": "search"}


def test_a_tool_call_round_trips_with_its_output(serve: Serve) -> None:
    client = serve().client()
    question = {"role": "user", "content": "What is the weather in Paris?"}
    first = client.responses.create(model="fast", input=[question], tools=[WEATHER])
    (call,) = first.output
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert call.call_id
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert first.output_text == ""

    final = client.responses.create(
        model="fast",
        input=[
            question,
            *first.output,  # as the SDK's docs show: the output goes back as input
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "clear"}'},
        ],
        tools=[WEATHER],
    )
    assert final.status == "completed"
    assert "get_weather returned" in final.output_text
    assert '{"sky": "clear"}' in final.output_text


class Person(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0, le=130)


def test_structured_output_parses_into_the_pydantic_model(serve: Serve) -> None:
    answer = (
        serve().client().responses.parse(model="fast", input="Invent a person.", text_format=Person)
    )
    person = answer.output_parsed
    assert isinstance(person, Person)
    assert 0 <= person.age <= 130


def test_a_stream_sends_the_responses_event_sequence(serve: Serve) -> None:
    client = serve().client()
    with client.responses.stream(model="fast", input="count one two three") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == "count one two three"
    assert final.output_text == "count one two three"
    assert final.status == "completed"
    assert final.usage is not None
    assert final.usage.output_tokens == 4


def test_a_streamed_tool_call_arrives_as_argument_deltas(serve: Serve) -> None:
    events = list(
        serve()
        .client()
        .responses.create(
            model="fast",
            input="Weather in Rome please",
            tools=[WEATHER],
            tool_choice={"type": "function", "name": "get_weather"},
            stream=True,
        )
    )
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.item.type for e in added] == ["function_call"]
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert deltas
    assert json.loads("".join(deltas)) == {"city": "Rome"}
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(done.arguments) == {"city": "Rome"}
    assert events[-1].type == "response.completed"
    (call,) = events[-1].response.output
    assert call.type == "function_call"
    assert call.id == added[0].item.id
    assert json.loads(call.arguments) == {"city": "Rome"}


def test_an_error_before_output_is_a_status_and_after_it_an_error_event(serve: Serve) -> None:
    client = serve().client()
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as caught:
            client.responses.create(model="trouble/Timeout", input="hi", stream=stream)
        assert caught.value.status_code == 504
    with pytest.raises(openai.APIError) as failed:
        list(client.responses.create(model="trouble/midstream", input="hi", stream=True))
    assert "sk-upstream" not in str(failed.value.body)
    assert isinstance(failed.value.body, dict)
    assert failed.value.body["code"] == "upstream_unavailable"


@pytest.mark.parametrize(
    ("options", "param", "words"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "web_search"),
        ({"previous_response_id": "resp_123"}, "previous_response_id", "stores no responses"),
        ({"store": True}, "store", "stores no responses"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "references"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type", "reasoning"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
            "input_audio",
        ),
        (
            {"text": {"format": {"type": "json_schema", "name": "x"}}},
            "text.format.schema",
            "schema",
        ),
        ({"tool_choice": {"type": "function", "name": "nope"}}, "tool_choice", "nope"),
        ({"top_p": 2}, "top_p", "top_p"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort", "extreme"),
        ({"max_output_tokens": 0}, "max_output_tokens", "max_tokens"),
    ],
)
def test_what_the_server_cannot_serve_is_a_400_saying_so(
    serve: Serve, options: dict[str, Any], param: str, words: str
) -> None:
    client = serve().client()
    options = {"input": "hi", **options}
    body = _bad_request(lambda: client.responses.create(model="fast", **options))
    assert body["param"] == param
    assert words in body["message"]


# ---------------------------------------------------------------------------- models


def test_a_model_is_retrieved_by_its_alias(serve: Serve) -> None:
    client = serve().client()
    model = client.models.retrieve("fast")
    assert model.id == "fast"
    assert model.object == "model"
    assert model.owned_by == "relay"
    for name in ("nonexistent", "mock/echo"):  # only what GET /v1/models lists
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve(name)
        assert caught.value.code == "model_not_found"
        assert caught.value.body["param"] == "model"  # type: ignore[index]


def test_retrieving_a_model_needs_a_key_when_keys_are_set(serve: Serve) -> None:
    from relay_serve import ApiKey, ServeSettings

    key = "sk-relay-right-key-0123456789"
    server = serve(settings=ServeSettings(keys=(ApiKey.from_key("ci", key),)))
    with pytest.raises(openai.AuthenticationError):
        server.client("sk-relay-wrong-key-0123456789").models.retrieve("fast")
    assert server.client(key).models.retrieve("fast").id == "fast"


# ---------------------------------------------------------------------------- admission

KEY = "sk-relay-right-key-0123456789"
BODIES: dict[str, dict[str, Any]] = {
    "/v1/embeddings": {"model": "fast", "input": "x"},
    "/v1/responses": {"model": "fast", "input": "x"},
}


@pytest.mark.parametrize("route", sorted(BODIES))
def test_the_new_routes_pass_chat_s_admission(serve: Serve, route: str) -> None:
    from relay_serve import ApiKey, ServeSettings

    keys = (ApiKey.from_key("ci", KEY, 2),)
    server = serve(settings=ServeSettings(keys=keys, max_body_bytes=200))
    good = {"authorization": f"Bearer {KEY}"}
    with server.http() as http:
        assert http.post(route, json=BODIES[route]).status_code == 401
        assert http.post(route, content=b"{}", headers=good).status_code == 415
        big = {**BODIES[route], "input": "x" * 300}
        assert http.post(route, json=big, headers=good).status_code == 413
        bad_id = {**good, "x-request-id": "has space"}
        refused = http.post(route, json=BODIES[route], headers=bad_id)
        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == "X-Request-ID"
        answered = http.post(route, json=BODIES[route], headers={**good, "x-request-id": "r-1"})
        assert answered.status_code == 200
        assert answered.headers["x-request-id"] == "r-1"
        # The key's limit (2 a minute) counts these routes' calls like chat's.
        limited = http.post(route, json=BODIES[route], headers=good)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"


def test_a_client_that_hangs_up_mid_response_stream_cancels_the_upstream(serve: Serve) -> None:
    from serve_support import TroubleProvider

    server = serve()
    body = {"model": "stall", "input": "x", "stream": True}
    with (
        server.http() as http,
        http.stream("POST", "/v1/responses", json=body, headers={"x-request-id": "gone-1"}) as got,
    ):
        kinds: list[str] = []
        for line in got.iter_lines():
            if line.startswith("event: "):
                kinds.append(line.removeprefix("event: "))
            if kinds[-1:] == ["response.output_text.delta"]:
                break
    server.wait_for(lambda m: m["relay_serve_in_flight"] == 0)
    assert TroubleProvider.cancelled == ["gone-1"]
    final = server.metrics()
    assert final['relay_serve_cancelled_total{route="/v1/responses"}'] == 1
