"""Azure OpenAI's wire format, replayed from the hand-written cassettes in
cassettes/relay-azure: what the adapter sends (URL with api-version, JSON body) and how it
reads what Azure answers, content filter results and errors included."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure_support import DEPLOYMENT, ENDPOINT, KEY, MODEL

from relay_core import (
    AuthenticationError,
    ContentPolicyError,
    ContextWindowExceeded,
    EndEvent,
    NotFoundError,
    RateLimitError,
    TextDelta,
    Tool,
    Usage,
)
from relay_core.testing import secret_shown

TARGET = f"azure/{DEPLOYMENT}"
WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CAPITAL = {
    "type": "object",
    "properties": {"country": {"type": "string"}, "capital": {"type": "string"}},
    "required": ["country", "capital"],
}


def sent(recorded: Any, index: int = 0) -> dict[str, Any]:
    body = recorded.requests[index].body
    return json.loads(body if isinstance(body, (str, bytes)) else "{}")


def test_chat_goes_to_the_deployment_with_the_api_version(make_hub: Any, cassette: Any) -> None:
    with cassette("chat") as recorded:
        answer = make_hub().chat(TARGET, "What is 2+2?", system="Be brief.", temperature=0)
    assert recorded.requests[0].uri == (
        f"{ENDPOINT}/openai/deployments/{DEPLOYMENT}/chat/completions?api-version=2024-10-21"
    )
    assert sent(recorded)["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (answer.text, answer.finish_reason, answer.model) == ("4.", "stop", MODEL)
    assert answer.usage == Usage(input_tokens=19, output_tokens=2)
    # Azure's filter annotations are kept in raw, not mistaken for content.
    assert answer.raw["prompt_filter_results"][0]["prompt_index"] == 0


def test_a_stream_opening_with_prompt_filter_results_equals_chat(
    make_hub: Any, cassette: Any
) -> None:
    with cassette("stream") as recorded:
        events = list(make_hub().stream(TARGET, "What is 2+2?", system="Be brief."))
    assert sent(recorded)["stream_options"] == {"include_usage": True}
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "2 + 2 = 4."
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert sum(isinstance(e, EndEvent) for e in events) == 1
    assert end.response.text == "2 + 2 = 4."
    assert end.response.finish_reason == "stop"
    assert end.response.model == MODEL
    assert end.response.usage == Usage(input_tokens=19, output_tokens=8)


def test_tool_calls(make_hub: Any, cassette: Any) -> None:
    with cassette("tool_calls") as recorded:
        answer = make_hub().chat(TARGET, "Weather in Paris?", tools=[WEATHER])
    tool = sent(recorded)["tools"][0]["function"]
    assert (tool["name"], tool["strict"]) == ("get_weather", True)
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert answer.finish_reason == "tool_calls"


def test_structured_output(make_hub: Any, cassette: Any) -> None:
    with cassette("structured_output") as recorded:
        answer = make_hub().chat(TARGET, "Capital of France?", response_schema=CAPITAL)
    assert sent(recorded)["response_format"]["type"] == "json_schema"
    assert json.loads(answer.text) == {"country": "France", "capital": "Paris"}


def test_a_prompt_the_filter_refuses_is_content_policy_error(make_hub: Any, cassette: Any) -> None:
    with cassette("content_filter_prompt"), pytest.raises(ContentPolicyError) as caught:
        make_hub().chat(TARGET, "A prompt the filter refuses.")
    assert caught.value.status_code == 400
    assert not caught.value.retryable
    assert "content management policy" in str(caught.value)


def test_an_answer_the_filter_withheld_is_content_policy_error_naming_categories(
    make_hub: Any, cassette: Any
) -> None:
    with cassette("content_filter_answer"), pytest.raises(ContentPolicyError) as caught:
        make_hub().chat(TARGET, "Write a violent story.")
    assert "withheld the answer (violence)" in str(caught.value)


def test_an_unknown_deployment_is_not_found_naming_it(make_hub: Any, cassette: Any) -> None:
    with cassette("deployment_not_found"), pytest.raises(NotFoundError) as caught:
        make_hub().chat("azure/no-such-deployment", "Hi")
    message = str(caught.value)
    assert "no deployment 'no-such-deployment' at https://your-resource-name" in message
    assert "does not exist" in message
    assert caught.value.status_code == 404


def test_a_rate_limit_honours_retry_after_ms(make_hub: Any, cassette: Any) -> None:
    with cassette("rate_limit"), pytest.raises(RateLimitError) as caught:
        make_hub().chat(TARGET, "Hi")
    # retry-after-ms (5500) is more precise than retry-after (6): it wins.
    assert caught.value.retry_after == 5.5
    assert caught.value.retryable


def test_a_rejected_key_is_authentication_error_without_the_key(
    make_hub: Any, cassette: Any
) -> None:
    with cassette("unauthorized"), pytest.raises(AuthenticationError) as caught:
        make_hub().chat(TARGET, "Hi")
    assert "invalid subscription key" in str(caught.value)
    assert secret_shown(KEY, caught.value) == []


def test_a_prompt_too_long_is_context_window_exceeded(make_hub: Any, cassette: Any) -> None:
    with cassette("context_length"), pytest.raises(ContextWindowExceeded):
        make_hub().chat(TARGET, "A very long prompt.")


def test_the_v1_api_takes_the_deployment_as_model(make_hub: Any, cassette: Any) -> None:
    catalog = (
        f"providers:\n  azure:\n    base_url: {ENDPOINT}\n    max_retries: 0\n"
        "    options: {api_version: v1}\n"
    )
    with cassette("v1_chat") as recorded:
        answer = make_hub(catalog=catalog).chat(TARGET, "What is 2+2?")
    assert recorded.requests[0].uri == f"{ENDPOINT}/openai/v1/chat/completions"
    assert sent(recorded)["model"] == DEPLOYMENT
    assert answer.text == "4."
