"""Message Batches: the lines sent (the chat payload, wrapped), every processing status,
results with errors and a garbled line, cancel, list and an unknown id. Wire-format
tests replay the hand-written ``batch_*`` cassettes; the rest answer through
``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import attrs
import httpx
import pytest
import yaml
from anthropic_support import CASSETTES, KEY, MODEL, Recorder, json_answer, message

from relay_anthropic._adapter import AnthropicProvider
from relay_core import (
    BatchCounts,
    BatchItem,
    GenerationConfig,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
    NotFoundError,
    ProviderBatch,
    ProviderSettings,
    Request,
    ResponseSchema,
    Secret,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    Usage,
)
from relay_core.batching import jsonl
from relay_core.http import HttpClient, HttpPool

Cassette = Callable[[str], AbstractContextManager[Any]]
T = TypeVar("T")
API = "https://api.anthropic.com/v1"
SUBMITTED = "msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d"
ENDED = "msgbatch_01EndedResults0000000001"
UNKNOWN = "msgbatch_01NoSuchBatch00000000001"
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def run(
    call: Callable[[AnthropicProvider], Awaitable[T]],
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    **options: Any,
) -> T:
    """Run ``call`` on an adapter over the real transport (which a cassette replaces) or
    over ``handler``; the pool is closed afterwards."""

    async def main() -> T:
        settings = ProviderSettings(name="anthropic", api_key=Secret(KEY), options=options)
        pool = HttpPool(transport=httpx.MockTransport(handler) if handler else None)
        http = HttpClient(
            pool,
            settings,
            base_url=AnthropicProvider.default_base_url,
            rules=AnthropicProvider.error_rules,
        )
        try:
            return await call(AnthropicProvider(settings, http))
        finally:
            await pool.aclose()

    return asyncio.run(main())


async def collect(provider: AnthropicProvider, batch_id: str) -> list[BatchItem]:
    return [item async for item in provider.batch_results(batch_id)]


def cassette_answer(name: str, index: int) -> str:
    interactions = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"]
    return str(interactions[index]["response"]["body"]["string"])


def batch_body(id: str, status: str, *, results: bool = False, **counts: int) -> dict[str, Any]:
    """A Message Batch object as the API documents it."""
    full = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    return {
        "id": id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {**full, **counts},
        "ended_at": "2025-06-01T13:00:00Z" if status == "ended" else None,
        "created_at": "2025-06-01T12:00:00Z",
        "expires_at": "2025-06-02T12:00:00Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"{API}/messages/batches/{id}/results" if results else None,
    }


# ---------------------------------------------------------------------------- the lines


STRUCTURED_ANSWER = message(
    [{"type": "tool_use", "id": "toolu_01", "name": "report", "input": {"city": "Paris"}}],
    stop_reason="tool_use",
)
CASES: dict[str, tuple[Request, dict[str, Any]]] = {
    "text and system": (
        Request.from_prompt("What is 2+2?", model=MODEL, system="Be brief.", custom_id="r1"),
        message([{"type": "text", "text": "4"}]),
    ),
    "thinking": (
        Request.from_prompt(
            "Is 1001 prime?",
            model=MODEL,
            config=GenerationConfig(reasoning=2048, temperature=1.0),
            custom_id="prime-1001",
        ),
        message([{"type": "text", "text": "No."}]),
    ),
    "tools and an image": (
        Request(
            messages=[Message.user("Weather here?", ImagePart(url="https://x.test/a.png"))],
            model=MODEL,
            tools=[WEATHER],
            tool_choice="required",
            custom_id="tool_use-2",
        ),
        message([{"type": "text", "text": "Sunny."}]),
    ),
    "structured output": (
        Request.from_prompt(
            "Paris?",
            model=MODEL,
            response_schema=ResponseSchema(
                {"type": "object", "properties": {"city": {"type": "string"}}}, name="report"
            ),
            custom_id="S",
        ),
        STRUCTURED_ANSWER,
    ),
    "provider kwargs": (
        Request.from_prompt(
            "Hi",
            model=MODEL,
            provider_kwargs={"top_k": 5, "metadata": {"user_id": "u1"}},
            custom_id="x" * 64,
        ),
        message([{"type": "text", "text": "Hello."}]),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_batch_line_is_what_chat_sends(case: str) -> None:
    request, answer = CASES[case]
    recorder = Recorder(json_answer(answer))
    line = run(lambda p: _chat_then_line(p, request), recorder)
    assert line == {"custom_id": request.custom_id, "params": recorder.payload}


async def _chat_then_line(provider: AnthropicProvider, request: Request) -> Any:
    await provider.chat(request)
    return provider.batch_line(request)


@pytest.mark.parametrize("custom_id", [None, "", "eval/001", "r 1", "x" * 65, "é"])
def test_a_custom_id_anthropic_would_refuse_is_an_error_before_sending(
    custom_id: str | None,
) -> None:
    provider = AnthropicProvider(ProviderSettings(name="anthropic", api_key=Secret(KEY)))
    request = Request.from_prompt("Hi", model=MODEL, custom_id=custom_id)
    with pytest.raises(InvalidRequestError, match="1 to 64 letters") as caught:
        provider.batch_line(request)
    assert caught.value.custom_id == custom_id


# ---------------------------------------------------------------------------- submit


SUBMITTED_REQUESTS = [
    Request.from_prompt(
        "What is the capital of France? One word.",
        model=MODEL,
        system="You are terse.",
        custom_id="capital-fr",
    ),
    Request.from_prompt(
        "Is 1001 prime?",
        model=MODEL,
        config=GenerationConfig(reasoning=2048),
        custom_id="prime-1001",
    ),
]
METADATA = {"relay_job": "job-1", "relay_tag": "job-1.0"}


def test_submit_sends_the_lines_and_reads_the_new_batch(cassette: Cassette) -> None:
    # The cassette matches request bodies as JSON: it pins what is sent.
    with cassette("batch_submit") as tape:
        batch = run(lambda p: p.submit_batch(SUBMITTED_REQUESTS, metadata=METADATA))
    assert tape.play_count == 1
    assert batch == ProviderBatch(
        id=SUBMITTED,
        provider="anthropic",
        state="in_progress",
        counts=BatchCounts(total=2, completed=0, failed=0),
        created_at=1748779200.0,  # 2025-06-01T12:00:00Z
        ended_at=None,
        metadata={},
        raw=json.loads(cassette_answer("batch_submit", 0)),
    )


def test_the_submitted_body_is_the_lines_wrapped_with_the_usual_headers() -> None:
    recorder = Recorder(json_answer(batch_body(SUBMITTED, "in_progress", processing=2)))

    async def submit(provider: AnthropicProvider) -> list[Any]:
        await provider.submit_batch(SUBMITTED_REQUESTS, metadata=METADATA)
        return [provider.batch_line(r) for r in SUBMITTED_REQUESTS]

    lines = run(submit, recorder, beta="message-batches-2024-09-24")
    [sent] = recorder.requests
    assert (sent.method, str(sent.url)) == ("POST", f"{API}/messages/batches")
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "message-batches-2024-09-24"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {"requests": lines}
    # The metadata has nowhere to go; the size the core measured is the size sent.
    assert b"job-1" not in sent.content
    assert len(sent.content) <= len(jsonl(lines)) + len('{"requests":[]}')


# ---------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("batch_id", "state", "counts", "ended_at"),
    [
        ("msgbatch_01InProgress0000000000001", "in_progress", BatchCounts(10, 2, 1), None),
        ("msgbatch_01Canceling00000000000001", "cancelling", BatchCounts(10, 5, 2), None),
        ("msgbatch_01EndedMixed0000000000001", "completed", BatchCounts(6, 3, 3), 1748782800.5),
        ("msgbatch_01EndedCanceled0000000001", "cancelled", BatchCounts(4, 0, 4), 1748779500.0),
        ("msgbatch_01EndedExpired00000000001", "expired", BatchCounts(4, 0, 4), 1748865600.0),
    ],
)
def test_every_processing_status_maps_to_a_batch_state(
    cassette: Cassette, batch_id: str, state: str, counts: BatchCounts, ended_at: float | None
) -> None:
    with cassette("batch_status"):
        batch = run(lambda p: p.batch_status(batch_id))
    assert (batch.id, batch.state, batch.counts, batch.ended_at) == (
        batch_id,
        state,
        counts,
        ended_at,
    )
    assert batch.created_at == 1748779200.0
    assert batch.metadata == {}
    assert batch.raw["processing_status"] in {"in_progress", "canceling", "ended"}


def test_an_unknown_processing_status_is_a_malformed_answer() -> None:
    answer = json_answer(batch_body(SUBMITTED, "archiving", succeeded=1))
    with pytest.raises(MalformedResponse, match="archiving"):
        run(lambda p: p.batch_status(SUBMITTED), Recorder(answer))


def test_an_unknown_batch_id_is_not_found(cassette: Cassette) -> None:
    with cassette("batch_not_found"), pytest.raises(NotFoundError) as caught:
        run(lambda p: p.batch_status(UNKNOWN))
    assert caught.value.status_code == 404
    with cassette("batch_not_found"), pytest.raises(NotFoundError):
        run(lambda p: collect(p, UNKNOWN))


# ---------------------------------------------------------------------------- results


def test_results_parse_answers_errors_and_a_garbled_line(cassette: Cassette) -> None:
    with cassette("batch_results") as tape:
        items = run(lambda p: collect(p, ENDED))
    assert tape.play_count == 2
    by_id = {item.custom_id: item for item in items}
    assert len(items) == len(by_id) == 8

    paris = by_id["capital-fr"]
    assert paris.ok
    assert paris.error is None
    assert paris.response is not None
    assert paris.response.text == "Paris."
    assert paris.response.custom_id == "capital-fr"
    assert paris.response.id == "msg_01BatchCapitalFr0000001"
    assert paris.response.usage == Usage(input_tokens=20, output_tokens=5)
    assert paris.raw["result"]["message"] == paris.response.raw

    errors = {cid: by_id[cid].error for cid in ("bad-params", "too-long", "flaky")}
    assert {cid: (e.kind, e.status_code, e.retryable) for cid, e in errors.items() if e} == {
        "bad-params": ("InvalidRequestError", 400, False),
        "too-long": ("ContextWindowExceeded", 400, False),
        "flaky": ("ProviderUnavailable", 500, True),
    }
    bad = errors["bad-params"]
    assert bad is not None
    assert "text content blocks must be non-empty" in bad.message
    assert by_id["bad-params"].raw["result"]["type"] == "errored"

    for custom_id, kind in (("late-1", "cancelled"), ("late-2", "expired")):
        item = by_id[custom_id]
        assert item.response is None
        assert item.error is not None
        assert (item.error.kind, item.error.retryable) == (kind, True)
        assert item.raw == {"custom_id": custom_id, "result": {"type": item.raw["result"]["type"]}}

    garbled = by_id["cut-short"]
    assert garbled.response is None
    assert garbled.error is not None
    assert garbled.error.kind == "MalformedResponse"
    assert "line 4 of the results of msgbatch_01EndedResults0000000001" in garbled.error.message
    assert isinstance(garbled.raw, str)
    assert garbled.raw.startswith('{"custom_id":"cut-short"')


def test_thinking_in_a_batch_result_parses_exactly_as_in_chat(cassette: Cassette) -> None:
    with cassette("batch_results"):
        items = run(lambda p: collect(p, ENDED))
    [item] = [i for i in items if i.custom_id == "prime-1001"]
    assert item.response is not None
    assert item.response.content == (
        ThinkingPart(
            "1001 = 7 × 143, and 143 = 11 × 13.",
            signature=item.raw["result"]["message"]["content"][0]["signature"],
        ),
        ThinkingPart("", signature="EmwKAhgBEgy3va3pzix/LafPsn4aDFIT", redacted=True),
        TextPart("No: 1001 = 7 × 11 × 13."),
    )
    same = item.raw["result"]["message"]
    chat = run(
        lambda p: p.chat(Request.from_prompt("Is 1001 prime?", model=MODEL)),
        Recorder(json_answer(same)),
    )
    assert attrs.evolve(item.response, custom_id=None) == chat


def _ended_batch_then(results: httpx.Response) -> Recorder:
    return Recorder(json_answer(batch_body(ENDED, "ended", results=True, succeeded=1)), results)


def test_the_results_url_is_fetched_with_the_same_headers() -> None:
    line = {"custom_id": "a", "result": {"type": "succeeded", "message": message([])}}
    recorder = _ended_batch_then(
        httpx.Response(200, text=json.dumps(line) + "\n", headers={"content-type": "x-jsonl"})
    )
    [item] = run(lambda p: collect(p, ENDED), recorder, beta=["b1", "b2"])
    assert item.ok
    status, results = recorder.requests
    assert str(status.url) == f"{API}/messages/batches/{ENDED}"
    assert str(results.url) == f"{API}/messages/batches/{ENDED}/results"
    for sent in (status, results):
        assert sent.headers["x-api-key"] == KEY
        assert sent.headers["anthropic-version"] == "2023-06-01"
        assert sent.headers["anthropic-beta"] == "b1,b2"


def test_results_before_the_batch_ended_are_refused() -> None:
    recorder = Recorder(json_answer(batch_body(SUBMITTED, "in_progress", processing=2)))
    with pytest.raises(InvalidRequestError, match="'in_progress'"):
        run(lambda p: collect(p, SUBMITTED), recorder)
    assert len(recorder.requests) == 1


def _error(kind: str, text: str = "something went wrong") -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": text}}


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (_error("invalid_request_error"), "InvalidRequestError", 400),
        (_error("invalid_request_error", "prompt is too long"), "ContextWindowExceeded", 400),
        (_error("authentication_error"), "AuthenticationError", 401),
        (_error("billing_error"), "QuotaExceeded", 402),
        (_error("permission_error"), "AuthenticationError", 403),
        (_error("not_found_error"), "NotFoundError", 404),
        (_error("request_too_large"), "ContextWindowExceeded", 413),
        (_error("rate_limit_error"), "RateLimitError", 429),
        (_error("api_error"), "ProviderUnavailable", 500),
        (_error("timeout_error"), "Timeout", 504),
        (_error("overloaded_error"), "ProviderUnavailable", 529),
        (_error("a_type_added_later"), "ProviderUnavailable", 500),
        # The error object alone, without the response wrapper, reads the same way.
        ({"type": "invalid_request_error", "message": "bad"}, "InvalidRequestError", 400),
    ],
)
def test_an_errored_result_is_classified_by_its_error_type(
    error: dict[str, Any], kind: str, status: int
) -> None:
    provider = AnthropicProvider(ProviderSettings(name="anthropic"))
    line = {"custom_id": "c1", "result": {"type": "errored", "error": error}}
    item = provider._batch_item(line)
    assert item.error is not None
    assert item.response is None
    assert (item.error.kind, item.error.status_code) == (kind, status)
    assert item.raw is line


@pytest.mark.parametrize(
    "line",
    [
        {"custom_id": "c1", "result": {"type": "a_type_added_later"}},
        {"custom_id": "c1", "result": {"type": "errored"}},
        {"custom_id": "c1", "result": {"type": "succeeded", "message": {"content": "?"}}},
        {"custom_id": "c1"},
    ],
)
def test_a_result_of_an_unknown_shape_is_a_failed_item_not_an_exception(
    line: dict[str, Any],
) -> None:
    text = json.dumps(line) + "\n"
    recorder = _ended_batch_then(httpx.Response(200, text=text + text.replace("c1", "c2")))
    items = run(lambda p: collect(p, ENDED), recorder)
    assert [(i.custom_id, i.error and i.error.kind) for i in items] == [
        ("c1", "MalformedResponse"),
        ("c2", "MalformedResponse"),
    ]
    assert items[0].raw == line


# ---------------------------------------------------------------------------- cancel, list


def test_cancel_asks_and_returns_the_cancelling_batch(cassette: Cassette) -> None:
    with cassette("batch_cancel") as tape:
        batch = run(lambda p: p.cancel_batch(SUBMITTED))
    assert tape.play_count == 1
    assert (batch.id, batch.state, batch.done) == (SUBMITTED, "cancelling", False)
    assert batch.raw["cancel_initiated_at"] == "2025-06-01T12:01:00.000000Z"


@pytest.mark.parametrize("refusal", [400, 409])
def test_cancelling_an_ended_batch_returns_it_unchanged(refusal: int) -> None:
    ended = batch_body(ENDED, "ended", results=True, succeeded=3)
    recorder = Recorder(
        json_answer(_error("invalid_request_error", "batch has already ended"), refusal),
        json_answer(ended),
    )
    batch = run(lambda p: p.cancel_batch(ENDED), recorder)
    assert (batch.state, batch.counts, batch.raw) == ("completed", BatchCounts(3, 3, 0), ended)
    assert [r.method for r in recorder.requests] == ["POST", "GET"]


def test_a_refused_cancel_of_a_running_batch_is_raised() -> None:
    recorder = Recorder(
        json_answer(_error("invalid_request_error", "cannot cancel now"), 400),
        json_answer(batch_body(SUBMITTED, "in_progress", processing=1)),
    )
    with pytest.raises(InvalidRequestError, match="cannot cancel now"):
        run(lambda p: p.cancel_batch(SUBMITTED), recorder)


def test_cancelling_an_unknown_batch_is_not_found() -> None:
    recorder = Recorder(json_answer(_error("not_found_error", "no such batch"), 404))
    with pytest.raises(NotFoundError):
        run(lambda p: p.cancel_batch(UNKNOWN), recorder)
    assert len(recorder.requests) == 1


def test_list_reads_two_pages_newest_first(cassette: Cassette) -> None:
    with cassette("batch_list") as tape:
        batches = run(lambda p: p.list_batches())
    assert tape.play_count == 2
    assert [(b.id, b.state, b.created_at) for b in batches] == [
        ("msgbatch_01ListNewest000000000003", "in_progress", 1748941200.0),
        ("msgbatch_01ListMiddle000000000002", "completed", 1748854800.0),
        ("msgbatch_01ListOldest000000000001", "expired", 1748768400.0),
    ]
    # Anthropic keeps no caller metadata, as batch_metadata = False tells the core.
    assert all(b.metadata == {} for b in batches)
    assert not AnthropicProvider.batch_metadata


def test_list_stops_after_two_pages() -> None:
    page = {"data": [batch_body(SUBMITTED, "in_progress", processing=1)], "has_more": True}
    page |= {"first_id": SUBMITTED, "last_id": SUBMITTED}
    recorder = Recorder(json_answer(page))
    assert len(run(lambda p: p.list_batches(), recorder)) == 2
    assert [dict(r.url.params) for r in recorder.requests] == [
        {"limit": "100"},
        {"limit": "100", "after_id": SUBMITTED},
    ]


def test_structured_output_in_a_batch_comes_back_as_the_forced_tool_call() -> None:
    # A result line carries no trace of its request: the schema tool cannot be told from
    # an ordinary tool call (see the README), so it is returned as one, unchecked.
    provider = AnthropicProvider(ProviderSettings(name="anthropic"))
    line = {"custom_id": "S", "result": {"type": "succeeded", "message": STRUCTURED_ANSWER}}
    response = provider._batch_item(line).response
    assert response is not None
    assert response.tool_calls == (ToolCallPart("toolu_01", "report", {"city": "Paris"}),)
    assert (response.text, response.finish_reason) == ("", "tool_calls")
