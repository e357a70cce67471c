"""The JSON Schema generator: structured output valid against the schema it was given."""

from __future__ import annotations

import time
from typing import Any

import attrs
import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_core import InvalidRequestError, MalformedResponse
from relay_mock._schema import SchemaError, generate

FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def _valid(value: Any, schema: Any) -> None:
    jsonschema.validate(value, schema, format_checker=FORMATS)


CITY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "population": {"type": "integer", "minimum": 0},
        "landmarks": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["city", "population", "landmarks"],
    "additionalProperties": False,
}

RICH: dict[str, Any] = {
    "$defs": {
        "address": {
            "type": "object",
            "properties": {
                "street": {"type": "string", "minLength": 12, "maxLength": 20},
                "zip": {"type": "string", "maxLength": 3},
                "country": {"const": "FR"},
            },
            "required": ["street", "zip", "country"],
            "additionalProperties": False,
        },
        "node": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "children": {
                "type": "array", "items": {"$ref": "#/$defs/node"}}},
            "required": ["name"],
        },
    },
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "email": {"type": "string", "format": "email"},
        "born": {"type": "string", "format": "date"},
        "seen": {"type": "string", "format": "date-time"},
        "site": {"type": "string", "format": "uri"},
        "host": {"type": "string", "format": "ipv4"},
        "role": {"enum": ["admin", "user", "guest"]},
        "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "step": {"type": "number", "multipleOf": 0.1, "minimum": 0.25, "maximum": 0.75},
        "even": {"type": "integer", "multipleOf": 2, "minimum": 3, "maximum": 9},
        "flag": {"type": "boolean"},
        "nothing": {"type": "null"},
        "maybe": {"type": ["string", "null"]},
        "home": {"$ref": "#/$defs/address"},
        "old": {"$ref": "#/definitions/legacy"},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 3,
                 "maxItems": 3, "uniqueItems": True},
        "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}],
                 "items": False},
        "either": {"anyOf": [{"type": "integer", "minimum": 10}, {"type": "string"}]},
        "one": {"oneOf": [{"type": "string", "format": "date"}, {"type": "integer"}]},
        "both": {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}},
                            "required": ["a"]},
                           {"properties": {"b": {"type": "string"}}, "required": ["b"]}]},
        "tree": {"$ref": "#/$defs/node"},
        "free": {"type": "object", "minProperties": 2,
                 "additionalProperties": {"type": "integer"}},
        "anything": {},
    },
    "required": ["id", "email", "home", "tree", "both", "free"],
    "additionalProperties": False,
    "definitions": {"legacy": {"type": "string", "maxLength": 4}},
}  # fmt: skip


@pytest.mark.parametrize("schema", [CITY, RICH], ids=["city", "rich"])
def test_generated_values_are_valid_and_deterministic(schema: Any) -> None:
    for seed in range(25):
        value = generate(schema, seed)
        _valid(value, schema)
        assert generate(schema, seed) == value
    assert len({repr(generate(schema, seed)) for seed in range(25)}) > 1


def test_optional_properties_are_filled_and_formats_look_real() -> None:
    value = generate(RICH, "seed")
    assert set(value) == set(RICH["properties"])
    assert value["home"]["country"] == "FR"
    assert value["email"].endswith("@example.com")


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 1, "multipleOf": 100_000},
        {"type": "integer", "minimum": -7, "maximum": 7, "multipleOf": 0.5},
        {"type": "integer", "exclusiveMaximum": -3, "multipleOf": 4},
        {"type": "number", "minimum": 0.01, "maximum": 0.99, "multipleOf": 0.07},
        {"type": "number", "maximum": -1.5, "multipleOf": 2500},
    ],
)
def test_multiples(schema: dict[str, Any]) -> None:
    for seed in range(10):
        _valid(generate(schema, seed), schema)


def test_draft_4_spellings() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 5, "exclusiveMinimum": True, "maximum": 6},
            "x": {"type": "number", "maximum": 1, "exclusiveMaximum": True, "minimum": 0.99},
            "pair": {"type": "array", "items": [{"type": "string"}, {"type": "null"}],
                     "additionalItems": False, "minItems": 2},
        },
        "required": ["n", "x", "pair"],
    }  # fmt: skip
    for seed in range(10):
        value = generate(schema, seed)
        jsonschema.Draft4Validator(schema).validate(value)
        assert value["n"] == 6


