"""Embedding jobs: many embedding requests through RelayClient, run in the engine
(concurrently, resumable, answered from the workspace cache), and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import relay_mock
from relay_core import (
    BatchInputError,
    EmbeddingRequest,
    RelayClient,
    UnsupportedCapability,
    parse_catalog,
)
from relay_core.cli import cli
from relay_core.testing import hub_for

CATALOG = """
providers:
  mock:
    options: {embedding_max_inputs: 2}
models:
  vec: mock/embed
"""


def _requests(n: int = 6) -> list[EmbeddingRequest]:
    return [
        EmbeddingRequest(inputs=[f"text {i}", f"more {i}", f"last {i}"], custom_id=f"e{i}")
        for i in range(n)
    ]


def _direct(texts: list[str]) -> Any:
    hub = hub_for(CATALOG, relay_mock)
    try:
        return hub.embed("vec", texts)
    finally:
        hub.close()


def test_an_embedding_job_runs_in_the_engine_and_keeps_every_vector(tmp_path: Path) -> None:
    with RelayClient(tmp_path / "ws", config=parse_catalog(CATALOG)) as relay:
        job = relay.submit_batch(_requests(), model="vec", job_id="emb")
        assert (job.status, job.mode) == ("completed", "engine")
        assert (job.counts.completed, job.counts.failed) == (6, 0)
        results = relay.get_results("emb")
    assert [item.custom_id for item in results] == [f"e{i}" for i in range(6)]
    first = results[0].embedding
    assert first is not None
    assert first.vectors == _direct(["text 0", "more 0", "last 0"]).vectors
    assert first.metadata["slices"] == 2  # each request split by the mock's limit
    assert job.cost.amount == pytest.approx(sum(item.embedding.cost.amount for item in results))


def test_a_second_job_is_answered_from_the_workspace_cache(tmp_path: Path) -> None:
    with RelayClient(tmp_path / "ws", config=parse_catalog(CATALOG)) as relay:
        relay.submit_batch(_requests(3), model="vec", job_id="one")
        relay.submit_batch(_requests(3), model="vec", job_id="two")
        stats = relay.last_engine_stats
        again = relay.get_results("two")
    assert stats is not None
    assert (stats.called, stats.cached) == (0, 3)
    assert all(item.embedding and item.embedding.metadata["cached"] for item in again)


def test_provider_batches_of_embeddings_are_refused_by_name(tmp_path: Path) -> None:
    with (
        RelayClient(tmp_path / "ws", config=parse_catalog(CATALOG)) as relay,
        pytest.raises(UnsupportedCapability, match="batch of embeddings") as caught,
    ):
        relay.submit_batch(_requests(2), model="vec", mode="batch")
    assert (caught.value.provider, caught.value.model) == ("mock", "embed")


def test_bad_embedding_lines_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text('{"custom_id": "ok", "inputs": ["a"]}\n{"custom_id": "bad", "inputs": []}\n')
    with (
        RelayClient(tmp_path / "ws", config=parse_catalog(CATALOG)) as relay,
        pytest.raises(BatchInputError, match="at least one input") as caught,
    ):
        relay.submit_batch(path, model="vec")
    assert caught.value.line == 2


def test_the_cli_submits_a_jsonl_of_embedding_requests_and_prints_vectors(
    tmp_path: Path,
) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps({"custom_id": f"d{i}", "inputs": [f"doc {i}"], "dimensions": 4}) + "\n"
            for i in range(3)
        )
    )
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(CATALOG)
    runner = CliRunner()
    base = ["-c", str(catalog), "batch"]
    workspace = ["-w", str(tmp_path / "ws")]
    done = runner.invoke(
        cli, [*base, "submit", str(requests), "-m", "vec", "--job-id", "j", *workspace]
    )
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith("j  completed  engine  3 done, 0 failed of 3  $")
    shown = runner.invoke(cli, [*base, "results", "j", *workspace])
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [line["custom_id"] for line in lines] == ["d0", "d1", "d2"]
    assert [len(v) for v in lines[0]["embedding"]["vectors"]] == [4]
