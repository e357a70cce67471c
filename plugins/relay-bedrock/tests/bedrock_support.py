"""Shared helpers of relay-bedrock's tests: AWS answers, event stream frames and the fake
credentials. A module of its own name, so that tests of other plugins run in the same
session never import these under the name ``conftest``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx

from relay_bedrock._eventstream import encode_message

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-bedrock"
# AWS's documented example credentials: never valid, and shaped like real ones so that
# masking is exercised.
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKEN0123456789abcdefEXAMPLE"
API_KEY = "ABSKQmVkcm9ja0FQSUtleS1FWEFNUExFMDEyMzQ1Njc4OWFiY2RlZg=="
REGION = "us-east-1"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
RUNTIME = f"https://bedrock-runtime.{REGION}.amazonaws.com"
CONTROL = f"https://bedrock.{REGION}.amazonaws.com"
ACCOUNT = "111122223333"  # AWS's documented placeholder account id
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/BedrockBatchRole"
SECRETS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, API_KEY)


def converse(
    *content: dict[str, Any],
    stop: str = "end_turn",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Converse answer."""
    return {
        "output": {"message": {"role": "assistant", "content": list(content)}},
        "stopReason": stop,
        "usage": usage or {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16},
        "metrics": {"latencyMs": 321},
    }


def event(name: str, payload: dict[str, Any]) -> bytes:
    """One event stream message carrying a ConverseStream event."""
    headers = {":event-type": name, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(payload).encode())


def exception(name: str, message: str) -> bytes:
    """One event stream exception message, as Bedrock sends one mid-stream."""
    headers = {
        ":exception-type": name,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": message}).encode())


def chunk(payload: dict[str, Any]) -> bytes:
    """One InvokeModelWithResponseStream chunk: an Anthropic stream event, base64'd."""
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    return event("chunk", {"bytes": data})


def text_stream(*pieces: str, stop: str = "end_turn") -> list[bytes]:
    """The ConverseStream events of a plain text answer."""
    frames = [event("messageStart", {"role": "assistant"})]
    frames += [
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces
    ]
    frames += [
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": stop}),
        event(
            "metadata",
            {
                "usage": {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16},
                "metrics": {"latencyMs": 321},
            },
        ),
    ]
    return frames


def stream_answer(frames: list[bytes], status: int = 200) -> httpx.Response:
    return httpx.Response(
        status,
        content=b"".join(frames),
        headers={"content-type": "application/vnd.amazon.eventstream"},
    )


def aws_error(status: int, error_type: str, message: str, **headers: str) -> httpx.Response:
    """A Bedrock error answer: the type in a header, the message in the body."""
    return httpx.Response(
        status,
        json={"message": message},
        headers={
            "x-amzn-errortype": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "x-amzn-requestid": "5d1c6a2e-0000-4000-8000-000000000000",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        },
    )


def anthropic_message(text: str = "Paris.", **extra: Any) -> dict[str, Any]:
    """An Anthropic Messages answer as InvokeModel returns it."""
    return {
        "id": "msg_bdrk_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 14, "output_tokens": 4},
        **extra,
    }
