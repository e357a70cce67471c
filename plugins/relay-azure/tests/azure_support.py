"""Shared helpers of relay-azure's tests: Azure OpenAI answer bodies, as its REST
reference documents them (content filter results on choices and prompts included). A
module of its own name, so tests of other plugins run in the same session never import
these under the name ``conftest``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-azure"
# The documented placeholder resource name; no account is named anywhere.
ENDPOINT = "https://your-resource-name.openai.azure.com"
API_VERSION = "2024-10-21"
# The catalog of most tests: the placeholder resource, retries off so errors surface.
CATALOG = f"providers:\n  azure:\n    base_url: {ENDPOINT}\n    max_retries: 0\n"
DEPLOYMENT = "gpt-4o-mini-prod"
MODEL = "gpt-4o-mini-2024-07-18"
# Key-shaped on purpose (32 hex digits, as Azure's keys are), never valid.
KEY = "0123456789abcdef0123456789abcdef"
SAFE = {"filtered": False, "severity": "safe"}
CHOICE_FILTER = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
PROMPT_FILTER = [
    {
        "prompt_index": 0,
        "content_filter_results": {
            **CHOICE_FILTER,
            "jailbreak": {"filtered": False, "detected": False},
        },
    }
]
USAGE = {"prompt_tokens": 19, "completion_tokens": 5, "total_tokens": 24}


def completion(
    content: str | None = "ok",
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    filters: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A chat completion as Azure OpenAI returns it."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-AzUr3a1b2c3d4e5f6g7h8i9j0k1l2",
        "object": "chat.completion",
        "created": 1761300000,
        "model": MODEL,
        "system_fingerprint": "fp_b705f0c291",
        "prompt_filter_results": PROMPT_FILTER,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason,
                "logprobs": None,
                "content_filter_results": filters if filters is not None else CHOICE_FILTER,
            }
        ],
        "usage": usage or USAGE,
    }


def tool_call(
    name: str, arguments: dict[str, Any], id: str = "call_Az7dV1pZk9R2aL4mN6bT8cY0"
) -> dict[str, Any]:
    return {
        "id": id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def chunk(
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    *,
    filters: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One streamed chunk; ``delta=None`` is a chunk with no choices (usage only)."""
    choices: list[dict[str, Any]] = []
    if delta is not None:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        if filters is not None:
            choice["content_filter_results"] = filters
        choices.append(choice)
    return {
        "id": "chatcmpl-AzUs4b2c3d4e5f6g7h8i9j0k1l2m3",
        "object": "chat.completion.chunk",
        "created": 1761300000,
        "model": MODEL,
        "system_fingerprint": "fp_b705f0c291",
        "choices": choices,
        "usage": usage,
    }


# Azure's first chunk: the prompt's filter results, no choices, no id, no model.
PROMPT_FILTER_CHUNK = {
    "choices": [],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
    "prompt_filter_results": PROMPT_FILTER,
}


def sse(chunks: list[dict[str, Any]]) -> str:
    """Chunks framed as Azure streams them, ``data: [DONE]`` last."""
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


CONTENT_FILTER_400 = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
        "content management policy. Please modify your prompt and retry. To learn more about "
        "our content filtering policies please read our documentation: "
        "https://go.microsoft.com/fwlink/?linkid=2198766",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": SAFE,
                "jailbreak": {"filtered": True, "detected": True},
                "self_harm": SAFE,
                "sexual": SAFE,
                "violence": {"filtered": True, "severity": "medium"},
            },
        },
    }
}
DEPLOYMENT_NOT_FOUND = error(
    "DeploymentNotFound",
    "The API deployment for this resource does not exist. If you created the deployment "
    "within the last 5 minutes, please wait a moment and try again.",
)
UNAUTHORIZED = error(
    "401",
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API endpoint "
    "for your resource.",
)
RATE_LIMITED = error(
    "429",
    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
    "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
    "Please retry after 6 seconds. Please go here: https://aka.ms/oai/quotaincrease if you "
    "would like to further increase the default rate limit.",
)
CONTEXT_TOO_LONG = {
    "error": {
        "message": "This model's maximum context length is 128000 tokens. However, your "
        "messages resulted in 131072 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
