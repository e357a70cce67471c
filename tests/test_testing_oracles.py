"""relay_core.testing's SDK-oracle checkers, on small local types: they must report the
unknown keys and fields an SDK's own validation lets through, and the missing ones; and
the readers of what a request, a cassette or an event stream holds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import httpx
import pydantic
import pytest
from typing_extensions import Required, TypedDict

from relay_core.testing import (
    MISSING,
    PNG_PIXEL,
    WEATHER_TOOL,
    answer_text,
    assert_as_intended,
    cassette_interactions,
    cassette_problems,
    header_differences,
    json_differences,
    model_problems,
    sse_payloads,
    typed_dict_problems,
    unexplained_differences,
    unread_keys,
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


def test_json_differences_tell_a_missing_key_from_a_null_and_an_int_from_a_float() -> None:
    sdk = {"a": 1, "b": [{"c": 2}, 3], "stream": False, "n": None}
    relay = {"a": 1, "b": [{"c": 5}, 3], "d": "x", "t": 1.0}
    assert json_differences(sdk, relay) == {
        "$.b[0].c": (2, 5),
        "$.stream": (False, MISSING),
        "$.n": (None, MISSING),
        "$.d": (MISSING, "x"),
        "$.t": (MISSING, 1.0),
    }
    assert json_differences({"t": 1}, {"t": 1.0}) == {"$.t": (1, 1.0)}
    assert json_differences({"n": None}, {"n": None}) == {}
    assert json_differences([1, 2], [1]) == {"$": ([1, 2], [1])}


def test_header_differences_and_the_intended_ones() -> None:
    sdk = {"content-type": b"application/json", "accept": "application/json"}
    relay = httpx.Headers({"content-type": "application/json", "x-extra": "1"})
    found = header_differences(sdk, relay, ("content-type", "accept", "x-extra", "absent"))
    assert found == {
        "header:accept": ("application/json", MISSING),
        "header:x-extra": (MISSING, "1"),
    }
    intended = {
        ("*", "header:accept"): ("application/json", MISSING, "every case"),
        ("one", "header:x-extra"): (MISSING, "1", "this case only"),
        ("two", "header:accept"): ("text/plain", MISSING, "other values: explains nothing"),
    }
    assert unexplained_differences("one", found, intended) == {}
    assert unexplained_differences("other", found, intended) == {"header:x-extra": (MISSING, "1")}
    # The case's own entry comes first: with other values, it does not explain.
    assert unexplained_differences("two", found, intended) == found


def test_assert_as_intended_refuses_new_and_stale_differences() -> None:
    intended = {("case", "$.stream"): (False, MISSING, "the SDK sends its default")}
    assert_as_intended("case", {"a": 1, "stream": False}, {"a": 1}, intended)
    with pytest.raises(AssertionError, match=r"sends differently.*\$\.a"):
        assert_as_intended("case", {"a": 1, "stream": False}, {"a": 2}, intended)
    with pytest.raises(AssertionError, match=r"the same now: \['\$\.stream'\]"):
        assert_as_intended("case", {"a": 1}, {"a": 1}, intended)


def test_sse_payloads_skip_done_and_join_data_lines() -> None:
    text = 'event: a\ndata: {"x":\ndata: 1}\n\ndata: [DONE]\n\n'
    assert sse_payloads(text) == [{"x": 1}]
    assert sse_payloads('data: {"a": 1}\r\n\r\nevent: x\ndata: [DONE]\n\n') == [{"a": 1}]
    with pytest.raises(json.JSONDecodeError):
        sse_payloads("data: not json\n\n")


def test_model_problems_names_the_keys_a_model_drops_or_keeps() -> None:
    class Part(pydantic.BaseModel):  # extra="ignore", pydantic's default: dropped
        text: str

    class Reply(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        parts: list[Part]
        finish: str = pydantic.Field(alias="finishReason")
        meta: dict[str, object] = {}
        by_key: dict[str, Part] = {}

    body = {
        "parts": [{"text": "a"}, {"text": "b", "thought": True}],
        "finishReason": "STOP",
        "meta": {"free": {"form": 1}},
        "by_key": {"k": {"text": "c", "cache": 1}},
        "extra": 1,
    }
    assert model_problems(Reply, body) == [
        "$: unknown field 'extra'",
        "$.parts[1]: unknown field 'thought'",
        "$.by_key.k: unknown field 'cache'",
    ]
    assert model_problems(Reply, {"parts": [{"text": "a"}], "finishReason": "STOP"}) == []
    assert model_problems(list[Part], [{"text": "a", "x": 1}], "$.parts") == [
        "$.parts[0]: unknown field 'x'"
    ]


def test_model_problems_from_json_reads_bytes_as_base64() -> None:
    class Blob(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(val_json_bytes="base64")
        data: bytes

    assert model_problems(Blob, {"data": "aGk="}, from_json=True) == []
    assert model_problems(Blob, {"data": "not base64!"}, from_json=True) != []


def test_unread_keys_names_what_a_converter_never_reads() -> None:
    def converter(body: dict[str, object]) -> dict[str, object]:
        metadata = body["metadata"]
        assert isinstance(metadata, dict)
        return {"state": metadata["state"], "labels": body.get("labels")}

    body = {
        "metadata": {"state": "RUNNING", "stats": {"count": 3}},
        "labels": {"any": "thing"},
        "done": False,
    }
    converted, unread = unread_keys(converter, body)
    assert converted == {"state": "RUNNING", "labels": {"any": "thing"}}
    # labels was taken whole: a free-form mapping; metadata was walked into.
    assert unread == ["$.done", "$.metadata.stats.count"]


CASSETTE = """\
interactions:
- request:
    body: '{"model": "m-1"}'
    headers: {}
    method: POST
    uri: https://api.acme.test/v1/chat
  response:
    body:
      string: '{"answer": "hello"}'
    headers: {}
    status:
      code: 200
      message: OK
