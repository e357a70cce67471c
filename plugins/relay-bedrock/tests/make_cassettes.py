"""Writes the hand-made cassettes of ``cassettes/relay-bedrock`` (``python
make_cassettes.py``): Bedrock answers written from its API reference, with the binary
event-stream bodies framed by ``bedrock_support`` (CRCs and all), which YAML cannot
hold as text. Request bodies are written out by hand: they pin what the adapter sends.
Account ids are AWS's documented placeholder; no credential or signature is written."""

from __future__ import annotations

import json
from typing import Any

import yaml
from bedrock_support import (
    ACCOUNT,
    CASSETTES,
    CONTROL,
    MODEL,
    ROLE_ARN,
    RUNTIME,
    anthropic_message,
    chunk,
    converse,
    event,
    exception,
    text_stream,
)

MODEL_PATH = MODEL.replace(":", "%3A")
BUCKET = "amzn-s3-demo-bucket"
JOB_ID = "a1b2c3d4e5f6"
JOB_ARN = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-invocation-job/{JOB_ID}"
JOB_PATH = JOB_ARN.replace(":", "%3A").replace("/", "%2F")
NAME = "relay-eval-1.0.9f8e7d6c"
TAG_TOKEN = "relay-" + b"eval-1.0.9f8e7d6c".hex()
DATE = "Mon, 06 Jul 2026 10:00:00 GMT"
REQUEST_ID = "b7e4c1a2-3d5f-4e6a-8b9c-0d1e2f3a4b5c"


def interaction(
    method: str,
    uri: str,
    request: Any,
    status: int,
    body: Any,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    if isinstance(request, (dict, list)):
        request = json.dumps(request, separators=(",", ":"))
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":"))
    response_headers = {
        "content-type": [content_type],
        "date": [DATE],
        "x-amzn-requestid": [REQUEST_ID],
        **{name: [value] for name, value in (headers or {}).items()},
    }
    return {
        "request": {
            "body": request,
            "headers": {"content-type": ["application/json"]} if request else {},
            "method": method,
            "uri": uri,
        },
        "response": {
            "body": {"string": body},
            "headers": response_headers,
            "status": {"code": status, "message": _REASONS[status]},
        },
    }


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests"}


def error(error_type: str, message: str) -> dict[str, str]:
    return {
        "x-amzn-errortype": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    }


USER = {"role": "user", "content": [{"text": "What is the capital of France?"}]}
SYSTEM = [{"text": "Be brief."}]
CACHE_POINT = {"cachePoint": {"type": "default"}}
WEATHER_SPEC = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "inputSchema": {
            "json": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            }
        },
    }
}
EVENTSTREAM = "application/vnd.amazon.eventstream"


TITAN_PATH = "amazon.titan-embed-text-v2%3A0"
COHERE_EMBED_PATH = "cohere.embed-v4%3A0"
EMBED_TEXTS = ["The cat sat on the mat.", "Paris is the capital of France.", "Stocks fell today."]


def vector(seed: int, size: int) -> list[float]:
    """Made-up unit-scale floats: a real vector's shape, none of its values."""
    state = seed * 7919 + 17
    values = []
    for _ in range(size):
        state = (state * 1103515245 + 12345) % 2**31
        values.append(round((state / 2**31 - 0.5) / 4, 8))
    return values


