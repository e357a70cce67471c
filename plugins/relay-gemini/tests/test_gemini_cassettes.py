"""Wire-format tests: Gemini's documented answers, replayed from the hand-written
cassettes in ``cassettes/relay-gemini`` (no network; see cassettes/README.md). Each
cassette also pins the request body: vcrpy matches it as JSON."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml
from gemini_support import CASSETTES, KEY, MODEL

from relay_core import (
    AuthenticationError,
    ContentPolicyError,
    ContextWindowExceeded,
    DocumentPart,
    EndEvent,
    GenerationConfig,
    Hub,
    ImagePart,
    InvalidRequestError,
    Message,
    NotFoundError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimitError,
    Request,
    ResponseSchema,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from relay_core.secrets import mask
from relay_gemini._adapter import GENERATED_ID_PREFIX

Cassette = Callable[[str], AbstractContextManager[Any]]
TARGET = f"gemini/{MODEL}"
NO_RETRY = "providers:\n  gemini: {max_retries: 0}\n"
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def recorded(name: str, index: int = 0) -> dict[str, Any]:
    interactions = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"]
    return interactions[index]  # type: ignore[no-any-return]


def sse_chunks(body: str) -> list[Any]:
    return [json.loads(frame.removeprefix("data: ")) for frame in body.split("\r\n\r\n")[:-1]]


def test_a_chat_answer(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("chat") as tape:
        got = make_hub().chat(
            TARGET, "What is the capital of France? One word.", system="You are terse."
        )
    assert tape.play_count == 1
    assert got.content == (TextPart("Paris"),)
    assert got.finish_reason == "stop"
    # Gemini 2.5 Flash thinks by default: the thoughts count as output.
    assert got.usage == Usage(input_tokens=14, output_tokens=27, reasoning_tokens=26)
    assert (got.id, got.model) == ("4Ij3aMPGLY6rz7IPpKjXuQo", MODEL)
    assert got.raw == json.loads(recorded("chat")["response"]["body"]["string"])


def test_a_streamed_answer_with_thoughts(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    request = Request.from_prompt(
        "Is 1001 prime?", model=TARGET, config=GenerationConfig(reasoning=1024)
    )
    with cassette("stream_thinking") as tape:
        events = list(make_hub().stream(request))
    assert tape.play_count == 1
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    thought = (
        "**Checking small primes**\n\n1001 ends in 1, so 2 and 5 are out. "
        "7 × 143 = 1001, and 143 = 11 × 13."
    )
    assert "".join(e.text for e in thinking) == thought
    assert not [e for e in thinking if e.signature]
    texts = [e for e in events if isinstance(e, TextDelta)]
    text = "".join(e.text for e in texts)
    assert text == "No. 1001 = 7 × 11 × 13, so it is not prime."
    # The signature came in an empty last piece: it belongs to the text before it.
    [signature] = [e.signature for e in texts if e.signature]
    assert signature.startswith("CuIBAdHtim9Q")
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.content == (ThinkingPart(thought), TextPart(text, signature=signature))
    assert end.response.usage == Usage(input_tokens=7, output_tokens=175, reasoning_tokens=154)
    assert end.response.finish_reason == "stop"
    assert end.response.id == "pZz3aKnbA5XhnsEPlP6X2A4"
    assert end.response.model == MODEL
    # raw is the chunks as they came.
    assert end.response.raw == sse_chunks(recorded("stream_thinking")["response"]["body"]["string"])


def test_parallel_function_calls_and_the_results_back(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    hub = make_hub()
    question = "Weather in Paris and in London?"
    with cassette("parallel_function_calls") as tape:
        first = hub.chat(TARGET, question, tools=[WEATHER], tool_choice="auto")
        paris, london = first.tool_calls
        # Gemini signs the first of parallel calls.
        assert (paris.signature or "").startswith("CqUCAdHtim8w")
        assert first.content == (
            ToolCallPart(paris.id, "get_weather", {"city": "Paris"}, signature=paris.signature),
            ToolCallPart(london.id, "get_weather", {"city": "London"}),
        )
        assert first.finish_reason == "tool_calls"
        assert paris.id.startswith(GENERATED_ID_PREFIX)
        assert first.usage == Usage(input_tokens=62, output_tokens=109, reasoning_tokens=79)
        conversation = [
            Message.user(question),
            first.to_message(),
            Message.tool(
                ToolResultPart.from_value(paris.id, {"temp_c": 18, "sky": "cloudy"}),
                ToolResultPart.from_value(london.id, {"temp_c": 12, "sky": "rain"}),
            ),
        ]
        second = hub.chat(TARGET, conversation, tools=[WEATHER], tool_choice="auto")
    # Both requests matched their recorded bodies: the signature went back on the call.
    assert tape.play_count == 2
    assert second.text == "Paris: 18 °C and cloudy. London: 12 °C with rain."
    assert second.finish_reason == "stop"


def test_structured_output(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    sent = json.loads(recorded("structured_output")["request"]["body"])
    schema = sent["generationConfig"]["responseJsonSchema"]
    with cassette("structured_output") as tape:
        got = make_hub().chat(
            TARGET,
            "Report the weather in Paris: 18 degrees, cloudy.",
            response_schema=ResponseSchema(schema, name="weather_report"),
        )
    assert tape.play_count == 1
    assert got.json() == {"city": "Paris", "temperature_c": 18, "conditions": "cloudy"}
    assert got.finish_reason == "stop"


def test_a_429_is_retried(
    make_hub: Callable[..., Hub], cassette: Cassette, waits: list[float]
) -> None:
    with cassette("rate_limit") as tape:
        got = make_hub().chat(TARGET, "Say hi.")
    assert got.text == "Hi!"
    assert tape.play_count == 2
    assert len(waits) == 1
    assert got.metadata["retries"] == ["RateLimitError"]


def test_a_429_waits_the_retry_delay_it_asks_for(
    make_hub: Callable[..., Hub], cassette: Cassette, waits: list[float]
) -> None:
    with cassette("rate_limit"):
        make_hub().chat(TARGET, "Say hi.")
    assert waits == [7.0]


def test_a_429_without_retries_is_a_rate_limit_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("rate_limit"), pytest.raises(RateLimitError) as caught:
        make_hub(catalog=NO_RETRY).chat(TARGET, "Say hi.")
    assert caught.value.status_code == 429
    assert "exceeded your current quota" in caught.value.provider_message


def test_an_invalid_key_is_an_authentication_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("invalid_key") as tape, pytest.raises(AuthenticationError) as caught:
        make_hub().chat(TARGET, "Say hi.")
    assert tape.play_count == 1  # not retried
    assert caught.value.status_code == 400
    assert caught.value.provider_message == "API key not valid. Please pass a valid API key."
    assert KEY not in str(caught.value)


def test_a_token_limit_is_a_context_window_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("token_limit"), pytest.raises(ContextWindowExceeded) as caught:
        make_hub().chat(TARGET, "Say hi.")
    assert caught.value.status_code == 400
    assert "exceeds the maximum number of tokens allowed (1048576)" in caught.value.provider_message
    assert not caught.value.retryable


def test_a_blocked_prompt_is_a_content_policy_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("blocked_prompt") as tape, pytest.raises(ContentPolicyError) as caught:
        make_hub().chat(TARGET, "Say hi.")
    assert tape.play_count == 1
    assert "PROHIBITED_CONTENT" in caught.value.provider_message


# ---------------------------------------------------------------------------- per capability

PNG = base64.b64decode(  # one red pixel
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
PDF = (  # one blank page
    b"%PDF-1.0\n1 0 obj<</Pages 2 0 R>>endobj 2 0 obj<</Kids[3 0 R]/Count 1>>endobj "
    b"3 0 obj<</MediaBox[0 0 3 3]>>endobj\ntrailer<</Root 1 0 R>>\n"
)
FILES = "https://generativelanguage.googleapis.com/v1beta/files"


def test_a_stream_refused_before_its_first_event_is_retried(
    make_hub: Callable[..., Hub], cassette: Cassette, waits: list[float]
) -> None:
    with cassette("stream_overloaded") as tape:
        events = list(make_hub().stream(TARGET, "Say hi."))
    assert tape.play_count == 2
    assert len(waits) == 1
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hi!"
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.content == (TextPart("Hi!"),)
    assert end.response.usage == Usage(input_tokens=4, output_tokens=18, reasoning_tokens=16)


def test_an_overloaded_stream_without_retries_is_provider_unavailable(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("stream_overloaded"), pytest.raises(ProviderUnavailable) as caught:
        list(make_hub(catalog=NO_RETRY).stream(TARGET, "Say hi."))
    assert caught.value.status_code == 503
    assert caught.value.retryable


def test_gemini_3_refuses_a_call_sent_back_without_its_signature(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    # A call made elsewhere (another provider's id, no signature) continued on Gemini 3.
    conversation = [
        Message.user("Weather in Paris?"),
        Message.assistant(ToolCallPart("call_8f2a", "get_weather", {"city": "Paris"})),
        Message.tool(ToolResultPart.from_value("call_8f2a", {"temp_c": 18, "sky": "cloudy"})),
    ]
    with (
        cassette("tool_call_without_signature") as tape,
        pytest.raises(InvalidRequestError) as caught,
    ):
        make_hub().chat("gemini/gemini-3-pro-preview", conversation, tools=[WEATHER])
    assert tape.play_count == 1  # not retried: the conversation has to change
    assert caught.value.status_code == 400
    assert "missing a thought_signature" in caught.value.provider_message


def test_a_schema_nested_too_deep_is_refused(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(6):
        schema = {"type": "object", "properties": {"child": {"type": "array", "items": schema}}}
    with cassette("structured_output_too_deep") as tape, pytest.raises(InvalidRequestError) as c:
        make_hub().chat(
            TARGET, "Describe a family tree.", response_schema=ResponseSchema(schema, name="tree")
        )
    assert tape.play_count == 1
    assert "maximum allowed nesting depth" in c.value.provider_message


def test_an_image_as_bytes(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    prompt = Message.user(
        "What colour is this pixel? One word.", ImagePart(data=PNG, media_type="image/png")
    )
    with cassette("vision_image_bytes") as tape:
        got = make_hub().chat(TARGET, prompt)
    assert tape.play_count == 1  # the body matched: inlineData with the base64 bytes
    assert got.text == "Red"
    assert got.usage == Usage(input_tokens=265, output_tokens=22, reasoning_tokens=21)


def test_an_image_by_url(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    image = ImagePart(url=f"{FILES}/8ah1l2bq7v0c", media_type="image/jpeg")
    with cassette("vision_image_url") as tape:
        got = make_hub().chat(TARGET, Message.user("What is in this image? One sentence.", image))
    assert tape.play_count == 1  # fileData with the URI and its MIME type
    assert got.text == "A ginger cat asleep on a windowsill in the sun."


def test_an_image_file_gemini_does_not_have_is_not_found(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    # Files API files expire after 48 hours; Gemini answers 403 for one it no longer has.
    image = ImagePart(url=f"{FILES}/3n2x9kq0z1ab", media_type="image/jpeg")
    with cassette("vision_file_not_found") as tape, pytest.raises(NotFoundError) as caught:
        make_hub().chat(TARGET, Message.user("What is in this image? One sentence.", image))
    assert tape.play_count == 1
    assert caught.value.status_code == 403
    assert "3n2x9kq0z1ab or it may not exist" in caught.value.provider_message


def test_bytes_that_are_no_image_are_an_invalid_request(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    image = ImagePart(data=b"GIF89a", media_type="image/png")
    with cassette("vision_invalid_image"), pytest.raises(InvalidRequestError) as caught:
        make_hub().chat(TARGET, Message.user("What colour is this pixel? One word.", image))
    assert caught.value.provider_message == "Provided image is not valid."


def test_a_pdf_document(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    document = DocumentPart(data=PDF, media_type="application/pdf")
    question = "How many pages does this PDF have? Answer with a number."
    with cassette("document_pdf") as tape:
        got = make_hub().chat(TARGET, Message.user(question, document))
    assert tape.play_count == 1
    assert got.text == "1"
    assert got.usage.input_tokens == 271


def test_a_pdf_without_pages_is_an_invalid_request(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    document = DocumentPart(data=b"%PDF-1.7\n%%EOF\n", media_type="application/pdf")
    with cassette("document_no_pages") as tape, pytest.raises(InvalidRequestError) as caught:
        make_hub().chat(TARGET, Message.user("Summarise this PDF.", document))
    assert tape.play_count == 1
    assert caught.value.provider_message == "The document has no pages."


def test_a_thinking_budget_the_model_does_not_take(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("thinking_budget_invalid") as tape, pytest.raises(InvalidRequestError) as c:
        make_hub().chat(TARGET, "Is 1001 prime?", reasoning=40000)
    assert tape.play_count == 1
    assert c.value.provider_message == "The thinking budget (40000) is invalid."


def test_system_prompt_sampling_stop_and_seed(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("generation_config") as tape:
        got = make_hub().chat(
            TARGET,
            "Name the three primary colours, one per line.",
            system="Answer in lower case.",
            temperature=0.0,
            top_p=0.5,
            max_tokens=256,
            stop=["\n"],
            seed=42,
        )
    assert tape.play_count == 1  # systemInstruction and generationConfig as recorded
    # Gemini stops before the stop sequence and reports STOP.
    assert (got.text, got.finish_reason) == ("red", "stop")


def test_depleted_prepay_credits_are_an_exhausted_quota(
    make_hub: Callable[..., Hub], cassette: Cassette, waits: list[float]
) -> None:
    with cassette("quota_exceeded") as tape, pytest.raises(QuotaExceeded) as caught:
        make_hub().chat(TARGET, "Say hi.")
    assert tape.play_count == 1  # not retried: waiting does not bring credit back
    assert waits == []
    assert caught.value.status_code == 402
    assert "prepayment credits are depleted" in caught.value.provider_message


def test_cassettes_hold_no_key_and_follow_the_wire_format() -> None:
    # The batch cassettes have their own check, in test_gemini_batches.
    files = sorted(p for p in CASSETTES.glob("*.yaml") if not p.name.startswith("batch_"))
    assert len(files) >= 20
    for path in files:
        text = path.read_text()
        assert "AIza" not in text, path.name
        assert mask(text) == text, path.name
        for interaction in yaml.safe_load(text)["interactions"]:
            request, response = interaction["request"], interaction["response"]
            headers = {name.lower() for name in request["headers"]}
            assert not headers & {"x-goog-api-key", "authorization", "cookie"}, path.name
            assert "key=" not in request["uri"], path.name
            assert re.fullmatch(
                r"https://generativelanguage\.googleapis\.com/v1beta/models/[\w.-]+:"
                r"(generateContent|streamGenerateContent\?alt=sse|batchEmbedContents|countTokens)",
                request["uri"],
            ), path.name
            assert "set-cookie" not in {name.lower() for name in response["headers"]}
            body = response["body"]["string"]
            if request["uri"].endswith("?alt=sse") and response["status"]["code"] == 200:
                assert response["headers"]["content-type"] == ["text/event-stream"]
                # Every event: one data line of JSON, ended by a blank line (CRLF framed).
                frames = body.split("\r\n\r\n")
                assert frames[-1] == ""
                for frame in frames[:-1]:
                    assert frame.startswith("data: "), frame
                    assert "\n" not in frame, frame
                    chunk = json.loads(frame.removeprefix("data: "))
                    assert set(chunk) <= {
                        "candidates",
                        "usageMetadata",
                        "modelVersion",
                        "responseId",
                        "promptFeedback",
                    }
            elif response["status"]["code"] >= 400:
                error = json.loads(body)["error"]
                assert error["code"] == response["status"]["code"]
                assert {"code", "message", "status"} <= set(error)
            elif request["uri"].endswith(":batchEmbedContents"):
                # Embedding answers carry vectors only: no usage, version or id.
                assert set(json.loads(body)) == {"embeddings"}
            elif request["uri"].endswith(":countTokens"):
                assert set(json.loads(body)) <= {
                    "totalTokens",
                    "cachedContentTokenCount",
                    "promptTokensDetails",
                    "cacheTokensDetails",
                }
            else:
                answer = json.loads(body)
                assert {"usageMetadata", "modelVersion", "responseId"} <= set(answer)
                assert "candidates" in answer or "blockReason" in answer["promptFeedback"]
