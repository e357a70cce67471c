"""relay-serve as the official openai SDK sees it: sync, async, streaming, tool calls,
structured output and errors, against relay-mock behind the real server."""

from __future__ import annotations

import json
from collections.abc import Callable

import openai
import pytest
from serve_support import Served

Serve = Callable[..., Served]

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_a_chat_answers_with_the_mock_s_echo_and_its_usage(serve: Serve) -> None:
    answer = (
        serve()
        .client()
        .chat.completions.create(
            model="fast",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello, world!"},
            ],
        )
    )
    assert answer.object == "chat.completion"
    assert answer.model == "fast"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "Hello, world!"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 4  # "Hello , world !"
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 4


def test_the_request_id_is_echoed_and_becomes_the_completion_id(serve: Serve) -> None:
    client = serve().client()
    raw = client.chat.completions.with_raw_response.create(
        model="fast",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"X-Request-ID": "trace-42.a:b"},
    )
    assert raw.headers["x-request-id"] == "trace-42.a:b"
    assert raw.parse().id == "trace-42.a:b"

    generated = client.chat.completions.with_raw_response.create(
        model="fast", messages=[{"role": "user", "content": "hi"}]
    )
    assert generated.headers["x-request-id"].startswith("chatcmpl-")
    assert generated.parse().id == generated.headers["x-request-id"]


def test_generation_settings_reach_the_model(serve: Serve) -> None:
    answer = (
        serve()
        .client()
        .chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "one two three four five"}],
            max_completion_tokens=2,
            temperature=0.3,
            seed=7,
        )
    )
    assert answer.choices[0].message.content == "one two"
    assert answer.choices[0].finish_reason == "length"


def test_stop_sequences_cut_the_answer(serve: Serve) -> None:
    answer = (
        serve()
        .client()
        .chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "alpha beta gamma"}], stop=["gamma"]
        )
    )
    assert answer.choices[0].message.content == "alpha beta "


def test_multi_part_user_content_is_read(serve: Serve) -> None:
    answer = (
        serve()
        .client()
        .chat.completions.create(
            model="fast",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look: "},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    ],
                }
            ],
        )
    )
    assert answer.choices[0].message.content.startswith("Look:")
    assert "[received 1 image]" in answer.choices[0].message.content


async def test_the_async_client_works_alike(serve: Serve) -> None:
    client = serve().async_client()
    answer = await client.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "async hello"}]
    )
    assert answer.choices[0].message.content == "async hello"
    chunks = [
        chunk
        async for chunk in await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "async stream"}], stream=True
        )
    ]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "async stream"
    await client.close()


def test_a_stream_sends_role_then_text_then_finish_then_usage(serve: Serve) -> None:
    chunks = list(
        serve()
        .client()
        .chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "count one two three"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"X-Request-ID": "stream-1"},
        )
    )
    assert {c.id for c in chunks} == {"stream-1"}
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "count one two three"
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert all(c.usage is None for c in chunks[:-1])


def test_without_include_usage_no_usage_chunk_is_sent(serve: Serve) -> None:
    chunks = list(
        serve()
        .client()
        .chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_tool_call_comes_back_with_json_string_arguments(serve: Serve) -> None:
    client = serve().client()
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "What is the weather in Paris?"}
    ]
    answer = client.chat.completions.create(model="fast", messages=messages, tools=[WEATHER])
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    # The next turn carries the assistant's call and the tool's result back.
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "clear"}'},
    ]
    final = client.chat.completions.create(model="fast", messages=messages, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop"
    assert "get_weather returned" in (final.choices[0].message.content or "")
    assert '{"sky": "clear"}' in (final.choices[0].message.content or "")


def test_a_streamed_tool_call_arrives_in_indexed_pieces(serve: Serve) -> None:
    chunks = list(
        serve()
        .client()
        .chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "Weather in Rome please"}],
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stream=True,
        )
    )
    pieces = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert len(pieces) > 1
    assert {p.index for p in pieces} == {0}
    assert pieces[0].id
    assert pieces[0].function
    assert pieces[0].function.name == "get_weather"
    assert all(p.id is None for p in pieces[1:])
    arguments = "".join((p.function.arguments or "") if p.function else "" for p in pieces)
    assert json.loads(arguments) == {"city": "Rome"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_structured_output_follows_the_json_schema(serve: Serve) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    answer = (
        serve()
        .client()
        .chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "Invent a person."}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": schema, "strict": True},
            },
        )
    )
    value = json.loads(answer.choices[0].message.content or "")
    assert set(value) == {"name", "age"}
    assert isinstance(value["age"], int)
    assert 0 <= value["age"] <= 130