def embeddings() -> dict[str, list[dict[str, Any]]]:
    """Titan Text Embeddings v2 (one text a call) and Cohere Embed v4 on InvokeModel."""
    titan_url = f"{RUNTIME}/model/{TITAN_PATH}/invoke"
    titan = [
        interaction(
            "POST",
            titan_url,
            {"inputText": text, "dimensions": 256, "normalize": True},
            200,
            {
                "embedding": vector(index, 256),
                "embeddingsByType": {"float": vector(index, 256)},
                "inputTextTokenCount": tokens,
            },
            headers={
                "x-amzn-bedrock-input-token-count": str(tokens),
                "x-amzn-bedrock-invocation-latency": "78",
            },
        )
        for index, (text, tokens) in enumerate(zip(EMBED_TEXTS, (7, 8, 5), strict=True))
    ]
    cohere = interaction(
        "POST",
        f"{RUNTIME}/model/{COHERE_EMBED_PATH}/invoke",
        {
            "texts": EMBED_TEXTS,
            "input_type": "search_document",
            "embedding_types": ["float"],
            "output_dimension": 256,
        },
        200,
        {
            "id": "1bc9c16f-0000-44c6-8dc1-e1a351f7ab27",
            "embeddings": {"float": [vector(10 + i, 256) for i in range(len(EMBED_TEXTS))]},
            "response_type": "embeddings_by_type",
            "texts": [text.lower() for text in EMBED_TEXTS],
        },
        headers={
            "x-amzn-bedrock-input-token-count": "20",
            "x-amzn-bedrock-invocation-latency": "100",
        },
    )
    invalid = interaction(
        "POST",
        titan_url,
        {"inputText": "Hello, world!", "dimensions": 100, "normalize": True},
        400,
        {
            "message": "Malformed input request: #/dimensions: 100 is not a valid enum value, "
            "please reformat your input and try again."
        },
        headers=error("ValidationException", ""),
    )
    return {"embed_titan": titan, "embed_cohere": [cohere], "embed_invalid_dimensions": [invalid]}


