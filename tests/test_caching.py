"""When the hub asks a response cache, and what a hit looks like (a dict store here;
the real stores are the relay-cache plugin's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from relay_core import (
    EndEvent,
    PluginNotInstalled,
    Response,
    StreamAssembler,
    TextDelta,
    UsageEvent,
    hookimpl,
)
from relay_core.streaming import replay
from relay_core.types import ThinkingPart, ToolCallPart, Usage


class DictCache:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self.entries: dict[str, Response] = {}
        self.gets = 0

    async def get(self, key: str) -> Response | None:
        self.gets += 1
        return self.entries.get(key)

    async def put(self, key: str, response: Response) -> None:
        self.entries[key] = response

    async def aclose(self) -> None:
        pass


class CachePlugin:
    def __init__(self) -> None:
        self.stores: list[DictCache] = []

    @hookimpl
    def relay_register_response_caches(self, register: Any) -> None:
        def factory(settings: Mapping[str, Any]) -> DictCache:
            store = DictCache(settings)
            self.stores.append(store)
            return store

        register("dict", factory)


CATALOG = """\
models:
  fast:
    target: scripted/one
    pricing: {input: 1.0, output: 1.0}
  remembered:
    target: scripted/one
    pricing: {input: 1.0, output: 1.0}
    cache: true
plugins:
  dict: {size: 3}
"""


@pytest.fixture
def cached_hub(make_hub: Any) -> tuple[Any, CachePlugin]:
    hub = make_hub(CATALOG)
    plugin = CachePlugin()
    hub.plugins.register(plugin)
    return hub, plugin


def test_a_hit_is_free_marked_and_not_sent(cached_hub: Any, scripted: Any) -> None:
    hub, plugin = cached_hub
    first = hub.chat("fast", "hello", cache=True, custom_id="a")
    second = hub.chat("fast", "hello", cache=True, custom_id="b")
    assert len(scripted.received) == 1
    assert second.text == first.text
    assert second.metadata["cached"] is True
    assert second.metadata["cost_saved"] == pytest.approx(first.cost.amount)
    assert (second.cost.amount, second.cost.source) == (0.0, "user_override")
    assert second.custom_id == "b"
    assert plugin.stores[0].settings == {"size": 3}  # the catalog's plugins.dict


def test_off_unless_asked_and_per_call_wins(cached_hub: Any, scripted: Any) -> None:
    hub, plugin = cached_hub
    hub.chat("fast", "hello")
    hub.chat("fast", "hello")
    assert len(scripted.received) == 2
    assert plugin.stores == []
    hub.chat("remembered", "hello")
    assert hub.chat("remembered", "hello").metadata["cached"] is True
    assert "cached" not in hub.chat("remembered", "hello", cache=False).metadata
    assert len(scripted.received) == 4


def test_keys_follow_the_target_not_the_alias(cached_hub: Any, scripted: Any) -> None:
    hub, _ = cached_hub
    hub.chat("fast", "hello", cache=True)
    # Another alias of the same target shares; another prompt or setting does not.
    assert hub.chat("remembered", "hello").metadata["cached"] is True
    assert "cached" not in hub.chat("fast", "hello", cache=True, temperature=0.5).metadata
    assert "cached" not in hub.chat("fast", "other", cache=True).metadata


def test_a_stream_replays_a_hit(cached_hub: Any, scripted: Any) -> None:
    hub, _ = cached_hub
    first = hub.chat("fast", "three little words", cache=True)
    events = list(hub.stream("fast", "three little words", cache=True))
    assert len(scripted.received) == 1
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == first.text
    assert isinstance(events[-2], UsageEvent)
    assert events[-2].usage == first.usage
    assert isinstance(events[-1], EndEvent)
    assert events[-1].response.metadata["cached"] is True


def test_a_stream_fills_the_cache(cached_hub: Any, scripted: Any) -> None:
    hub, _ = cached_hub
    list(hub.stream("fast", "hello there", cache=True))
    assert hub.chat("fast", "hello there", cache=True).metadata["cached"] is True
    assert len(scripted.received) == 1


def test_failures_are_not_cached(cached_hub: Any, scripted: Any) -> None:
    from relay_core import InvalidRequestError

    hub, plugin = cached_hub
    scripted.script["one"] = [InvalidRequestError("bad", provider="scripted")]
    with pytest.raises(InvalidRequestError):
        hub.chat("fast", "x", cache=True)
    assert plugin.stores[0].entries == {}


def test_a_broken_cache_costs_a_call_not_the_answer(cached_hub: Any, scripted: Any) -> None:
    hub, plugin = cached_hub
    hub.chat("fast", "x", cache=True)

    async def broken(key: str) -> Response | None:
        raise OSError("disk gone")

    plugin.stores[0].get = broken  # type: ignore[method-assign]
    assert hub.chat("fast", "x", cache=True).text == "echo: x"
    assert len(scripted.received) == 2


def test_asking_for_the_cache_without_a_plugin_names_it(make_hub: Any) -> None:
    # Without plugins.dict, which no plugin would read here (an error of its own).
    hub = make_hub(CATALOG.partition("plugins:")[0])
    with pytest.raises(PluginNotInstalled, match="pip install relay-cache"):
        hub.chat("fast", "x", cache=True)


def test_replay_gives_back_the_same_content() -> None:
    response = Response(
        content=[
            ThinkingPart("hmm", signature="sig"),
            "The answer.",
            ToolCallPart("c1", "lookup", {"q": "x"}),
            ToolCallPart("c2", "lookup", {"q": "y"}),
        ],
        finish_reason="tool_calls",
        usage=Usage(3, 4),
    )
    assembler = StreamAssembler()
    events = list(replay(response))
    for event in events[:-1]:
        assembler.feed(event)
    rebuilt = assembler.response(model="m")
    assert rebuilt.content == response.content
    assert rebuilt.usage == response.usage
    assert rebuilt.finish_reason == "tool_calls"
    assert events[-1] == EndEvent(response)
