"""The cache through a real hub: when a call is served from it, what a hit looks like,
what shares an entry and what does not, streaming, and what is never stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
from cache_support import Calls

import relay_mock
from relay_core import (
    EndEvent,
    GuardrailViolation,
    Hub,
    MalformedResponse,
    PluginNotInstalled,
    ProviderUnavailable,
    Request,
    Response,
    TextDelta,
    Tool,
    ToolCallDelta,
    UsageEvent,
    hookimpl,
)
from relay_core.testing import hub_for

MakeHub = Callable[..., Hub]

TWO_MODELS = """
models:
  fast: {target: mock/echo}
  other: {target: mock/other}
"""


async def test_a_second_identical_call_is_served_from_the_cache(
    make_hub: MakeHub, calls: Calls
) -> None:
    hub = make_hub()
    first = await hub.achat("mock/echo", "What is 2+2?", cache=True)
    second = await hub.achat("mock/echo", "What is 2+2?", cache=True)

    assert calls.chat == 1
    assert "cached" not in first.metadata
    assert first.cost.amount is not None
    assert first.cost.amount > 0
    assert second.metadata["cached"] is True
    assert second.cost.amount == 0.0
    assert second.cost.source == first.cost.source
    assert second.metadata["cost_saved"] == first.cost.amount
    assert second.text == first.text == "What is 2+2?"
    assert second.usage == first.usage
    assert second.id == first.id


async def test_the_cache_is_off_by_default(make_hub: MakeHub, calls: Calls) -> None:
    hub = make_hub()
    for _ in range(2):
        answer = await hub.achat("mock/echo", "hello")
        assert "cached" not in answer.metadata
    assert calls.chat == 2
    assert hub.response_cache is None  # nothing was even opened


@pytest.mark.parametrize(
    "catalog",
    [
        "defaults: {cache: true}\nmodels:\n  fast: {target: mock/echo}\n",
        "models:\n  fast: {target: mock/echo, cache: true}\n",
    ],
    ids=["defaults.cache", "model cache"],
)
async def test_the_catalog_switches_it_on_and_a_call_can_switch_it_off(
    make_hub: MakeHub, calls: Calls, catalog: str
) -> None:
    hub = make_hub(catalog)
    await hub.achat("fast", "hello")
    cached = await hub.achat("fast", "hello")
    assert cached.metadata["cached"] is True
    assert calls.chat == 1

    refused = await hub.achat("fast", "hello", cache=False)
    assert "cached" not in refused.metadata
    assert calls.chat == 2


async def test_a_model_can_opt_out_of_a_catalog_default(make_hub: MakeHub, calls: Calls) -> None:
    hub = make_hub("defaults: {cache: true}\nmodels:\n  fresh: {target: mock/echo, cache: false}\n")
    await hub.achat("fresh", "hello")
    await hub.achat("fresh", "hello")
    assert calls.chat == 2


@pytest.mark.parametrize(
    ("alias", "prompt", "options"),
    [
        ("fast", "another question", {}),
        ("fast", "a question", {"temperature": 0.3}),
        ("fast", "a question", {"system": "Be brief."}),
        ("other", "a question", {}),
    ],
    ids=["prompt", "temperature", "system", "target"],
)
async def test_different_requests_do_not_share_an_answer(
    make_hub: MakeHub, calls: Calls, alias: str, prompt: str, options: dict[str, Any]
) -> None:
    hub = make_hub(TWO_MODELS)
    await hub.achat("fast", "a question", cache=True)
    answer = await hub.achat(alias, prompt, cache=True, **options)
    assert "cached" not in answer.metadata
    assert calls.chat == 2


async def test_custom_id_tags_and_metadata_do_not_change_the_key(
    make_hub: MakeHub, calls: Calls
) -> None:
    hub = make_hub()
    await hub.achat("mock/echo", "label this", cache=True, custom_id="r1", tags=["a"])
    again = await hub.achat(
        "mock/echo", "label this", cache=True, custom_id="r2", tags=["b"], metadata={"run": 7}
    )
    assert again.metadata["cached"] is True
    assert again.custom_id == "r2"  # the new call's own id, not the stored one
    assert calls.chat == 1


async def test_two_aliases_on_one_target_share_answers(make_hub: MakeHub, calls: Calls) -> None:
    hub = make_hub("models:\n  a: {target: mock/echo}\n  b: {target: mock/echo}\n")
    await hub.achat("a", "same", cache=True)
    assert (await hub.achat("b", "same", cache=True)).metadata["cached"] is True
    assert calls.chat == 1


async def _events(hub: Hub, prompt: str, **options: Any) -> list[Any]:
    return [event async for event in hub.astream("mock/echo", prompt, **options)]


WEATHER = Tool(
    "get_weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


async def test_a_stream_fills_the_cache_and_a_second_stream_replays_it(
    make_hub: MakeHub, calls: Calls
) -> None:
    hub = make_hub()
    first = await _events(hub, "tell me a short story", cache=True)
    second = await _events(hub, "tell me a short story", cache=True)

    assert calls.stream == 1
    text = "".join(e.text for e in second if isinstance(e, TextDelta))
    assert text == "tell me a short story"
    assert [e for e in second if isinstance(e, UsageEvent)] == [
        e for e in first if isinstance(e, UsageEvent)
    ]
    assert isinstance(second[-1], EndEvent)
    assert sum(isinstance(e, EndEvent) for e in second) == 1
    replayed, original = second[-1].response, first[-1].response
    assert replayed.metadata["cached"] is True
    assert replayed.metadata["cost_saved"] == original.cost.amount
    assert replayed.cost.amount == 0.0
    assert replayed.content == original.content


async def test_a_streamed_tool_call_is_replayed(make_hub: MakeHub, calls: Calls) -> None:
    hub = make_hub()
    first = await _events(hub, "Weather in Paris?", tools=[WEATHER], cache=True)
    second = await _events(hub, "Weather in Paris?", tools=[WEATHER], cache=True)

    assert calls.stream == 1
    deltas = [e for e in second if isinstance(e, ToolCallDelta)]
    assert [(d.index, d.name) for d in deltas] == [(0, "get_weather")]
    end = second[-1]
    assert isinstance(end, EndEvent)
    assert end.response.tool_calls == first[-1].response.tool_calls
    assert end.response.tool_calls[0].arguments == {"city": "Paris"}
    assert end.response.finish_reason == "tool_calls"


async def test_chat_and_stream_serve_each_other(make_hub: MakeHub, calls: Calls) -> None:
    hub = make_hub()
    streamed = await _events(hub, "first filled by a stream", cache=True)
    chatted = await hub.achat("mock/echo", "first filled by a stream", cache=True)
    assert chatted.metadata["cached"] is True
    assert chatted.text == streamed[-1].response.text

    answered = await hub.achat("mock/echo", "first filled by a chat", cache=True)
    replayed = await _events(hub, "first filled by a chat", cache=True)
    assert "".join(e.text for e in replayed if isinstance(e, TextDelta)) == answered.text
    assert replayed[-1].response.metadata["cached"] is True
    assert (calls.chat, calls.stream) == (1, 1)


@attrs.frozen
class Verdict:
    label: str
    score: int


async def test_a_structured_hit_carries_parsed_again(make_hub: MakeHub, calls: Calls) -> None:
    hub = make_hub()
    first = await hub.achat("mock/echo", "judge this", response_schema=Verdict, cache=True)
    hit = await hub.achat("mock/echo", "judge this", response_schema=Verdict, cache=True)
    assert calls.chat == 1
    assert hit.metadata["cached"] is True
    assert isinstance(hit.parsed, Verdict)
    assert hit.parsed == first.parsed


async def test_a_failed_call_is_never_cached(make_hub: MakeHub, calls: Calls) -> None:
    hub = make_hub("providers:\n  mock: {max_retries: 0}\n")
    fault = {"mock": {"fault": {"kind": "server_error", "times": 1}}}
    with pytest.raises(ProviderUnavailable):
        await hub.achat("mock/echo", "hello", provider_kwargs=fault, cache=True)
    answer = await hub.achat("mock/echo", "hello", provider_kwargs=fault, cache=True)
    assert "cached" not in answer.metadata
    assert calls.chat == 2
    assert len(hub.response_cache) == 1  # type: ignore[arg-type]  # only the success


async def test_a_failed_stream_is_never_cached(make_hub: MakeHub, calls: Calls) -> None:
    hub = make_hub("providers:\n  mock: {max_retries: 0}\n")
    fault = {"mock": {"fault": {"kind": "malformed", "times": 1}}}
    with pytest.raises(MalformedResponse):
        await _events(hub, "hello", provider_kwargs=fault, cache=True)
    replay = await _events(hub, "hello", provider_kwargs=fault, cache=True)
    assert "cached" not in replay[-1].response.metadata
    assert calls.stream == 2


class RefuseSecrets:
    """A guardrail that refuses answers mentioning a password."""

    @hookimpl
    def relay_guardrail_post(self, request: Request, response: Response) -> None:
        if "password" in response.text:
            raise GuardrailViolation("no-passwords", "the answer mentions a password")


async def test_an_answer_a_guardrail_refused_is_not_cached(make_hub: MakeHub, calls: Calls) -> None:
    hub = make_hub("", RefuseSecrets())
    for _ in range(2):
        with pytest.raises(GuardrailViolation):
            await hub.achat("mock/echo", "my password is hunter2", cache=True)
    assert calls.chat == 2
    assert len(hub.response_cache) == 0  # type: ignore[arg-type]


async def test_the_sync_hub_uses_the_same_store(make_hub: MakeHub, calls: Calls) -> None:
    hub = make_hub()
    first = await hub.achat("mock/echo", "from both worlds", cache=True)
    second = hub.chat("mock/echo", "from both worlds", cache=True)  # on the hub's loop thread
    assert second.metadata["cached"] is True
    assert second.text == first.text
    assert calls.chat == 1


async def test_without_relay_cache_asking_for_the_cache_names_the_distribution() -> None:
    with hub_for("", relay_mock) as hub:
        assert (await hub.achat("mock/echo", "hi")).text == "hi"  # off: no plugin needed
        with pytest.raises(PluginNotInstalled, match="pip install relay-cache"):
            await hub.achat("mock/echo", "hi", cache=True)


def test_an_embedding_call_is_served_from_the_cache(make_hub: MakeHub) -> None:
    hub = make_hub("defaults: {cache: true}\n")
    first = hub.embed("mock/embed", ["cached text"])
    again = hub.embed("mock/embed", ["cached text"])
    assert again.vectors == first.vectors
    assert again.metadata["cached"] is True
    assert again.cost.amount == 0.0
    assert "cached" not in first.metadata