def cassettes() -> dict[str, list[dict[str, Any]]]:
    converse_url = f"{RUNTIME}/model/{MODEL_PATH}/converse"
    stream_url = f"{RUNTIME}/model/{MODEL_PATH}/converse-stream"
    thinking_frames = [
        event("messageStart", {"role": "assistant"}),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "France's capital "}}},
        ),
        event(
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "is Paris."}}},
        ),
        event(
            "contentBlockDelta",
            {
                "contentBlockIndex": 0,
                "delta": {"reasoningContent": {"signature": "EqoBCkgIARABGAIiQExAMPLEsignature"}},
            },
        ),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Paris."}}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "end_turn"}),
        event(
            "metadata",
            {
                "usage": {"inputTokens": 44, "outputTokens": 31, "totalTokens": 75},
                "metrics": {"latencyMs": 1250},
            },
        ),
    ]
    thinking_request = {
        "messages": [USER],
        "inferenceConfig": {"maxTokens": 4096 + 1024},
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    }
    invoke_body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 4096,
        "system": "Be brief.",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is the capital of France?"}],
            }
        ],
    }
    start = {k: v for k, v in anthropic_message("").items() if k != "content"}
    start |= {"content": [], "stop_reason": None, "usage": {"input_tokens": 20, "output_tokens": 1}}
    records = "".join(
        json.dumps(
            {
                "recordId": f"q{i}",
                "modelInput": {
                    "anthropic_version": "bedrock-2023-05-31",
                    "max_tokens": 4096,
                    "messages": [
                        {"role": "user", "content": [{"type": "text", "text": f"Question {i}?"}]}
                    ],
                },
            },
            separators=(",", ":"),
        )
        + "\n"
        for i in range(2)
    )
    job = {
        "jobArn": JOB_ARN,
        "jobName": NAME,
        "modelId": MODEL,
        "clientRequestToken": TAG_TOKEN,
        "roleArn": ROLE_ARN,
        "status": "Completed",
        "submitTime": "2026-07-06T10:00:00.123Z",
        "lastModifiedTime": "2026-07-06T11:00:00Z",
        "endTime": "2026-07-06T11:00:00Z",
        "inputDataConfig": {
            "s3InputDataConfig": {
                "s3InputFormat": "JSONL",
                "s3Uri": f"s3://{BUCKET}/relay/{NAME}/input.jsonl",
            }
        },
        "outputDataConfig": {
            "s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/relay/{NAME}/output/"}
        },
        "timeoutDurationInHours": 24,
        "jobExpirationTime": "2026-07-07T10:00:00Z",
        "totalRecordCount": 2,
        "processedRecordCount": 2,
        "successRecordCount": 1,
        "errorRecordCount": 1,
    }
    output = (
        json.dumps(
            {
                "recordId": "q0",
                "modelInput": json.loads(records.splitlines()[0])["modelInput"],
                "modelOutput": anthropic_message("Answer 0."),
            }
        )
        + "\n"
        + json.dumps(
            {
                "recordId": "q1",
                "modelInput": json.loads(records.splitlines()[1])["modelInput"],
                "error": {
                    "errorCode": 400,
                    "errorMessage": "Input is too long for requested model.",
                },
            }
        )
        + "\n"
    )
    s3 = f"https://{BUCKET}.s3.us-east-1.amazonaws.com"
    return {
        "converse": [
            interaction(
                "POST",
                converse_url,
                {"system": SYSTEM, "messages": [USER], "inferenceConfig": {"temperature": 0}},
                200,
                converse(
                    {"text": "Paris."},
                    usage={"inputTokens": 19, "outputTokens": 4, "totalTokens": 23},
                ),
            ),
        ],
        "converse_cache": [
            interaction(
                "POST",
                converse_url,
                {
                    "messages": [{**USER, "content": [*USER["content"], CACHE_POINT]}],
                    "system": [*SYSTEM, CACHE_POINT],
                    "toolConfig": {"tools": [WEATHER_SPEC, CACHE_POINT]},
                },
                200,
                converse(
                    {"text": "Paris."},
                    usage={
                        "inputTokens": 3,
                        "outputTokens": 4,
                        "totalTokens": 1341,
                        "cacheReadInputTokens": 1024,
                        "cacheWriteInputTokens": 310,
                        "cacheDetails": [{"inputTokens": 310, "ttl": "5m"}],
                    },
                ),
            ),
        ],
        "converse_stream": [
            interaction(
                "POST",
                stream_url,
                {"system": SYSTEM, "messages": [USER]},
                200,
                b"".join(text_stream("Par", "is.")),
                content_type=EVENTSTREAM,
            ),
        ],
        "tools": [
            interaction(
                "POST",
                converse_url,
                {
                    "messages": [{"role": "user", "content": [{"text": "Weather in Paris?"}]}],
                    "toolConfig": {"tools": [WEATHER_SPEC]},
                },
                200,
                converse(
                    {"text": "I'll check."},
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        }
                    },
                    stop="tool_use",
                    usage={"inputTokens": 395, "outputTokens": 56, "totalTokens": 451},
                ),
            ),
        ],
        "thinking": [
            interaction(
                "POST",
                stream_url,
                thinking_request,
                200,
                b"".join(thinking_frames),
                content_type=EVENTSTREAM,
            ),
        ],
        "invoke": [
            interaction(
                "POST",
                f"{RUNTIME}/model/{MODEL_PATH}/invoke",
                invoke_body,
                200,
                anthropic_message("Paris.", usage={"input_tokens": 20, "output_tokens": 4}),
            ),
        ],
        "invoke_stream": [
            interaction(
                "POST",
                f"{RUNTIME}/model/{MODEL_PATH}/invoke-with-response-stream",
                invoke_body,
                200,
                b"".join(
                    [
                        chunk({"type": "message_start", "message": start}),
                        chunk(
                            {
                                "type": "content_block_start",
                                "index": 0,
                                "content_block": {"type": "text", "text": ""},
                            }
                        ),
                        chunk(
                            {
                                "type": "content_block_delta",
                                "index": 0,
                                "delta": {"type": "text_delta", "text": "Paris."},
                            }
                        ),
                        chunk({"type": "content_block_stop", "index": 0}),
                        chunk(
                            {
                                "type": "message_delta",
                                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                "usage": {"output_tokens": 4},
                            }
                        ),
                        chunk(
                            {
                                "type": "message_stop",
                                "amazon-bedrock-invocationMetrics": {
                                    "inputTokenCount": 20,
                                    "outputTokenCount": 4,
                                    "invocationLatency": 402,
                                    "firstByteLatency": 301,
                                },
                            }
                        ),
                    ]
                ),
                content_type=EVENTSTREAM,
            ),
        ],
        "error_throttled": [
            interaction(
                "POST",
                converse_url,
                {"messages": [USER]},
                429,
                {"message": "Too many requests, please wait before trying again."},
                headers=error("ThrottlingException", ""),
            ),
        ],
        "error_too_long": [
            interaction(
                "POST",
                converse_url,
                {"messages": [USER]},
                400,
                {"message": "Input is too long for requested model."},
                headers=error("ValidationException", ""),
            ),
        ],
        "error_access_denied": [
            interaction(
                "POST",
                converse_url,
                {"messages": [USER]},
                403,
                {"message": "You don't have access to the model with the specified model ID."},
                headers=error("AccessDeniedException", ""),
            ),
        ],
        "error_stream_exception": [
            interaction(
                "POST",
                stream_url,
                {"messages": [USER]},
                200,
                b"".join(
                    [
                        *text_stream("Par")[:2],
                        exception("modelStreamErrorException", "The model stream was interrupted."),
                    ]
                ),
                content_type=EVENTSTREAM,
            ),
        ],
        "batch_submit": [
            {
                **interaction(
                    "PUT",
                    f"{s3}/relay/{NAME}/input.jsonl",
                    None,
                    200,
                    "",
                    content_type="application/xml",
                    headers={"etag": '"5d41402abc4b2a76b9719d911017c592"'},
                ),
            },
            interaction(
                "POST",
                f"{CONTROL}/model-invocation-job",
                {
                    "jobName": NAME,
                    "roleArn": ROLE_ARN,
                    "modelId": MODEL,
                    "clientRequestToken": TAG_TOKEN,
                    "inputDataConfig": {
                        "s3InputDataConfig": {
                            "s3Uri": f"s3://{BUCKET}/relay/{NAME}/input.jsonl",
                            "s3InputFormat": "JSONL",
                        }
                    },
                    "outputDataConfig": {
                        "s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/relay/{NAME}/output/"}
                    },
                    "timeoutDurationInHours": 24,
                },
                200,
                {"jobArn": JOB_ARN},
            ),
        ],
        "batch_status": [
            interaction("GET", f"{CONTROL}/model-invocation-job/{JOB_PATH}", None, 200, job)
        ],
        "batch_results": [
            interaction("GET", f"{CONTROL}/model-invocation-job/{JOB_PATH}", None, 200, job),
            interaction(
                "GET",
                f"{s3}/relay/{NAME}/output/{JOB_ID}/input.jsonl.out",
                None,
                200,
                output,
                content_type="application/octet-stream",
            ),
        ],
        "batch_cancel": [
            interaction("POST", f"{CONTROL}/model-invocation-job/{JOB_PATH}/stop", None, 200, {}),
            interaction(
                "GET",
                f"{CONTROL}/model-invocation-job/{JOB_PATH}",
                None,
                200,
                {**job, "status": "Stopping", "endTime": None},
            ),
        ],
        "batch_list": [
            interaction(
                "GET",
                f"{CONTROL}/model-invocation-jobs?maxResults=100&sortBy=CreationTime&sortOrder=Descending",
                None,
                200,
                {"invocationJobSummaries": [job]},
            ),
        ],
    }, records


def main() -> None:
    CASSETTES.mkdir(parents=True, exist_ok=True)
    found, records = cassettes()
    found.update(embeddings())
    found["batch_submit"][0]["request"]["body"] = records.encode()
    found["batch_submit"][0]["request"]["headers"] = {"content-type": ["application/jsonl"]}
    for name, interactions in found.items():
        text = yaml.safe_dump(
            {"interactions": interactions, "version": 1}, sort_keys=False, width=100
        )
        (CASSETTES / f"{name}.yaml").write_text(text)


if __name__ == "__main__":
    main()
