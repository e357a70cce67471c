"""The OpenAI routes beside chat, as the official openai SDK sees them: embeddings
and one model, against relay-mock behind the real server."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import openai
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
