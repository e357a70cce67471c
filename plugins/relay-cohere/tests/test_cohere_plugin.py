"""Registration, declared capabilities, settings, and batch jobs on the core's engine
(Cohere has no chat batch API; discovery through the entry point, lazy loading and the
block list are checked by the conformance suite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from cohere_support import MODEL, TARGET, ok_server

import relay_cohere
from relay_cohere._adapter import CohereProvider
from relay_core import (
    BatchRequest,
    Capability,
    ConfigError,
    Hub,
    PluginRegistry,
    RelayClient,
    UnsupportedCapability,
)

# Declared by the adapters that gain embeddings and exact token counts (issue 22).
NOT_YET = {Capability.TOKEN_COUNT}


def test_in_code_registration_gives_the_adapter() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(relay_cohere, name="cohere")
    assert registry.provider("cohere").load() is CohereProvider
    assert relay_cohere.CohereProvider is CohereProvider


def test_the_declared_settings() -> None:
    assert CohereProvider.name == "cohere"
    assert CohereProvider.api_key_env == "CO_API_KEY"
    assert CohereProvider.default_base_url == "https://api.cohere.com"
    assert CohereProvider.capabilities == frozenset(Capability) - NOT_YET - {
        Capability.BATCH,
        Capability.SERVER_TOOLS,
    }


def test_no_provider_batches(make_hub: Callable[..., Hub]) -> None:
    adapter = make_hub(ok_server()).get(TARGET).adapter
    with pytest.raises(UnsupportedCapability, match="batch"):
        asyncio.run(adapter.submit_batch([], metadata={}))


def test_options_are_refused(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(ok_server(), "providers:\n  cohere:\n    options: {safety_mode: STRICT}\n")
    with pytest.raises(ConfigError, match="takes no options"):
        hub.chat(TARGET, "Hi")


def test_a_batch_job_runs_on_the_engine(
    make_hub: Callable[..., Hub],
    cassette: Callable[[str], AbstractContextManager[Any]],
    tmp_path: Path,
) -> None:
    requests = [
        BatchRequest(id="q1", system_prompt="Answer with a number.", prompt="2+2?"),
        BatchRequest(id="q2", system_prompt="Answer with a number.", prompt="3+3?"),
    ]
    hub = make_hub()
    with cassette("engine_batch"), RelayClient(tmp_path / "jobs", hub=hub) as client:
        job = client.submit_batch(requests, job_id="sums", model=TARGET)
        assert (job.mode, job.status) == ("engine", "completed")
        assert (job.counts.completed, job.counts.failed) == (2, 0)
        items = {item.custom_id: item for item in client.iter_results("sums")}
    assert {key: item.response.text for key, item in items.items()} == {"q1": "4", "q2": "6"}
    assert all(item.response.model == MODEL for item in items.values())