- request:
    body: null
    headers: {}
    method: GET
    uri: https://api.acme.test/v1/file
  response:
    body:
      string: !!binary |
        aMOpbGxv
    headers: {}
    status:
      code: 200
      message: OK
version: 1
"""


def test_cassette_interactions_and_answer_text_read_what_a_cassette_holds(
    tmp_path: Path,
) -> None:
    (tmp_path / "chat.yaml").write_text(CASSETTE)
    chat, file = cassette_interactions(tmp_path / "chat.yaml")
    assert chat["request"]["method"] == "POST"
    assert chat["response"]["body"]["string"] == '{"answer": "hello"}'
    assert answer_text(chat) == '{"answer": "hello"}'
    assert file["response"]["body"]["string"] == "héllo".encode()
    assert answer_text(file) == "héllo"
    (tmp_path / "empty.yaml").write_text("")
    assert cassette_interactions(tmp_path / "empty.yaml") == []


def test_cassette_problems_name_the_cassette_and_interaction_of_each_problem(
    tmp_path: Path,
) -> None:
    (tmp_path / "b_chat.yaml").write_text(CASSETTE)
    (tmp_path / "a_empty.yaml").write_text("")
    (tmp_path / "notes.txt").write_text("not a cassette")

    def check(interaction: dict[str, Any]) -> tuple[int, list[str]]:
        if answer_text(interaction) == "héllo":
            raise ValueError("not JSON")  # stands for an SDK type refusing a body
        return 2, ["answer: unknown field"]

    checked, problems = cassette_problems(tmp_path, check)
    assert checked == 3  # 2 from the first interaction, 1 for the one that raised
    assert problems == [
        "b_chat#0: answer: unknown field",
        "b_chat#1: ValueError: not JSON",
    ]
    assert cassette_problems(tmp_path / "missing", check) == (0, [])


def test_the_shared_oracle_data_is_what_it_says() -> None:
    """A real 1x1 PNG (an SDK may sniff or re-encode an image) and a tool whose schema
    an SDK accepts as given."""
    assert PNG_PIXEL.startswith(b"\x89PNG\r\n\x1a\n")
    assert PNG_PIXEL[12:24] == b"IHDR" + (1).to_bytes(4, "big") * 2
    assert PNG_PIXEL.endswith(b"IEND\xaeB`\x82")
    assert WEATHER_TOOL.name == "get_weather"
    assert WEATHER_TOOL.parameters["required"] == ["city"]
