"""relay_core.testing's SDK-oracle checkers, on small local types: they must report the
unknown keys and fields an SDK's own validation lets through, and the missing ones."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal, Union

import httpx
import pydantic
from typing_extensions import Required, TypedDict

from relay_core.testing import (
    json_differences,
    model_problems,
    sse_payloads,
    typed_dict_problems,
    wire_request,
)


class Alias:
    """Stands for an SDK's ``PropertyInfo(alias=...)``."""

    def __init__(self, alias: str) -> None:
        self.alias = alias


class TextPart(TypedDict, total=False):
    type: Required[Literal["text"]]
    text: Required[str]


class ImagePart(TypedDict, total=False):
    type: Required[Literal["image"]]
    url: str


class Params(TypedDict, total=False):
    model: Required[str]
    parts: Required[Iterable[TextPart | ImagePart]]
    temperature: float | None
    schema_: Required[Annotated[dict[str, object], Alias("schema")]]


def test_typed_dict_problems_finds_unknown_missing_and_mistyped_keys() -> None:
    good = {"model": "m", "parts": [{"type": "text", "text": "hi"}], "schema": {"a": 1}}
    assert typed_dict_problems(good, Params) == []
    bad = {
        "model": "m",
        "parts": [{"type": "text", "text": "hi", "cache": True}, {"type": "image", "url": 3}],
        "temperature": "hot",
        "seed": 1,
    }
    assert sorted(typed_dict_problems(bad, Params)) == [
        "$.parts[0]: unknown key 'cache'",
        "$.parts[1].url: 3 is not a string",
        "$.temperature: 'hot' is not a number",
        "$: missing required key 'schema'",
        "$: unknown key 'seed'",
    ]
    assert typed_dict_problems({"parts": [], "schema": {}}, Params) == [
        "$: missing required key 'model'"
    ]


class Usage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    input_tokens: int


class Answer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    type: Literal["answer"]
    usage: Usage


class Ping(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    type: Literal["ping"]


def test_model_problems_reports_the_extra_fields_a_model_lets_through() -> None:
    data = {"type": "answer", "usage": {"input_tokens": 1, "cache_tokens": 2}, "store": True}
    assert pydantic.TypeAdapter(Answer).validate_python(data)  # the SDK would say nothing
    assert model_problems(Answer, data) == [
        "$: unknown field 'store'",
        "$.usage: unknown field 'cache_tokens'",
    ]
    assert model_problems(Answer, {"type": "answer", "usage": {}}) == [
        "$.usage.input_tokens: Field required"
    ]


def test_model_problems_reports_only_the_union_member_meant() -> None:
    event = Union[Answer, Ping]  # noqa: UP007 (the form the SDKs' unions take)
    assert model_problems(event, {"type": "ping"}) == []
    assert model_problems(event, {"type": "answer", "usage": {}}) == [
        "$.usage.input_tokens: Field required"
    ]


def test_wire_request_and_json_differences() -> None:
    request = httpx.Request(
        "POST",
        "https://api.example.com/v1/chat?x=1",
        json={"a": [1, 2], "b": 1},
        headers={"authorization": "Bearer k", "user-agent": "x"},
    )
    seen = wire_request(request, ("authorization", "content-type", "api-key"))
    assert seen == {
        "method": "POST",
        "path": "/v1/chat",
        "query": {"x": "1"},
        "headers": {"authorization": "Bearer k", "content-type": "application/json"},
        "body": {"a": [1, 2], "b": 1},
    }
    assert json_differences({"a": [1, 2], "b": 1}, {"a": [1, 3], "c": 1.0}) == {
        "$.a[1]": (2, 3),
        "$.b": (1, "<missing>"),
        "$.c": ("<missing>", 1.0),
    }


def test_sse_payloads_skip_done_and_join_data_lines() -> None:
    text = 'event: a\ndata: {"x":\ndata: 1}\n\ndata: [DONE]\n\n'
    assert sse_payloads(text) == [{"x": 1}]
