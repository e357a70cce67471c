"""Job runners: a plugin answers an engine job (relay-ray does, on a cluster) while the
core keeps its promises: one result per request in request order, resume after a
runner dies with the requests still unanswered, cancellation, a typed error for a
runner that is not installed. Runners here are in-code plugins over the scripted
provider, so no plugin is needed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relay_core import BatchItem, BatchRequest, ConfigError, PluginRegistry, RelayClient
from relay_core import cli as cli_module
from relay_core.batch._workspace import Workspace
from relay_core.cli import cli
from relay_core.hookspecs import hookimpl
from relay_core.plugin import JobRun, Limiter, answer_requests
from relay_core.testing import hub_for

CATALOG = """\
models:
  fast: scripted/s-1
"""


class Runners:
    """Runners registered under names a test picks; what each saw is kept."""

    def __init__(self, **runners: Callable[[JobRun], Any]) -> None:
        self.runners = runners
        self.seen: list[JobRun] = []

    @hookimpl
    def relay_register_job_runners(self, register: Callable[..., None]) -> None:
        for name, run in self.runners.items():
            register(name, run)


def _client(tmp_path: Path, scripted: Any, plugin: object) -> RelayClient:
    hub = hub_for(CATALOG, plugin)
    hub.plugins.register(scripted, name="scripted")
    return RelayClient(tmp_path / "ws", hub=hub)


@pytest.fixture
def close() -> Iterator[list[RelayClient]]:
    clients: list[RelayClient] = []
    yield clients
    for client in clients:
        client.close()
        client.hub.close()


def _requests(n: int) -> list[BatchRequest]:
    return [BatchRequest(id=f"r{i}", prompt=f"q{i}") for i in range(n)]


def _texts(client: RelayClient, job_id: str) -> list[str | None]:
    return [item.response.text if item.response else None for item in client.iter_results(job_id)]


async def _answer_twice(run: JobRun) -> None:
    """Every answer delivered twice, as a runner that re-sent work after a failure
    would: the second is dropped."""
    dropped: list[int] = []

    def deliver(index: int, item: BatchItem) -> None:
        assert run.deliver(index, item)
        if not run.deliver(index, item):
            dropped.append(index)

    await answer_requests(run.hub, run.unanswered(), deliver, concurrency=run.concurrency)
    assert sorted(dropped) == list(range(run.total))


def test_a_plugin_runner_answers_the_job_once_per_request_in_order(
    tmp_path: Path, scripted: Any, close: list[RelayClient]
) -> None:
    client = _client(tmp_path, scripted, Runners(twice=_answer_twice))
    close.append(client)
    job = client.submit_batch(_requests(7), job_id="j", model="fast", mode="twice")
    assert (job.status, job.mode, job.runner) == ("completed", "engine", "twice")
    assert (job.counts.completed, job.counts.failed) == (7, 0)
    assert [item.custom_id for item in client.iter_results("j")] == [f"r{i}" for i in range(7)]
    assert _texts(client, "j") == [f"echo: q{i}" for i in range(7)]
    # The local engine's jobs name their runner too.
    local = client.submit_batch(_requests(2), job_id="here", model="fast", mode="engine")
    assert (local.mode, local.runner) == ("engine", "engine")


def test_a_runner_that_dies_leaves_the_job_to_resume_with_its_options(
    tmp_path: Path, scripted: Any, close: list[RelayClient]
) -> None:
    runs: list[tuple[dict[str, Any], list[int]]] = []

    async def flaky(run: JobRun) -> None:
        pending = [index for index, _ in run.unanswered()]
        runs.append((dict(run.options), pending))
        answered = 0

        def deliver(index: int, item: BatchItem) -> None:
            nonlocal answered
            run.deliver(index, item)
            answered += 1
            if len(runs) == 1 and answered == 3:
                raise ConnectionError("the cluster went away")

        await answer_requests(run.hub, run.unanswered(), deliver, concurrency=1)

    client = _client(tmp_path, scripted, Runners(flaky=flaky))
    close.append(client)
    with pytest.raises(ConnectionError):
        client.submit_batch(
            _requests(6),
            job_id="j",
            model="fast",
            mode="flaky",
            runner_options={"address": "a", "shards": 2},
        )
    stuck = client.get_job("j")
    assert (stuck.status, stuck.interrupted, stuck.counts.completed) == ("running", True, 3)
    job = client.resume("j", runner_options={"address": "b"})
    assert job.status == "completed"
    assert runs == [
        ({"address": "a", "shards": 2}, [0, 1, 2, 3, 4, 5]),
        ({"address": "b", "shards": 2}, [3, 4, 5]),
    ]
    assert _texts(client, "j") == [f"echo: q{i}" for i in range(6)]


def test_a_cancelled_job_stops_its_runner_at_a_checkpoint(
    tmp_path: Path, scripted: Any, close: list[RelayClient]
) -> None:
    async def stubborn(run: JobRun) -> None:
        first = next(run.unanswered())
        await answer_requests(run.hub, [first], run.deliver, concurrency=1)
        # Another client cancels the job meanwhile.
        other = Workspace(run.job_dir.parent.parent)
        other.update(run.job_id, cancel_requested=1)
        other.close()
        while not await run.checkpoint():
            await asyncio.sleep(0.01)

    client = _client(tmp_path, scripted, Runners(stubborn=stubborn))
    close.append(client)
    job = client.submit_batch(_requests(3), job_id="j", model="fast", mode="stubborn")
    assert (job.status, job.counts.completed, job.counts.failed) == ("cancelled", 1, 2)
    items = list(client.iter_results("j"))
    assert items[0].ok
    assert [item.error.kind for item in items[1:] if item.error] == ["cancelled", "cancelled"]


def test_a_limiter_from_the_runner_gates_every_call(
    tmp_path: Path, scripted: Any, close: list[RelayClient]
) -> None:
    class Counting:
        unlimited = False

        def __init__(self) -> None:
            self.acquired: list[int] = []
            self.released = 0
            self.settled: list[tuple[int, int]] = []

        async def acquire(self, tokens: int) -> None:
            self.acquired.append(tokens)

        def release(self) -> None:
            self.released += 1

        def settle(self, estimated: int, actual: int) -> None:
            self.settled.append((estimated, actual))

    limiters: dict[str, Counting] = {}

    def limiter_for(alias: str) -> Limiter:
        return limiters.setdefault(alias, Counting())

    async def limited(run: JobRun) -> None:
        await answer_requests(
            run.hub, run.unanswered(), run.deliver, concurrency=2, limiter_for=limiter_for
        )

    client = _client(tmp_path, scripted, Runners(limited=limited))
    close.append(client)
    client.submit_batch(_requests(4), job_id="j", model="fast", mode="limited")
    counting = limiters["fast"]
    assert len(counting.acquired) == counting.released == len(counting.settled) == 4
    assert all(tokens > 0 for tokens in counting.acquired)


def test_a_call_cancelled_while_it_waits_for_the_rate_gives_its_place_back() -> None:
    from relay_core.plugin import RateLimiter

    async def scenario() -> None:
        limiter = RateLimiter(tokens_per_minute=600, concurrency=1)
        await limiter.acquire(600)  # the whole minute's tokens
        limiter.release()
        waiting = asyncio.ensure_future(limiter.acquire(600))  # a minute's wait for them
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # The only place is free again: a call that needs no tokens starts at once.
        await asyncio.wait_for(limiter.acquire(0), timeout=2)

    asyncio.run(scenario())


def test_a_runner_that_is_not_installed_is_named_before_anything_is_stored(
    tmp_path: Path, scripted: Any, close: list[RelayClient]
) -> None:
    client = _client(tmp_path, scripted, Runners())
    close.append(client)
    with pytest.raises(ConfigError, match=r"mode 'ray' .*pip install relay-ray.*auto, batch"):
        client.submit_batch(_requests(1), job_id="j", model="fast", mode="ray")
    assert client.list_jobs() == []


def test_the_command_line_names_a_missing_runner(
    tmp_path: Path, scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(scripted, name="scripted")
    monkeypatch.setattr(cli_module, "_shared_registry", registry)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relay.yaml").write_text(CATALOG)
    (tmp_path / "r.jsonl").write_text('{"id": "a", "prompt": "x"}\n')
    result = CliRunner().invoke(
        cli, ["batch", "submit", "r.jsonl", "-m", "fast", "--mode", "ray", "--address", "auto"]
    )
    assert result.exit_code == 2
    assert "mode 'ray' is no job runner installed here (pip install relay-ray)" in result.output
    assert "Traceback" not in result.output
