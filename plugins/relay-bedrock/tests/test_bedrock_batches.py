"""Batch inference jobs: the JSONL records in S3, the job's creation, status, results,
stop and listing, and a whole job through the core's workspace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from bedrock_support import ACCOUNT, MODEL, ROLE_ARN, anthropic_message, aws_error

import relay_bedrock
from relay_bedrock._adapter import BedrockProvider
from relay_core import (
    ConfigError,
    GenerationConfig,
    Hub,
    InvalidRequestError,
    NotFoundError,
    RelayClient,
    Request,
    ResponseSchema,
)
from relay_core.testing import hub_for

JOB_ID = "a1b2c3d4e5f6"
JOB_ARN = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-invocation-job/{JOB_ID}"
BUCKET = "amzn-s3-demo-bucket"
CATALOG = (
    "providers:\n  bedrock:\n    options:\n      batch:\n"
    f"        s3_uri: s3://{BUCKET}/relay/jobs\n        role_arn: {ROLE_ARN}\n"
    "        min_records: 2\n"
)
METADATA = {"relay_job": "eval-1", "relay_tag": "eval-1.0.9f8e7d6c"}
NAME = "relay-eval-1.0.9f8e7d6c"


class FakeAws:
    """Bedrock's control plane and S3, answering by endpoint, with one job whose status
    a test sets."""

    def __init__(self, status: str = "InProgress") -> None:
        self.status = status
        self.requests: list[httpx.Request] = []
        self.objects: dict[str, bytes] = {}
        self.created: dict[str, Any] = {}
        self.stop_answer: httpx.Response = httpx.Response(200, json={})

    def job(self) -> dict[str, Any]:
        return {
            "jobArn": JOB_ARN,
            "jobName": NAME,
            "modelId": MODEL,
            "clientRequestToken": self.created.get("clientRequestToken", "relay-"),
            "roleArn": ROLE_ARN,
            "status": self.status,
            "submitTime": "2026-07-06T10:00:00.123Z",
            "lastModifiedTime": "2026-07-06T10:05:00Z",
            **({"endTime": "2026-07-06T11:00:00Z"} if self.status == "Completed" else {}),
            "inputDataConfig": {
                "s3InputDataConfig": {
                    "s3InputFormat": "JSONL",
                    "s3Uri": f"s3://{BUCKET}/relay/jobs/{NAME}/input.jsonl",
                }
            },
            "outputDataConfig": {
                "s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/relay/jobs/{NAME}/output/"}
            },
            "totalRecordCount": 3,
            "processedRecordCount": 3,
            "successRecordCount": 2,
            "errorRecordCount": 1,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        host, path = request.url.host, unquote(request.url.raw_path.decode().split("?")[0])
        if host == f"{BUCKET}.s3.us-east-1.amazonaws.com":
            if request.method == "PUT":
                self.objects[path] = request.content
                return httpx.Response(200, headers={"etag": '"abc"'})
            if path in self.objects:
                return httpx.Response(200, content=self.objects[path])
            return httpx.Response(404, text="<Error><Code>NoSuchKey</Code></Error>")
        assert host == "bedrock.us-east-1.amazonaws.com", host
        if request.method == "POST" and path == "/model-invocation-job":
            self.created = json.loads(request.content)
            return httpx.Response(200, json={"jobArn": JOB_ARN})
        if path == "/model-invocation-jobs":
            return httpx.Response(200, json={"invocationJobSummaries": [self.job()]})
        if path == f"/model-invocation-job/{JOB_ARN}/stop":
            return self.stop_answer
        if path == f"/model-invocation-job/{JOB_ARN}":
            return httpx.Response(200, json=self.job())
        return aws_error(404, "ResourceNotFoundException", "Job not found.")


def _requests(n: int = 3, model: str = MODEL) -> list[Request]:
    return [Request.from_prompt(f"Question {i}?", model=model, custom_id=f"q{i}") for i in range(n)]


def run(
    aws: FakeAws,
    call: Callable[[BedrockProvider], Coroutine[Any, Any, Any]],
    catalog: str = CATALOG,
) -> Any:
    with hub_for(catalog, relay_bedrock, transport=httpx.MockTransport(aws)) as hub:
        adapter = hub.get(f"bedrock/{MODEL}").adapter
        assert isinstance(adapter, BedrockProvider)
        return asyncio.run(call(adapter))


def test_a_batch_line_is_the_invoke_body() -> None:
    adapter = BedrockProvider(relay_bedrock_settings())
    request = Request.from_prompt(
        "Hi", model=MODEL, custom_id="r1", config=GenerationConfig(max_tokens=9)
    )
    line = adapter.batch_line(request)
    assert line == {
        "recordId": "r1",
        "modelInput": {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 9,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        },
    }


def relay_bedrock_settings() -> Any:
    from relay_core import ProviderSettings

    return ProviderSettings(name="bedrock", options={"region": "us-east-1"})


def test_a_model_that_is_not_anthropic_is_refused_per_line() -> None:
    adapter = BedrockProvider(relay_bedrock_settings())
    with pytest.raises(InvalidRequestError, match="not an Anthropic model"):
        adapter.batch_line(
            Request.from_prompt("Hi", model="meta.llama3-8b-instruct-v1:0", custom_id="r")
        )


def test_submit_uploads_the_records_and_creates_the_job() -> None:
    aws = FakeAws()
    batch = run(aws, lambda p: p.submit_batch(_requests(), metadata=METADATA))
    put, create = aws.requests
    assert put.method == "PUT"
    assert put.url.path == f"/relay/jobs/{NAME}/input.jsonl"
    assert put.headers["x-amz-content-sha256"] != "UNSIGNED-PAYLOAD"
    assert "/s3/aws4_request" in put.headers["authorization"]
    records = [json.loads(line) for line in put.content.splitlines()]
    assert [r["recordId"] for r in records] == ["q0", "q1", "q2"]
    assert records[0]["modelInput"]["anthropic_version"] == "bedrock-2023-05-31"
    assert "/bedrock/aws4_request" in create.headers["authorization"]
    assert aws.created == {
        "jobName": NAME,
        "roleArn": ROLE_ARN,
        "modelId": MODEL,
        "clientRequestToken": "relay-" + METADATA["relay_tag"].encode().hex(),
        "inputDataConfig": {
            "s3InputDataConfig": {
                "s3Uri": f"s3://{BUCKET}/relay/jobs/{NAME}/input.jsonl",
                "s3InputFormat": "JSONL",
            }
        },
        "outputDataConfig": {
            "s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/relay/jobs/{NAME}/output/"}
        },
    }
    assert (batch.id, batch.state, batch.counts.total) == (JOB_ARN, "validating", 3)
    assert batch.metadata == METADATA


def test_too_few_records_is_a_clear_error_before_anything_is_sent() -> None:
    aws = FakeAws()
    with pytest.raises(InvalidRequestError, match="at least 2 records and this one has 1"):
        run(aws, lambda p: p.submit_batch(_requests(1), metadata=METADATA))
    assert aws.requests == []


def test_batch_without_its_options_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"options\.batch with s3_uri"):
        run(FakeAws(), lambda p: p.submit_batch(_requests(), metadata=METADATA), catalog="")


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("Submitted", "validating"),
        ("Validating", "validating"),
        ("Scheduled", "in_progress"),
        ("InProgress", "in_progress"),
        ("Stopping", "cancelling"),
        ("Stopped", "cancelled"),
        ("Completed", "completed"),
        ("PartiallyCompleted", "completed"),
        ("Failed", "failed"),
        ("Expired", "expired"),
    ],
)
def test_every_status_maps_to_a_batch_state(status: str, state: str) -> None:
    batch = run(FakeAws(status), lambda p: p.batch_status(JOB_ARN))
    assert batch.state == state
    assert (batch.counts.total, batch.counts.completed, batch.counts.failed) == (3, 2, 1)


def test_the_job_arn_is_one_encoded_path_segment() -> None:
    aws = FakeAws()
    run(aws, lambda p: p.batch_status(JOB_ARN))
    assert aws.requests[-1].url.raw_path.decode() == (
        "/model-invocation-job/arn%3Aaws%3Abedrock%3Aus-east-1%3A111122223333"
        "%3Amodel-invocation-job%2Fa1b2c3d4e5f6"
    )


def test_an_unknown_job_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="Job not found"):
        run(FakeAws(), lambda p: p.batch_status(JOB_ARN.replace(JOB_ID, "ffffffffffff")))


def _output(aws: FakeAws, *lines: Any) -> None:
    key = f"/relay/jobs/{NAME}/output/{JOB_ID}/input.jsonl.out"
    aws.objects[key] = "".join(
        (line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines
    ).encode()


async def _items(provider: BedrockProvider) -> list[Any]:
    return [item async for item in provider.batch_results(JOB_ARN)]


def test_results_parse_answers_errors_and_a_garbled_line() -> None:
    aws = FakeAws("Completed")
    _output(
        aws,
        {"recordId": "q0", "modelInput": {}, "modelOutput": anthropic_message("Four.")},
        {
            "recordId": "q1",
            "modelInput": {},
            "error": {"errorCode": 400, "errorMessage": "Input is too long for requested model."},
        },
        {
            "recordId": "q2",
            "modelInput": {},
            "error": {"errorCode": 429, "errorMessage": "Too many requests"},
        },
        '{"recordId": "q3", "modelOut',
    )
    ok, long, throttled, garbled = run(aws, _items)
    assert (ok.custom_id, ok.response.text, ok.response.custom_id) == ("q0", "Four.", "q0")
    assert (long.error.kind, long.error.status_code) == ("ContextWindowExceeded", 400)
    assert (throttled.error.kind, throttled.error.retryable) == ("RateLimitError", True)
    assert garbled.response is None
    assert garbled.error.kind == "MalformedResponse"
    assert "/s3/aws4_request" in aws.requests[-1].headers["authorization"]


def test_results_before_the_job_ended_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="has no results yet"):
        run(FakeAws("InProgress"), _items)


def test_a_stopped_job_without_output_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        run(FakeAws("Stopped"), _items)


def test_cancel_stops_the_job() -> None:
    aws = FakeAws("Stopping")
    batch = run(aws, lambda p: p.cancel_batch(JOB_ARN))
    assert aws.requests[0].method == "POST"
    assert aws.requests[0].url.path.endswith("/stop")
    assert batch.state == "cancelling"


def test_cancelling_an_ended_job_returns_it_unchanged() -> None:
    aws = FakeAws("Completed")
    aws.stop_answer = aws_error(400, "ValidationException", "Job is already in a terminal state.")
    assert run(aws, lambda p: p.cancel_batch(JOB_ARN)).state == "completed"


def test_a_refused_stop_of_a_running_job_is_raised() -> None:
    aws = FakeAws("InProgress")
    aws.stop_answer = aws_error(400, "ValidationException", "Cannot stop.")
    with pytest.raises(InvalidRequestError, match="Cannot stop"):
        run(aws, lambda p: p.cancel_batch(JOB_ARN))


def test_list_reports_the_tag_back() -> None:
    aws = FakeAws()
    run(aws, lambda p: p.submit_batch(_requests(), metadata=METADATA))
    (batch,) = run(aws, lambda p: p.list_batches())
    assert batch.metadata == METADATA
    assert aws.requests[-1].url.params["sortOrder"] == "Descending"


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"s3_uri": "https://bucket/x", "role_arn": ROLE_ARN}, "must be an S3 URI"),
        ({"s3_uri": "s3://bucket/x", "role_arn": "BedrockRole"}, "IAM role ARN"),
        ({"s3_uri": "s3://bucket/x", "role_arn": ROLE_ARN, "min_records": 0}, "positive"),
        ({"s3_uri": "s3://bucket/x", "role_arn": ROLE_ARN, "timeout_hours": 2}, "24 to 168"),
        ({"s3_uri": "s3://bucket/x", "role_arn": ROLE_ARN, "bucket": "b"}, "unknown option"),
    ],
)
def test_bad_batch_options_point_at_their_line(
    make_hub: Callable[..., Hub], batch: dict[str, Any], message: str
) -> None:
    catalog = f"providers:\n  bedrock:\n    options:\n      batch: {json.dumps(batch)}\n"
    with pytest.raises(ConfigError, match=message) as caught:
        make_hub(FakeAws(), catalog).chat(f"bedrock/{MODEL}", "Hi")
    assert caught.value.line == 4


def test_a_whole_job_through_the_workspace(tmp_path: Path) -> None:
    aws = FakeAws("Completed")
    _output(
        aws,
        *(
            {"recordId": f"q{i}", "modelInput": {}, "modelOutput": anthropic_message(f"A{i}")}
            for i in range(2)
        ),
        {
            "recordId": "q2",
            "modelInput": {},
            "modelOutput": anthropic_message(
                '{"n": 3}',
                content=[
                    {"type": "tool_use", "id": "toolu_bdrk_9", "name": "answer", "input": {"n": 3}}
                ],
                stop_reason="tool_use",
            ),
        },
    )
    schema = ResponseSchema(
        {"type": "object", "properties": {"n": {"type": "integer"}}}, name="answer"
    )
    target = f"bedrock/{MODEL}"
    requests = [
        *_requests(2, model=target),
        Request.from_prompt("n?", model=target, custom_id="q2", response_schema=schema),
    ]
    with (
        hub_for(CATALOG, relay_bedrock, transport=httpx.MockTransport(aws)) as hub,
        RelayClient(tmp_path / "ws", hub=hub) as client,
    ):
        job = client.submit_batch(requests, job_id="eval-1", provider="bedrock")
        assert (job.mode, job.status) == ("batch", "submitted")
        items = {item.custom_id: item for item in client.retrieve_batch_results("eval-1")}
    assert items["q0"].response.text == "A0"
    assert items["q2"].response.json() == {"n": 3}
    assert aws.created["modelId"] == MODEL