def _linked_list(next_schema: Any, *, required: bool = True, nullable: bool = False) -> Any:
    return {
        "$defs": {"list": {
            "type": ["object", "null"] if nullable else "object",
            "properties": {"value": {"type": "integer"}, "next": next_schema},
            "required": ["value", "next"] if required else ["value"]}},
        "$ref": "#/$defs/list",
    }  # fmt: skip


def test_recursion_ends_where_the_schema_lets_it() -> None:
    ref = {"$ref": "#/$defs/list"}
    for schema in (
        _linked_list(ref, required=False),  # optional fields are left out deep down
        _linked_list(ref, nullable=True),  # null is chosen deep down when allowed
        _linked_list({"type": "array", "items": ref}),  # arrays shrink to minItems
    ):
        value = generate(schema, 1)
        _valid(value, schema)
    # "Pick the first anyOf branch" never reaches null: a clear error, not a hang.
    endless = _linked_list({"anyOf": [ref, {"type": "null"}]})
    with pytest.raises(SchemaError, match="recursion never ends"):
        generate(endless, 1)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "integer", "minimum": 5, "maximum": 1}, "no integer"),
        ({"type": "integer", "minimum": 1, "maximum": 9, "multipleOf": 10}, "no integer"),
        ({"type": "number", "minimum": 0.1, "maximum": 0.2, "multipleOf": 1}, "no number"),
        ({"type": "string", "minLength": 5, "maxLength": 2}, "minLength 5 exceeds"),
        ({"type": "array", "minItems": 3, "maxItems": 1}, "minItems 3 exceeds"),
        ({"enum": []}, "enum is empty"),
        ({"$ref": "#/$defs/missing"}, "does not resolve"),
        ({"$ref": "https://example.com/schema.json"}, "only local"),
        ({"type": "object", "required": ["x"], "additionalProperties": False}, "'x' is not"),
        (False, "accepts no value"),
        ({"allOf": [{"type": "string"}, {"type": "integer"}]}, "types"),
    ],
)
def test_impossible_schemas_are_refused(schema: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        generate(schema, 0)


def test_structured_output_through_the_hub(make_hub: Any) -> None:
    hub = make_hub()
    answer = hub.chat("mock/echo", "Describe Paris.", response_schema=CITY)
    _valid(answer.json(), CITY)
    assert answer.finish_reason == "stop"
    again = hub.chat("mock/echo", "Describe Paris.", response_schema=CITY)
    assert again.text == answer.text
    thought = hub.chat("mock/think", "Describe Paris.", response_schema=RICH)
    _valid(thought.json(), RICH)
    assert "'response'" in thought.thinking  # the schema's name


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "array", "minItems": 100_000_000}, "minItems 100000000 is too large"),
        ({"type": "object", "minProperties": 10**9}, "minProperties 1000000000 is too large"),
        ({"type": "string", "minLength": 10**9}, "minLength 1000000000 is too large"),
        # Small numbers multiplied: each level within the limit, the whole far beyond it.
        (
            {
                "type": "array",
                "minItems": 1000,
                "items": {"type": "array", "minItems": 1000, "items": {"type": "integer"}},
            },
            "the schema needs more than 10000 values",
        ),
        (
            {"type": "array", "minItems": 100, "items": {"type": "string", "minLength": 5000}},
            "the schema needs more than 100000 characters",
        ),
    ],
)
def test_a_schema_asking_for_too_much_is_refused_at_once(
    make_hub: Any, schema: dict[str, Any], words: str
) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidRequestError) as caught:
        make_hub().chat("mock/echo", "x", response_schema=schema)
    assert time.monotonic() - started < 2.0
    assert words in str(caught.value)
    # The limit itself is named, so the user knows what would pass.
    assert "relay-mock generates at most 10000 values and 100000 characters" in str(caught.value)


def test_the_largest_schema_within_the_limits_is_generated() -> None:
    value = generate({"type": "array", "minItems": 9_999, "items": {"type": "integer"}}, "s")
    assert len(value) == 9_999
    text = generate({"type": "string", "minLength": 99_000}, "s")
    assert len(text) >= 99_000


