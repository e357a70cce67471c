"""Message Batches: the lines sent (the chat payload, wrapped), every processing status,
results with errors and a garbled line, cancel, list and an unknown id. Wire-format
tests replay the hand-written ``batch_*`` cassettes; the rest answer through
``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import attrs
import httpx
import pytest
import yaml
from anthropic_support import CASSETTES, KEY, MODEL, message

import relay_anthropic
from relay_anthropic._adapter import AnthropicProvider
from relay_core import (
    BatchCounts,
    BatchInputError,
    BatchItem,
    GenerationConfig,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
    NotFoundError,
    ProviderBatch,
    ProviderSettings,
    RelayClient,
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
from relay_core.testing import FakeServer, hub_for, json_answer

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
    server = FakeServer(json_answer(answer))
    line = run(lambda p: _chat_then_line(p, request), server)
    assert line == {"custom_id": request.custom_id, "params": server.payload}


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


def test_in_a_job_a_refused_custom_id_names_its_file_and_line(tmp_path: Path) -> None:
    """The adapter refuses the id in batch_line; the core reports it as a BatchInputError
    pointing at the JSONL line, before anything reaches Anthropic."""
    requests = tmp_path / "requests.jsonl"
    lines = [{"id": "ok-1", "prompt": "Hi"}, {"id": "eval/002", "prompt": "Hi"}]
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    server = FakeServer()  # answers nothing: any request would fail the test
    with (
        hub_for("", relay_anthropic, transport=server.transport) as hub,
        RelayClient(tmp_path / "ws", hub=hub) as client,
        pytest.raises(BatchInputError) as caught,
    ):
        client.submit_batch(str(requests), model=f"anthropic/{MODEL}", mode="batch")
    assert (caught.value.file, caught.value.line) == (str(requests), 2)
    assert caught.value.custom_id == "eval/002"
    assert "1 to 64 letters" in str(caught.value)
    assert server.requests == []


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
    server = FakeServer(json_answer(batch_body(SUBMITTED, "in_progress", processing=2)))

    async def submit(provider: AnthropicProvider) -> list[Any]:
        await provider.submit_batch(SUBMITTED_REQUESTS, metadata=METADATA)
        return [provider.batch_line(r) for r in SUBMITTED_REQUESTS]

    lines = run(submit, server, beta="message-batches-2024-09-24")
    [sent] = server.requests
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
        run(lambda p: p.batch_status(SUBMITTED), FakeServer(answer))


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
        FakeServer(json_answer(same)),
    )
    assert attrs.evolve(item.response, custom_id=None) == chat


def _ended_batch_then(results: httpx.Response) -> FakeServer:
    return FakeServer(json_answer(batch_body(ENDED, "ended", results=True, succeeded=1)), results)


def test_the_results_url_is_fetched_with_the_same_headers() -> None:
    line = {"custom_id": "a", "result": {"type": "succeeded", "message": message([])}}
    server = _ended_batch_then(
        httpx.Response(200, text=json.dumps(line) + "\n", headers={"content-type": "x-jsonl"})
    )
    [item] = run(lambda p: collect(p, ENDED), server, beta=["b1", "b2"])
    assert item.ok
    status, results = server.requests
    assert str(status.url) == f"{API}/messages/batches/{ENDED}"
    assert str(results.url) == f"{API}/messages/batches/{ENDED}/results"
    for sent in (status, results):
        assert sent.headers["x-api-key"] == KEY
        assert sent.headers["anthropic-version"] == "2023-06-01"
        assert sent.headers["anthropic-beta"] == "b1,b2"


def test_results_before_the_batch_ended_are_refused() -> None:
    server = FakeServer(json_answer(batch_body(SUBMITTED, "in_progress", processing=2)))
    with pytest.raises(InvalidRequestError, match="'in_progress'"):
        run(lambda p: collect(p, SUBMITTED), server)
    assert len(server.requests) == 1


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
    server = _ended_batch_then(httpx.Response(200, text=text + text.replace("c1", "c2")))
    items = run(lambda p: collect(p, ENDED), server)
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
    server = FakeServer(
        json_answer(_error("invalid_request_error", "batch has already ended"), refusal),
        json_answer(ended),
    )
    batch = run(lambda p: p.cancel_batch(ENDED), server)
    assert (batch.state, batch.counts, batch.raw) == ("completed", BatchCounts(3, 3, 0), ended)
    assert [r.method for r in server.requests] == ["POST", "GET"]


def test_a_refused_cancel_of_a_running_batch_is_raised() -> None:
    server = FakeServer(
        json_answer(_error("invalid_request_error", "cannot cancel now"), 400),
        json_answer(batch_body(SUBMITTED, "in_progress", processing=1)),
    )
    with pytest.raises(InvalidRequestError, match="cannot cancel now"):
        run(lambda p: p.cancel_batch(SUBMITTED), server)


def test_cancelling_an_unknown_batch_is_not_found() -> None:
    server = FakeServer(json_answer(_error("not_found_error", "no such batch"), 404))
    with pytest.raises(NotFoundError):
        run(lambda p: p.cancel_batch(UNKNOWN), server)
    assert len(server.requests) == 1


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
    server = FakeServer(json_answer(page))
    assert len(run(lambda p: p.list_batches(), server)) == 2
    assert [dict(r.url.params) for r in server.requests] == [
        {"limit": "100"},
        {"limit": "100", "after_id": SUBMITTED},
    ]


# ---------------------------------------------------------------------------- structured output

REPORT = ResponseSchema(
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    name="report",
)


def _report(city: Any, id: str = "msg_01TestMessage0000000001") -> dict[str, Any]:
    call = {"type": "tool_use", "id": "toolu_01", "name": "report", "input": {"city": city}}
    return message([call], stop_reason="tool_use", id=id)


def _succeeded(custom_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "result": {"type": "succeeded", "message": answer}}


def test_structured_output_is_finished_with_its_request_as_chat_reads_it() -> None:
    request = Request.from_prompt("Paris?", model=MODEL, response_schema=REPORT, custom_id="S")
    provider = AnthropicProvider(ProviderSettings(name="anthropic"))
    parsed = provider._batch_item(_succeeded("S", _report("Paris"))).response
    assert parsed is not None
    # The result line alone cannot tell the schema tool from any other tool...
    assert parsed.tool_calls == (ToolCallPart("toolu_01", "report", {"city": "Paris"}),)
    # ...its request can.
    finished = provider.finish_batch_response(request, parsed)
    chat = run(lambda p: p.chat(request), FakeServer(json_answer(_report("Paris"))))
    assert finished == attrs.evolve(chat, custom_id="S")
    assert (finished.json(), finished.tool_calls, finished.finish_reason) == (
        {"city": "Paris"},
        (),
        "stop",
    )


def test_structured_output_that_breaks_the_schema_fails_as_in_chat() -> None:
    request = Request.from_prompt("Paris?", model=MODEL, response_schema=REPORT, custom_id="S")
    provider = AnthropicProvider(ProviderSettings(name="anthropic"))
    parsed = provider._batch_item(_succeeded("S", _report(3))).response
    assert parsed is not None
    with pytest.raises(MalformedResponse) as in_batch:
        provider.finish_batch_response(request, parsed)
    with pytest.raises(MalformedResponse) as in_chat:
        run(lambda p: p.chat(request), FakeServer(json_answer(_report(3))))
    assert str(in_batch.value) == str(in_chat.value)
    assert "$.city: expected string" in str(in_batch.value)


def test_a_request_without_a_schema_is_left_as_parsed() -> None:
    request = Request.from_prompt("Paris?", model=MODEL, tools=[WEATHER], custom_id="T")
    provider = AnthropicProvider(ProviderSettings(name="anthropic"))
    parsed = provider._batch_item(_succeeded("T", _report("Paris"))).response
    assert parsed is not None
    assert provider.finish_batch_response(request, parsed) is parsed


def test_a_structured_output_job_comes_back_as_json_text(tmp_path: Path) -> None:
    """Through the core's job API: the core hands each answered request back to the
    adapter, so a schema request's result is JSON text, and one that breaks the schema
    is a failed item with its line kept; the other requests are unaffected."""
    target = f"anthropic/{MODEL}"
    requests = [
        Request.from_prompt("Paris?", model=target, response_schema=REPORT, custom_id="ok-1"),
        Request.from_prompt("Oslo?", model=target, response_schema=REPORT, custom_id="bad-1"),
        Request.from_prompt("Weather?", model=target, tools=[WEATHER], custom_id="tool-1"),
    ]
    lines = [
        _succeeded("ok-1", _report("Paris", id="msg_01Ok")),
        _succeeded("bad-1", _report(3, id="msg_01Bad")),
        _succeeded("tool-1", _report("Lima", id="msg_01Tool")),
    ]
    ended = batch_body(SUBMITTED, "ended", results=True, succeeded=3)
    received: list[httpx.Request] = []

    def anthropic(request: httpx.Request) -> httpx.Response:
        # Answers by endpoint, whatever order the core polls in.
        received.append(request)
        if request.method == "POST":
            return json_answer(batch_body(SUBMITTED, "in_progress", processing=3))
        if request.url.path.endswith("/results"):
            text = "".join(json.dumps(line) + "\n" for line in lines)
            return httpx.Response(200, text=text, headers={"content-type": "application/x-jsonl"})
        return json_answer(ended)

    with (
        hub_for("", relay_anthropic, transport=httpx.MockTransport(anthropic)) as hub,
        RelayClient(tmp_path / "ws", hub=hub) as client,
    ):
        job = client.submit_batch(requests, job_id="structured", provider="anthropic")
        assert (job.mode, job.status) == ("batch", "submitted")
        items = client.retrieve_batch_results("structured")
    sent = json.loads(received[0].content)["requests"]
    assert sent[0]["params"]["tool_choice"] == {"type": "tool", "name": "report"}
    ok, bad, tool = items
    assert ok.response is not None
    assert (ok.response.json(), ok.response.tool_calls) == ({"city": "Paris"}, ())
    assert (ok.response.finish_reason, ok.response.id) == ("stop", "msg_01Ok")
    assert bad.response is None
    assert bad.error is not None
    assert (bad.error.kind, bad.error.retryable) == ("MalformedResponse", True)
    assert "$.city: expected string" in bad.error.message
    assert bad.raw == lines[1]
    assert tool.response is not None
    assert tool.response.tool_calls == (ToolCallPart("toolu_01", "report", {"city": "Lima"}),)
