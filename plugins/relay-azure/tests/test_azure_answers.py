"""What relay-azure changes in relay-openai's mapping: filtered answers, Azure's stream
framing, the system role, the wire APIs it refuses, malformed answers."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from azure_support import PROMPT_FILTER_CHUNK, chunk, completion, sse

from relay_core import ContentPolicyError, InvalidRequestError, MalformedResponse
from relay_core.testing import FakeServer, json_answer

VIOLENCE = {"violence": {"filtered": True, "severity": "high"}}


def streamed(chunks: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(200, text=sse(chunks), headers={"content-type": "text/event-stream"})


def test_an_answer_cut_short_by_the_filter_keeps_its_text(make_hub: Any) -> None:
    body = completion("Once upon a", finish_reason="content_filter", filters=VIOLENCE)
    answer = make_hub(FakeServer(json_answer(body))).chat("azure/d", "Tell a story.")
    assert (answer.text, answer.finish_reason) == ("Once upon a", "content_filter")


def test_a_stream_the_filter_withheld_is_content_policy_error(make_hub: Any) -> None:
    server = FakeServer(
        streamed([PROMPT_FILTER_CHUNK, chunk({}, "content_filter", filters=VIOLENCE)])
    )
    with pytest.raises(ContentPolicyError, match="violence"):
        list(make_hub(server).stream("azure/d", "Write a violent story."))


def test_a_stream_cut_before_its_finish_is_malformed(make_hub: Any) -> None:
    cut = sse([PROMPT_FILTER_CHUNK, chunk({"content": "Hal"})]).replace("data: [DONE]\n\n", "")
    server = FakeServer(
        httpx.Response(200, text=cut, headers={"content-type": "text/event-stream"})
    )
    with pytest.raises(MalformedResponse):
        list(make_hub(server).stream("azure/d", "Hi"))


def test_the_system_prompt_is_a_system_message_whatever_the_deployment_name(
    make_hub: Any,
) -> None:
    server = FakeServer(json_answer(completion("ok")))
    make_hub(server).chat("azure/o3-mini", "Hi", system="Be brief.")
    assert server.payload["messages"][0] == {"role": "system", "content": "Be brief."}


def test_a_deployment_named_after_a_reasoning_model_gets_no_temperature(
    make_hub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Azure's o-series deployments refuse temperature and top_p as OpenAI's models do. A
    # deployment name need not name its model; Azure's default deployment name is the
    # model's, so relay-openai's model families are looked up by it.
    caplog.set_level(logging.WARNING, logger="relay")
    server = FakeServer(json_answer(completion("ok")), json_answer(completion("ok")))
    hub = make_hub(server)
    hub.chat("azure/o4-mini-sampling", "Hi", temperature=0.2, top_p=0.5)
    assert not {"temperature", "top_p"} & set(server.payload)
    (record,) = caplog.records
    assert "o4-mini-sampling" in record.getMessage()
    hub.chat("azure/prod-chat", "Hi", temperature=0.2)
    assert server.payload["temperature"] == 0.2


def test_the_responses_api_is_refused(make_hub: Any) -> None:
    server = FakeServer(json_answer(completion("ok")))
    with pytest.raises(InvalidRequestError, match="Chat Completions only"):
        make_hub(server).chat("azure/d", "Hi", provider_kwargs={"openai": {"api": "responses"}})
    assert server.payloads == []


def test_an_answer_without_choices_is_malformed(make_hub: Any) -> None:
    server = FakeServer(json_answer({"id": "x", "object": "chat.completion", "choices": []}))
    with pytest.raises(MalformedResponse, match="no choices"):
        make_hub(server).chat("azure/d", "Hi")
