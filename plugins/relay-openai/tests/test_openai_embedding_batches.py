"""Embedding requests in OpenAI's Batch API: the /v1/embeddings lines, the results read
back as vectors, and a whole embedding job through RelayClient against a fake Batch API
(files, batches, output file) answering through MockTransport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import relay_openai
from relay_core import EmbeddingRequest, ProviderSettings, RelayClient, Usage
from relay_core.testing import hub_for
from relay_openai._embedding import embedding_item
from relay_openai.chat import OpenAIProvider

CATALOG = """
models:
  vec:
    target: openai/text-embedding-3-small
    pricing: {input: 0.02, output: 0.0, batch_discount: 0.5}
"""


def _answer(custom_id: str, inputs: list[str], *, status: int = 200) -> dict[str, Any]:
    body: dict[str, Any]
    if status == 200:
        # Out of order on purpose: the index says which input a vector belongs to.
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 0.5]}
            for i, text in reversed(list(enumerate(inputs)))
        ]
        tokens = sum(len(text.split()) for text in inputs)
        body = {
            "object": "list",
            "data": data,
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    else:
        body = {"error": {"message": "too long", "type": "invalid_request_error", "code": None}}
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": f"req_{custom_id}", "body": body},
        "error": None,
    }


class FakeBatchApi:
    """Files and batches as OpenAI keeps them, answering every embedding line."""

    def __init__(self) -> None:
        self.uploaded: list[dict[str, Any]] = []
        self.batches: dict[str, dict[str, Any]] = {}
        self.fail: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/v1/files":
            body = request.content.decode()
            start = body.index("\r\n\r\n", body.index('filename="')) + 4
            text = body[start : body.index("\r\n--", start)]
            self.uploaded = [json.loads(line) for line in text.splitlines()]
            return httpx.Response(200, json={"id": "file-in", "object": "file"})
        if request.method == "POST" and path == "/v1/batches":
            sent = json.loads(request.content)
            batch_id = f"batch_{len(self.batches)}"
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": sent["endpoint"],
                "input_file_id": sent["input_file_id"],
                "status": "completed",
                "output_file_id": "file-out",
                "created_at": 1_765_000_000,
                "metadata": sent["metadata"],
                "request_counts": {"total": len(self.uploaded), "completed": 0, "failed": 0},
            }
            return httpx.Response(200, json={**self.batches[batch_id], "status": "validating"})
        if request.method == "GET" and path.startswith("/v1/batches/"):
            return httpx.Response(200, json=self.batches[path.rsplit("/", 1)[1]])
        if request.method == "GET" and path == "/v1/files/file-out/content":
            lines = [
                _answer(
                    line["custom_id"],
                    line["body"]["input"],
                    status=400 if line["custom_id"] in self.fail else 200,
                )
                for line in self.uploaded
            ]
            return httpx.Response(200, text="".join(json.dumps(x) + "\n" for x in lines))
        if request.method == "GET" and path == "/v1/batches":
            return httpx.Response(200, json={"object": "list", "data": list(self.batches.values())})
        return httpx.Response(404, json={"error": {"message": f"no {path}"}})


def test_an_embedding_line_is_the_embeddings_body() -> None:
    request = EmbeddingRequest(
        inputs=["a", "b"],
        model="text-embedding-3-large",
        dimensions=256,
        input_type="query",
        provider_kwargs={"user": "u-1", "openai": {"api": "chat"}},
        custom_id="e1",
    )
    adapter = OpenAIProvider(ProviderSettings(name="openai"))
    line = adapter.embedding_batch_line(request)
    assert (line["url"], line["method"], line["custom_id"]) == ("/v1/embeddings", "POST", "e1")
    assert (
        line["body"]
        == adapter.embedding_payload(request)[1]
        == {
            "user": "u-1",
            "model": "text-embedding-3-large",
            "input": ["a", "b"],
            "encoding_format": "base64",
            "dimensions": 256,
        }
    )


def test_an_output_line_is_read_as_vectors_in_input_order() -> None:
    item = embedding_item(_answer("e1", ["one", "three words here"]), provider="openai", rules=())
    assert item.embedding is not None
    assert item.embedding.vectors == ((3.0, 0.5), (16.0, 0.5))
    assert item.embedding.usage == Usage(input_tokens=4)
    failed = embedding_item(_answer("e2", ["x"], status=400), provider="openai", rules=())
    assert failed.embedding is None
    assert failed.error is not None
    assert failed.error.kind == "InvalidRequestError"


def test_an_embedding_job_goes_to_the_batch_api_and_comes_back_as_vectors(
    tmp_path: Path,
) -> None:
    api = FakeBatchApi()
    api.fail.add("e2")
    hub = hub_for(CATALOG, relay_openai, transport=httpx.MockTransport(api))
    requests = [
        EmbeddingRequest(inputs=[f"text {i}", "more words"], custom_id=f"e{i}", dimensions=2)
        for i in range(4)
    ]
    with RelayClient(tmp_path / "ws", hub=hub) as relay:
        job = relay.submit_batch(requests, model="vec", job_id="emb", mode="batch")
        assert (job.status, job.mode) == ("submitted", "batch")
        assert [line["url"] for line in api.uploaded] == ["/v1/embeddings"] * 4
        assert api.uploaded[0]["body"] == {
            "model": "text-embedding-3-small",
            "input": ["text 0", "more words"],
            "encoding_format": "base64",  # as live calls send it: smaller output files
            "dimensions": 2,
        }
        assert next(iter(api.batches.values()))["endpoint"] == "/v1/embeddings"
        relay.wait("emb", poll_interval=0.01)
        results = relay.retrieve_batch_results("emb")
        job = relay.get_job("emb")
    hub.close()
    assert (job.status, job.counts.completed, job.counts.failed) == ("completed", 3, 1)
    assert [item.custom_id for item in results] == ["e0", "e1", "e2", "e3"]
    first = results[0].embedding
    assert first is not None
    assert first.vectors == ((6.0, 0.5), (10.0, 0.5))
    assert (first.provider, first.custom_id) == ("openai", "e0")
    # 4 tokens at the batch price: half of 0.02 per million.
    assert first.cost.amount == pytest.approx(4 * 0.01 / 1e6)
    assert first.cost.batch_discount_applied
    assert results[2].error is not None


def test_auto_mode_sends_embeddings_the_provider_would_split_to_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay_core import EmbeddingLimits

    monkeypatch.setattr(OpenAIProvider, "embedding_limits", EmbeddingLimits(max_inputs=1))
    api = FakeBatchApi()
    hub = hub_for(CATALOG, relay_openai, transport=httpx.MockTransport(api))
    big = [EmbeddingRequest(inputs=["a", "b"], custom_id="big")]
    from relay_core import BatchInputError

    with RelayClient(tmp_path / "ws", hub=hub) as relay:
        with pytest.raises(BatchInputError, match="more than one openai call takes"):
            relay.submit_batch(big, model="vec", mode="batch")
        # One line is one call: in auto mode the engine, which splits, takes the job.
        assert relay.submit_batch(big, model="vec", job_id="auto").mode == "engine"
    assert api.uploaded == []
    hub.close()
