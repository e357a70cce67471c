"""Wire-format tests: Anthropic's documented answers, replayed from the hand-written
cassettes in ``cassettes/relay-anthropic`` (no network; see cassettes/README.md)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml
from anthropic_support import CASSETTES, KEY, MODEL

from relay_core import (
    AuthenticationError,
    ContextWindowExceeded,
    DocumentPart,
    EndEvent,
    GenerationConfig,
    Hub,
    ImagePart,
    InvalidRequestError,
    MalformedResponse,
    Message,
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

Cassette = Callable[[str], AbstractContextManager[Any]]
TARGET = f"anthropic/{MODEL}"
NO_RETRY = "providers:\n  anthropic: {max_retries: 0}\n"
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


# A 1x1 PNG and a one-object PDF: tiny, so the cassettes stay readable.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def recorded_body(name: str, index: int = 0) -> Any:
    interactions = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"]
    return json.loads(interactions[index]["request"]["body"])


def test_a_chat_answer(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    with cassette("chat") as tape:
        answer = make_hub().chat(
            TARGET, "What is the capital of France? One word.", system="You are terse."
        )
    assert answer.text == "Paris."
    assert answer.finish_reason == "stop"
    assert answer.usage == Usage(input_tokens=1214, output_tokens=5, cached_input_tokens=1200)
    assert answer.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert answer.model == MODEL
    assert tape.play_count == 1
    sent = json.loads(tape.requests[0].body)
    assert sent == recorded_body("chat")


def test_a_streamed_answer_with_signed_thinking(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    request = Request.from_prompt(
        "Is 1001 prime?", model=TARGET, config=GenerationConfig(reasoning=2048)
    )
    with cassette("stream_thinking") as tape:
        events = list(make_hub().stream(request))
    assert json.loads(tape.requests[0].body) == recorded_body("stream_thinking")
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert "".join(e.text for e in thinking) == "1001 = 7 × 143, and 143 = 11 × 13."
    [signature] = [e.signature for e in thinking if e.signature]
    assert signature.startswith("EuYBCkQYAiJA")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "No: 1001 = 7 × 11 × 13."
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.content == (
        ThinkingPart("1001 = 7 × 143, and 143 = 11 × 13.", signature=signature),
        TextPart("No: 1001 = 7 × 11 × 13."),
    )
    assert end.response.usage == Usage(input_tokens=41, output_tokens=62)
    assert end.response.finish_reason == "stop"
    assert end.response.id == "msg_01Aq9w938a90dw8q"


def test_parallel_tool_calls_whole_and_streamed_are_the_same(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    hub = make_hub()
    with cassette("tool_calls"):
        whole = hub.chat(
            TARGET, "Weather in Paris and in London?", tools=[WEATHER], tool_choice="auto"
        )
    assert whole.content == (
        TextPart("I'll look up both cities."),
        ToolCallPart("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "Paris"}),
        ToolCallPart("toolu_01B4zRk2vXj8YQcN5pW3sTuM", "get_weather", {"city": "London"}),
    )
    assert whole.finish_reason == "tool_calls"
    with cassette("stream_tool_calls"):
        events = list(
            hub.stream(
                TARGET, "Weather in Paris and in London?", tools=[WEATHER], tool_choice="auto"
            )
        )
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.response.content == whole.content
    assert end.response.usage == whole.usage
    assert end.response.finish_reason == whole.finish_reason


def test_structured_output_through_the_forced_tool(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    schema = recorded_body("structured_output")["tools"][0]["input_schema"]
    with cassette("structured_output") as tape:
        answer = make_hub().chat(
            TARGET,
            "Report the weather in Paris: 18 degrees, cloudy.",
            response_schema=ResponseSchema(schema, name="weather_report"),
        )
    sent = json.loads(tape.requests[0].body)
    assert sent == recorded_body("structured_output")
    assert sent["tool_choice"] == {"type": "tool", "name": "weather_report"}
    assert answer.json() == {"city": "Paris", "temperature_c": 18, "conditions": "cloudy"}
    assert answer.tool_calls == ()
    assert answer.finish_reason == "stop"


def test_a_429_is_retried_after_the_wait_it_asks_for(
    make_hub: Callable[..., Hub], cassette: Cassette, waits: list[float]
) -> None:
    with cassette("rate_limit") as tape:
        answer = make_hub().chat(TARGET, "Say hi.")
    assert answer.text == "Hi!"
    assert waits == [7.0]
    assert tape.play_count == 2
    assert answer.metadata["retries"] == ["RateLimitError"]


def test_a_429_without_retries_is_a_rate_limit_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("rate_limit"), pytest.raises(RateLimitError) as caught:
        make_hub(catalog=NO_RETRY).chat(TARGET, "Say hi.")
    assert caught.value.retry_after == 7.0
    assert caught.value.status_code == 429
    assert "50 requests per minute" in caught.value.provider_message


def test_a_529_overloaded_is_unavailable_and_retried(
    make_hub: Callable[..., Hub], cassette: Cassette, waits: list[float]
) -> None:
    with cassette("overloaded"), pytest.raises(ProviderUnavailable) as caught:
        make_hub(catalog=NO_RETRY).chat(TARGET, "Say hi.")
    assert (caught.value.status_code, caught.value.provider_message) == (529, "Overloaded")
    with cassette("overloaded"):
        assert make_hub().chat(TARGET, "Say hi.").text == "Hi!"
    assert len(waits) == 1


def test_overloaded_mid_stream_is_unavailable(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    seen: list[Any] = []

    def drain() -> None:
        seen.extend(make_hub().stream(TARGET, "Say hi."))

    with cassette("stream_overloaded"), pytest.raises(ProviderUnavailable) as caught:
        drain()
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Hi"]
    assert caught.value.provider_message == "Overloaded"
    assert caught.value.status_code is None  # the stream itself had answered 200


def test_a_prompt_too_long_is_a_context_window_error(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("prompt_too_long"), pytest.raises(ContextWindowExceeded) as caught:
        make_hub().chat(TARGET, "Say hi.")
    assert caught.value.status_code == 400
    assert caught.value.provider_message == "prompt is too long: 208310 tokens > 200000 maximum"
    assert not caught.value.retryable


def test_a_401_is_an_authentication_error_without_the_key(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("unauthorized") as tape, pytest.raises(AuthenticationError) as caught:
        make_hub().chat(TARGET, "Say hi.")
    assert tape.play_count == 1  # not retried
    assert caught.value.provider_message == "invalid x-api-key"
    assert KEY not in str(caught.value)


def test_tool_results_go_back_and_the_answer_uses_them(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    hub = make_hub()
    question = Message.user("Weather in Paris and in London?")
    with cassette("tool_calls"):
        calls = hub.chat(TARGET, [question], tools=[WEATHER], tool_choice="auto")
    paris, london = calls.tool_calls
    conversation = [
        question,
        calls.to_message(),
        Message.tool(ToolResultPart(paris.id, "18°C, sunny")),
        Message.tool(ToolResultPart(london.id, "station offline", is_error=True)),
    ]
    with cassette("tool_results") as tape:
        answer = hub.chat(TARGET, conversation, tools=[WEATHER], tool_choice="auto")
    sent = json.loads(tape.requests[0].body)
    assert sent == recorded_body("tool_results")
    # The assistant's calls go back as sent, and both results in one user turn after them.
    assert [turn["role"] for turn in sent["messages"]] == ["user", "assistant", "user"]
    assert [block["type"] for block in sent["messages"][2]["content"]] == ["tool_result"] * 2
    assert answer.text.startswith("Paris is sunny at 18°C.")
    assert (answer.finish_reason, answer.tool_calls) == ("stop", ())


def test_a_tool_result_without_its_call_is_refused_and_not_retried(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    call = ToolCallPart("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "Paris"})
    conversation = [
        Message.user("Weather in Paris and in London?"),
        Message.assistant(call),
        Message.tool(ToolResultPart("toolu_01WrongId000000000000000", "18°C, sunny")),
    ]
    with cassette("tool_result_unmatched") as tape, pytest.raises(InvalidRequestError) as caught:
        make_hub().chat(TARGET, conversation, tools=[WEATHER])
    assert tape.play_count == 1
    assert caught.value.status_code == 400
    assert "unexpected `tool_use_id`" in caught.value.provider_message


def test_structured_output_that_breaks_the_schema_is_asked_again(
    make_hub: Callable[..., Hub], cassette: Cassette, waits: list[float]
) -> None:
    schema = ResponseSchema(
        recorded_body("structured_output")["tools"][0]["input_schema"], name="weather_report"
    )
    prompt = "Report the weather in Oslo: 4 degrees, rain."
    with cassette("structured_output_retry"), pytest.raises(MalformedResponse) as caught:
        make_hub(catalog=NO_RETRY).chat(TARGET, prompt, response_schema=schema)
    assert "$.temperature_c" in str(caught.value)
    assert caught.value.retryable
    with cassette("structured_output_retry") as tape:
        answer = make_hub().chat(TARGET, prompt, response_schema=schema)
    assert tape.play_count == 2
    assert answer.json() == {"city": "Oslo", "temperature_c": 4, "conditions": "rain"}
    assert answer.metadata["retries"] == ["MalformedResponse"]


def test_images_by_url_and_by_bytes(make_hub: Callable[..., Hub], cassette: Cassette) -> None:
    prompt = Message.user(
        "What is in these two images?",
        ImagePart(
            url="https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"
        ),
        ImagePart(data=PNG, media_type="image/png"),
    )
    with cassette("vision") as tape:
        answer = make_hub().chat(TARGET, prompt)
    sent = json.loads(tape.requests[0].body)
    assert sent == recorded_body("vision")
    url, data = sent["messages"][0]["content"][1:]
    assert url["source"]["type"] == "url"
    assert base64.b64decode(data["source"]["data"]) == PNG
    assert answer.text.endswith("a single red pixel.")


def test_an_image_of_another_type_than_declared_is_refused(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
    prompt = Message.user("What is in this image?", ImagePart(data=jpeg, media_type="image/png"))
    with cassette("vision_wrong_media_type") as tape, pytest.raises(InvalidRequestError) as caught:
        make_hub().chat(TARGET, prompt)
    assert tape.play_count == 1
    assert "appears to be a image/jpeg image" in caught.value.provider_message


def test_pdf_documents_by_bytes_and_by_url(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    prompt = Message.user(
        DocumentPart(data=PDF, name="invoice.pdf"),
        DocumentPart(url="https://example.com/reports/annual-report-2024.pdf"),
        "Summarise both documents in one sentence each.",
    )
    with cassette("documents") as tape:
        answer = make_hub().chat(TARGET, prompt)
    sent = json.loads(tape.requests[0].body)
    assert sent == recorded_body("documents")
    pdf = sent["messages"][0]["content"][0]
    assert (pdf["title"], pdf["source"]["media_type"]) == ("invoice.pdf", "application/pdf")
    assert base64.b64decode(pdf["source"]["data"]) == PDF
    assert answer.text.startswith("invoice.pdf is")


def test_bytes_that_are_no_pdf_are_refused(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    prompt = Message.user(
        DocumentPart(data=b"not a pdf at all", media_type="application/pdf"), "Summarise."
    )
    with cassette("document_invalid") as tape, pytest.raises(InvalidRequestError) as caught:
        make_hub().chat(TARGET, prompt)
    assert tape.play_count == 1
    assert caught.value.provider_message.endswith("The PDF specified was not valid.")


def test_system_prompt_and_stop_sequence_are_sent_and_seed_is_not(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("system_stop_seed") as tape:
        answer = make_hub().chat(
            TARGET,
            "Count from 1 to 10, then write END.",
            system="Answer with numbers only.",
            stop=["END"],
            seed=7,
            temperature=0.0,
            max_tokens=50,
        )
    sent = json.loads(tape.requests[0].body)
    assert sent == recorded_body("system_stop_seed")
    assert (sent["system"], sent["stop_sequences"]) == ("Answer with numbers only.", ["END"])
    assert "seed" not in sent
    # Stopped by the stop sequence, which Anthropic leaves out of the text.
    assert (answer.text, answer.finish_reason) == ("1 2 3 4 5 6 7 8 9 10 ", "stop")


def test_thinking_with_a_temperature_is_refused_by_the_api(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    # Relay drops a `temperature=` setting thinking refuses (test_anthropic_payloads), so
    # the API's answer is reached only through provider_kwargs, which go untouched.
    with cassette("thinking_temperature") as tape, pytest.raises(InvalidRequestError) as caught:
        make_hub().chat(
            TARGET, "Is 1001 prime?", reasoning="low", provider_kwargs={"temperature": 0.2}
        )
    sent = json.loads(tape.requests[0].body)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert tape.play_count == 1
    assert "only be set to 1 when thinking is enabled" in caught.value.provider_message


def test_a_402_billing_error_is_quota_exceeded_and_not_retried(
    make_hub: Callable[..., Hub], cassette: Cassette, waits: list[float]
) -> None:
    with cassette("billing_error") as tape, pytest.raises(QuotaExceeded) as caught:
        make_hub().chat(TARGET, "Say hi.")  # retries on: the default max_retries
    assert tape.play_count == 1
    assert waits == []
    assert not caught.value.retryable
    assert caught.value.status_code == 402
    assert caught.value.provider_message.startswith("Your credit balance is too low")


def test_cassettes_hold_no_key_and_follow_the_wire_format() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 26
    for path in files:
        text = path.read_text()
        assert "sk-ant-" not in text, path.name
        assert mask(text) == text, path.name
        for interaction in yaml.safe_load(text)["interactions"]:
            request, response = interaction["request"], interaction["response"]
            headers = {name.lower() for name in request["headers"]}
            assert not headers & {"x-api-key", "authorization", "cookie"}, path.name
            assert request["headers"]["anthropic-version"] == ["2023-06-01"]
            assert "set-cookie" not in {name.lower() for name in response["headers"]}
            body = response["body"]["string"]
            content_type = response["headers"]["content-type"][0]
            if content_type.startswith("text/event-stream"):
                assert json.loads(request["body"])["stream"] is True
                # Every event: an event line naming the type its data carries, a blank line.
                for frame in body.split("\n\n")[:-1]:
                    match = re.fullmatch(r"event: (\w+)\ndata: (.+)", frame)
                    assert match, frame
                    assert json.loads(match.group(2))["type"] == match.group(1)
                assert body.endswith("\n\n")
            elif response["status"]["code"] >= 400:
                error = json.loads(body)
                assert error["type"] == "error"
                assert set(error["error"]) == {"type", "message"}
            elif content_type == "application/x-jsonl":
                _check_batch_results(body)
            elif request["uri"].endswith("/messages/count_tokens"):
                assert set(json.loads(body)) == {"input_tokens"}
            elif "/messages/batches" in request["uri"]:
                answer = json.loads(body)
                if "?" in request["uri"]:  # a list page
                    assert set(answer) == {"data", "has_more", "first_id", "last_id"}
                    assert [b["id"] for b in answer["data"][:1]] == [answer["first_id"]]
                    assert answer["data"][-1]["id"] == answer["last_id"]
                for batch in answer.get("data", [answer]):
                    _check_message_batch(batch)
            else:
                assert json.loads(body)["type"] == "message"


BATCH_FIELDS = {
    "id",
    "type",
    "processing_status",
    "request_counts",
    "ended_at",
    "created_at",
    "expires_at",
    "archived_at",
    "cancel_initiated_at",
    "results_url",
}


def _check_message_batch(batch: dict[str, Any]) -> None:
    assert set(batch) == BATCH_FIELDS
    assert batch["type"] == "message_batch"
    assert batch["id"].startswith("msgbatch_")
    assert batch["processing_status"] in {"in_progress", "canceling", "ended"}
    counts = batch["request_counts"]
    assert set(counts) == {"processing", "succeeded", "errored", "canceled", "expired"}
    ended = batch["processing_status"] == "ended"
    assert counts["processing"] == 0 or not ended
    assert (batch["ended_at"] is not None) is ended
    assert (batch["results_url"] is not None) is ended
    if batch["results_url"]:
        assert batch["results_url"].endswith(f"/messages/batches/{batch['id']}/results")


def _check_batch_results(body: str) -> None:
    """Every line that is JSON (one is cut short on purpose) is a documented result."""
    assert body.endswith("\n")
    for line in body.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        assert set(entry) == {"custom_id", "result"}
        result = entry["result"]
        assert result["type"] in {"succeeded", "errored", "canceled", "expired"}
        if result["type"] == "succeeded":
            assert set(result) == {"type", "message"}
            assert result["message"]["type"] == "message"
        elif result["type"] == "errored":
            assert set(result) == {"type", "error"}
            assert result["error"]["type"] == "error"
            assert set(result["error"]["error"]) == {"type", "message"}
        else:
            assert set(result) == {"type"}
