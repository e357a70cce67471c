"""The exact JSON the adapter sends, for every mapping, to both wire APIs."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from relay_core import (
    DocumentPart,
    ImagePart,
    InvalidRequestError,
    Message,
    ResponseSchema,
    TextPart,
    ThinkingPart,
    TokenLogprob,
    Tool,
    ToolCallPart,
    ToolResultPart,
    UnsupportedSetting,
)

CHAT_OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4.1",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
RESPONSES_OK = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "model": "gpt-4.1",
    "output": [
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "ok", "annotations": []}],
        }
    ],
    "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
}
RESPONSES = {"openai": {"api": "responses"}}
PNG = b"\x89PNG\r\n\x1a\nfake"
PDF = b"%PDF-1.7 fake"
WEATHER = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
# WEATHER's parameters as strict mode takes them: closed.
STRICT_WEATHER = {**WEATHER.parameters, "additionalProperties": False}


@pytest.fixture
def chat(server: Any, make_hub: Any) -> Any:
    """Send a Chat Completions call and return the JSON body that went out."""
    server.reply(CHAT_OK)
    hub = make_hub()

    def send(*args: Any, model: str = "openai/gpt-4.1", **kwargs: Any) -> Any:
        hub.chat(model, *args, **kwargs)
        request = server.requests[-1]
        assert (request.method, str(request.url)) == (
            "POST",
            "https://api.openai.com/v1/chat/completions",
        )
        return server.payload

    return send


@pytest.fixture
def responses(server: Any, make_hub: Any) -> Any:
    """Send a Responses API call and return the JSON body that went out."""
    server.reply(RESPONSES_OK)
    hub = make_hub()

    def send(*args: Any, model: str = "openai/gpt-4.1", **kwargs: Any) -> Any:
        kwargs["provider_kwargs"] = {**RESPONSES, **kwargs.get("provider_kwargs", {})}
        hub.chat(model, *args, **kwargs)
        assert str(server.requests[-1].url) == "https://api.openai.com/v1/responses"
        return server.payload

    return send


# ---------------------------------------------------------------------------- Chat Completions


def test_chat_text_system_and_generation_config(chat: Any) -> None:
    sent = chat(
        "Hi",
        system="Be brief.",
        temperature=0.2,
        top_p=0.9,
        max_tokens=100,
        stop=["END", "STOP"],
        seed=7,
    )
    assert sent == {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 100,
        "stop": ["END", "STOP"],
        "seed": 7,
    }


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini"])
def test_reasoning_models_get_a_developer_message_and_reasoning_effort(
    chat: Any, model: str
) -> None:
    sent = chat("Hi", model=f"openai/{model}", system="Think.", reasoning="high")
    assert sent == {
        "model": model,
        "messages": [
            {"role": "developer", "content": "Think."},
            {"role": "user", "content": "Hi"},
        ],
        "reasoning_effort": "high",
    }


def _dropped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "sampling settings dropped" in r.getMessage()]


@pytest.mark.parametrize(
    ("model", "reasoning"),
    [
        ("o1-sampling", None),
        ("o3-mini-sampling", "low"),
        ("o4-mini-sampling", None),
        ("gpt-5-mini-sampling", None),
        ("ft:o4-mini:acme::sampling", None),
        ("gpt-5.1-sampling", "medium"),
    ],
)
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_reasoning_models_get_no_temperature_or_top_p(
    chat: Any,
    responses: Any,
    caplog: pytest.LogCaptureFixture,
    model: str,
    reasoning: str | None,
    api: str,
) -> None:
    # OpenAI answers a reasoning model's temperature or top_p with a 400 ("Only the
    # default (1) value is supported"): a catalog default must not reach it.
    caplog.set_level(logging.WARNING, logger="relay")
    send = chat if api == "chat" else responses
    model = f"{model}-{api}"  # the warning comes once per process for each model
    sent = send("Hi", model=f"openai/{model}", temperature=0.2, top_p=1.0, reasoning=reasoning)
    assert not {"temperature", "top_p"} & set(sent)
    (warning,) = _dropped(caplog)
    for word in ("openai", model, "temperature", "top_p", "reasoning model"):
        assert word in warning


@pytest.mark.parametrize("model", ["gpt-4.1", "gpt-5-chat-latest", "gpt-5.1", "omni-1"])
def test_models_that_take_sampling_settings_get_them(
    chat: Any, caplog: pytest.LogCaptureFixture, model: str
) -> None:
    # gpt-5.1 and later reason only when asked, and take them when not.
    caplog.set_level(logging.WARNING, logger="relay")
    sent = chat("Hi", model=f"openai/{model}", temperature=0.2, top_p=0.5)
    assert (sent["temperature"], sent["top_p"]) == (0.2, 0.5)
    assert _dropped(caplog) == []


def test_chat_images_by_url_and_by_bytes_with_detail(chat: Any) -> None:
    sent = chat(
        Message.user(
            "Compare.",
            ImagePart(url="https://example.test/a.png", detail="low"),
            ImagePart(data=PNG, media_type="image/png"),
        )
    )
    encoded = base64.b64encode(PNG).decode()
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare."},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.test/a.png", "detail": "low"},
                },
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}},
            ],
        }
    ]


def test_chat_pdf_documents_go_as_file_data(chat: Any) -> None:
    sent = chat(Message.user(DocumentPart(data=PDF, name="report.pdf"), "Summarise."))
    encoded = base64.b64encode(PDF).decode()
    assert sent["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {
                "filename": "report.pdf",
                "file_data": f"data:application/pdf;base64,{encoded}",
            },
        },
        {"type": "text", "text": "Summarise."},
    ]


def test_chat_documents_by_url_are_refused_with_the_way_out(chat: Any) -> None:
    with pytest.raises(InvalidRequestError, match="Responses API"):
        chat(Message.user(DocumentPart(url="https://example.test/a.pdf")))


def test_chat_tool_calls_results_and_dropped_thinking(chat: Any) -> None:
    sent = chat(
        [
            Message.user("Weather in Paris?"),
            Message.assistant(
                ThinkingPart("The user wants weather.", signature="sig"),
                "Let me check.",
                ToolCallPart("call_1", "get_weather", {"city": "Paris"}),
                ToolCallPart("call_2", "get_weather", {"city": "Lyon"}),
            ),
            Message.tool(
                ToolResultPart("call_1", '{"sky": "clear"}'),
                ToolResultPart("call_2", "rain", is_error=True),
            ),
        ],
        tools=[WEATHER, Tool("now")],
    )
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "clear"}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": STRICT_WEATHER,
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {
                "name": "now",
                "parameters": {
                    "type": "object",
                    "properties": {},
                    "required": [],
                    "additionalProperties": False,
                },
                "strict": True,
            },
        },
    ]
    assert "tool_choice" not in sent


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_chat_tool_choice(chat: Any, choice: str, wire: Any) -> None:
    assert chat("Hi", tools=[WEATHER], tool_choice=choice)["tool_choice"] == wire


# A tool with an optional argument: strict mode makes it required and nullable.
FORECAST = Tool(
    "get_forecast",
    "Weather forecast for a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "minimum": 1},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
)
STRICT_FORECAST = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": ["integer", "null"], "minimum": 1},
        "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", None]},
    },
    "required": ["city", "days", "unit"],
    "additionalProperties": False,
}
# Parameters strict mode cannot express: each tool goes loose, its schema unchanged.
LOOSE_PARAMETERS = [
    {"type": "object", "properties": {"tags": {"type": "object", "additionalProperties": True}}},
    {"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {}}}},
    {"type": "object", "properties": {"x": {"allOf": [{"type": "integer"}, {"minimum": 0}]}}},
    {"type": "object", "properties": {"x": {"oneOf": [{"type": "integer"}, {"type": "string"}]}}},
    {"type": "object", "properties": {"x": {"not": {"type": "null"}}}},
    {"type": "object", "properties": {"meta": {"type": "object"}}},
    {"type": "object"},
    {"anyOf": [{"type": "object", "properties": {}}]},
]


def test_chat_tools_are_strict_with_optional_arguments_made_nullable(chat: Any) -> None:
    [sent] = chat("Forecast?", tools=[FORECAST])["tools"]
    assert sent == {
        "type": "function",
        "function": {
            "name": "get_forecast",
            "description": "Weather forecast for a city.",
            "parameters": STRICT_FORECAST,
            "strict": True,
        },
    }


@pytest.mark.parametrize("parameters", LOOSE_PARAMETERS)
def test_chat_tools_strict_mode_cannot_express_go_loose(chat: Any, parameters: Any) -> None:
    [sent] = chat("Hi", tools=[Tool("f", "", parameters)])["tools"]
    assert sent == {
        "type": "function",
        "function": {"name": "f", "parameters": parameters, "strict": False},
    }


def test_one_loose_tool_leaves_the_others_strict(chat: Any) -> None:
    loose = Tool("f", "", LOOSE_PARAMETERS[0])
    sent = chat("Hi", tools=[loose, FORECAST])["tools"]
    assert [tool["function"]["strict"] for tool in sent] == [False, True]


SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}}
# What strict mode accepts: closed, every property required, the optional one nullable.
STRICT_SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": ["integer", "null"]}},
    "required": ["n"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(("strict", "wire"), [(True, STRICT_SCHEMA), (False, SCHEMA)])
def test_chat_response_schema_is_compiled_for_strict_mode(
    chat: Any, strict: bool, wire: Any
) -> None:
    sent = chat("Hi", response_schema=ResponseSchema(SCHEMA, name="count", strict=strict))
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "count", "schema": wire, "strict": strict},
    }


def test_strict_mode_compiles_nested_objects_and_definitions(chat: Any) -> None:
    schema = {
        "type": "object",
        "properties": {
            "place": {"$ref": "#/$defs/Place"},
            "tags": {
                "type": "array",
                "items": {"type": "object", "properties": {"k": {"enum": ["a"]}}},
            },
        },
        "required": ["tags"],
        "$defs": {
            "Place": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            }
        },
    }
    sent = chat("Hi", response_schema=ResponseSchema(schema))["response_format"]["json_schema"]
    assert sent["strict"] is True
    wire = sent["schema"]
    assert wire["required"] == ["place", "tags"]
    assert wire["properties"]["place"] == {"anyOf": [{"$ref": "#/$defs/Place"}, {"type": "null"}]}
    assert wire["properties"]["tags"]["items"] == {
        "type": "object",
        "properties": {"k": {"anyOf": [{"enum": ["a"]}, {"type": "null"}]}},
        "required": ["k"],
        "additionalProperties": False,
    }
    assert wire["$defs"]["Place"]["additionalProperties"] is False


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "integer"}},
        {
            "type": "object",
            "properties": {"m": {"type": "object", "additionalProperties": {"type": "number"}}},
        },
    ],
)
def test_a_schema_strict_mode_cannot_take_is_sent_loose(chat: Any, schema: Any) -> None:
    sent = chat("Hi", response_schema=ResponseSchema(schema))["response_format"]["json_schema"]
    assert (sent["schema"], sent["strict"]) == (schema, False)


def test_provider_kwargs_reach_the_payload_untouched_and_win(chat: Any) -> None:
    sent = chat(
        "Hi",
        temperature=0.5,
        provider_kwargs={"logprobs": True, "temperature": 1.0, "metadata": {"run": "a"}},
    )
    assert sent["logprobs"] is True
    assert sent["temperature"] == 1.0
    assert sent["metadata"] == {"run": "a"}
    assert "openai" not in sent


def test_the_request_carries_the_key_and_the_optional_account_headers(
    server: Any, make_hub: Any, fake_key: str
) -> None:
    server.reply(CHAT_OK)
    make_hub().chat("openai/gpt-4.1", "Hi")
    headers = server.requests[-1].headers
    assert headers["authorization"] == f"Bearer {fake_key}"
    assert "openai-organization" not in headers
    assert "openai-project" not in headers

    hub = make_hub(
        "providers:\n  openai:\n    options: {organization: org-team, project: proj-x}\n"
    )
    hub.chat("openai/gpt-4.1", "Hi")
    headers = server.requests[-1].headers
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-team", "proj-x")


def test_account_headers_fall_back_to_the_sdk_environment_variables(
    server: Any, make_hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-from-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-from-env")
    server.reply(CHAT_OK)
    make_hub().chat("openai/gpt-4.1", "Hi")
    headers = server.requests[-1].headers
    assert (headers["openai-organization"], headers["openai-project"]) == (
        "org-from-env",
        "proj-from-env",
    )


def test_a_base_url_from_the_catalog_is_used(server: Any, make_hub: Any) -> None:
    server.reply(CHAT_OK)
    hub = make_hub("providers:\n  openai: {base_url: 'https://proxy.example.test/v1/'}\n")
    hub.chat("openai/gpt-4.1", "Hi")
    assert str(server.requests[-1].url) == "https://proxy.example.test/v1/chat/completions"


def test_streaming_asks_for_usage(server: Any, make_hub: Any) -> None:
    server.reply_sse([{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, "[DONE]"])
    list(make_hub().stream("openai/gpt-4.1", "Hi"))
    assert server.payload == {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert server.requests[-1].headers["accept"] == "text/event-stream"


# ---------------------------------------------------------------------------- Responses API


def test_responses_text_instructions_and_config(responses: Any) -> None:
    sent = responses("Hi", system="Be brief.", temperature=0.2, top_p=0.9, max_tokens=100)
    assert sent == {
        "model": "gpt-4.1",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
        "instructions": "Be brief.",
        "temperature": 0.2,
        "top_p": 0.9,
        "max_output_tokens": 100,
    }


def test_responses_reasoning_effort(responses: Any) -> None:
    sent = responses("Hi", model="openai/o3", reasoning="minimal")
    assert sent["reasoning"] == {"effort": "minimal"}


@pytest.mark.parametrize("option", [{"stop": ["x"]}, {"seed": 1}])
def test_responses_refuses_what_it_cannot_take(responses: Any, option: Any) -> None:
    with pytest.raises(InvalidRequestError, match="Responses API has no"):
        responses("Hi", **option)


def test_responses_images_and_documents(responses: Any) -> None:
    sent = responses(
        Message.user(
            "Look.",
            ImagePart(url="https://example.test/a.png"),
            ImagePart(data=PNG, media_type="image/png", detail="high"),
            DocumentPart(data=PDF, name="r.pdf"),
            DocumentPart(url="https://example.test/b.pdf"),
        )
    )
    png, pdf = base64.b64encode(PNG).decode(), base64.b64encode(PDF).decode()
    assert sent["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Look."},
                {
                    "type": "input_image",
                    "image_url": "https://example.test/a.png",
                    "detail": "auto",
                },
                {
                    "type": "input_image",
                    "image_url": f"data:image/png;base64,{png}",
                    "detail": "high",
                },
                {
                    "type": "input_file",
                    "filename": "r.pdf",
                    "file_data": f"data:application/pdf;base64,{pdf}",
                },
                {"type": "input_file", "file_url": "https://example.test/b.pdf"},
            ],
        }
    ]


def test_responses_tool_calls_and_results_are_items(responses: Any) -> None:
    sent = responses(
        [
            Message.user("Weather?"),
            Message.assistant(
                ThinkingPart("thinking"),
                "Checking.",
                ToolCallPart("call_1", "get_weather", {"city": "Paris"}),
            ),
            Message.tool(ToolResultPart("call_1", "sunny")),
        ],
        tools=[WEATHER],
        tool_choice="get_weather",
    )
    assert sent["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": STRICT_WEATHER,
            "strict": True,
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "name": "get_weather"}


def test_responses_tools_are_strict_with_optional_arguments_made_nullable(
    responses: Any,
) -> None:
    [sent] = responses("Forecast?", tools=[FORECAST])["tools"]
    assert sent == {
        "type": "function",
        "name": "get_forecast",
        "description": "Weather forecast for a city.",
        "parameters": STRICT_FORECAST,
        "strict": True,
    }


@pytest.mark.parametrize("parameters", LOOSE_PARAMETERS)
def test_responses_tools_strict_mode_cannot_express_go_loose(
    responses: Any, parameters: Any
) -> None:
    # Said explicitly: the Responses API would make a tool with no `strict` strict.
    [sent] = responses("Hi", tools=[Tool("f", "", parameters)])["tools"]
    assert sent == {"type": "function", "name": "f", "parameters": parameters, "strict": False}


@pytest.mark.parametrize(("strict", "wire"), [(True, STRICT_SCHEMA), (False, SCHEMA)])
def test_responses_schema_goes_in_text_format(responses: Any, strict: bool, wire: Any) -> None:
    sent = responses("Hi", response_schema=ResponseSchema(SCHEMA, name="count", strict=strict))
    assert sent["text"] == {
        "format": {"type": "json_schema", "name": "count", "schema": wire, "strict": strict}
    }


def test_the_catalog_option_picks_the_responses_api_and_a_call_can_pick_chat(
    server: Any, make_hub: Any
) -> None:
    server.reply(RESPONSES_OK)
    server.reply(CHAT_OK)
    hub = make_hub("providers:\n  openai:\n    options: {api: responses}\n")
    assert hub.chat("openai/gpt-4.1", "Hi").text == "ok"
    assert server.requests[-1].url.path == "/v1/responses"
    hub.chat("openai/gpt-4.1", "Hi", provider_kwargs={"openai": {"api": "chat"}})
    assert server.requests[-1].url.path == "/v1/chat/completions"


def test_a_model_alias_can_pick_the_api_in_its_provider_kwargs(server: Any, make_hub: Any) -> None:
    server.reply(RESPONSES_OK)
    hub = make_hub(
        "models:\n  smart:\n    target: openai/gpt-4.1\n"
        "    provider_kwargs: {openai: {api: responses}, store: false}\n"
    )
    hub.chat("smart", "Hi")
    assert server.requests[-1].url.path == "/v1/responses"
    assert server.payload["store"] is False
    assert "openai" not in server.payload


@pytest.mark.parametrize("own", [{"api": "completions"}, {"apii": "chat"}, "responses"])
def test_a_wrong_openai_kwarg_is_an_invalid_request(server: Any, make_hub: Any, own: Any) -> None:
    server.reply(CHAT_OK)
    with pytest.raises(InvalidRequestError, match="provider_kwargs"):
        make_hub().chat("openai/gpt-4.1", "Hi", provider_kwargs={"openai": own})
    assert server.requests == []


def test_text_parts_of_one_user_message_stay_separate(chat: Any) -> None:
    sent = chat(Message.user(TextPart("a"), TextPart("b")))
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b"},
    ]


# ---------------------------------------------------------------------------- sampling settings


def test_chat_takes_penalties_logprobs_and_stop_sequences(chat: Any) -> None:
    sent = chat(
        "Hi",
        frequency_penalty=0.5,
        presence_penalty=-0.25,
        logprobs=True,
        top_logprobs=2,
        stop_sequences=["END"],
    )
    assert {k: sent[k] for k in sent if k not in ("model", "messages")} == {
        "frequency_penalty": 0.5,
        "presence_penalty": -0.25,
        "logprobs": True,
        "top_logprobs": 2,
        "stop": ["END"],
    }


def test_top_k_is_refused_before_any_request(server: Any, make_hub: Any) -> None:
    with pytest.raises(UnsupportedSetting, match="'top_k' setting") as caught:
        make_hub().chat("openai/gpt-4.1", "Hi", top_k=40)
    assert caught.value.setting == "top_k"
    assert "presence_penalty" in caught.value.takes
    assert server.requests == []


@pytest.mark.parametrize("option", [{"frequency_penalty": 1.0}, {"logprobs": True}])
def test_responses_refuses_chat_only_settings(responses: Any, option: Any) -> None:
    with pytest.raises(InvalidRequestError, match="Responses API has no"):
        responses("Hi", **option)


def test_chat_answers_carry_token_logprobs(server: Any, make_hub: Any) -> None:
    choice = CHAT_OK["choices"][0]  # type: ignore[index]
    logprobs = {
        "content": [
            {
                "token": "ok",
                "logprob": -0.01,
                "bytes": [111, 107],
                "top_logprobs": [
                    {"token": "ok", "logprob": -0.01, "bytes": [111, 107]},
                    {"token": "OK", "logprob": -4.6, "bytes": [79, 75]},
                ],
            }
        ],
        "refusal": None,
    }
    server.reply({**CHAT_OK, "choices": [{**choice, "logprobs": logprobs}]})
    answer = make_hub().chat("openai/gpt-4.1", "Hi", logprobs=True, top_logprobs=2)
    assert answer.logprobs == (TokenLogprob("ok", -0.01, [("ok", -0.01), ("OK", -4.6)]),)
