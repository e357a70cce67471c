"""The JSON Schema check provider plugins use for structured output no server enforced."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core.validation import schema_errors


@pytest.mark.parametrize(
    ("value", "schema", "errors"),
    [
        ({"a": 1}, {"type": "object", "properties": {"a": {"type": "integer"}}}, []),
        ({"a": 1.0}, {"properties": {"a": {"type": "integer"}}}, []),
        ({"a": True}, {"properties": {"a": {"type": "integer"}}}, ["$.a: expected integer"]),
        ([1, 1], {"type": "array", "uniqueItems": True}, ["$: items are not unique"]),
        ("ab", {"type": "string", "pattern": "^a+$"}, ["$: does not match pattern"]),
        (5, {"exclusiveMaximum": 5}, ["$: 5 is not below 5"]),
        (5, {"maximum": 5, "exclusiveMaximum": True}, ["$: 5 is not below 5"]),
        ("x", {"enum": ["a", "b"]}, ['$: "x" is not one of']),
        (None, {"type": ["string", "null"]}, []),
        (
            {"items": [{"n": "x"}]},
            {
                "$defs": {"item": {"type": "object", "required": ["n", "m"]}},
                "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
            },
            ["$.items[0]: missing required property 'm'"],
        ),
        (3, {"anyOf": [{"type": "string"}, {"type": "boolean"}]}, ["$: matches none of anyOf"]),
        (3, {"oneOf": [{"type": "integer"}, {"type": "number"}]}, ["$: matches 2 branches"]),
    ],
)
def test_schema_errors(value: Any, schema: Any, errors: list[str]) -> None:
    found = schema_errors(value, schema)
    assert len(found) == len(errors), found
    for line, start in zip(found, errors, strict=True):
        assert line.startswith(start), found


@pytest.mark.parametrize(
    ("value", "schema", "problem"),
    [
        (True, {"type": "integer"}, "expected integer"),
        (3.0, {"type": "integer"}, None),
        ("x", {"enum": ["a", "b"]}, "one of"),
        ("x", {"const": "y"}, 'expected "y"'),
        ([1, 2, 3], {"type": "array", "maxItems": 2}, "more than 2"),
        (
            [1, "a"],
            {"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "integer"}},
            "$[1]",
        ),
        ("", {"type": "string", "minLength": 1}, "shorter"),
        (5, {"minimum": 6}, "below"),
        (5, {"exclusiveMaximum": 5}, "not below"),
        ({"a": 1}, {"anyOf": [{"type": "string"}, {"type": "array"}]}, "anyOf"),
        (
            {"a": {"b": 1}},
            {
                "properties": {"a": {"$ref": "#/definitions/b"}},
                "definitions": {"b": {"properties": {"b": {"type": "string"}}}},
            },
            "$.a.b",
        ),
        (None, {"type": ["string", "null"]}, None),
        ({"x": 1}, {"additionalProperties": {"type": "string"}}, "$.x"),
        (1, False, "no value"),
    ],
)
def test_the_schema_check_finds_the_first_problem(
    value: Any, schema: Any, problem: str | None
) -> None:
    errors = schema_errors(value, schema)
    if problem is None:
        assert errors == []
    else:
        assert errors
        assert problem in errors[0]


def test_a_recursive_schema_check_ends() -> None:
    # A schema that only refers to itself never bottoms out: the check stops and says so.
    schema = {"$ref": "#"}
    assert schema_errors({"a": 1}, schema) == ["$: schema nests deeper than 64 levels"]


def test_nulls_at_optional_properties_are_dropped() -> None:
    from relay_core.validation import without_optional_nulls

    schema = {
        "type": "object",
        "properties": {
            "name": {"type": ["string", "null"]},
            "nick": {"type": "string"},
            "home": {"$ref": "#/$defs/Place"},
            "visits": {"type": "array", "items": {"$ref": "#/$defs/Place"}},
        },
        "required": ["name", "visits"],
        "$defs": {"Place": {"properties": {"city": {}, "zip": {}}, "required": ["city"]}},
    }
    value = {
        "name": None,  # required: a null the caller asked for stays
        "nick": None,
        "home": {"city": "Paris", "zip": None},
        "visits": [{"city": None, "zip": None}],
        "extra": None,  # not a property of the schema: left alone
    }
    assert without_optional_nulls(value, schema) == {
        "name": None,
        "home": {"city": "Paris"},
        "visits": [{"city": None}],
        "extra": None,
    }
