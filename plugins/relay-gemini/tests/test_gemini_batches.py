"""Gemini batch mode: upload + create, every state, results (answers, per-request errors,
a blocked prompt, a garbled line), cancel, list with the metadata given at submit, and
unknown ids. Wire-format tests replay the hand-written ``batch_*`` cassettes; the rest
answer through ``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from gemini_support import BASE, CASSETTES, KEY, MODEL, Recorder

from relay_core import (
    Capability,
    GenerationConfig,
    Hub,
    InvalidRequestError,
    NotFoundError,
    ProviderSettings,
    Request,
    ResponseSchema,
    Secret,
    TextPart,
    Tool,
    Usage,
)
from relay_core.batching import jsonl
from relay_core.http import HttpClient, HttpPool
from relay_core.secrets import mask
from relay_core.testing import json_answer
from relay_gemini._adapter import GeminiProvider

T = TypeVar("T")
Cassette = Callable[[str], AbstractContextManager[Any]]
HOST = "https://generativelanguage.googleapis.com"
METADATA = {"relay_job": "eval-001", "relay_tag": "eval-001-0"}
SUBMITTED = "batches/8m2ukn5qfkzg1q3gbm9wvl7kn2p4xe6rjd0c"
UPLOAD_URL = f"{HOST}/upload/v1beta/files?upload_id=up-1&upload_protocol=resumable"
REQUESTS = [
    Request.from_prompt(
        "What is the capital of France? One word.",
        model=MODEL,
        system="You are terse.",
        custom_id="r1",
    ),
    Request.from_prompt(
        "Is 1001 prime? Answer yes or no.",
        model=MODEL,
        config=GenerationConfig(temperature=0.2, max_tokens=64),
        custom_id="r2",
    ),
]


def run(call: Callable[[GeminiProvider], Awaitable[T]], transport: Any = None) -> T:
    """``call`` on an adapter over a pool of its own (the real transport, which a cassette
    replaces, unless ``transport`` is given), closed afterwards."""

    async def main() -> T:
        settings = ProviderSettings(name="gemini", api_key=Secret(KEY))
        pool = HttpPool(transport=transport)
        http = HttpClient(pool, settings, base_url=BASE, rules=GeminiProvider.error_rules)
        try:
            return await call(GeminiProvider(settings, http))
        finally:
            await pool.aclose()

    return asyncio.run(main())


def mocked(call: Callable[[GeminiProvider], Awaitable[T]], recorder: Recorder) -> T:
    return run(call, httpx.MockTransport(recorder))


async def results(provider: GeminiProvider, batch_id: str) -> list[Any]:
    return [item async for item in provider.batch_results(batch_id)]


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def operation(name: str, state: str, **fields: Any) -> dict[str, Any]:
    done = fields.pop("done", None)
    response = fields.pop("response", None)
    op: dict[str, Any] = {"name": name, "metadata": {"name": name, "state": state, **fields}}
    if done is not None:
        op["done"] = done
    if response is not None:
        op["response"] = response
    return op


def recorded(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- declared


def test_batches_are_declared_with_the_documented_limits() -> None:
    assert Capability.BATCH in GeminiProvider.capabilities
    assert GeminiProvider.batch_limits.max_bytes == 2_000_000_000
    assert GeminiProvider.batch_limits.max_requests == 50_000
    assert GeminiProvider.batch_metadata is True


def test_a_batch_line_is_what_chat_sends(make_hub: Callable[..., Hub]) -> None:
    tool = Tool("get_weather", "Weather.", {"type": "object", "properties": {}})
    schema = ResponseSchema({"type": "object", "properties": {"a": {"type": "string"}}})
    options: dict[str, Any] = {
        "system": "Be brief.",
        "tools": [tool],
        "tool_choice": "auto",
        "response_schema": schema,
        "provider_kwargs": {"safetySettings": [{"category": "x", "threshold": "BLOCK_NONE"}]},
    }
    recorder = Recorder()
    make_hub(recorder).chat(f"gemini/{MODEL}", "Hello", temperature=0.3, reasoning="low", **options)
    request = Request.from_prompt(
        "Hello",
        model=MODEL,
        config=GenerationConfig(temperature=0.3, reasoning="low"),
        custom_id="row-7",
        **options,
    )
    provider = GeminiProvider(ProviderSettings(name="gemini", api_key=Secret(KEY)))
    assert provider.batch_line(request) == {"key": "row-7", "request": recorder.payload}


# ---------------------------------------------------------------------------- submit


def test_submit_uploads_the_lines_then_creates_the_batch(cassette: Cassette) -> None:
    with cassette("batch_submit") as tape:
        batch = run(lambda p: p.submit_batch(REQUESTS, metadata=METADATA))
    # Every request matched its recorded body: the JSONL file, byte for byte, and the
    # create call naming the uploaded file and carrying the metadata in the display name.
    assert tape.play_count == 3
    assert batch.id == SUBMITTED
    assert batch.state == "validating"
    assert (batch.counts.total, batch.counts.completed, batch.counts.failed) == (2, 0, 0)
    assert batch.metadata == METADATA
    assert batch.created_at == at("2025-09-18T10:02:11.482915")
    assert batch.ended_at is None
    assert batch.raw["metadata"]["state"] == "BATCH_STATE_PENDING"
    provider = GeminiProvider(ProviderSettings(name="gemini", api_key=Secret(KEY)))
    uploaded = recorded("batch_submit")[1]["request"]["body"]
    assert uploaded == jsonl(provider.batch_line(r) for r in REQUESTS).decode()


def submit_answers() -> Recorder:
    start = httpx.Response(
        200, headers={"x-goog-upload-url": UPLOAD_URL, "x-goog-upload-status": "active"}
    )
    file = json_answer({"file": {"name": "files/f-1", "state": "ACTIVE"}})
    created = json_answer(operation("batches/b-1", "BATCH_STATE_PENDING"))
    return Recorder(start, file, created)


def test_the_upload_follows_the_resumable_protocol_and_keeps_the_key_home() -> None:
    recorder = submit_answers()
    mocked(lambda p: p.submit_batch(REQUESTS, metadata=METADATA), recorder)
    start, upload, create = recorder.requests
    provider = GeminiProvider(ProviderSettings(name="gemini", api_key=Secret(KEY)))
    data = jsonl(provider.batch_line(r) for r in REQUESTS)
    assert (start.method, str(start.url)) == ("POST", f"{HOST}/upload/v1beta/files")
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-command"] == "start"
    assert start.headers["x-goog-upload-header-content-length"] == str(len(data))
    assert start.headers["x-goog-upload-header-content-type"] == "jsonl"
    assert start.headers["x-goog-api-key"] == KEY
    assert json.loads(start.content) == {
        "file": {"displayName": "relay:relay_job=eval-001&relay_tag=eval-001-0"}
    }
    # The bytes go to the session URL Gemini gave, which is its own credential.
    assert (upload.method, str(upload.url)) == ("POST", UPLOAD_URL)
    assert upload.headers["x-goog-upload-command"] == "upload, finalize"
    assert upload.headers["x-goog-upload-offset"] == "0"
    assert "x-goog-api-key" not in upload.headers
    assert upload.content == data
    assert (create.method, str(create.url)) == (
        "POST",
        f"{BASE}/models/{MODEL}:batchGenerateContent",
    )
    assert create.headers["x-goog-api-key"] == KEY
    assert json.loads(create.content) == {
        "batch": {
            "displayName": "relay:relay_job=eval-001&relay_tag=eval-001-0",
            "inputConfig": {"fileName": "files/f-1"},
        }
    }
    assert all(KEY not in str(r.url) for r in recorder.requests)


def test_a_batch_runs_one_model_and_every_request_needs_a_custom_id() -> None:
    recorder = submit_answers()
    other = Request.from_prompt("x", model="gemini-2.5-pro", custom_id="r3")
    with pytest.raises(InvalidRequestError, match=re.escape("gemini-2.5-flash, gemini-2.5-pro")):
        mocked(lambda p: p.submit_batch([*REQUESTS, other], metadata={}), recorder)
    unnamed = Request.from_prompt("x", model=MODEL)
    with pytest.raises(InvalidRequestError, match="request 2 of the batch has no custom_id"):
        mocked(lambda p: p.submit_batch([*REQUESTS, unnamed], metadata={}), recorder)
    assert recorder.requests == []


def test_metadata_with_any_characters_round_trips_through_the_display_name() -> None:
    recorder = submit_answers()
    metadata = {"relay_job": "a&b=c d/é", "relay_tag": ""}
    mocked(lambda p: p.submit_batch(REQUESTS, metadata=metadata), recorder)
    name = json.loads(recorder.requests[-1].content)["batch"]["displayName"]
    listed = Recorder(
        json_answer({"operations": [{"name": "b", "metadata": {"displayName": name}}]})
    )
    [batch] = mocked(lambda p: p.list_batches(), listed)
    assert batch.metadata == metadata


# ---------------------------------------------------------------------------- status


def test_every_batch_state_is_mapped(cassette: Cassette) -> None:
    expected = {
        "batches/pendingq0s4vk2l8x": ("validating", (3, 0, 0), None),
        "batches/runningr7d1m9c3zp": ("in_progress", (3, 1, 0), None),
        "batches/succeededw2n6b8t4": ("completed", (3, 2, 1), "2025-09-18T10:31:40.771204"),
        "batches/failedh5j0g7f2ks": ("failed", (3, 0, 3), "2025-09-18T10:03:02.518806"),
        "batches/cancelledy8e3u6a1": ("cancelled", (3, 1, 0), "2025-09-18T10:09:27.004512"),
        "batches/expiredv4q9p2o5": ("expired", (3, 0, 0), "2025-09-20T10:02:12"),
    }

    async def every(provider: GeminiProvider) -> list[Any]:
        return [await provider.batch_status(batch_id) for batch_id in expected]

    with cassette("batch_states") as tape:
        batches = run(every)
    assert tape.play_count == len(expected)
    for batch, (batch_id, (state, counts, ended)) in zip(batches, expected.items(), strict=True):
        assert batch.id == batch_id
        assert batch.state == state, batch_id
        assert (batch.counts.total, batch.counts.completed, batch.counts.failed) == counts
        assert batch.created_at == at("2025-09-18T10:02:11.482915")
        assert batch.ended_at == (at(ended) if ended else None)
        assert batch.done == (ended is not None)
        assert batch.metadata == METADATA
        assert batch.provider == "gemini"


@pytest.mark.parametrize(
    ("state", "done", "expected"),
    [
        ("JOB_STATE_PENDING", None, "validating"),
        ("JOB_STATE_RUNNING", None, "in_progress"),
        ("JOB_STATE_SUCCEEDED", True, "completed"),
        ("JOB_STATE_FAILED", True, "failed"),
        ("JOB_STATE_CANCELLED", True, "cancelled"),
        ("JOB_STATE_EXPIRED", True, "expired"),
        ("BATCH_STATE_UNSPECIFIED", None, "in_progress"),
        ("BATCH_STATE_SOMETHING_NEW", True, "failed"),
    ],
)
def test_the_guides_state_names_and_unknown_states(
    state: str, done: bool | None, expected: str
) -> None:
    recorder = Recorder(json_answer(operation("batches/b-1", state, done=done)))
    assert mocked(lambda p: p.batch_status("batches/b-1"), recorder).state == expected


def test_a_batch_not_made_by_relay_has_no_metadata() -> None:
    op = operation("batches/b-1", "BATCH_STATE_RUNNING", displayName="nightly")
    batch = mocked(lambda p: p.batch_status("batches/b-1"), Recorder(json_answer(op)))
    assert batch.metadata == {}


def test_an_unknown_batch_is_not_found(cassette: Cassette) -> None:
    with cassette("batch_not_found") as tape, pytest.raises(NotFoundError) as caught:
        run(lambda p: p.batch_status("batches/doesnotexist123"))
    assert tape.play_count == 1
    assert caught.value.status_code == 404
    assert "Requested entity was not found." in caught.value.provider_message


@pytest.mark.parametrize("batch_id", ["", "batches/", "files/abc", "batches/a/b", "batches/a?x=1"])
def test_an_id_that_cannot_be_a_batch_is_not_found_without_asking(batch_id: str) -> None:
    recorder = Recorder()
    for call in (
        lambda p: p.batch_status(batch_id),
        lambda p: p.cancel_batch(batch_id),
        lambda p: results(p, batch_id),
    ):
        with pytest.raises(NotFoundError, match="batches/<id>"):
            mocked(call, recorder)
    assert recorder.requests == []


def test_a_batch_id_round_trips_through_every_call() -> None:
    done = operation(
        "batches/abc-1_x",
        "BATCH_STATE_SUCCEEDED",
        done=True,
        response={"responsesFile": "files/batch-abc-1_x"},
    )
    recorder = Recorder(
        json_answer(done),  # status
        json_answer({}),  # cancel
        json_answer(done),  # status after cancelling
        json_answer(done),  # results: status
        httpx.Response(200, content=b""),  # results: the file
    )

    async def calls(provider: GeminiProvider) -> None:
        batch = await provider.batch_status("batches/abc-1_x")
        await provider.cancel_batch(batch.id)
        await results(provider, batch.id)

    mocked(calls, recorder)
    assert [(r.method, str(r.url)) for r in recorder.requests] == [
        ("GET", f"{BASE}/batches/abc-1_x"),
        ("POST", f"{BASE}/batches/abc-1_x:cancel"),
        ("GET", f"{BASE}/batches/abc-1_x"),
        ("GET", f"{BASE}/batches/abc-1_x"),
        ("GET", f"{HOST}/download/v1beta/files/batch-abc-1_x:download?alt=media"),
    ]
    assert all(r.headers["x-goog-api-key"] == KEY for r in recorder.requests)
    # A bare id is read as the resource name it stands for.
    bare = Recorder(json_answer(done))
    mocked(lambda p: p.batch_status("abc-1_x"), bare)
    assert bare.requests[0].url.path == "/v1beta/batches/abc-1_x"


# ---------------------------------------------------------------------------- results


def test_results_read_answers_errors_and_a_garbled_line(cassette: Cassette) -> None:
    with cassette("batch_results") as tape:
        items = run(lambda p: results(p, "batches/succeededw2n6b8t4"))
    assert tape.play_count == 2
    lines = recorded("batch_results")[1]["response"]["body"]["string"].splitlines()
    assert len(items) == len(lines) == 5
    paris, limited, garbled, blocked, no = items

    assert paris.custom_id == "r1"
    assert paris.ok
    assert paris.response.content == (TextPart("Paris"),)
    assert paris.response.custom_id == "r1"
    assert paris.response.finish_reason == "stop"
    assert paris.response.usage == Usage(input_tokens=14, output_tokens=24, reasoning_tokens=23)
    assert paris.response.id == "Lr3LaP7kDdS_nvgP8LW2gQ8"
    assert paris.raw == json.loads(lines[0])

    # google.rpc code 8 (RESOURCE_EXHAUSTED) is a 429: a rate limit, worth retrying.
    assert limited.custom_id == "r2"
    assert not limited.ok
    assert limited.error.kind == "RateLimitError"
    assert (limited.error.status_code, limited.error.retryable) == (429, True)
    assert "Resource has been exhausted" in limited.error.message
    assert limited.raw == json.loads(lines[1])

    # A line cut short: a failed item that keeps the text, its id recovered from "key".
    assert not garbled.ok
    assert garbled.custom_id == "r3"
    assert garbled.error.kind == "MalformedResponse"
    assert "line 3" in garbled.error.message
    assert garbled.raw == lines[2]

    assert blocked.custom_id == "r4"
    assert not blocked.ok
    assert blocked.error.kind == "ContentPolicyError"
    assert "PROHIBITED_CONTENT" in blocked.error.message

    # The lines after the bad ones are read as usual.
    assert no.custom_id == "r5"
    assert no.response.text == "No."


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        (1, "InvalidRequestError", 499),  # CANCELLED
        (3, "InvalidRequestError", 400),  # INVALID_ARGUMENT
        (4, "Timeout", 504),  # DEADLINE_EXCEEDED
        (5, "NotFoundError", 404),  # NOT_FOUND
        (7, "AuthenticationError", 403),  # PERMISSION_DENIED
        (8, "RateLimitError", 429),  # RESOURCE_EXHAUSTED
        (9, "InvalidRequestError", 400),  # FAILED_PRECONDITION
        (13, "ProviderUnavailable", 500),  # INTERNAL
        (14, "ProviderUnavailable", 503),  # UNAVAILABLE
        (16, "AuthenticationError", 401),  # UNAUTHENTICATED
        (503, "ProviderUnavailable", 503),  # already an HTTP status
    ],
)
def test_per_request_errors_are_classified_by_their_rpc_code(
    code: int, kind: str, status: int
) -> None:
    # Inline answers (a batch submitted inline elsewhere) sit in the status itself, with
    # the key in metadata.
    inlined = [
        {"metadata": {"key": "r1"}, "error": {"code": code, "message": "it went wrong"}},
        {"metadata": {"key": "r2"}, "response": {"candidates": [{"content": {"parts": []}}]}},
    ]
    done = operation(
        "batches/b-1",
        "BATCH_STATE_SUCCEEDED",
        done=True,
        model="models/gemini-2.5-pro",
        response={"inlinedResponses": {"inlinedResponses": inlined}},
    )
    failed, empty = mocked(lambda p: results(p, "batches/b-1"), Recorder(json_answer(done)))
    assert (failed.custom_id, failed.error.kind, failed.error.status_code) == ("r1", kind, status)
    assert failed.error.message.endswith("it went wrong")
    assert failed.raw == inlined[0]
    assert empty.ok
    assert empty.response.model == "gemini-2.5-pro"


def test_depleted_prepay_credits_in_a_batch_line_are_an_exhausted_quota() -> None:
    # A batch line carries rpc code 8 (RESOURCE_EXHAUSTED), never HTTP 402: the message
    # tells it apart from a rate limit.
    error = {
        "code": 8,
        "message": "Your prepayment credits are depleted. Please go to AI Studio at "
        "https://ai.studio/projects to manage your project and billing.",
        "status": "RESOURCE_EXHAUSTED",
    }
    done = operation(
        "batches/b-1",
        "BATCH_STATE_SUCCEEDED",
        done=True,
        response={
            "inlinedResponses": {"inlinedResponses": [{"metadata": {"key": "r1"}, "error": error}]}
        },
    )
    [item] = mocked(lambda p: results(p, "batches/b-1"), Recorder(json_answer(done)))
    assert (item.error.kind, item.error.retryable) == ("QuotaExceeded", False)


def test_a_line_of_the_wrong_shape_keeps_its_key() -> None:
    body = b'{"key": "r1", "response": {"candidates": "none"}}\n'
    done = operation("batches/b-1", "BATCH_STATE_SUCCEEDED", response={"responsesFile": "files/o"})
    recorder = Recorder(json_answer(done), httpx.Response(200, content=body))
    [item] = mocked(lambda p: results(p, "batches/b-1"), recorder)
    assert (item.custom_id, item.error.kind) == ("r1", "MalformedResponse")
    assert item.raw == json.loads(body)


def test_results_of_a_running_batch_are_refused_and_of_a_dead_one_empty() -> None:
    running = Recorder(json_answer(operation("batches/b-1", "BATCH_STATE_RUNNING")))
    with pytest.raises(InvalidRequestError, match="not finished"):
        mocked(lambda p: results(p, "batches/b-1"), running)
    expired = Recorder(json_answer(operation("batches/b-1", "BATCH_STATE_EXPIRED", done=True)))
    assert mocked(lambda p: results(p, "batches/b-1"), expired) == []


# ---------------------------------------------------------------------------- cancel


def test_cancel(cassette: Cassette) -> None:
    with cassette("batch_cancel") as tape:
        batch = run(lambda p: p.cancel_batch("batches/runningr7d1m9c3zp"))
    assert tape.play_count == 2
    assert batch.state == "cancelled"
    assert batch.ended_at == at("2025-09-18T10:15:03.220931")


def test_a_batch_still_running_after_cancel_is_cancelling() -> None:
    recorder = Recorder(
        json_answer({}), json_answer(operation("batches/b-1", "BATCH_STATE_RUNNING"))
    )
    assert mocked(lambda p: p.cancel_batch("batches/b-1"), recorder).state == "cancelling"


def test_cancelling_a_finished_batch_returns_its_state() -> None:
    refused = json_answer(
        {"error": {"code": 400, "message": "Batch is finished.", "status": "FAILED_PRECONDITION"}},
        status=400,
    )
    done = json_answer(operation("batches/b-1", "BATCH_STATE_SUCCEEDED", done=True))
    batch = mocked(lambda p: p.cancel_batch("batches/b-1"), Recorder(refused, done))
    assert batch.state == "completed"
    # A refusal for any other reason is not swallowed.
    running = json_answer(operation("batches/b-1", "BATCH_STATE_RUNNING"))
    with pytest.raises(InvalidRequestError, match="Batch is finished"):
        mocked(lambda p: p.cancel_batch("batches/b-1"), Recorder(refused, running))


# ---------------------------------------------------------------------------- list


def test_list_gives_the_metadata_back_newest_first(cassette: Cassette) -> None:
    with cassette("batch_list") as tape:
        batches = run(lambda p: p.list_batches())
    assert tape.play_count == 2  # two pages, the second by the first's nextPageToken
    assert [b.id for b in batches] == [
        "batches/newestk3m8z1q7",
        SUBMITTED,
        "batches/foreignp0a9s8d7",
    ]
    newest, submitted, foreign = batches
    assert newest.metadata == {"relay_job": "eval-002", "relay_tag": "eval-002-1"}
    assert (newest.state, newest.counts.total, newest.counts.completed) == ("in_progress", 40, 12)
    # The batch the submit test created, with the metadata it was given.
    assert submitted.metadata == METADATA
    assert submitted.state == "completed"
    assert foreign.metadata == {}


def test_list_reads_two_pages_at_most() -> None:
    page = json_answer({"operations": [], "nextPageToken": "more"})
    recorder = Recorder(page)
    assert mocked(lambda p: p.list_batches(), recorder) == []
    assert [str(r.url) for r in recorder.requests] == [
        f"{BASE}/batches?pageSize=100",
        f"{BASE}/batches?pageSize=100&pageToken=more",
    ]


# ---------------------------------------------------------------------------- cassettes


BATCH_URIS = re.compile(
    r"https://generativelanguage\.googleapis\.com/("
    r"upload/v1beta/files(\?upload_id=[\w-]+&upload_protocol=resumable)?"
    r"|v1beta/models/[\w.-]+:batchGenerateContent"
    r"|v1beta/batches/\w+(:cancel)?"
    r"|v1beta/batches\?pageSize=\d+(&pageToken=\w+)?"
    r"|download/v1beta/files/[\w-]+:download\?alt=media)"
)


def test_batch_cassettes_hold_no_key_and_follow_the_wire_format() -> None:
    files = sorted(CASSETTES.glob("batch_*.yaml"))
    assert len(files) == 6
    for path in files:
        text = path.read_text()
        assert "AIza" not in text, path.name
        assert mask(text) == text, path.name
        for interaction in yaml.safe_load(text)["interactions"]:
            request, response = interaction["request"], interaction["response"]
            assert not {name.lower() for name in request["headers"]} & {
                "x-goog-api-key",
                "authorization",
                "cookie",
            }, path.name
            assert BATCH_URIS.fullmatch(request["uri"]), request["uri"]
            assert "set-cookie" not in {name.lower() for name in response["headers"]}
            body = response["body"]["string"]
            if response["headers"]["content-type"][0].startswith("application/json"):
                payload = json.loads(body)
                if response["status"]["code"] >= 400:
                    assert {"code", "message", "status"} <= set(payload["error"])
                elif "/batches" in request["uri"] or "batchGenerateContent" in request["uri"]:
                    ops = payload.get("operations", [payload] if payload else [])
                    for op in ops:
                        assert op["name"] == op["metadata"]["name"]
                        assert op["metadata"]["state"].startswith("BATCH_STATE_")
                        assert set(op["metadata"]["batchStats"]) <= {
                            "requestCount",
                            "successfulRequestCount",
                            "failedRequestCount",
                            "pendingRequestCount",
                        }
            if request["uri"].endswith(":download?alt=media"):
                for line in body.splitlines():
                    if line.startswith('{"key": "r3"'):
                        continue  # the garbled line, on purpose
                    assert set(json.loads(line)) in ({"key", "response"}, {"key", "error"})