def test_thinking_is_sent_as_reasoning_content(serve: Serve) -> None:
    answer = (
        serve()
        .client()
        .chat.completions.create(model="thinker", messages=[{"role": "user", "content": "ponder"}])
    )
    message = answer.choices[0].message
    assert message.content == "ponder"
    assert (message.model_extra or {}).get("reasoning_content")
    assert answer.usage
    assert answer.usage.completion_tokens_details
    assert answer.usage.completion_tokens_details.reasoning_tokens > 0


def test_models_lists_the_catalog_aliases(serve: Serve) -> None:
    ids = [model.id for model in serve().client().models.list()]
    assert ids == ["fast", "limited", "slow", "stall", "thinker"]


def test_provider_slash_model_works_without_an_alias(serve: Serve) -> None:
    answer = (
        serve()
        .client()
        .chat.completions.create(
            model="mock/echo", messages=[{"role": "user", "content": "direct"}]
        )
    )
    assert answer.choices[0].message.content == "direct"


@pytest.mark.parametrize(
    ("model", "error_class", "status", "code"),
    [
        ("nonexistent", openai.NotFoundError, 404, "model_not_found"),
        ("nobody/knows", openai.NotFoundError, 404, "model_not_found"),
        ("limited", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("trouble/QuotaExceeded", openai.RateLimitError, 429, "insufficient_quota"),
        ("trouble/ContextWindowExceeded", openai.BadRequestError, 400, "context_length_exceeded"),
        ("trouble/ContentPolicyError", openai.BadRequestError, 400, "content_policy_violation"),
        ("trouble/InvalidRequestError", openai.BadRequestError, 400, None),
        ("trouble/AuthenticationError", openai.InternalServerError, 502, None),
        ("trouble/ProviderUnavailable", openai.InternalServerError, 502, None),
        ("trouble/MalformedResponse", openai.InternalServerError, 502, None),
        ("trouble/Timeout", openai.InternalServerError, 504, "upstream_timeout"),
    ],
)
def test_errors_reach_the_sdk_as_its_own_exception_classes(
    serve: Serve,
    model: str,
    error_class: type[openai.APIStatusError],
    status: int,
    code: str | None,
) -> None:
    client = serve().client()
    for stream in (False, True):  # an error before any output is a status, streaming or not
        with pytest.raises(error_class) as caught:
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], stream=stream
            )
        assert caught.value.status_code == status
        body = caught.value.body
        assert isinstance(body, dict)
        assert set(body) == {"message", "type", "param", "code"}
        if code is not None:
            assert body["code"] == code
        assert "sk-upstream" not in json.dumps(body)
        assert "Traceback" not in json.dumps(body)


def test_an_upstream_rate_limit_passes_its_retry_after_on(serve: Serve) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        serve().client().chat.completions.create(
            model="trouble/RateLimitError", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.response.headers["retry-after"] == "3"  # 2.5 s, rounded up


def test_a_wrong_key_is_an_authentication_error(serve: Serve) -> None:
    from relay_serve import ApiKey

    server = serve(settings=_settings_with(ApiKey.from_key("ci", "sk-relay-right-key-0123456789")))
    with pytest.raises(openai.AuthenticationError) as caught:
        server.client("sk-relay-wrong-key-0123456789").models.list()
    assert caught.value.code == "invalid_api_key"
    answer = server.client("sk-relay-right-key-0123456789").chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "let in"}]
    )
    assert answer.choices[0].message.content == "let in"


def _settings_with(*keys: object) -> object:
    from relay_serve import ServeSettings

    return ServeSettings(keys=keys)  # type: ignore[arg-type]
