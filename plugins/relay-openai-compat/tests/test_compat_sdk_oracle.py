"""The official ``openai`` SDK as the oracle of the OpenAI-compatible chat wire.

Requests: each call is made through the SDK (pointed at the server's base URL) and
through Relay's generic ``openai-compat`` entry, both answered by a fake server that
records them; the path, the auth header and the JSON body must match but for the
differences listed once in ``INTENDED``, and Relay's bodies must be what the SDK's
request types allow.

Answers: every chat answer, stream chunk and error body in cassettes/relay-openai-compat
must validate as the SDK's types; each server's extensions are allowed by name, once,
with the reason. Together's batch cassettes are its own API, not OpenAI's, and are left
to test_together_batches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from openai.types.shared import ErrorObject

import relay_openai_compat
from relay_core import Message, ToolCallPart, ToolResultPart
from relay_core.testing import (
    WEATHER_TOOL as WEATHER,
)
from relay_core.testing import (
    FakeServer,
    answer_text,
    assert_as_intended,
    cassette_interactions,
    hub_for,
    model_problems,
    sse_payloads,
    typed_dict_problems,
    wire_request,
)

BASE_URL = "https://llm.example.com/v1"
KEY = "sk-test-compatFAKE0123456789"
CATALOG = (
    f"providers:\n  box:\n    plugin: openai-compat\n    base_url: {BASE_URL}\n"
    "    api_key: $env.BOX_API_KEY\n"
)
CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "relay-openai-compat"
HEADERS = ("authorization", "content-type")
MODEL = "llama-3.3-70b"
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1748944800,
    "model": MODEL,
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOX_API_KEY", KEY)


# Each difference Relay means to keep, once: (case, or "*" for every case, JSON path) ->
# (the SDK's value, Relay's, the reason).
INTENDED: dict[tuple[str, str], tuple[Any, Any, str]] = {}


def _answer(stream: bool) -> tuple[dict[str, str], bytes]:
    if not stream:
        return {"content-type": "application/json"}, json.dumps(ANSWER).encode()
    chunk = {**ANSWER, "object": "chat.completion.chunk"}
    chunk["choices"] = [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]
    text = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
    return {"content-type": "text/event-stream"}, text.encode()


def sdk_request(**kwargs: Any) -> dict[str, Any]:
    headers, body = _answer(bool(kwargs.get("stream")))
    server = FakeServer(httpx2.Response(200, headers=headers, content=body))

    client = openai.OpenAI(
        api_key=KEY,
        base_url=BASE_URL,
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(server)),
    )
    with client:
        answer = client.chat.completions.create(model=MODEL, **kwargs)
        if kwargs.get("stream"):
            for _ in answer:
                pass
    return wire_request(server.requests[-1], HEADERS)


def relay_request(prompt: Any, *, stream: bool = False, **options: Any) -> dict[str, Any]:
    headers, body = _answer(stream)
    server = FakeServer(httpx.Response(200, headers=headers, content=body))

    with hub_for(CATALOG, relay_openai_compat, transport=server.transport) as hub:
        if stream:
            list(hub.stream(f"box/{MODEL}", prompt, **options))
        else:
            hub.chat(f"box/{MODEL}", prompt, **options)
    return wire_request(server.requests[-1], HEADERS)


CASES: dict[str, tuple[dict[str, Any], tuple[Any, dict[str, Any]]]] = {
    "system, user text and settings": (
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            "temperature": 0.2,
            "top_p": 0.9,
            "max_tokens": 50,
            "stop": ["END"],
            "seed": 7,
        },
        (
            "Hi",
            {
                "system": "Be brief.",
                "temperature": 0.2,
                "top_p": 0.9,
                "max_tokens": 50,
                "stop": ["END"],
                "seed": 7,
            },
        ),
    ),
    "tool result round trip": (
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
            ],
            # Loose tools, as compatible servers take them (no strict field).
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Current weather in a city.",
                        "parameters": WEATHER.parameters,
                    },
                }
            ],
            "tool_choice": "required",
        },
        (
            [
                Message.user("Weather in Paris?"),
                Message("assistant", (ToolCallPart("call_1", "get_weather", {"city": "Paris"}),)),
                Message("user", (ToolResultPart("call_1", '{"temp": 21}'),)),
            ],
            {"tools": [WEATHER], "tool_choice": "required"},
        ),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_requests_match_the_sdk(case: str) -> None:
    sdk_kwargs, (prompt, options) = CASES[case]
    relay = relay_request(prompt, **options)
    assert_as_intended(case, sdk_request(**sdk_kwargs), relay, INTENDED)
    assert typed_dict_problems(relay["body"], CompletionCreateParamsNonStreaming) == []


def test_a_streamed_request_matches_the_sdk() -> None:
    sdk = sdk_request(
        messages=[{"role": "user", "content": "Count."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    relay = relay_request("Count.", stream=True)
    assert_as_intended("stream", sdk, relay, INTENDED)
    assert typed_dict_problems(relay["body"], CompletionCreateParamsStreaming) == []


# -- answers ------------------------------------------------------------------------------

# Fields compatible servers add to OpenAI's shapes, allowed by name wherever they appear,
# each with the server that documents it.
EXTENSIONS = {
    "reasoning_content": "DeepSeek's reasoning text (its API docs, deepseek-reasoner)",
    "reasoning": "Groq's parsed reasoning (reasoning_format: parsed) and OpenRouter's",
    "x_groq": "Groq's request id and usage, on answers and stream chunks",
    "usage_breakdown": "Groq's usage detail",
    "queue_time": "Groq's timing in usage",
    "prompt_time": "Groq's timing in usage",
    "completion_time": "Groq's timing in usage",
    "total_time": "Groq's timing in usage",
    "prompt_cache_hit_tokens": "DeepSeek's cache usage",
    "prompt_cache_miss_tokens": "DeepSeek's cache usage",
    "provider": "OpenRouter names the upstream provider",
    "native_finish_reason": "OpenRouter's upstream finish reason",
    "cost": "OpenRouter's cost in usage",
    "is_byok": "OpenRouter's usage flag",
    "cost_details": "OpenRouter's cost breakdown",
    "failed_generation": "Groq's error detail for a failed tool call or JSON",
    "warnings": "Together's answer warnings",
    "prompt": "Together's echoed prompt list",
    "seed": "Together's and xAI's echoed seed",
    "num_sources_used": "xAI's live-search usage",
    "metadata": "OpenRouter's error metadata",
    "cached_tokens": "Together's cache usage, flat in usage",
    "text": "Together repeats each chunk's text on the choice",
    "token_id": "Together's token ids in stream deltas",
    "status_code": "Groq's in-stream error repeats the HTTP status it stands for",
}
# Answers the SDK's types refuse that stay, once, each with its reason.
_GROQ_TIER = (
    "Groq answers service_tier on_demand, a tier of its own (its API reference), "
    "not one of OpenAI's"
)
_SERVICE_TIER = (
    "$.service_tier: Input should be 'auto', 'default', 'flex', 'scale', 'priority' or 'fast'"
)
_OPENROUTER_ERROR = (
    "OpenRouter's errors carry a numeric code (the HTTP status) and no type (its API "
    "reference, Errors)"
)
_VLLM_EMBEDDING = (
    "vLLM's embedding answer carries an id, created and chat-style usage fields that "
    "OpenAI's does not; Relay reads none of them"
)
ALLOWED: dict[tuple[str, str], str] = {
    ("together_embeddings.yaml", "$.usage: Field required"): (
        "Together's embedding answer reports no usage (its API reference has none); "
        "Relay reports zero input tokens for it"
    ),
    ("vllm_embeddings.yaml", "$: unknown field 'id'"): _VLLM_EMBEDDING,
    ("vllm_embeddings.yaml", "$: unknown field 'created'"): _VLLM_EMBEDDING,
    ("vllm_embeddings.yaml", "$.usage: unknown field 'completion_tokens'"): _VLLM_EMBEDDING,
    ("vllm_embeddings.yaml", "$.usage: unknown field 'prompt_tokens_details'"): _VLLM_EMBEDDING,
    ("groq_json_schema.yaml", _SERVICE_TIER): _GROQ_TIER,
    ("groq_tool_calls.yaml", _SERVICE_TIER): _GROQ_TIER,
    ("openrouter_document_invalid.yaml", "$.code: Input should be a valid string"): (
        _OPENROUTER_ERROR
    ),
    ("openrouter_document_invalid.yaml", "$.type: Field required"): _OPENROUTER_ERROR,
    ("openrouter_stream_error.yaml", "chunk 2: $.type: Field required"): _OPENROUTER_ERROR,
}


def _extension(problem: str) -> bool:
    return any(problem.endswith(f"unknown field {name!r}") for name in EXTENSIONS)


def answer_problems(uri: str, status: int, text: str) -> list[str]:
    if status >= 400:
        body = json.loads(text)
        return model_problems(ErrorObject, body.get("error"))
    if httpx.URL(uri).path.endswith("/embeddings"):
        return model_problems(CreateEmbeddingResponse, json.loads(text))
    if text.lstrip().startswith(("data:", "event:", ":")):
        return [
            f"chunk {i}: {p}"
            for i, chunk in enumerate(sse_payloads(text))
            for p in (
                model_problems(ErrorObject, chunk["error"])
                if "error" in chunk
                else model_problems(ChatCompletionChunk, chunk)
            )
        ]
    return model_problems(ChatCompletion, json.loads(text))


CHAT_CASSETTES = sorted(
    p.name for p in CASSETTES.glob("*.yaml") if not p.name.startswith("batch_together")
)


@pytest.mark.parametrize("cassette", CHAT_CASSETTES)
def test_cassette_answers_are_what_the_sdk_describes(cassette: str) -> None:
    problems, allowed = [], set()
    for number, interaction in enumerate(cassette_interactions(CASSETTES / cassette)):
        uri, status = interaction["request"]["uri"], interaction["response"]["status"]["code"]
        where = f"{cassette}#{number} {interaction['request']['method']} {uri}"
        assert httpx.URL(uri).path.endswith(("/chat/completions", "/embeddings")), where
        for problem in answer_problems(uri, status, answer_text(interaction)):
            if (cassette, problem) in ALLOWED:
                allowed.add(problem)
            elif not _extension(problem):
                problems.append(f"{where}: {problem}")
    assert not problems, "\n".join(problems)
    stale = [p for (c, p) in ALLOWED if c == cassette and p not in allowed]
    assert not stale, f"allowed, but no longer found: {stale}"