def test_an_impossible_response_schema_is_an_invalid_request(make_hub: Any) -> None:
    with pytest.raises(InvalidRequestError, match="response_schema: no integer"):
        make_hub().chat("mock/echo", "x", response_schema={"type": "integer", "minimum": 3,
                                                            "maximum": 2})  # fmt: skip


# -- property: any schema built from the supported keywords gets a valid value ----------

_leaf = st.one_of(
    st.builds(
        lambda lo, span, multiple: (
            {"type": "integer", "minimum": lo, "maximum": lo + span}
            | ({"multipleOf": multiple} if multiple else {})
        ),
        st.integers(-1000, 1000),
        st.integers(10, 500),
        st.sampled_from([None, 2, 3, 5]),
    ),
    st.builds(
        lambda lo, span, exclusive: (
            {"type": "number", "exclusiveMinimum": lo, "exclusiveMaximum": lo + span}
            if exclusive
            else {"type": "number", "minimum": lo, "maximum": lo + span}
        ),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.floats(0.5, 1e3),
        st.booleans(),
    ),
    st.builds(
        lambda low, extra, fmt: (
            {"type": "string", "minLength": low, "maxLength": low + extra}
            if fmt is None
            else {"type": "string", "format": fmt}
        ),
        st.integers(0, 30),
        st.integers(0, 10),
        st.sampled_from([None, "date", "date-time", "email", "uuid", "ipv4", "ipv6", "uri"]),
    ),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(st.text(max_size=5), min_size=1, max_size=4, unique=True).map(
        lambda values: {"enum": values}
    ),
    st.integers().map(lambda value: {"const": value}),
)


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    names = st.text("abcdefgh", min_size=1, max_size=6)
    return st.one_of(
        st.builds(
            lambda props, keep, closed: {
                "type": "object",
                "properties": props,
                "required": [n for n, k in zip(props, keep, strict=False) if k],
                "additionalProperties": not closed,
            },
            st.dictionaries(names, children, max_size=4),
            st.lists(st.booleans(), min_size=4, max_size=4),
            st.booleans(),
        ),
        st.builds(
            lambda items, low, extra: {
                "type": "array",
                "items": items,
                "minItems": low,
                "maxItems": low + extra,
            },
            children,
            st.integers(0, 3),
            st.integers(0, 3),
        ),
        st.lists(children, min_size=1, max_size=3).map(lambda branches: {"anyOf": branches}),
    )


@settings(max_examples=150, deadline=None)
@given(
    schema=st.recursive(_leaf, _extend, max_leaves=12),
    by_reference=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_generated_values_validate_for_any_supported_schema(
    schema: Any, by_reference: bool, seed: int
) -> None:
    if by_reference:  # refs resolve against the root document, so they live there
        schema = {"$defs": {"root": schema}, "$ref": "#/$defs/root"}
    value = generate(schema, seed)
    _valid(value, schema)
    assert generate(schema, seed) == value


@attrs.frozen
class Landmark:
    name: str
    height_m: float


@attrs.frozen
class City:
    name: str
    population: int
    landmarks: list[Landmark]


@attrs.frozen
class Point:
    x: int


def test_an_attrs_class_as_response_schema_gives_a_parsed_instance(make_hub: Any) -> None:
    hub = make_hub()
    answer = hub.chat("mock/echo", "Describe Paris.", response_schema=City)
    assert isinstance(answer.parsed, City)
    assert all(isinstance(item, Landmark) for item in answer.parsed.landmarks)
    assert answer.parsed == City(
        **{**answer.json(), "landmarks": [Landmark(**item) for item in answer.json()["landmarks"]]}
    )
    streamed = list(hub.stream("mock/echo", "Describe Paris.", response_schema=City))[-1]
    assert streamed.response.parsed == answer.parsed


def test_an_answer_that_does_not_fit_the_class_is_malformed_and_retried(
    make_hub: Any, waits: list[float]
) -> None:
    hub = make_hub("providers:\n  mock: {max_retries: 1}\n")
    with pytest.raises(MalformedResponse, match="does not fit Point"):
        hub.chat(
            "mock/echo", "x", response_schema=Point, provider_kwargs={"mock": {"reply": '{"y": 1}'}}
        )
    assert len(waits) == 1
