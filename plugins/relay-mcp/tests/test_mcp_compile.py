"""Compiling MCP tools per provider: each rule on its own, then the whole table."""

from __future__ import annotations

import re

import pytest

from relay_mcp import RULES, NameRule, compile_tools, rules_for
from relay_mcp._compile import (
    STRICTEST,
    compile_schema,
    drop_meta_keywords,
    ensure_object_root,
)

# What each provider's documentation allows (see the README for the sources).
DOCUMENTED = {
    "openai": r"[a-zA-Z0-9_-]{1,64}",
    "azure": r"[a-zA-Z0-9_-]{1,64}",
    "openai-compat": r"[a-zA-Z0-9_-]{1,64}",
    "mock": r"[a-zA-Z0-9_-]{1,64}",
    "anthropic": r"[a-zA-Z0-9_-]{1,64}",
    "bedrock": r"[a-zA-Z0-9_-]{1,64}",
    "mistral": r"[a-zA-Z0-9_-]{1,64}",
    "gemini": r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}",
    "vertex": r"[a-zA-Z_][a-zA-Z0-9_.-]{0,63}",
    "cohere": r"[a-zA-Z_][a-zA-Z0-9_]{0,63}",
}
AWKWARD = [
    "read_file",
    "files.read",
    "fs:read",
    "read file",
    "9lives",
    "-dash",
    "émoji-✓",
    "x" * 80,
    "x" * 70 + ".y",
    "",
]


def test_the_table_covers_every_provider_plugin() -> None:
    assert set(RULES) == set(DOCUMENTED)


@pytest.mark.parametrize("provider", [*DOCUMENTED, None, "someone-else"])
@pytest.mark.parametrize("name", AWKWARD)
def test_every_rewritten_name_is_valid_for_its_provider(provider: str | None, name: str) -> None:
    rule = rules_for(provider).names
    rewritten = name if rule.accepts(name) else rule.rewrite(name)
    allowed = DOCUMENTED.get(provider or "", r"[a-zA-Z_][a-zA-Z0-9_]{0,63}")
    assert re.fullmatch(allowed, rewritten), rewritten
    # The strictest rule's names suit every provider.
    strict = STRICTEST.names.rewrite(name) if not STRICTEST.names.accepts(name) else name
    assert all(re.fullmatch(pattern, strict) for pattern in DOCUMENTED.values())


def test_name_rewriting_rules() -> None:
    openai = NameRule("a-zA-Z0-9_-")
    assert openai.accepts("read_file-2")
    assert not openai.accepts("files.read")
    assert openai.rewrite("files.read") == "files_read"
    # A name too long is cut and keeps a hash of the whole, so two such names differ.
    long_a, long_b = openai.rewrite("x" * 70 + "a"), openai.rewrite("x" * 70 + "b")
    assert len(long_a) == 64
    assert long_a != long_b
    cohere = NameRule("a-zA-Z0-9_", first="a-zA-Z_")
    assert cohere.rewrite("9lives") == "_9lives"
    assert cohere.rewrite("fs-read") == "fs_read"
    gemini = RULES["gemini"].names
    assert gemini.accepts("fs:read.v2")


def test_collisions_after_rewriting_are_resolved_deterministically() -> None:
    listed = [
        ("files.read", "Read.", {"type": "object"}),
        ("files_read", "Read too.", {"type": "object"}),
        ("files-read", "And again.", {"type": "object"}),
        ("files:read", "Once more.", {"type": "object"}),
    ]
    first = compile_tools(listed, "cohere")
    second = compile_tools(list(reversed(listed)), "cohere")

    # The name already valid keeps it; the others get numbered in MCP-name order.
    assert dict(first.names) == {
        "files_read": "files_read",
        "files_read_2": "files-read",
        "files_read_3": "files.read",
        "files_read_4": "files:read",
    }
    assert first == second
    # Gemini accepts dots and colons: nothing to rename but the dash is fine too.
    assert set(compile_tools(listed, "gemini").names) == {
        "files.read",
        "files_read",
        "files-read",
        "files:read",
    }


def test_a_prefix_goes_before_the_name_then_it_is_compiled() -> None:
    compiled = compile_tools([("read", "", {"type": "object"})], "openai", prefix="my files.")
    assert dict(compiled.names) == {"my_files_read": "read"}


def test_meta_keywords_are_dropped() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "x",
        "type": "object",
    }
    assert drop_meta_keywords(schema) == {"type": "object"}


def test_a_no_argument_tool_gets_an_object_with_empty_properties() -> None:
    assert ensure_object_root({}) == {"type": "object", "properties": {}}
    assert ensure_object_root({"type": "object", "title": "t"}) == {
        "type": "object",
        "title": "t",
        "properties": {},
    }
    kept = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert ensure_object_root(kept) == kept


POINT = {
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
    },
}


@pytest.mark.parametrize("provider", sorted(RULES))
def test_each_provider_gets_references_as_it_takes_them(provider: str) -> None:
    compiled = compile_schema(POINT, RULES[provider])
    keeps = provider in ("openai", "azure", "anthropic", "mock")
    assert ("$ref" in repr(compiled)) is keeps
    assert compiled["type"] == "object"


def test_tools_keep_their_descriptions_and_compiled_schemas() -> None:
    compiled = compile_tools([("geo.distance", "Distance.", POINT)], None)
    [tool] = compiled.tools
    assert tool.name == "geo_distance"
    assert tool.description == "Distance."
    assert "$defs" not in tool.parameters
    assert POINT["$defs"]  # the listing itself is not changed
