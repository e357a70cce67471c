"""What both stores promise, each tested on memory and on disk: answers come back
equal, freshness, least-recently-used eviction by count and by size, oversize answers,
and safety under threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cache_support import Clock

from relay_cache._codec import encode
from relay_cache._settings import open_store
from relay_core import (
    Cost,
    EmbeddingResponse,
    Hub,
    Response,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from relay_core.caching import ResponseCache

Store = Callable[..., ResponseCache]


@pytest.fixture(params=["memory", "disk"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Store]:
    """Builds a store of the parametrized backend from settings, as the hub does."""
    opened: list[ResponseCache] = []

    def make(**settings: Any) -> ResponseCache:
        settings = {"backend": request.param, "clock": clock, **settings}
        if request.param == "disk":
            settings.setdefault("path", str(tmp_path / "responses.db"))
        opened.append(open_store(settings))
        return opened[-1]

    yield make
    for each in opened:
        await each.aclose()


def answer(text: str, **fields: Any) -> Response:
    return Response(
        content=text,
        model="echo",
        provider="mock",
        usage=Usage(3, len(text)),
        cost=Cost(0.25, source="snapshot"),
        **fields,
    )


def size_of(response: Response) -> int:
    return len(encode(response).encode())


async def present(cache: ResponseCache, *keys: str) -> set[str]:
    return {key for key in keys if await cache.get(key) is not None}


async def test_an_answer_comes_back_equal(store: Store) -> None:
    cache = store()
    stored = Response(
        content=(
            ThinkingPart("The user wants a city.", signature="sig_1"),
            TextPart("Looking it up."),
            ToolCallPart("call_1", "lookup", {"city": "Paris", "days": [1, 2]}),
        ),
        model="echo",
        provider="mock",
        id="msg_1",
        finish_reason="tool_calls",
        usage=Usage(12, 30, reasoning_tokens=5),
        cost=Cost(0.25, source="snapshot", input=0.1, output=0.15),
        latency=0.42,
        raw={"choices": [{"text": "Paris"}], "bytes": "caf\u00e9"},
        metadata={"route": "fast"},
    )
    await cache.put("k", stored)
    assert await cache.get("k") == stored
    assert await cache.get("missing") is None


async def test_a_stored_response_is_not_changed_by_its_caller(store: Store) -> None:
    cache = store()
    stored = answer("hi", metadata={"a": 1})
    await cache.put("k", stored)
    stored.metadata["a"] = 2  # Response is frozen, its dicts are not
    hit = await cache.get("k")
    assert hit is not None
    assert hit.metadata == {"a": 1}


async def test_a_put_replaces_the_older_answer(store: Store) -> None:
    cache = store()
    await cache.put("k", answer("old"))
    await cache.put("k", answer("new"))
    hit = await cache.get("k")
    assert hit is not None
    assert hit.text == "new"
    assert len(cache) == 1  # type: ignore[arg-type]


async def test_an_answer_expires_after_ttl_and_is_removed(store: Store, clock: Clock) -> None:
    cache = store(ttl=60)
    await cache.put("k", answer("fresh"))
    clock.advance(59)
    assert await cache.get("k") is not None
    clock.advance(1)
    assert await cache.get("k") is None
    assert len(cache) == 0  # type: ignore[arg-type]


async def test_a_hit_does_not_extend_freshness(store: Store, clock: Clock) -> None:
    cache = store(ttl=60)
    await cache.put("k", answer("fresh"))
    for _ in range(3):
        clock.advance(25)
        hits = await present(cache, "k")
    assert hits == set()  # 75 s after it was stored, however often it was read


async def test_ttl_null_keeps_answers_forever(store: Store, clock: Clock) -> None:
    cache = store(ttl=None)
    await cache.put("k", answer("forever"))
    clock.advance(10 * 365 * 86400)
    assert await cache.get("k") is not None


async def test_the_least_recently_used_answer_goes_first_by_count(store: Store) -> None:
    cache = store(max_entries=3)
    for key in "abc":
        await cache.put(key, answer(key))
    assert await cache.get("a") is not None  # a is now the most recently used
    await cache.put("d", answer("d"))
    assert await present(cache, *"abcd") == {"a", "c", "d"}
    assert len(cache) == 3  # type: ignore[arg-type]


async def test_the_least_recently_used_answer_goes_first_by_size(store: Store) -> None:
    one = size_of(answer("a"))
    cache = store(max_bytes=3 * one + one // 2, max_entries=100)
    for key in "abc":
        await cache.put(key, answer(key))
    await cache.get("a")
    await cache.get("b")
    await cache.put("d", answer("d"))
    assert await present(cache, *"abcd") == {"a", "b", "d"}


async def test_an_answer_bigger_than_max_bytes_is_not_stored(store: Store) -> None:
    small = answer("small")
    cache = store(max_bytes=size_of(small) + 10)
    await cache.put("small", small)
    await cache.put("big", answer("x" * 1000))
    assert await cache.get("big") is None
    assert await cache.get("small") is not None  # and nothing was evicted for it


async def test_an_answer_of_exactly_max_bytes_is_kept(store: Store) -> None:
    exact = answer("exact")
    cache = store(max_bytes=size_of(exact))
    await cache.put("k", exact)
    assert await cache.get("k") == exact


def test_threads_sharing_a_store_keep_it_consistent(store: Store) -> None:
    cache = store(max_entries=20)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        async def run() -> None:
            for i in range(60):
                key = f"{worker}-{i % 30}"
                await cache.put(key, answer(key))
                hit = await cache.get(key)
                # Another thread may evict it between put and get, never garble it.
                assert hit is None or hit.text == key

        try:
            asyncio.run(run())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert 0 < len(cache) <= 20  # type: ignore[arg-type]


async def test_freshness_through_the_hub(make_hub: Callable[..., Hub], clock: Clock) -> None:
    hub = make_hub("plugins:\n  cache: {ttl: 3600}\n", clock=clock)
    await hub.achat("mock/echo", "what time is it", cache=True)
    clock.advance(3599)
    assert (await hub.achat("mock/echo", "what time is it", cache=True)).metadata["cached"]
    clock.advance(1)
    expired = await hub.achat("mock/echo", "what time is it", cache=True)
    assert "cached" not in expired.metadata


async def test_an_embedding_answer_comes_back_as_one(store: Store) -> None:
    cache = store()
    vectors = EmbeddingResponse(
        vectors=[(0.6, 0.8), (1.0, 0.0)],
        model="embed",
        provider="mock",
        usage=Usage(input_tokens=4),
        cost=Cost(0.5, source="snapshot"),
    )
    await cache.put("vectors", vectors)
    await cache.put("chat", answer("hi"))
    assert await cache.get("vectors") == vectors
    assert await cache.get("chat") == answer("hi")
