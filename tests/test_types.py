"""The unified types and their wire format (``relay_core.types``, ``relay_core.serialize``).

What users rely on: every value survives JSON (JSONL files written today load tomorrow),
the tagged-union tags never change, bytes travel as base64 text, fields at their default
are left out, and ``Request.fingerprint()`` is the same in every process and version, so
response caches and "nothing submitted twice" keep working across runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_core import types as t
from relay_core.embeddings import EmbeddingResponse
from relay_core.errors import RateLimitError
from relay_core.serialize import dumps, fingerprint, loads, structure, unstructure

# ---------------------------------------------------------------------------- examples

USAGE = t.Usage(
    input_tokens=120,
    output_tokens=45,
    cached_input_tokens=100,
    cache_write_tokens=7,
    reasoning_tokens=30,
)
COST = t.Cost(
    amount=0.0125,
    currency="EUR",
    source="snapshot",
    input=0.005,
    output=0.0075,
    batch_discount_applied=True,
    priced_by="Relay price snapshot",
    as_of="2026-11-01",
)
ERROR = t.ErrorInfo("RateLimitError", "slow down", status_code=429, retryable=True)
RESPONSE = t.Response(
    content=[
        t.ThinkingPart("Paris, surely.", signature="c2lnbmF0dXJl", redacted=True),
        t.TextPart("Let me check."),
        t.ToolCallPart("call_1", "get_weather", {"city": "Paris", "days": [1, 2], "x": None}),
    ],
    model="gpt-4.1",
    provider="openai",
    id="resp_123",
    custom_id="row-17",
    finish_reason="tool_calls",
    usage=USAGE,
    cost=COST,
    latency=1.25,
    raw={"id": "resp_123", "choices": [{"index": 0}], "ok": True},
    metadata={"alias": "smart", "retries": [{"status": 429}]},
    logprobs=[t.TokenLogprob("Let", -0.25, [("Let", -0.25), ("I", -1.75)])],
)
WEATHER = t.Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CONFIG = t.GenerationConfig(
    temperature=0.2,
    top_p=0.9,
    max_tokens=1024,
    stop=["END", "\n\n"],
    seed=7,
    reasoning="high",
    top_k=40,
    frequency_penalty=0.5,
    presence_penalty=-0.5,
    logprobs=True,
    top_logprobs=3,
)
SCHEMA = t.ResponseSchema(
    {"type": "object", "properties": {"population": {"type": "integer"}}},
    name="city",
    strict=False,
)
REQUEST = t.Request(
    messages=[
        t.Message.user("Weather in Paris?", t.ImagePart(url="https://example.com/p.png")),
        t.Message.assistant(t.ToolCallPart("call_1", "get_weather", {"city": "Paris"})),
        t.Message.tool(t.ToolResultPart("call_1", '{"temp": 21}', name="get_weather")),
    ],
    model="openai/gpt-4.1",
    system="Be brief.",
    config=CONFIG,
    tools=[WEATHER],
    tool_choice="auto",
    response_schema=SCHEMA,
    provider_kwargs={"user": "u-1", "logit_bias": {"50256": -100}, "n": 1.5},
    custom_id="row-17",
    tags=["eval", "paris"],
    metadata={"dataset": "cities", "row": 17},
    cache_system=True,
    cache_tools=True,
)
TOOL_RUN = t.ToolRun(
    call=t.ToolCallPart("c1", "add", {"a": 2}),
    result=t.ToolResultPart("c1", "4", name="add", is_error=True),
    toolset="math",
    tool="add",
    seconds=0.25,
)
TOOL_STEP = t.ToolStep(
    response=attrs.evolve(RESPONSE, content=[t.ToolCallPart("c1", "add", {"a": 2})]),
    runs=[TOOL_RUN],
)

# Together these set every field of every class to something other than its default
# (checked by test_examples_set_every_field), so a field the wire format drops fails.
EXAMPLES: list[Any] = [
    t.TextPart("héllo ✓"),
    t.TextPart("signed", signature="c2lnLXRleHQ=", cache=True),
    t.ImagePart(url="https://example.com/cat.png", media_type="image/png", detail="low"),
    t.ImagePart(
        data=b"\x89PNG\r\n\x1a\n\x00\xff", media_type="image/png", detail="high", cache=True
    ),
    t.DocumentPart(url="https://example.com/a.pdf", media_type="application/x-pdf", name="a.pdf"),
    t.DocumentPart(
        data=b"%PDF-1.7\n\x00\x01", media_type="text/plain", name="notes.txt", cache=True
    ),
    t.ToolCallPart("call_1", "get_weather", {"city": "Paris", "units": ["c"], "n": 2}),
    t.ToolCallPart("call_9", "now", signature="c2lnLWNhbGw="),
    t.ToolResultPart("call_1", "it failed", name="get_weather", is_error=True, cache=True),
    t.ThinkingPart("step by step", signature="sig==", redacted=True),
    t.ServerToolCallPart("mcptoolu_1", "ask", {"q": "x"}, server="deepwiki"),
    t.ServerToolResultPart(
        "srvtoolu_1",
        "web_search_tool_result",
        [{"type": "web_search_result", "title": "T", "url": "https://example.com"}],
        is_error=True,
    ),
    t.Citation(
        url="https://example.com",
        title="T",
        cited_text="quoted",
        data={"type": "web_search_result_location", "encrypted_index": "Eo8B"},
    ),
    t.TextPart("cited", citations=[t.Citation(url="https://example.com")]),
    t.Message("assistant", [t.ThinkingPart("hm"), "Hello", t.ToolCallPart("c", "f")], cache=True),
    CONFIG,
    WEATHER,
    SCHEMA,
    REQUEST,
    USAGE,
    COST,
    RESPONSE,
    t.TokenLogprob("x", -0.5, [("x", -0.5)]),
    t.TextDelta("Hel", signature="sig=="),
    t.ThinkingDelta("because", signature="sig==", redacted=True),
    t.ToolCallDelta(1, id="call_2", name="lookup", arguments='{"q": "pa', signature="s"),
    t.CitationDelta(t.Citation(title="T", data={"type": "char_location"})),
    t.ServerToolCallDelta(3, id="srvtoolu_1", name="web_search", arguments='{"q', server="s"),
    t.ServerToolResultDelta("srvtoolu_1", "mcp_tool_result", {"a": [1]}, is_error=True),
    t.UsageEvent(USAGE),
    t.EndEvent(RESPONSE),
    ERROR,
    t.BatchCounts(total=10, completed=7, failed=2),
    t.ProviderBatch(
        id="batch_1",
        provider="openai",
        state="in_progress",
        counts=t.BatchCounts(total=10, completed=7, failed=2),
        created_at=1_700_000_000.5,
        ended_at=1_700_000_900.0,
        metadata={"description": "smoke test"},
        raw={"object": "batch", "request_counts": {"total": 10}},
    ),
    t.BatchItem("row-1", response=RESPONSE),
    TOOL_RUN,
    TOOL_STEP,
    # The tool loop's answer: every round kept, with each tool run.
    attrs.evolve(RESPONSE, steps=[TOOL_STEP]),
    t.BatchItem("row-2", error=ERROR, raw={"custom_id": "row-2", "error": {"code": 500}}),
    # An embedding job's result.
    t.BatchItem(
        "row-3",
        embedding=EmbeddingResponse(
            vectors=[[0.6, -0.8]], model="text-embedding-3-small", usage=t.Usage(4, 0)
        ),
    ),
    t.AuditEvent(
        kind="call.failed",
        at=1_700_000_000.25,
        alias="smart",
        provider="openai",
        model="gpt-4.1",
        custom_id="row-17",
        job_id="eval-001",
        usage=USAGE,
        cost=COST,
        latency=0.5,
        error=ERROR,
        metadata={"attempt": 2},
        group="resilient",
        caller="team-search",
        tags=("eval", "nightly"),
    ),
]


def _union_of(value: Any) -> Any:
    if isinstance(value, t.PART_TYPES):
        return t.Part
    if isinstance(value, t.EVENT_TYPES):
        return t.StreamEvent
    return type(value)


def _round_trip(value: Any) -> Any:
    return structure(json.loads(json.dumps(unstructure(value))), _union_of(value))


def _default_of(field: attrs.Attribute[Any]) -> Any:
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory()  # type: ignore[attr-defined]
    return default


def _module_classes() -> set[type]:
    return {
        value
        for value in vars(t).values()
        if isinstance(value, type) and attrs.has(value) and value.__module__ == t.__name__
    }


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("value", EXAMPLES, ids=lambda v: type(v).__name__)
def test_round_trip_through_json(value: Any) -> None:
    assert _round_trip(value) == value


@pytest.mark.parametrize("value", EXAMPLES, ids=lambda v: type(v).__name__)
def test_round_trip_through_one_jsonl_line(value: Any) -> None:
    line = dumps(value)
    assert "\n" not in line
    assert loads(line, _union_of(value)) == value


def test_every_type_has_a_round_trip_example() -> None:
    covered = {type(value) for value in EXAMPLES}
    missing = sorted(cls.__name__ for cls in _module_classes() - covered)
    assert not missing, f"add a round-trip example to EXAMPLES for: {', '.join(missing)}"


def test_examples_set_every_field() -> None:
    unset: list[str] = []
    for cls in _module_classes():
        instances = [value for value in EXAMPLES if type(value) is cls]
        for field in attrs.fields(cls):
            # eq=False fields live in memory only (a Python class, a parsed object) and
            # never travel, so a round trip has nothing to show for them.
            if field.default is attrs.NOTHING or not field.eq:
                continue
            default = _default_of(field)
            if all(getattr(value, field.name) == default for value in instances):
                unset.append(f"{cls.__name__}.{field.name}")
    assert not unset, f"give these fields a non-default value in EXAMPLES: {unset}"


# ---------------------------------------------------------------------------- random requests

_short = st.text(min_size=1, max_size=12)
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_json_objects = st.dictionaries(st.text(max_size=8), _json_values, max_size=4)
_media_types = st.sampled_from(["image/png", "image/jpeg", "application/pdf", "text/plain"])
_urls = st.builds("https://example.com/{}".format, st.text(max_size=10))

_parts = st.one_of(
    st.builds(t.TextPart, st.text(max_size=30)),
    st.builds(
        t.ImagePart,
        url=_urls,
        media_type=st.none() | _media_types,
        detail=st.sampled_from([None, "auto", "low", "high"]),
    ),
    st.builds(
        t.ImagePart,
        data=st.binary(max_size=48),
        media_type=_media_types,
        detail=st.sampled_from([None, "auto", "low", "high"]),
    ),
    st.builds(t.DocumentPart, url=_urls, media_type=_media_types, name=st.none() | _short),
    st.builds(
        t.DocumentPart,
        data=st.binary(max_size=48),
        media_type=_media_types,
        name=st.none() | _short,
    ),
    st.builds(t.ToolCallPart, id=_short, name=_short, arguments=_json_objects),
    st.builds(
        t.ToolResultPart,
        tool_call_id=_short,
        content=st.text(max_size=30),
        name=st.none() | _short,
        is_error=st.booleans(),
    ),
    st.builds(
        t.ThinkingPart,
        st.text(max_size=30),
        signature=st.none() | _short,
        redacted=st.booleans(),
    ),
)
_messages = st.builds(
    t.Message,
    role=st.sampled_from(["user", "assistant", "tool"]),
    content=st.lists(_parts, max_size=4),
)
_configs = st.builds(
    t.GenerationConfig,
    temperature=st.none() | st.floats(min_value=0, max_value=2),
    top_p=st.none() | st.floats(min_value=0, max_value=1),
    max_tokens=st.none() | st.integers(min_value=1, max_value=10**6),
    stop=st.none() | st.text(min_size=1, max_size=5) | st.lists(st.text(max_size=5), max_size=3),
    seed=st.none() | st.integers(min_value=0, max_value=2**31),
    reasoning=st.sampled_from([None, "minimal", "low", "medium", "high"])
    | st.integers(min_value=0, max_value=10**5),
)
requests = st.builds(
    t.Request,
    messages=st.lists(_messages, min_size=1, max_size=4),
    model=st.text(max_size=20),
    system=st.none() | st.text(max_size=30),
    config=_configs,
    tools=st.lists(
        st.builds(t.Tool, name=_short, description=st.text(max_size=20), parameters=_json_objects),
        max_size=3,
    ),
    tool_choice=st.none() | st.sampled_from(["auto", "none", "required", "get_weather"]),
    response_schema=st.none()
    | st.builds(t.ResponseSchema, schema=_json_objects, name=_short, strict=st.booleans()),
    provider_kwargs=_json_objects,
    custom_id=st.none() | _short,
    tags=st.lists(_short, max_size=3),
    metadata=_json_objects,
)


@settings(max_examples=150, deadline=None)
@given(requests)
def test_random_requests_round_trip_with_the_same_fingerprint(request: t.Request) -> None:
    again = _round_trip(request)
    assert again == request
    assert again.fingerprint() == request.fingerprint()
    line = dumps(request)
    assert "\n" not in line
    assert loads(line, t.Request) == request


@settings(max_examples=50, deadline=None)
@given(requests, st.none() | _short, st.lists(_short, max_size=2), _json_objects)
def test_random_requests_fingerprint_ignores_bookkeeping(
    request: t.Request, custom_id: str | None, tags: list[str], metadata: dict[str, Any]
) -> None:
    relabelled = attrs.evolve(request, custom_id=custom_id, tags=tags, metadata=metadata)
    assert relabelled.fingerprint() == request.fingerprint()


# ---------------------------------------------------------------------------- wire format

TAGGED = [
    (t.TextPart("x"), "text"),
    (t.ImagePart(url="https://example.com/x.png"), "image"),
    (t.DocumentPart(url="https://example.com/x.pdf"), "document"),
    (t.ToolCallPart("c", "f"), "tool_call"),
    (t.ToolResultPart("c", "ok"), "tool_result"),
    (t.ThinkingPart("hm"), "thinking"),
    (t.ServerToolCallPart("s", "web_search"), "server_tool_call"),
    (t.ServerToolResultPart("s", "web_search_tool_result"), "server_tool_result"),
    (t.TextDelta("x"), "text_delta"),
    (t.ThinkingDelta("hm"), "thinking_delta"),
    (t.ToolCallDelta(0), "tool_call_delta"),
    (t.CitationDelta(t.Citation()), "citation_delta"),
    (t.ServerToolCallDelta(0), "server_tool_call_delta"),
    (t.ServerToolResultDelta("s", "web_search_tool_result"), "server_tool_result_delta"),
    (t.UsageEvent(t.Usage()), "usage"),
    (t.EndEvent(t.Response()), "end"),
]


@pytest.mark.parametrize(("value", "tag"), TAGGED, ids=[tag for _, tag in TAGGED])
def test_union_members_carry_their_stable_tag(value: Any, tag: str) -> None:
    data = unstructure(value)
    assert data["type"] == tag
    assert structure(data, _union_of(value)) == value


def test_every_union_member_has_a_tag_test() -> None:
    assert {type(value) for value, _ in TAGGED} == set(t.PART_TYPES) | set(t.EVENT_TYPES)


def test_exact_wire_form_of_a_message() -> None:
    message = t.Message.user(
        "Describe:",
        t.ImagePart(data=b"\x00\x01\xff", media_type="image/png"),
        t.ToolCallPart("c1", "f", {"a": 1}),
    )
    assert unstructure(message) == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe:"},
            {"type": "image", "data": "AAH/", "media_type": "image/png"},
            {"type": "tool_call", "id": "c1", "name": "f", "arguments": {"a": 1}},
        ],
    }


def test_exact_wire_form_of_stream_events() -> None:
    assert unstructure(t.ToolCallDelta(2, arguments='{"q"')) == {
        "type": "tool_call_delta",
        "index": 2,
        "arguments": '{"q"',
    }
    assert unstructure(t.EndEvent(t.Response(content="hi", usage=t.Usage(3, 1)))) == {
        "type": "end",
        "response": {
            "content": [{"type": "text", "text": "hi"}],
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    }


def test_bytes_travel_as_base64_text() -> None:
    payload = bytes(range(256))
    data = unstructure(t.DocumentPart(data=payload, name="all.bin"))
    assert isinstance(data["data"], str)
    assert json.loads(json.dumps(data))["data"] == data["data"]
    assert structure(data, t.Part) == t.DocumentPart(data=payload, name="all.bin")
    assert structure({"type": "image", "data": "AAH/", "media_type": "image/png"}, t.Part) == (
        t.ImagePart(data=b"\x00\x01\xff", media_type="image/png")
    )


def test_invalid_base64_is_an_error() -> None:
    with pytest.raises(cattrs.BaseValidationError):
        structure({"type": "image", "data": "not base64!", "media_type": "image/png"}, t.Part)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            t.Request.from_prompt("hi"),
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
        ),
        (t.Response(), {}),
        (t.Usage(), {}),
        (t.Cost(), {}),
        (t.GenerationConfig(), {}),
        (t.Tool("f"), {"name": "f"}),
        (t.ToolCallPart("c", "f"), {"type": "tool_call", "id": "c", "name": "f"}),
        (t.DocumentPart(url="u"), {"type": "document", "url": "u"}),
        (t.BatchItem("r1"), {"custom_id": "r1"}),
        (t.AuditEvent(kind="call.succeeded", at=1.0), {"kind": "call.succeeded", "at": 1.0}),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, dict) else "wire",
)
def test_fields_at_their_default_are_omitted(value: Any, expected: dict[str, Any]) -> None:
    assert unstructure(value) == expected
    assert structure(expected, _union_of(value)) == value


def test_a_part_without_type_loads_as_text() -> None:
    assert structure({"text": "hello"}, t.Part) == t.TextPart("hello")
    message = structure({"role": "user", "content": [{"text": "hi"}]}, t.Message)
    assert message == t.Message.user("hi")


def test_unknown_extra_fields_of_a_payload_are_ignored() -> None:
    # Lenient on payloads: a file written by a later version with a new field still loads.
    data = {"type": "thinking", "text": "hm", "added_in_a_later_version": 1}
    assert structure(data, t.Part) == t.ThinkingPart("hm")


@pytest.mark.parametrize(
    ("data", "union"),
    [
        ({"type": "audio", "text": "would pass for text"}, t.Part),
        ({"type": "audio", "data": "AAH/"}, t.Part),
        ({"type": "TEXT", "text": "tags are case-sensitive"}, t.Part),
        ({"type": "text", "text": "a part is not an event"}, t.StreamEvent),
        ({"type": "done"}, t.StreamEvent),
    ],
)
def test_an_unknown_tag_raises(data: dict[str, Any], union: Any) -> None:
    with pytest.raises(ValueError, match=repr(data["type"])):
        structure(data, union)


def test_an_unknown_tag_inside_a_message_raises() -> None:
    data = {"messages": [{"role": "user", "content": [{"type": "audio", "text": "x"}]}]}
    with pytest.raises(cattrs.BaseValidationError):
        structure(data, t.Request)


# ---------------------------------------------------------------------------- fingerprint


def _golden_request() -> t.Request:
    return t.Request(
        messages=[
            t.Message.user(
                "What is in this picture?", t.ImagePart(data=b"\x89PNG", media_type="image/png")
            ),
            t.Message.assistant("A cat."),
            t.Message.user("Which breed? Ünïcode ✓"),
        ],
        model="openai/gpt-4.1",
        system="Be brief.",
        config=t.GenerationConfig(temperature=0.2, max_tokens=64, stop="END"),
        tools=[WEATHER],
        provider_kwargs={"user": "u-1", "logit_bias": {"50256": -100}, "top_k": 0.5},
    )


# The point of this value is that it never changes: response caches and batch workspaces
# written by earlier versions use it. If this test fails, the canonical form changed.
GOLDEN_FINGERPRINT = "6c5e5fe9f3145ad05b1e7aea6c7f8d79eefea8b9cedd4f63c1a52217f6e70ed9"


def test_fingerprint_golden_value() -> None:
    assert _golden_request().fingerprint() == GOLDEN_FINGERPRINT


@pytest.mark.parametrize("hash_seed", ["0", "4242"])
def test_fingerprint_is_the_same_in_another_process(hash_seed: str) -> None:
    script = (
        "import sys\n"
        "from relay_core.serialize import loads\n"
        "from relay_core.types import Request\n"
        "print(loads(sys.stdin.read(), Request).fingerprint())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=dumps(_golden_request()),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert result.stdout.strip() == GOLDEN_FINGERPRINT


@pytest.mark.parametrize(
    "changes",
    [{"custom_id": "row-99"}, {"tags": ["a", "b"]}, {"metadata": {"owner": "me", "n": 3}}],
    ids=["custom_id", "tags", "metadata"],
)
def test_fingerprint_ignores_bookkeeping_fields(changes: dict[str, Any]) -> None:
    request = _golden_request()
    assert attrs.evolve(request, **changes).fingerprint() == request.fingerprint()


def _with_text(request: t.Request, text: str) -> t.Request:
    return attrs.evolve(request, messages=[*request.messages[:-1], t.Message.user(text)])


CONTENT_CHANGES = {
    "message text": lambda r: _with_text(r, "Which breed?"),
    "message role": lambda r: attrs.evolve(
        r, messages=[*r.messages[:-1], t.Message("assistant", r.messages[-1].content)]
    ),
    "image bytes": lambda r: attrs.evolve(
        r,
        messages=[
            t.Message.user(
                r.messages[0].content[0], t.ImagePart(data=b"\x89PNh", media_type="image/png")
            ),
            *r.messages[1:],
        ],
    ),
    "model": lambda r: attrs.evolve(r, model="openai/gpt-4.1-mini"),
    "system": lambda r: attrs.evolve(r, system=None),
    "temperature": lambda r: attrs.evolve(r, config=attrs.evolve(r.config, temperature=0.3)),
    "stop": lambda r: attrs.evolve(r, config=attrs.evolve(r.config, stop=["END", "STOP"])),
    "tools": lambda r: attrs.evolve(r, tools=[attrs.evolve(WEATHER, description="Weather.")]),
    "no tools": lambda r: attrs.evolve(r, tools=[]),
    "tool_choice": lambda r: attrs.evolve(r, tool_choice="required"),
    "response_schema": lambda r: attrs.evolve(r, response_schema=SCHEMA),
    "provider_kwargs value": lambda r: attrs.evolve(
        r, provider_kwargs={**r.provider_kwargs, "user": "u-2"}
    ),
    "provider_kwargs int vs float": lambda r: attrs.evolve(
        r, provider_kwargs={**r.provider_kwargs, "top_k": 1}
    ),
    "provider_kwargs key": lambda r: attrs.evolve(r, provider_kwargs={**r.provider_kwargs, "x": 1}),
}


@pytest.mark.parametrize("change", CONTENT_CHANGES.values(), ids=list(CONTENT_CHANGES))
def test_fingerprint_changes_with_content(change: Any) -> None:
    request = _golden_request()
    assert change(request).fingerprint() != request.fingerprint()


def test_content_changes_all_give_distinct_fingerprints() -> None:
    request = _golden_request()
    prints = {change(request).fingerprint() for change in CONTENT_CHANGES.values()}
    assert len(prints) == len(CONTENT_CHANGES)


def test_fingerprint_ignores_dict_key_order() -> None:
    one = t.Request.from_prompt(
        "hi", model="m/x", provider_kwargs={"a": 1, "b": {"x": 1, "y": [1, {"p": 1, "q": 2}]}}
    )
    two = t.Request.from_prompt(
        "hi", model="m/x", provider_kwargs={"b": {"y": [1, {"q": 2, "p": 1}], "x": 1}, "a": 1}
    )
    assert one.fingerprint() == two.fingerprint()


def test_fingerprint_is_the_digest_of_what_the_provider_sees() -> None:
    request = _golden_request()
    bare = attrs.evolve(request, custom_id="r", tags=["t"], metadata={"m": 1})
    assert bare.fingerprint() == fingerprint(request)


# ---------------------------------------------------------------------------- conveniences


def test_message_constructors() -> None:
    image = t.ImagePart(url="https://example.com/x.png")
    assert t.Message.user("Look:", image) == t.Message("user", (t.TextPart("Look:"), image))
    assert t.Message.assistant("Hi").role == "assistant"
    result = t.ToolResultPart("c1", "21 degrees")
    tool = t.Message.tool(result)
    assert (tool.role, tool.content) == ("tool", (result,))


@pytest.mark.parametrize(
    "content",
    ["hi", t.TextPart("hi"), ["hi"], [t.TextPart("hi")], (t.TextPart("hi"),)],
    ids=["str", "part", "list of str", "list of parts", "tuple"],
)
def test_message_content_from_str_part_or_list(content: Any) -> None:
    assert t.Message("user", content).content == (t.TextPart("hi"),)


def test_message_content_mixes_strings_and_parts() -> None:
    call = t.ToolCallPart("c", "f")
    message = t.Message("assistant", ["a", t.ThinkingPart("hm"), "b", call])
    assert message.content == (t.TextPart("a"), t.ThinkingPart("hm"), t.TextPart("b"), call)
    assert message.text == "ab"
    assert message.tool_calls == (call,)


def test_request_from_prompt_and_parts() -> None:
    request = t.Request.from_prompt("2+2?", model="mock/echo", system="Be brief.")
    assert request.messages == (t.Message.user("2+2?"),)
    assert (request.model, request.system) == ("mock/echo", "Be brief.")
    assert list(t.Request(messages=[t.Message.user("a", "b"), t.Message.assistant("c")]).parts) == [
        t.TextPart("a"),
        t.TextPart("b"),
        t.TextPart("c"),
    ]


def test_response_accessors() -> None:
    assert RESPONSE.text == "Let me check."
    assert RESPONSE.thinking == "Paris, surely."
    assert RESPONSE.tool_calls == (
        t.ToolCallPart("call_1", "get_weather", {"city": "Paris", "days": [1, 2], "x": None}),
    )
    assert t.Response(content="plain").text == "plain"
    assert t.Response().text == ""


def test_response_json_parses_the_text() -> None:
    response = t.Response(content=['{"population": ', "2100000}"])
    assert response.json() == {"population": 2100000}
    with pytest.raises(json.JSONDecodeError):
        t.Response(content="not json").json()


def test_response_to_message_continues_the_conversation() -> None:
    message = RESPONSE.to_message()
    assert message.role == "assistant"
    assert message.content == RESPONSE.content


def test_usage_addition_and_total() -> None:
    total = t.Usage(10, 5, 2, 1, 3) + t.Usage(1, 2, 3, 4, 5)
    assert total == t.Usage(
        input_tokens=11,
        output_tokens=7,
        cached_input_tokens=5,
        cache_write_tokens=5,
        reasoning_tokens=8,
    )
    assert total.total_tokens == 18
    assert sum([t.Usage(1, 1), t.Usage(2, 2)], t.Usage()) == t.Usage(3, 3)


def test_generation_config_merged() -> None:
    base = t.GenerationConfig(temperature=0.2, max_tokens=100, stop="END")
    override = t.GenerationConfig(temperature=0.0, seed=7)
    merged = base.merged(override)
    assert merged == t.GenerationConfig(temperature=0.0, max_tokens=100, stop="END", seed=7)
    assert base.merged(t.GenerationConfig()) == base
    assert t.GenerationConfig().merged(base) == base


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ("END",)), (["a", "b"], ("a", "b")), (("a",), ("a",)), (None, None)],
)
def test_stop_accepts_a_string_or_a_list(stop: Any, expected: Any) -> None:
    assert t.GenerationConfig(stop=stop).stop == expected


@pytest.mark.parametrize(
    ("setting", "value", "error"),
    [
        ("max_tokens", float("nan"), TypeError),
        ("max_tokens", 2.5, TypeError),
        ("max_tokens", True, TypeError),
        ("max_tokens", 0, ValueError),
        ("temperature", float("nan"), ValueError),
        ("temperature", float("inf"), ValueError),
        ("temperature", -0.1, ValueError),
        ("temperature", "hot", TypeError),
        ("top_p", 1.5, ValueError),
        ("seed", 1e400, TypeError),
        ("stop", [1, 2], TypeError),
    ],
)
def test_a_generation_setting_no_provider_takes_is_refused_when_made(
    setting: str, value: Any, error: type[Exception]
) -> None:
    # Refused here, not when a stored job reads it back or a provider answers 400.
    with pytest.raises(error, match=setting):
        t.GenerationConfig(**{setting: value})


def test_generation_settings_at_their_bounds_are_taken() -> None:
    config = t.GenerationConfig(temperature=0, top_p=1, max_tokens=1, seed=-3)
    assert (config.temperature, config.top_p, config.max_tokens, config.seed) == (0, 1, 1, -3)


@pytest.mark.parametrize("cls", [t.ImagePart, t.DocumentPart])
def test_media_parts_need_exactly_one_source(cls: Any) -> None:
    with pytest.raises(ValueError, match="exactly one of url= or data="):
        cls(media_type="image/png")
    with pytest.raises(ValueError, match="exactly one of url= or data="):
        cls(url="https://example.com/x", data=b"x", media_type="image/png")
    with pytest.raises(ValueError, match="exactly one of url= or data="):
        attrs.evolve(cls(url="https://example.com/x"), data=b"x")


def test_image_from_path_guesses_the_media_type(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0jpeg")
    image = t.ImagePart.from_path(tmp_path / "photo.jpg")
    assert image == t.ImagePart(data=b"\xff\xd8\xff\xe0jpeg", media_type="image/jpeg")
    assert image.base64() == "/9j/4GpwZWc="
    (tmp_path / "raw.nosuchext").write_bytes(b"\x89PNG")
    assert t.ImagePart.from_path(str(tmp_path / "raw.nosuchext")).media_type == "image/png"


def test_document_from_path_keeps_the_name(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    document = t.DocumentPart.from_path(tmp_path / "notes.txt")
    assert document == t.DocumentPart(data=b"hello", media_type="text/plain", name="notes.txt")


def test_media_bytes_do_not_flood_the_repr() -> None:
    assert "<1000 bytes>" in repr(t.ImagePart(data=b"x" * 1000, media_type="image/png"))


@pytest.mark.parametrize("part_type", [t.ImagePart, t.DocumentPart])
def test_a_part_given_by_url_has_a_repr(part_type: type[t.ImagePart | t.DocumentPart]) -> None:
    # Logging a request, or a failing test printing one, calls repr() on every part.
    shown = repr(part_type(url="https://example.com/a.png"))
    assert "url='https://example.com/a.png'" in shown
    assert "data=None" in shown


@pytest.mark.parametrize(
    ("value", "content"),
    [
        ("already text", "already text"),
        ('{"x": 1}', '{"x": 1}'),
        ({"city": "Zürich", "temp": 21.5}, '{"city": "Zürich", "temp": 21.5}'),
        ([1, "a"], '[1, "a"]'),
        (3, "3"),
        (None, "null"),
        (True, "true"),
    ],
)
def test_tool_result_from_value(value: Any, content: str) -> None:
    part = t.ToolResultPart.from_value("call_1", value, name="f")
    assert part == t.ToolResultPart("call_1", content, name="f")


def test_batch_counts_pending() -> None:
    assert t.BatchCounts(total=10, completed=6, failed=1).pending == 3
    assert t.BatchCounts().pending == 0


BATCH_STATE_DONE = {
    "validating": False,
    "in_progress": False,
    "finalizing": False,
    "cancelling": False,
    "completed": True,
    "failed": True,
    "cancelled": True,
    "expired": True,
}


@pytest.mark.parametrize(("state", "done"), BATCH_STATE_DONE.items())
def test_provider_batch_done(state: Any, done: bool) -> None:
    assert t.ProviderBatch(id="b", provider="p", state=state).done is done


def test_every_batch_state_has_a_done_case() -> None:
    assert set(BATCH_STATE_DONE) == set(typing.get_args(t.BatchState))


def test_error_info_from_exception() -> None:
    error = RateLimitError("slow down", provider="openai", status_code=429)
    info = t.ErrorInfo.from_exception(error)
    assert (info.kind, info.status_code, info.retryable) == ("RateLimitError", 429, True)
    assert "slow down" in info.message
    plain = t.ErrorInfo.from_exception(ValueError("bad key sk-abcdefghijklmnopqrstuvwxyz012345"))
    assert plain == t.ErrorInfo("ValueError", "bad key ***")


def test_cost_unknown_has_no_amount() -> None:
    assert t.Cost.unknown() == t.Cost(amount=None, source="unknown")


def test_values_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        REQUEST.model = "other"  # type: ignore[misc]


def test_a_string_stop_in_hand_written_json_is_one_sequence() -> None:
    assert structure({"stop": "END"}, t.GenerationConfig).stop == ("END",)
    assert structure({"stop": ["a", "b"]}, t.GenerationConfig).stop == ("a", "b")
    assert structure({"tags": "fast", "messages": []}, t.Request).tags == ("fast",)
