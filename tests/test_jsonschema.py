"""relay_core.jsonschema: local references and subschemas, as every schema consumer needs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from relay_core.jsonschema import (
    UnresolvedReference,
    inline_refs,
    map_subschemas,
    resolve_ref,
    subschemas,
)
from relay_core.validation import schema_errors

DOCUMENT: dict[str, Any] = {
    "$defs": {"a/b": {"type": "integer"}, "t~": {"type": "string"}, "a b": {"const": 1}},
    "anyOf": [{"type": "null"}, {"type": "boolean"}],
}


@pytest.mark.parametrize(
    ("ref", "target"),
    [
        ("#", DOCUMENT),
        ("#/$defs/a~1b", {"type": "integer"}),
        ("#/$defs/t~0", {"type": "string"}),
        ("#/$defs/a%20b", {"const": 1}),
        ("#/anyOf/1", {"type": "boolean"}),
    ],
)
def test_local_references_follow_json_pointer(ref: str, target: Any) -> None:
    assert resolve_ref(DOCUMENT, ref) == target


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("other.json#/$defs/x", "only local"),
        ("#point", "anchor"),
        ("#/$defs/missing", "does not resolve"),
        ("#/anyOf/2", "does not resolve"),
    ],
)
def test_references_outside_the_document_are_named(ref: str, message: str) -> None:
    with pytest.raises(UnresolvedReference, match=message):
        resolve_ref(DOCUMENT, ref)


def test_the_validator_follows_escaped_and_indexed_pointers() -> None:
    # Before the shared module these pointers did not resolve and accepted any value.
    schema = {"$defs": {"a b": {"type": "integer"}}, "properties": {"n": {"$ref": "#/$defs/a%20b"}}}
    assert schema_errors({"n": "x"}, schema) == ['$.n: expected integer, got "x"']
    indexed = {"anyOf": [{"type": "string"}], "items": {"$ref": "#/anyOf/0"}}
    assert schema_errors([1], indexed) == [
        "$: matches none of anyOf",
        "$[0]: expected string, got 1",
    ]


def test_subschemas_are_the_schema_keywords_not_the_values() -> None:
    schema = {
        "properties": {"a": {"type": "string"}},
        "items": [{"type": "integer"}],
        "not": False,
        "enum": [{"type": "string"}],
        "const": {"type": "string"},
        "default": {"properties": {}},
        "required": ["a"],
    }
    assert list(subschemas(schema)) == [
        (("not",), False),
        (("items", 0), {"type": "integer"}),
        (("properties", "a"), {"type": "string"}),
    ]


POINT: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "Point": {
            "type": "object",
            "description": "A point.",
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
        },
        "Tree": {
            "type": "object",
            "description": "A tree.",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}},
        },
    },
    "properties": {
        "a": {"$ref": "#/$defs/Point", "description": "Start."},
        "tree": {"$ref": "#/$defs/Tree"},
        "kind": {"const": {"$ref": "#/$defs/Point"}},
        "remote": {"$ref": "https://example.com/s.json"},
    },
}


def test_references_are_inlined_and_recursion_ends_in_any_value() -> None:
    original = copy.deepcopy(POINT)
    inlined = inline_refs(POINT)

    assert original == POINT
    assert "$defs" not in inlined
    assert inlined["properties"]["a"] == {
        "type": "object",
        "description": "Start.",
        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
    }
    tree = inlined["properties"]["tree"]
    assert tree["properties"]["children"]["items"] == {"description": "A tree."}
    # A value that looks like a reference is a value; a remote one is left to the consumer.
    assert inlined["properties"]["kind"] == {"const": {"$ref": "#/$defs/Point"}}
    assert inlined["properties"]["remote"] == {"$ref": "https://example.com/s.json"}


# Schemas with acyclic local references: each definition refers only to earlier ones.
_LEAVES = st.sampled_from(
    [{"type": "integer"}, {"type": "string"}, {"type": "null"}, {"minimum": 0}, True, False]
)


def _schemas(names: list[str]) -> st.SearchStrategy[Any]:
    leaves = _LEAVES | st.sampled_from([{"$ref": f"#/$defs/{n}"} for n in names] or [True])
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(
                lambda p: {"type": "object", "properties": p},
                st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
            ),
            st.builds(lambda i: {"type": "array", "items": i}, inner),
            st.builds(lambda a: {"anyOf": a}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda n: {"not": n}, inner),
        ),
        max_leaves=6,
    )


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    for index in range(draw(st.integers(0, 3))):
        definitions[f"d{index}"] = draw(_schemas(list(definitions)))
    root = draw(_schemas(list(definitions)))
    return {"allOf": [root], "$defs": definitions}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(_documents(), _JSON)
def test_inlining_keeps_what_a_schema_accepts(document: dict[str, Any], value: Any) -> None:
    inlined = inline_refs(document)
    assert "$ref" not in repr(inlined)
    accepts = Draft202012Validator(document).is_valid(value)
    assert Draft202012Validator(inlined).is_valid(value) is accepts
    assert (not schema_errors(value, document)) is accepts


@settings(max_examples=200, deadline=None)
@given(_documents())
def test_mapping_subschemas_rebuilds_without_changing_the_original(
    document: dict[str, Any],
) -> None:
    original = copy.deepcopy(document)

    def same(node: Any) -> Any:
        return map_subschemas(node, same) if isinstance(node, dict) else node

    rebuilt = same(document)
    assert rebuilt == document == original
    marked = map_subschemas(document, lambda _: {"marked": True})
    assert all(item == {"marked": True} for _, item in subschemas(marked))
    assert document == original
