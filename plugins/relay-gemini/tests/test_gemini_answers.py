"""Reading answers: parts in order, signatures, finish reasons, usage, blocked prompts,
and the streamed answer equal to the whole one."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from gemini_support import MODEL, Recorder, answer, sse_answer, stream_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay_core import (
    ContentPolicyError,
    EndEvent,
    Hub,
    MalformedResponse,
    Message,
    Request,
    Response,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageEvent,
)
from relay_core.testing import json_answer
from relay_gemini._adapter import GENERATED_ID_PREFIX, GeminiProvider

TARGET = f"gemini/{MODEL}"
NO_RETRY = "providers:\n  gemini: {max_retries: 0}\n"
THOUGHT_SIG = "CiQB0e2Kb7mQ4yXz1e0dThoughtSignatureOfThePlan0=="
CALL_SIG = "CikB0e2Kb3Jm1aQpZ7CallSignatureOnTheFirstFunctionCall=="
THOUGHTFUL = answer(
    [
        {
            "text": "**Factoring**\n\n1001 = 7 × 143.",
            "thought": True,
            "thoughtSignature": THOUGHT_SIG,
        },
        {"text": "Let me check both factors."},
        {"functionCall": {"name": "factor", "args": {"n": 143}}, "thoughtSignature": CALL_SIG},
        {"functionCall": {"name": "factor", "args": {"n": 7}}},
    ],
    usage={
        "promptTokenCount": 1200,
        "candidatesTokenCount": 40,
        "thoughtsTokenCount": 310,
        "cachedContentTokenCount": 1024,
        "toolUsePromptTokenCount": 5,
        "totalTokenCount": 1555,
    },
)


def run_chat(provider: GeminiProvider, request: Request) -> Response:
    return asyncio.run(provider.chat(request))


def run_stream(provider: GeminiProvider, request: Request) -> list[Any]:
    async def collect() -> list[Any]:
        return [event async for event in provider.stream(request)]

    return asyncio.run(collect())


def test_parts_come_back_in_order_with_signatures_and_usage(make_hub: Callable[..., Hub]) -> None:
    got = make_hub(Recorder(json_answer(THOUGHTFUL))).chat(TARGET, "Is 1001 prime?")
    [first, second] = got.tool_calls
    # Each signature stays on the part Gemini put it on.
    assert got.content == (
        ThinkingPart("**Factoring**\n\n1001 = 7 × 143.", signature=THOUGHT_SIG),
        TextPart("Let me check both factors."),
        ToolCallPart(first.id, "factor", {"n": 143}, signature=CALL_SIG),
        ToolCallPart(second.id, "factor", {"n": 7}),
    )
    assert got.finish_reason == "tool_calls"
    # Relay's output includes the thoughts; input includes tool-use prompt tokens.
    assert got.usage == Usage(
        input_tokens=1205, output_tokens=350, cached_input_tokens=1024, reasoning_tokens=310
    )
    assert (got.id, got.model, got.provider) == (THOUGHTFUL["responseId"], MODEL, "gemini")
    assert got.raw == THOUGHTFUL
    assert got.text == "Let me check both factors."


def test_generated_call_ids_are_stable_and_distinct(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(Recorder(json_answer(THOUGHTFUL)))
    one, two = hub.chat(TARGET, "x"), hub.chat(TARGET, "x")
    assert [c.id for c in one.tool_calls] == [c.id for c in two.tool_calls]
    ids = [c.id for c in one.tool_calls]
    assert len(set(ids)) == 2
    assert all(i.startswith(GENERATED_ID_PREFIX) for i in ids)
    other = dict(THOUGHTFUL, responseId="another-answer")
    third = make_hub(Recorder(json_answer(other))).chat(TARGET, "x")
    assert not set(ids) & {c.id for c in third.tool_calls}


def test_ids_gemini_gives_are_kept(make_hub: Callable[..., Hub]) -> None:
    body = answer([{"functionCall": {"id": "fc-1a2b", "name": "now", "args": {}}}])
    got = make_hub(Recorder(json_answer(body))).chat(TARGET, "Time?")
    assert got.content == (ToolCallPart("fc-1a2b", "now", {}),)


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("LANGUAGE", "unknown"),
        ("OTHER", "unknown"),
        ("FINISH_REASON_UNSPECIFIED", "unknown"),
        ("SOMETHING_NEW", "unknown"),
    ],
)
def test_finish_reasons(make_hub: Callable[..., Hub], reason: str, finish: str) -> None:
    body = answer([{"text": "x"}], finish=reason)
    assert make_hub(Recorder(json_answer(body))).chat(TARGET, "Hi").finish_reason == finish


def test_a_filtered_answer_may_have_no_content(make_hub: Callable[..., Hub]) -> None:
    body = answer([], finish="SAFETY")
    del body["candidates"][0]["content"]
    got = make_hub(Recorder(json_answer(body))).chat(TARGET, "Hi")
    assert (got.content, got.finish_reason) == ((), "content_filter")


def test_a_blocked_prompt_is_a_content_policy_error(make_hub: Callable[..., Hub]) -> None:
    body = {
        "promptFeedback": {
            "blockReason": "PROHIBITED_CONTENT",
            "safetyRatings": [],
        },
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": MODEL,
        "responseId": "r1",
    }
    recorder = Recorder(json_answer(body))
    with pytest.raises(ContentPolicyError, match="PROHIBITED_CONTENT") as caught:
        make_hub(recorder).chat(TARGET, "Hi")
    assert not caught.value.retryable
    assert len(recorder.requests) == 1
    with pytest.raises(ContentPolicyError, match="PROHIBITED_CONTENT"):
        list(make_hub(Recorder(sse_answer([body]))).stream(TARGET, "Hi"))


def test_unknown_parts_stay_in_raw_only(make_hub: Callable[..., Hub]) -> None:
    body = answer(
        [
            {"executableCode": {"language": "PYTHON", "code": "print(7 * 143)"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1001\n"}},
            {"text": "It is 1001."},
        ]
    )
    got = make_hub(Recorder(json_answer(body))).chat(TARGET, "7*143?")
    assert got.content == (TextPart("It is 1001."),)
    assert got.raw["candidates"][0]["content"]["parts"][0]["executableCode"]["language"] == "PYTHON"


@pytest.mark.parametrize(
    "body",
    [
        {"modelVersion": MODEL},  # no candidates, nothing blocked
        answer([{"text": 3}]),
        answer([{"functionCall": {"name": "f", "args": [1]}}]),
        ["not", "an", "answer"],
    ],
)
def test_unexpected_shapes_are_malformed_responses(make_hub: Callable[..., Hub], body: Any) -> None:
    with pytest.raises(MalformedResponse) as caught:
        make_hub(Recorder(json_answer(body)), NO_RETRY).chat(TARGET, "Hi")
    assert caught.value.provider == "gemini"


# ---------------------------------------------------------------------------- streaming


def without_raw(response: Response) -> Response:
    return attrs.evolve(response, raw=None)


def test_stream_events_and_the_end_event_equal_chat(adapter: Callable[..., Any]) -> None:
    request = Request.from_prompt("Is 1001 prime?", model=MODEL)
    whole = run_chat(adapter(Recorder(json_answer(THOUGHTFUL))), request)
    chunks = stream_of(THOUGHTFUL)
    events = run_stream(adapter(Recorder(sse_answer(chunks))), request)
    assert [type(e) for e in events].count(EndEvent) == 1
    end = events[-1]
    assert isinstance(end, EndEvent)
    # Everything but raw, which is the chunks as received (chat's is the whole body).
    assert without_raw(end.response) == without_raw(whole)
    assert end.response.raw == chunks
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert "".join(e.text for e in thinking) == "**Factoring**\n\n1001 = 7 × 143."
    assert [e.signature for e in thinking if e.signature] == [THOUGHT_SIG]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == whole.text
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    # Gemini sends each call whole: one delta per call, with all its arguments and the
    # call's signature.
    assert [(c.index, c.id, c.name, json.loads(c.arguments), c.signature) for c in calls] == [
        (0, whole.tool_calls[0].id, "factor", {"n": 143}, CALL_SIG),
        (1, whole.tool_calls[1].id, "factor", {"n": 7}, None),
    ]
    usages = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert usages[-1] == whole.usage


def test_a_signature_in_an_empty_last_chunk_joins_the_text(adapter: Callable[..., Any]) -> None:
    chunks = stream_of(answer([{"text": "Hello there"}]))
    last = json.loads(json.dumps(chunks[-1]))
    del chunks[-1]["candidates"][0]["finishReason"]
    last["candidates"][0]["content"]["parts"] = [{"text": "", "thoughtSignature": "c2ln"}]
    request = Request.from_prompt("Hi", model=MODEL)
    events = run_stream(adapter(Recorder(sse_answer([*chunks, last]))), request)
    whole = answer([{"text": "Hello there", "thoughtSignature": "c2ln"}])
    chat = run_chat(adapter(Recorder(json_answer(whole))), request)
    assert without_raw(events[-1].response) == without_raw(chat)
    assert events[-1].response.content == (TextPart("Hello there", signature="c2ln"),)


_TEXT = st.text(min_size=1, max_size=30)
_SIG = st.text("abcXYZ0123+/=", min_size=4, max_size=40)
_PART = st.one_of(
    st.builds(lambda t: {"text": t}, _TEXT),
    st.builds(lambda t, s: {"text": t, "thoughtSignature": s}, _TEXT, _SIG),
    st.builds(lambda s: {"text": "", "thoughtSignature": s}, _SIG),
    st.builds(lambda t: {"text": t, "thought": True}, _TEXT),
    st.builds(lambda t, s: {"text": t, "thought": True, "thoughtSignature": s}, _TEXT, _SIG),
    st.builds(
        lambda n, a: {"functionCall": {"name": n, "args": a}},
        st.sampled_from(["f", "get_weather"]),
        st.dictionaries(
            st.text(max_size=5), st.one_of(st.integers(), _TEXT, st.none()), max_size=3
        ),
    ),
    st.builds(
        lambda i, s: {
            "functionCall": {"id": f"fc-{i}", "name": "g", "args": {}},
            "thoughtSignature": s,
        },
        st.integers(0, 99),
        _SIG,
    ),
)


def _separable(parts: list[dict[str, Any]]) -> bool:
    """Streamed text pieces join with the text before them; two unsigned text parts of one
    kind in a row would be one part when streamed, so such answers are not generated."""
    for before, after in itertools.pairwise(parts):
        if (
            "text" in before
            and "text" in after
            and set(before) <= {"text", "thought"}
            and bool(before.get("thought")) == bool(after.get("thought"))
        ):
            return False
    return True


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    parts=st.lists(_PART, max_size=6).filter(_separable),
    finish=st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "MALFORMED_FUNCTION_CALL"]),
    usage=st.fixed_dictionaries(
        {
            "promptTokenCount": st.integers(0, 10**6),
            "candidatesTokenCount": st.integers(0, 10**5),
            "thoughtsTokenCount": st.integers(0, 10**5),
            "cachedContentTokenCount": st.integers(0, 10**5),
        }
    ),
)
def test_any_streamed_answer_equals_the_whole_answer(
    adapter: Callable[..., Any], parts: list[dict[str, Any]], finish: str, usage: dict[str, int]
) -> None:
    body = answer(parts, finish=finish, usage=usage)
    request = Request.from_prompt("Hi", model=MODEL)
    whole = run_chat(adapter(Recorder(json_answer(body))), request)
    chunks = stream_of(body)
    events = run_stream(adapter(Recorder(sse_answer(chunks))), request)
    assert without_raw(events[-1].response) == without_raw(whole)
    assert events[-1].response.raw == chunks


@pytest.mark.parametrize(
    "part", [{"text": 3}, {"functionCall": {"name": "f", "args": [1]}}, {"functionCall": {}}]
)
def test_a_streamed_part_of_the_wrong_shape_is_a_malformed_response(
    make_hub: Callable[..., Hub], part: dict[str, Any]
) -> None:
    chunks = [*stream_of(answer([{"text": "Hello"}], finish=None)), answer([part])]
    with pytest.raises(MalformedResponse) as caught:
        list(make_hub(Recorder(sse_answer(chunks)), NO_RETRY).stream(TARGET, "Hi"))
    assert caught.value.provider == "gemini"


def test_a_stream_cut_before_the_finish_reason_has_no_end_event(
    make_hub: Callable[..., Hub],
) -> None:
    chunks = stream_of(answer([{"text": "Hello there, how are you"}]))[:-1]
    with pytest.raises(MalformedResponse, match="finishReason"):
        list(make_hub(Recorder(sse_answer(chunks)), NO_RETRY).stream(TARGET, "Hi"))


# ---------------------------------------------------------------------------- signatures


def test_signatures_round_trip_through_a_tool_turn(make_hub: Callable[..., Hub]) -> None:
    recorder = Recorder(json_answer(THOUGHTFUL), json_answer(answer([{"text": "Not prime."}])))
    hub = make_hub(recorder)
    first = hub.chat(TARGET, "Is 1001 prime?", reasoning="low")
    results = [
        ToolResultPart(c.id, json.dumps([11, 13] if c.arguments["n"] == 143 else [7]))
        for c in first.tool_calls
    ]
    conversation = [Message.user("Is 1001 prime?"), first.to_message(), Message.tool(*results)]
    hub.chat(TARGET, conversation, reasoning="low")
    contents = recorder.payloads[1]["contents"]
    # Exactly the parts Gemini sent, signatures on the parts that carried them.
    assert contents[1] == {
        "role": "model",
        "parts": THOUGHTFUL["candidates"][0]["content"]["parts"],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "factor", "response": {"result": [11, 13]}}},
            {"functionResponse": {"name": "factor", "response": {"result": [7]}}},
        ],
    }


def test_a_streamed_answer_round_trips_its_signatures_too(make_hub: Callable[..., Hub]) -> None:
    recorder = Recorder(sse_answer(stream_of(THOUGHTFUL)), json_answer(answer([{"text": "ok"}])))
    hub = make_hub(recorder)
    [end] = [e for e in hub.stream(TARGET, "Is 1001 prime?") if isinstance(e, EndEvent)]
    hub.chat(
        TARGET, [Message.user("Is 1001 prime?"), end.response.to_message(), Message.user("Go on")]
    )
    assert (
        recorder.payloads[1]["contents"][1]["parts"]
        == THOUGHTFUL["candidates"][0]["content"]["parts"]
    )


def test_a_signed_text_answer_round_trips(make_hub: Callable[..., Hub]) -> None:
    parts = [{"text": "Paris.", "thoughtSignature": "c2lnLXRleHQ="}]
    recorder = Recorder(json_answer(answer(parts)))
    hub = make_hub(recorder)
    first = hub.chat(TARGET, "Capital of France?")
    hub.chat(
        TARGET, [Message.user("Capital of France?"), first.to_message(), Message.user("And Italy?")]
    )
    assert recorder.payloads[1]["contents"][1] == {"role": "model", "parts": parts}
