"""Chat: echo, scripted replies, usage, stop sequences, max_tokens, thinking, the raw
payload, and determinism across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from relay_core import (
    DocumentPart,
    ImagePart,
    InvalidRequestError,
    Message,
    Request,
    TextPart,
    ThinkingPart,
)
from relay_core.serialize import dumps
from relay_mock._server import count_tokens


def test_echo_answers_the_last_user_message_verbatim(make_hub: Any) -> None:
    hub = make_hub()
    answer = hub.chat(
        "mock/echo",
        [Message.user("first"), Message.assistant("reply"), Message.user("What is 2+2?")],
        system="Be brief.",
    )
    assert answer.content == (TextPart("What is 2+2?"),)
    assert (answer.provider, answer.model, answer.finish_reason) == ("mock", "echo", "stop")
    assert answer.id is not None
    assert answer.id.startswith("mockmsg_")
    assert answer.latency is not None


def test_any_model_name_echoes(make_hub: Any) -> None:
    answer = make_hub().chat("mock/some-future-model", "still here")
    assert (answer.text, answer.model) == ("still here", "some-future-model")


def test_attachments_are_acknowledged_and_counted(make_hub: Any) -> None:
    hub = make_hub()
    message = Message.user(
        "Compare these.",
        ImagePart(url="https://example.test/a.png"),
        DocumentPart(data=b"plain text", media_type="text/plain", name="a.txt"),
        DocumentPart(url="https://example.test/b.pdf"),
    )
    answer = hub.chat("mock/echo", message)
    assert answer.text == "Compare these. [received 1 image and 2 documents]"
    # 3 framing + 3 text + 85 per image + 250 per document
    assert answer.usage.input_tokens == 3 + 3 + 85 + 2 * 250
    only_image = hub.chat("mock/echo", Message.user(ImagePart(url="https://example.test/a.png")))
    assert only_image.text == "[received 1 image]"


def test_a_scripted_reply_is_answered_exactly(make_hub: Any) -> None:
    answer = make_hub().chat(
        "mock/echo", "ignored", provider_kwargs={"mock": {"reply": "Paris, of course."}}
    )
    assert answer.text == "Paris, of course."
    assert answer.usage.output_tokens == 5  # Paris , of course .


def test_a_scripted_reply_can_come_from_the_catalog(make_hub: Any) -> None:
    hub = make_hub(
        "models:\n  oracle: {target: mock/echo, provider_kwargs: {mock: {reply: '42'}}}\n"
    )
    assert hub.chat("oracle", "the question").text == "42"


def test_usage_counts_system_messages_tools_and_schema(make_hub: Any) -> None:
    hub = make_hub()
    answer = hub.chat("mock/echo", "Hello, world!", system="Be brief.")
    assert count_tokens("Hello, world!") == 4
    assert answer.usage.input_tokens == 3 + 3 + 4  # system, framing, message
    assert answer.usage.output_tokens == 4
    assert answer.usage.total_tokens == 14
    with_tool = hub.chat(
        "mock/echo",
        "Hello, world!",
        system="Be brief.",
        tools=[{"name": "noop", "description": "Does nothing."}],
        tool_choice="none",
    )
    assert with_tool.usage.input_tokens > answer.usage.input_tokens


def test_the_earliest_stop_sequence_cuts_the_reply(make_hub: Any) -> None:
    hub = make_hub()
    answer = hub.chat("mock/echo", "alpha beta END gamma HALT delta", stop=["HALT", "END"])
    assert answer.text == "alpha beta "
    assert answer.finish_reason == "stop"
    assert answer.raw["stop_reason"] == "stop_sequence"
    assert answer.raw["stop_sequence"] == "END"
    assert answer.usage.output_tokens == 2
    untouched = hub.chat("mock/echo", "alpha beta", stop="zzz")
    assert untouched.text == "alpha beta"
    assert untouched.raw["stop_reason"] == "end_turn"


def test_max_tokens_truncates_the_reply_and_reports_length(make_hub: Any) -> None:
    hub = make_hub()
    answer = hub.chat("mock/echo", "one two, three four five", max_tokens=3)
    assert answer.text == "one two,"
    assert answer.finish_reason == "length"
    assert answer.usage.output_tokens == 3
    exact = hub.chat("mock/echo", "one two three", max_tokens=3)
    assert (exact.text, exact.finish_reason) == ("one two three", "stop")
    one = hub.chat("mock/echo", "one two three", max_tokens=1)
    assert (one.text, one.finish_reason) == ("one", "length")


def test_catalog_params_apply(make_hub: Any) -> None:
    hub = make_hub("models:\n  short: {target: mock/echo, params: {max_tokens: 2}}\n")
    answer = hub.chat("short", "one two three")
    assert (answer.text, answer.finish_reason) == ("one two", "length")


def test_the_think_model_thinks_first_with_a_signature(make_hub: Any) -> None:
    answer = make_hub().chat("mock/think", "Why is the sky blue?")
    thinking, text = answer.content
    assert isinstance(thinking, ThinkingPart)
    assert thinking.signature is not None
    assert thinking.signature.startswith("mocksig_")
    assert "Why is the sky blue?" in thinking.text
    assert text == TextPart("Why is the sky blue?")
    assert answer.usage.reasoning_tokens == count_tokens(thinking.text) > 0
    assert answer.usage.output_tokens == answer.usage.reasoning_tokens + count_tokens(text.text)
    assert answer.thinking == thinking.text


def test_reasoning_settings_turn_thinking_on_for_any_model(make_hub: Any) -> None:
    hub = make_hub()
    plain = hub.chat("mock/echo", "hi")
    assert plain.thinking == ""
    assert plain.usage.reasoning_tokens == 0
    low = hub.chat("mock/echo", "hi", reasoning="low")
    high = hub.chat("mock/echo", "hi", reasoning="high")
    assert 0 < low.usage.reasoning_tokens < high.usage.reasoning_tokens
    budgeted = hub.chat("mock/echo", "hi", reasoning=5)
    assert budgeted.usage.reasoning_tokens == 5
    assert budgeted.finish_reason == "stop"  # the budget limits thinking, not the answer
    off = hub.chat("mock/think", "hi", reasoning=0)
    assert off.content == (TextPart("hi"),)


def test_max_tokens_counts_thinking_first(make_hub: Any) -> None:
    answer = make_hub().chat("mock/think", "a question", max_tokens=4)
    assert [type(p) for p in answer.content] == [ThinkingPart]
    assert answer.usage.output_tokens == answer.usage.reasoning_tokens == 4
    assert answer.finish_reason == "length"


def test_thinking_can_be_sent_back_in_a_conversation(make_hub: Any) -> None:
    hub = make_hub()
    first = hub.chat("mock/think", "first question")
    second = hub.chat(
        "mock/think", [Message.user("first question"), first.to_message(), Message.user("next")]
    )
    assert second.text == "next"
    assert second.usage.input_tokens > first.usage.input_tokens


def test_the_raw_payload_is_what_was_parsed(make_hub: Any) -> None:
    answer = make_hub().chat("mock/think", "raw please")
    raw = answer.raw
    assert raw["object"] == "mock.message"
    assert raw["id"] == answer.id
    assert [block["type"] for block in raw["content"]] == ["thinking", "text"]
    assert raw["content"][0]["signature"] == answer.content[0].signature
    assert raw["content"][1]["text"] == answer.text
    assert raw["usage"] == {
        "input_tokens": answer.usage.input_tokens,
        "output_tokens": answer.usage.output_tokens,
        "reasoning_tokens": answer.usage.reasoning_tokens,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mock": "reply"}, "must be a mapping"),
        ({"mock": {"replay": "x"}}, "unknown key 'replay'"),
        ({"mock": {"reply": 42}}, "must be text"),
        ({"mock": {"tool_calls": [{"arguments": {}}]}}, "with a 'name'"),
        ({"mock": {"tool_calls": {"name": "t"}}}, "must be a list"),
        ({"mock": {"tool_calls": [{"name": "t", "arguments": [1]}]}}, "must be a mapping"),
    ],
)
def test_bad_scripts_are_invalid_requests(make_hub: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as caught:
        make_hub().chat("mock/echo", "x", provider_kwargs=kwargs, custom_id="bad-1")
    assert (caught.value.provider, caught.value.custom_id) == ("mock", "bad-1")


# Valid Python, run here and in fresh interpreters with other hash seeds.
REQUESTS = """
from relay_core import GenerationConfig, Request, ResponseSchema, Tool

