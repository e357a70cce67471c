"""Structured output from Python classes: attrs classes and Pydantic models become JSON
Schemas, and the answer comes back parsed into the class."""

from __future__ import annotations

import datetime
from typing import Any, Literal

import attrs
import pydantic
import pytest

from relay_core import MalformedResponse, Request, Response, ResponseSchema, Usage
from relay_core.schema import schema_for
from relay_core.serialize import dumps, loads


@attrs.frozen
class Address:
    city: str
    postcode: str | None = None


@attrs.frozen
class Person:
    """Someone mentioned in the text."""

    name: str
    age: int
    role: Literal["author", "reader"]
    addresses: list[Address]
    scores: dict[str, float] = attrs.Factory(dict)


class Book(pydantic.BaseModel):
    title: str
    year: int


def test_an_attrs_class_compiles_to_json_schema() -> None:
    schema = schema_for(Person)
    assert schema["type"] == "object"
    assert schema["required"] == ["name", "age", "role", "addresses"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["role"] == {"enum": ["author", "reader"]}
    assert schema["properties"]["addresses"] == {
        "type": "array",
        "items": {"$ref": "#/$defs/Address"},
    }
    assert schema["$defs"]["Address"]["properties"]["postcode"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }
    assert schema["properties"]["scores"] == {
        "type": "object",
        "additionalProperties": {"type": "number"},
    }
    assert schema["description"] == "Someone mentioned in the text."


@attrs.frozen
class Event:
    when: datetime.datetime


def test_a_field_type_without_a_schema_is_named() -> None:
    with pytest.raises(TypeError, match="datetime"):
        schema_for(Event)


def test_response_schema_from_types() -> None:
    from_attrs = ResponseSchema.from_type(Person)
    assert (from_attrs.name, from_attrs.python_type) == ("Person", Person)
    from_pydantic = ResponseSchema.from_type(Book)
    assert from_pydantic.schema == Book.model_json_schema()
    # The class stays in memory: it is not part of the wire form or the fingerprint.
    request = Request.from_prompt("x", response_schema=from_attrs)
    assert "python_type" not in dumps(request)
    assert loads(dumps(request), Request).response_schema == from_attrs
    assert (
        request.fingerprint()
        == Request.from_prompt(
            "x", response_schema=ResponseSchema(from_attrs.schema, name="Person")
        ).fingerprint()
    )


def _answer_with(text: str) -> Response:
    return Response(content=text, usage=Usage(1, 1))


@pytest.mark.parametrize(
    ("cls", "text", "expected"),
    [
        (
            Person,
            '{"name": "Ada", "age": 36, "role": "author", "addresses": [{"city": "London"}]}',
            Person("Ada", 36, "author", [Address("London")]),
        ),
        (Book, '{"title": "Relay", "year": 2026}', Book(title="Relay", year=2026)),
    ],
)
def test_the_hub_parses_the_answer_into_the_class(
    make_hub: Any, scripted: Any, cls: type, text: str, expected: Any
) -> None:
    hub = make_hub("models:\n  fast: scripted/one\n")
    scripted.script["one"] = [_answer_with(text)]
    answer = hub.chat("fast", "x", response_schema=cls)
    assert answer.parsed == expected
    assert answer.json() is not None


def test_an_answer_that_does_not_fit_is_malformed(
    make_hub: Any, scripted: Any, waits: list[float]
) -> None:
    hub = make_hub("providers:\n  scripted: {max_retries: 1}\nmodels:\n  fast: scripted/one\n")
    scripted.script["one"] = [
        _answer_with('{"title": 1}'),
        _answer_with('{"title": "ok", "year": 1}'),
    ]
    # The first answer does not fit Book; the retry gets one that does.
    assert hub.chat("fast", "x", response_schema=Book).parsed == Book(title="ok", year=1)
    assert len(waits) == 1
    scripted.script["one"] = [_answer_with("not json")] * 2
    with pytest.raises(MalformedResponse, match="does not fit Book"):
        hub.chat("fast", "x", response_schema=Book)


@attrs.frozen
class Tagged:
    label: str
    tags: list[str] = attrs.Factory(list)
    note: str = "none"


def test_nulls_from_a_strict_mode_are_optional_fields_left_out(
    make_hub: Any, scripted: Any
) -> None:
    # Strict providers return null for an optional property; the class's default applies.
    hub = make_hub("models:\n  fast: scripted/one\n")
    scripted.script["one"] = [_answer_with('{"label": "x", "tags": null, "note": null}')]
    answer = hub.chat("fast", "x", response_schema=Tagged)
    assert answer.parsed == Tagged("x")
    assert answer.json() == {"label": "x", "tags": None, "note": None}  # the text is untouched
