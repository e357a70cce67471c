"""The mock's embeddings: deterministic unit vectors, usage by the core's estimate,
limits a catalog can shrink so the core's splitting is exercised end to end."""

from __future__ import annotations

import math
from typing import Any

import pytest

from relay_core import ConfigError, EmbeddingRequest, InvalidRequestError, RateLimitError, Usage

LIMITED = """\
providers:
  mock:
    options: {embedding_max_inputs: 3, embedding_max_tokens: 50}
models:
  vec: mock/embed
"""


def test_the_same_text_model_and_length_give_the_same_unit_vector(make_hub: Any) -> None:
    hub = make_hub()
    first = hub.embed("mock/embed", ["alpha", "beta", "alpha"])
    assert first.dimensions == 256
    a, b, a_again = first.vectors
    assert a == a_again
    assert a != b
    for vector in first.vectors:
        assert math.isclose(math.fsum(v * v for v in vector), 1.0)
    assert hub.embed("mock/embed", "alpha").vectors[0] == a  # in another call too
    assert hub.embed("mock/other", "alpha").vectors[0] != a  # another model differs
    short = hub.embed("mock/embed", "alpha", dimensions=8)
    assert short.dimensions == 8
    assert math.isclose(math.fsum(v * v for v in short.vectors[0]), 1.0)


def test_usage_is_the_estimate_and_the_embed_model_is_priced(make_hub: Any) -> None:
    hub = make_hub()
    answer = hub.embed("mock/embed", ["abcd", "abcde"])  # 1 + 2 tokens
    assert answer.usage == Usage(input_tokens=3)
    assert answer.cost.amount == pytest.approx(3 * 0.02 / 1e6)
    assert answer.cost.output == 0.0


def test_shrunk_limits_make_the_core_split_and_join_in_order(make_hub: Any) -> None:
    hub = make_hub(LIMITED)
    texts = [f"text number {i}" for i in range(10)]
    answer = hub.embed("vec", texts)
    assert answer.metadata["slices"] == 4
    one_by_one = [hub.embed("vec", text).vectors[0] for text in texts]
    assert list(answer.vectors) == one_by_one


async def test_the_adapter_refuses_what_a_real_provider_would(mock: Any) -> None:
    adapter = mock(embedding_max_inputs=2)
    with pytest.raises(InvalidRequestError, match="the most one call takes is 2"):
        await adapter.embed(EmbeddingRequest(inputs=["a", "b", "c"], model="embed"))
    with pytest.raises(InvalidRequestError, match="dimensions 9000"):
        await adapter.embed(EmbeddingRequest(inputs=["a"], model="embed", dimensions=9000))
    with pytest.raises(ConfigError, match="embedding_max_tokens"):
        mock(embedding_max_tokens=0)


def test_faults_apply_to_embedding_calls(make_hub: Any, waits: list[float]) -> None:
    hub = make_hub()
    fault = {"kind": "rate_limit", "times": 1, "retry_after": 0.25}
    answer = hub.embed("mock/embed", ["x"], provider_kwargs={"mock": {"fault": fault}})
    assert answer.metadata["retries"] == ["RateLimitError"]
    assert waits == [0.25]
    with pytest.raises(RateLimitError):
        hub.embed("mock/embed", ["y"], provider_kwargs={"mock": {"fault": {"kind": "rate_limit"}}})
    with pytest.raises(InvalidRequestError, match="takes only 'fault'"):
        hub.embed("mock/embed", ["x"], provider_kwargs={"mock": {"reply": "no"}})
