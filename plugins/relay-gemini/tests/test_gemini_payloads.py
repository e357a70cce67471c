"""The exact JSON the adapter sends for every mapping, the URL, and the key's header."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from gemini_support import BASE, KEY, MODEL, Recorder, answer, sse_answer, stream_of

from relay_core import (
    ConfigError,
    DocumentPart,
    GenerationConfig,
    Hub,
    ImagePart,
    InvalidRequestError,
    Message,
    Request,
    ResponseSchema,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from relay_gemini._adapter import GENERATED_ID_PREFIX, REASONING_BUDGETS

TARGET = f"gemini/{MODEL}"
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
)


def sent(make_hub: Callable[..., Hub], *args: Any, catalog: str = "", **options: Any) -> Recorder:
    recorder = Recorder()
    make_hub(recorder, catalog).chat(TARGET, *args, **options)
    return recorder


def test_a_prompt_becomes_the_minimal_payload(make_hub: Callable[..., Hub]) -> None:
    recorder = sent(make_hub, "Hello")
    assert recorder.payload == {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
    request = recorder.requests[-1]
    assert (request.method, str(request.url)) == (
        "POST",
        f"{BASE}/models/{MODEL}:generateContent",
    )
    assert request.headers["x-goog-api-key"] == KEY
    assert "authorization" not in request.headers
    assert KEY not in str(request.url)
    assert request.url.params.get("key") is None


def test_the_stream_url_asks_for_sse_and_keeps_the_key_out(make_hub: Callable[..., Hub]) -> None:
    recorder = Recorder(sse_answer(stream_of(answer([{"text": "Hi"}]))))
    list(make_hub(recorder).stream(TARGET, "Hello"))
    request = recorder.requests[-1]
    assert str(request.url) == f"{BASE}/models/{MODEL}:streamGenerateContent?alt=sse"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["x-goog-api-key"] == KEY
    assert KEY not in str(request.url)
    assert recorder.payload == {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini-2.5-pro", "/models/gemini-2.5-pro:generateContent"),
        ("tunedModels/my-model-7", "/tunedModels/my-model-7:generateContent"),
        ("models/gemini-2.5-flash", "/models/gemini-2.5-flash:generateContent"),
    ],
)
def test_model_names_and_resource_names(
    make_hub: Callable[..., Hub], model: str, path: str
) -> None:
    recorder = Recorder()
    make_hub(recorder).chat(f"gemini/{model}", "Hi")
    assert recorder.requests[-1].url.path == "/v1beta" + path


def test_system_and_generation_config(make_hub: Callable[..., Hub]) -> None:
    recorder = sent(
        make_hub,
        "Hello",
        system="Be terse.",
        temperature=0.3,
        top_p=0.9,
        max_tokens=256,
        stop=["END", "###"],
        seed=7,
    )
    assert recorder.payload == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "generationConfig": {
            "temperature": 0.3,
            "topP": 0.9,
            "maxOutputTokens": 256,
            "stopSequences": ["END", "###"],
            "seed": 7,
        },
    }


def test_catalog_params_reach_the_payload(make_hub: Callable[..., Hub]) -> None:
    catalog = f"models:\n  fast:\n    target: gemini/{MODEL}\n    params: {{temperature: 0.1}}\n"
    recorder = Recorder()
    make_hub(recorder, catalog).chat("fast", "Hi")
    assert recorder.payload["generationConfig"] == {"temperature": 0.1}


@pytest.mark.parametrize(("effort", "budget"), sorted(REASONING_BUDGETS.items()))
def test_reasoning_effort_becomes_a_thinking_budget(
    make_hub: Callable[..., Hub], effort: str, budget: int
) -> None:
    recorder = sent(make_hub, "Hi", reasoning=effort)
    assert recorder.payload["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": budget, "includeThoughts": True}
    }


def test_the_effort_table() -> None:
    assert REASONING_BUDGETS == {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


def test_a_budget_is_sent_as_given_and_zero_switches_thinking_off(
    make_hub: Callable[..., Hub],
) -> None:
    recorder = sent(make_hub, "Hi", reasoning=2048)
    assert recorder.payload["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048,
        "includeThoughts": True,
    }
    recorder = sent(make_hub, Request.from_prompt("Hi", config=GenerationConfig(reasoning=0)))
    assert recorder.payload["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 0}}


def test_structured_output_uses_the_json_schema_field(make_hub: Callable[..., Hub]) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"$ref": "#/$defs/city"}},
        "required": ["city"],
        "additionalProperties": False,
        "$defs": {"city": {"type": "string"}},
    }
    recorder = sent(make_hub, "Paris", response_schema=ResponseSchema(schema, name="place"))
    assert recorder.payload["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    assert "responseSchema" not in recorder.payload["generationConfig"]


def test_tools_become_function_declarations(make_hub: Callable[..., Hub]) -> None:
    recorder = sent(make_hub, "Weather?", tools=[WEATHER, Tool("now")])
    assert recorder.payload["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parametersJsonSchema": WEATHER.parameters,
                },
                {"name": "now", "parametersJsonSchema": {"type": "object", "properties": {}}},
            ]
        }
    ]
    assert "toolConfig" not in recorder.payload


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_tool_choice_becomes_the_function_calling_mode(
    make_hub: Callable[..., Hub], choice: str, config: dict[str, Any]
) -> None:
    recorder = sent(make_hub, "Weather?", tools=[WEATHER], tool_choice=choice)
    assert recorder.payload["toolConfig"] == {"functionCallingConfig": config}


def test_images_and_documents(make_hub: Callable[..., Hub]) -> None:
    png, pdf = b"\x89PNG\r\n\x1a\n fake", b"%PDF-1.7 fake"
    recorder = sent(
        make_hub,
        Message.user(
            "Compare these.",
            ImagePart(data=png, media_type="image/png"),
            ImagePart(url="https://example.com/cat.jpg"),
            ImagePart(url="https://example.com/photo", media_type="image/webp"),
            DocumentPart(data=pdf, name="report.pdf"),
            DocumentPart(url="https://example.com/paper.pdf"),
            DocumentPart(data=b"plain words", media_type="text/plain"),
        ),
    )
    assert recorder.payload["contents"][0]["parts"] == [
        {"text": "Compare these."},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}},
        {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": "https://example.com/photo", "mimeType": "image/webp"}},
        {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(pdf).decode()}},
        {"fileData": {"fileUri": "https://example.com/paper.pdf", "mimeType": "application/pdf"}},
        {
            "inlineData": {
                "mimeType": "text/plain",
                "data": base64.b64encode(b"plain words").decode(),
            }
        },
    ]


def test_an_image_url_of_unknown_type_goes_without_a_mime_type(
    make_hub: Callable[..., Hub],
) -> None:
    recorder = sent(make_hub, Message.user(ImagePart(url="https://example.com/render")))
    assert recorder.payload["contents"][0]["parts"] == [
        {"fileData": {"fileUri": "https://example.com/render"}}
    ]


def test_image_bytes_without_a_media_type_are_refused(make_hub: Callable[..., Hub]) -> None:
    recorder = Recorder()
    with pytest.raises(InvalidRequestError, match="media_type"):
        make_hub(recorder).chat(TARGET, Message.user(ImagePart(data=b"xx")))
    assert recorder.requests == []


def test_a_tool_conversation(make_hub: Callable[..., Hub]) -> None:
    generated = GENERATED_ID_PREFIX + "0123abcd"
    conversation = [
        Message.user("Weather in Paris and London? And the time?"),
        Message.assistant(
            "Looking.",
            ToolCallPart(generated, "get_weather", {"city": "Paris"}),
            ToolCallPart("fc_7", "get_weather", {"city": "London"}),
            ToolCallPart("fc_8", "now", {}),
        ),
        Message.tool(
            ToolResultPart(generated, '{"temp_c": 18, "sky": "cloudy"}'),
            ToolResultPart("fc_7", "12"),
            ToolResultPart("fc_8", "not JSON at all", name="now"),
        ),
        Message.tool(ToolResultPart("fc_9", '["a", 1]', name="lookup", is_error=True)),
        Message.user("Thanks."),
    ]
    recorder = sent(make_hub, conversation, tools=[WEATHER])
    assert recorder.payload["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and London? And the time?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Looking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "London"}, "id": "fc_7"}},
                {"functionCall": {"name": "now", "args": {}, "id": "fc_8"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                # Gemini's function results are objects: the name comes from the call.
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"temp_c": 18, "sky": "cloudy"},
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"result": 12},
                        "id": "fc_7",
                    }
                },
                {
                    "functionResponse": {
                        "name": "now",
                        "response": {"result": "not JSON at all"},
                        "id": "fc_8",
                    }
                },
                {
                    "functionResponse": {
                        "name": "lookup",
                        "response": {"error": ["a", 1]},
                        "id": "fc_9",
                    }
                },
                {"text": "Thanks."},
            ],
        },
    ]


def test_a_tool_result_without_a_name_is_refused(make_hub: Callable[..., Hub]) -> None:
    recorder = Recorder()
    conversation = [Message.user("Hi"), Message.tool(ToolResultPart("call_x", "1"))]
    with pytest.raises(InvalidRequestError, match="'call_x' needs the function's name"):
        make_hub(recorder).chat(TARGET, conversation)
    assert recorder.requests == []


def test_signatures_go_back_on_their_parts_and_thinking_as_thoughts(
    make_hub: Callable[..., Hub],
) -> None:
    conversation = [
        Message.user("Is 1001 prime?"),
        Message.assistant(
            ThinkingPart("1001 = 7 × 143.", signature="c2lnLXRob3VnaHQ="),
            ThinkingPart("Check 11 too."),
            TextPart("Checking.", signature="c2lnLXRleHQ="),
            ToolCallPart(
                GENERATED_ID_PREFIX + "1", "factor", {"n": 1001}, signature="c2lnLWNhbGw="
            ),
            ToolCallPart("fc-2", "factor", {"n": 143}),
            TextPart("", signature="c2lnLWVtcHR5"),  # a signature alone still goes back
            ThinkingPart("", signature="redacted-from-elsewhere", redacted=True),
            ThinkingPart(""),  # says nothing: left out
            TextPart(""),  # Gemini refuses empty text: left out
        ),
        Message.user("Why?"),
    ]
    recorder = sent(make_hub, conversation)
    assert recorder.payload["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "1001 = 7 × 143.", "thought": True, "thoughtSignature": "c2lnLXRob3VnaHQ="},
            {"text": "Check 11 too.", "thought": True},
            {"text": "Checking.", "thoughtSignature": "c2lnLXRleHQ="},
            {
                "functionCall": {"name": "factor", "args": {"n": 1001}},
                "thoughtSignature": "c2lnLWNhbGw=",
            },
            {"functionCall": {"name": "factor", "args": {"n": 143}, "id": "fc-2"}},
            {"text": "", "thoughtSignature": "c2lnLWVtcHR5"},
        ],
    }


def test_signatures_kept_the_older_way_still_ride_their_parts(
    make_hub: Callable[..., Hub],
) -> None:
    # Before parts had a signature, relay-gemini kept one as a signature-only ThinkingPart
    # right after its call or text; answers stored that way still go back right.
    conversation = [
        Message.user("Is 1001 prime?"),
        Message.assistant(
            ThinkingPart("1001 = 7 × 143.", signature="c2lnLXRob3VnaHQ="),
            ThinkingPart("Check 11 too."),
            ToolCallPart(GENERATED_ID_PREFIX + "1", "factor", {"n": 1001}),
            ThinkingPart("", signature="c2lnLWNhbGw="),
            ToolCallPart(GENERATED_ID_PREFIX + "2", "factor", {"n": 143}),
            "So no.",
            ThinkingPart("", signature="c2lnLXRleHQ="),
            ThinkingPart("", signature="redacted-from-elsewhere", redacted=True),
            ThinkingPart(""),  # says nothing: left out
        ),
        Message.user("Why?"),
    ]
    recorder = sent(make_hub, conversation)
    assert recorder.payload["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "1001 = 7 × 143.", "thought": True, "thoughtSignature": "c2lnLXRob3VnaHQ="},
            {"text": "Check 11 too.", "thought": True},
            {
                "functionCall": {"name": "factor", "args": {"n": 1001}},
                "thoughtSignature": "c2lnLWNhbGw=",
            },
            {"functionCall": {"name": "factor", "args": {"n": 143}}},
            {"text": "So no.", "thoughtSignature": "c2lnLXRleHQ="},
        ],
    }


def test_empty_text_is_sent_only_to_carry_a_signature(make_hub: Callable[..., Hub]) -> None:
    conversation = [
        Message.user("", "Hi"),
        Message.assistant("", ThinkingPart("", signature="c2ln")),
        Message.assistant(""),  # nothing left: the turn is skipped
        Message.user("Again"),
    ]
    recorder = sent(make_hub, conversation)
    assert recorder.payload["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "", "thoughtSignature": "c2ln"}]},
        {"role": "user", "parts": [{"text": "Again"}]},
    ]


def test_provider_kwargs_are_merged_in(make_hub: Callable[..., Hub]) -> None:
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    recorder = sent(
        make_hub,
        "Hi",
        temperature=0.5,
        tools=[WEATHER],
        tool_choice="auto",
        provider_kwargs={
            "safetySettings": safety,
            "cachedContent": "cachedContents/abc123",
            "generationConfig": {"topK": 40, "temperature": 0.9},
            "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}},
        },
    )
    payload = recorder.payload
    assert payload["safetySettings"] == safety
    assert payload["cachedContent"] == "cachedContents/abc123"
    # Key by key: the mapped settings stay unless a kwarg names the same field.
    assert payload["generationConfig"] == {"temperature": 0.9, "topK": 40}
    assert payload["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}


def test_gemini_s_dynamic_budget_goes_through_provider_kwargs(
    make_hub: Callable[..., Hub],
) -> None:
    # reasoning takes budgets >= 0 only; -1 (the model decides) is Gemini's own.
    with pytest.raises(ValueError, match="budget >= 0"):
        GenerationConfig(reasoning=-1)
    dynamic = {"generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}}
    catalog = (
        "models:\n  flash:\n    target: gemini/gemini-2.5-flash\n"
        f"    provider_kwargs: {json.dumps(dynamic)}\n"
    )
    recorder = Recorder()
    hub = make_hub(recorder, catalog)
    # The catalog's kwargs, the call's and the mapped settings all reach the payload,
    # merged key by key.
    hub.chat("flash", "Hi", temperature=0.2, provider_kwargs={"generationConfig": {"topK": 40}})
    assert recorder.payload["generationConfig"] == {
        "temperature": 0.2,
        "topK": 40,
        "thinkingConfig": {"thinkingBudget": -1},
    }
    # With reasoning set too, the kwarg's budget wins and thought summaries stay on.
    hub.chat("flash", "Hi", reasoning="high")
    assert recorder.payload["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True}
    }


def test_options_are_refused(make_hub: Callable[..., Hub]) -> None:
    catalog = "providers:\n  gemini:\n    options: {api_version: v1}\n"
    with pytest.raises(ConfigError, match=r"unknown option\(s\) api_version"):
        make_hub(Recorder(), catalog).chat(TARGET, "Hi")


def test_google_api_key_through_the_catalog(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "AIzaSyOTHERTESTKEY-0123456789abcdefghij"
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("GOOGLE_API_KEY", other)
    recorder = Recorder()
    catalog = "providers:\n  gemini:\n    api_key: $env.GOOGLE_API_KEY\n"
    make_hub(recorder, catalog).chat(TARGET, "Hi")
    assert recorder.requests[-1].headers["x-goog-api-key"] == other
