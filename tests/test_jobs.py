"""Batch jobs with no plugin installed: an in-code provider with a batch API (the
"ledger", which answers every batch at once) and the scripted chat provider drive the
workspace, both modes, splitting, and the adapter hooks a plugin author relies on."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from relay_core import (
    BatchInputError,
    BatchItem,
    BatchLimits,
    BatchRequest,
    Capability,
    MalformedResponse,
    Provider,
    ProviderBatch,
    RelayClient,
    Request,
    Response,
    ResponseSchema,
    Usage,
    hookimpl,
)
from relay_core.errors import InvalidRequestError, NotFoundError
from relay_core.testing import hub_for
from relay_core.types import BatchCounts

CATALOG = """\
models:
  ledger: ledger/l-1
  chat: scripted/s-1
"""


class LedgerProvider(Provider):
    """Batches in a class-level dict; every batch is complete as soon as it is submitted.

    ``batch_line`` refuses custom_ids with a space (as real providers restrict them);
    ``finish_batch_response`` shouts a structured answer and refuses one whose system
    prompt says so, to show what the core does with each outcome. ``chat`` has a bug:
    the prompt "crash" raises a plain RuntimeError.
    """

    name = "ledger"
    capabilities = frozenset({Capability.CHAT, Capability.BATCH, Capability.STRUCTURED_OUTPUT})
    batch_limits = BatchLimits(max_requests=3)
    batches: ClassVar[dict[str, list[Mapping[str, Any]]]] = {}
    finished_with: ClassVar[list[Request]] = []

    async def chat(self, request: Request) -> Response:
        if request.messages[-1].text == "crash":
            raise RuntimeError("ledger bug")
        return Response(content=f"chat: {request.messages[-1].text}", model=request.model)

    def batch_line(self, request: Request) -> Mapping[str, Any]:
        if " " in (request.custom_id or ""):
            raise InvalidRequestError(
                "ledger custom_ids have no spaces", provider=self.name, custom_id=request.custom_id
            )
        return {"id": request.custom_id, "model": request.model, "text": request.messages[-1].text}

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        batch_id = f"lb-{len(self.batches)}"
        self.batches[batch_id] = [self.batch_line(request) for request in requests]
        return await self.batch_status(batch_id)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        if batch_id not in self.batches:
            raise NotFoundError(f"no batch {batch_id}", provider=self.name)
        n = len(self.batches[batch_id])
        return ProviderBatch(
            id=batch_id,
            provider=self.name,
            state="completed",
            counts=BatchCounts(total=n, completed=n),
            created_at=time.time(),
        )

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        # Out of order on purpose: the core puts results back in request order.
        for line in reversed(self.batches[batch_id]):
            response = Response(
                content=f"batch: {line['text']}", model=line["model"], usage=Usage(4, 2)
            )
            yield BatchItem(line["id"], response=response, raw=dict(line))

    async def list_batches(self) -> Sequence[ProviderBatch]:
        return [await self.batch_status(batch_id) for batch_id in self.batches]

    def finish_batch_response(self, request: Request, response: Response) -> Response:
        self.finished_with.append(request)
        if request.system == "refuse":
            raise MalformedResponse("the answer does not fit the schema", provider=self.name)
        if request.response_schema is None:
            return response
        return Response(content=response.text.upper(), model=response.model, usage=response.usage)


class LedgerPlugin:
    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        register("ledger", LedgerProvider)


@pytest.fixture
def relay(tmp_path: Path, scripted: Any) -> Iterator[RelayClient]:
    LedgerProvider.batches.clear()
    LedgerProvider.finished_with.clear()
    hub = hub_for(CATALOG, LedgerPlugin())
    hub.plugins.register(scripted, name="scripted")
    with RelayClient(tmp_path / "ws", hub=hub) as client:
        yield client
    hub.close()


def _texts(items: list[BatchItem]) -> list[str | None]:
    return [item.response.text if item.response else None for item in items]


def test_a_provider_without_batches_runs_the_job_in_the_engine(relay: RelayClient) -> None:
    requests = [BatchRequest(id=f"r{i}", prompt=f"q{i}") for i in range(5)]
    job = relay.submit_batch(requests, job_id="engine-job", model="chat")
    assert (job.mode, job.status, job.n_requests) == ("engine", "completed", 5)
    assert job.providers == ("scripted",)  # named by its requests, as batches name theirs
    assert relay.has_results("engine-job")
    results = relay.get_results("engine-job")
    assert [item.custom_id for item in results] == [f"r{i}" for i in range(5)]
    assert _texts(results) == [f"echo: q{i}" for i in range(5)]


def test_a_batch_job_is_split_to_the_limits_and_merged_in_request_order(
    relay: RelayClient,
) -> None:
    requests = [BatchRequest(id=f"r{i}", prompt=f"q{i}") for i in range(7)]
    job = relay.submit_batch(requests, job_id="split", model="ledger", mode="batch")
    assert job.mode == "batch"
    assert len(LedgerProvider.batches) == 3  # 3 + 3 + 1 under max_requests=3
    results = relay.retrieve_batch_results("split")
    assert [item.custom_id for item in results] == [f"r{i}" for i in range(7)]
    assert _texts(results) == [f"batch: q{i}" for i in range(7)]
    assert all(item.response and item.response.provider == "ledger" for item in results)


def test_finish_batch_response_gets_each_answer_with_the_request_it_answers(
    relay: RelayClient,
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    requests = [
        Request.from_prompt("plain", custom_id="plain"),
        Request.from_prompt("shaped", custom_id="shaped", response_schema=ResponseSchema(schema)),
    ]
    relay.submit_batch(requests, job_id="hooked", model="ledger", mode="batch")
    results = relay.retrieve_batch_results("hooked")
    assert _texts(results) == ["batch: plain", "BATCH: SHAPED"]
    seen = {request.custom_id: request for request in LedgerProvider.finished_with}
    # The request as batch_line received it: the concrete model, the schema intact.
    assert seen["shaped"].model == "l-1"
    assert seen["shaped"].response_schema is not None
    assert seen["shaped"].response_schema.schema == schema
    assert seen["plain"].response_schema is None


def test_an_answer_the_adapter_cannot_finish_fails_that_request_alone(
    relay: RelayClient,
) -> None:
    requests = [
        Request.from_prompt("fine", custom_id="a"),
        Request.from_prompt("bad", custom_id="b", system="refuse"),
        Request.from_prompt("fine too", custom_id="c"),
    ]
    relay.submit_batch(requests, job_id="partial", model="ledger", mode="batch")
    a, b, c = relay.retrieve_batch_results("partial")
    assert (a.ok, b.ok, c.ok) == (True, False, True)
    assert b.error is not None
    assert (b.error.kind, b.error.retryable) == ("MalformedResponse", True)
    assert "does not fit the schema" in b.error.message
    assert b.raw == {"id": "b", "model": "l-1", "text": "bad"}  # the provider's line kept
    job = relay.get_job("partial")
    assert (job.counts.completed, job.counts.failed) == (2, 1)


def test_a_request_the_providers_batches_refuse_names_its_file_and_line(
    relay: RelayClient, tmp_path: Path
) -> None:
    lines = [
        {"id": "ok-1", "prompt": "one"},
        {"id": "has space", "prompt": "two"},
    ]
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(BatchInputError) as caught:
        relay.submit_batch(path, job_id="refused", model="ledger", mode="batch")
    error = caught.value
    assert (error.file, error.line, error.custom_id) == (str(path), 2, "has space")
    assert "no spaces" in str(error)
    assert LedgerProvider.batches == {}  # nothing of a refused job reaches the provider
    assert [job.job_id for job in relay.list_jobs()] == []


BAD_LINES = [
    (b'{"id": "a", "prompt": "caf\xe9"}', "not UTF-8: byte 0xe9 at column 27"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"id": "a", "prompt": "x", "provider_args": "hot"}', "provider_args must be a mapping"),
    (b'{"id": ["a"], "prompt": "x"}', "id must be a string, not list"),
    (b'{"id": "a", "prompt": ["x"]}', "prompt must be a string, not list"),
    (b'{"id": "a", "prompt": "x", "model": 5}', "model must be a string, not int"),
    (b'{"id": "a", "prompt": "x", "provider_args": {"max_tokens": NaN}}', "max_tokens"),
    (b'{"id": "a", "prompt": "x", "provider_args": {"tools": [5]}}', "tools[0] must be"),
    (b'{"custom_id": "a", "messages": "hello"}', "messages must be a list"),
    (
        b'{"custom_id": "a", "messages": [{"role": "user", "content": 5}]}',
        "messages[0].content: expected text",
    ),
    (
        b'{"custom_id": "a", "messages": [{"content": "x"}]}',
        "messages[0].role: missing",
    ),
]


@pytest.mark.parametrize(("line", "says"), BAD_LINES)
def test_a_bad_line_is_refused_with_its_file_line_and_what_is_wrong(
    relay: RelayClient, tmp_path: Path, line: bytes, says: str
) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b'{"id": "fine", "prompt": "x"}\n' + line + b"\n")
    with pytest.raises(BatchInputError) as caught:
        relay.submit_batch(path, job_id="bad", model="ledger", mode="engine")
    assert (caught.value.file, caught.value.line) == (str(path), 2)
    assert says in str(caught.value)
    assert relay.list_jobs() == []


def test_a_full_request_may_give_content_as_plain_text(relay: RelayClient) -> None:
    lines = [
        {"custom_id": "a", "messages": [{"role": "user", "content": "plain"}]},
        {"custom_id": "b", "messages": [{"role": "user", "content": {"text": "one part"}}]},
    ]
    relay.submit_batch(lines, job_id="plain", model="ledger", mode="engine")
    assert _texts(list(relay.iter_results("plain"))) == ["chat: plain", "chat: one part"]


def test_an_adapter_bug_fails_its_request_and_the_engine_goes_on(relay: RelayClient) -> None:
    requests = [BatchRequest(id=str(i), prompt=text) for i, text in enumerate(["a", "crash", "b"])]
    job = relay.submit_batch(requests, job_id="bug", model="ledger", mode="engine")
    assert (job.status, job.counts.completed, job.counts.failed) == ("completed", 2, 1)
    items = list(relay.iter_results("bug"))
    assert _texts(items) == ["chat: a", None, "chat: b"]
    error = items[1].error
    assert error is not None
    assert (error.kind, error.message, error.retryable) == ("RuntimeError", "ledger bug", False)


def test_a_stored_request_that_cannot_be_read_back_fails_alone(
    relay: RelayClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import relay_core.batch._pool as engine

    read = engine.structure

    def damaged(data: Any, cls: Any) -> Any:
        # As if the line had been changed on disk since it was checked.
        if data.get("custom_id") == "1":
            raise ValueError("damaged")
        return read(data, cls)

    monkeypatch.setattr(engine, "structure", damaged)
    requests = [BatchRequest(id=str(i), prompt=text) for i, text in enumerate("abc")]
    job = relay.submit_batch(requests, job_id="damaged", model="ledger", mode="engine")
    assert (job.status, job.counts.completed, job.counts.failed) == ("completed", 2, 1)
    items = list(relay.iter_results("damaged"))
    assert [item.custom_id for item in items] == ["0", "1", "2"]
    assert items[1].error is not None
    assert "cannot be read back" in items[1].error.message


def test_a_read_only_workspace_reads_jobs_and_writes_nothing(
    relay: RelayClient, tmp_path: Path
) -> None:
    import sqlite3

    from relay_core.batch._workspace import Workspace
    from relay_core.errors import JobError, WorkspaceError

    relay.submit_batch(
        [BatchRequest(id="a", prompt="x")], job_id="seen", model="ledger", mode="engine"
    )
    reader = Workspace(tmp_path / "ws", read_only=True)
    try:
        assert [row["job_id"] for row in reader.query("SELECT job_id FROM jobs")] == ["seen"]
        assert reader.job(reader.row("seen")).status == "completed"
        # The writer goes on while the reader is open.
        relay.submit_batch(
            [BatchRequest(id="b", prompt="y")], job_id="later", model="ledger", mode="engine"
        )
        assert len(reader.query("SELECT job_id FROM jobs")) == 2
        with pytest.raises(WorkspaceError, match="read-only") as caught:
            reader.update("seen", status="failed")
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    finally:
        reader.close()
    with pytest.raises(JobError, match=r"no relay\.db"):
        Workspace(tmp_path / "nowhere", read_only=True)
    assert not (tmp_path / "nowhere").exists()


def test_an_engine_job_names_every_provider_its_requests_reach(relay: RelayClient) -> None:
    requests = [
        BatchRequest(id="a", prompt="x", model="ledger"),
        BatchRequest(id="b", prompt="y", model="chat"),
        BatchRequest(id="c", prompt="z", model="ledger"),
    ]
    job = relay.submit_batch(requests, job_id="mixed", mode="engine")
    assert job.providers == ("ledger", "scripted")
    assert relay.get_job("mixed").providers == ("ledger", "scripted")


def test_a_workspace_from_before_the_providers_column_opens_and_gains_it(tmp_path: Path) -> None:
    import sqlite3

    from relay_core.batch._workspace import Workspace

    old = sqlite3.connect(tmp_path / "relay.db")
    old.execute(
        "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, status TEXT NOT NULL, mode TEXT NOT NULL,"
        " model TEXT, description TEXT, n_requests INTEGER NOT NULL DEFAULT 0, digest TEXT,"
        " submitted_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL,"
        " completed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,"
        " cost_amount REAL, cost_source TEXT, cost_discounted INTEGER NOT NULL DEFAULT 0,"
        " has_results INTEGER NOT NULL DEFAULT 0, owner TEXT, heartbeat REAL,"
        " cancel_requested INTEGER NOT NULL DEFAULT 0, error TEXT)"
    )
    old.execute(
        "INSERT INTO jobs (job_id, status, mode, submitted_at, updated_at)"
        " VALUES ('old', 'completed', 'engine', 1, 1)"
    )
    old.commit()
    old.close()
    workspace = Workspace(tmp_path)
    try:
        assert workspace.job(workspace.row("old")).providers == ()
    finally:
        workspace.close()