WEATHER = Tool("get_weather", parameters={
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city", "days"],
})
PERSON = ResponseSchema({
    "type": "object",
    "properties": {"name": {"type": "string"}, "born": {"type": "string", "format": "date"},
                   "height": {"type": "number"}},
    "required": ["name", "born", "height"],
})
requests = [
    Request.from_prompt("Hello, world!", model="echo", system="Be brief."),
    Request.from_prompt("Why is the sky blue?", model="think"),
    Request.from_prompt("Weather in Oslo?", model="echo", tools=[WEATHER]),
    Request.from_prompt("A person", model="echo", response_schema=PERSON),
    Request.from_prompt("one two three four", model="echo", config=GenerationConfig(max_tokens=2)),
]
"""

RUN = """
import asyncio, json
from relay_core import ProviderSettings
from relay_core.serialize import dumps
from relay_mock._provider import MockProvider

async def main():
    mock = MockProvider(ProviderSettings(name="mock"))
    return [dumps(await mock.chat(request)) for request in requests]

print(json.dumps(asyncio.run(main())))
"""


def _answers_in_a_subprocess(hash_seed: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", REQUESTS + RUN],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers: list[str] = json.loads(result.stdout)
    return answers


async def test_answers_and_usage_are_the_same_in_every_process(mock: Any) -> None:
    namespace: dict[str, Any] = {}
    exec(REQUESTS, namespace)
    requests: list[Request] = namespace["requests"]
    here = [dumps(await mock().chat(request)) for request in requests]
    assert _answers_in_a_subprocess("1") == here
    assert _answers_in_a_subprocess("2") == here
    answers = [json.loads(answer) for answer in here]
    assert all(a["usage"]["input_tokens"] > 0 < a["usage"]["output_tokens"] for a in answers)
    assert answers[2]["content"][0]["type"] == "tool_call"
    assert answers[4]["finish_reason"] == "length"
