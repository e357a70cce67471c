"""Hostile input, generated: catalogs (text, bytes, plausible but wrong structures), JSONL
request files (random bytes, random lines, near-miss requests), request values, and job
ids (traversal, absolute paths, NUL, unicode, very long). Whatever comes in, Relay
answers with a typed ``RelayError`` (or accepts it), hangs on nothing, and creates
nothing outside the workspace.

The first runs of this suite found nine ways a raw exception got out (and two hangs);
each is fixed, and the smallest input that showed it stays below as a test of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cattrs
import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

import relay_mock
from relay_core import (
    AsyncRelayClient,
    BatchInputError,
    BatchRequest,
    Capability,
    ConfigError,
    Hub,
    PluginRegistry,
    Provider,
    RelayClient,
    RelayError,
    Request,
    Response,
    TextPart,
    hookimpl,
    load_catalog,
    parse_catalog,
)
from relay_core.batch._workspace import check_job_id
from relay_core.serialize import structure
from relay_core.testing import hub_for
from reliability.support import EXAMPLES, FIGURES, tree

ENGINE_TIMEOUT = 10.0  # a job of a few lines on relay-mock takes milliseconds


def _error_of(call: Callable[[], Any]) -> BaseException | None:
    try:
        call()
    except Exception as error:
        return error
    return None


# ---------------------------------------------------------------------------- strategies

leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
anything = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
names = st.text(max_size=10) | st.sampled_from(["fast", "mock", "local", "a/b", "", "x" * 300])


def _some(keys: list[str], value: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), value, max_size=len(keys))


providers = st.dictionaries(
    names,
    _some(
        ["plugin", "api_key", "base_url", "timeout", "max_retries", "headers", "options", "typo"],
        anything | st.sampled_from(["$env.X", "mock", "openai-compat", "sk-" + "a" * 40]),
    )
    | anything,
    max_size=3,
)
models = st.dictionaries(
    names,
    st.sampled_from(["mock/echo", "nope", "a/"])
    | _some(
        ["target", "params", "provider_kwargs", "pricing", "pricing_profile", "limits", "tags"],
        anything | st.just("mock/echo"),
    )
    | anything,
    max_size=3,
)
groups = st.dictionaries(
    names,
    _some(["strategy", "members"], anything | st.sampled_from(["fallback", "round_robin"]))
    | anything,
    max_size=3,
)
catalogs = _some(
    ["providers", "models", "groups", "pricing_profiles", "defaults", "modles"], anything
) | st.fixed_dictionaries(
    {},
    optional={
        "providers": providers,
        "models": models,
        "groups": groups,
        "pricing_profiles": st.dictionaries(names, _some(["input_multiplier", "x"], anything)),
        "defaults": _some(["model", "timeout", "max_retries", "x"], anything),
    },
)
word = st.text(alphabet="abxyz-_", min_size=1, max_size=6)
usable_provider = st.fixed_dictionaries(
    {"plugin": st.sampled_from(["mock", "openai-compat", "openai", "vllm", "together", "nope"])},
    optional={
        "base_url": st.sampled_from(["http://127.0.0.1:9/v1", "", "not a url", "http://[::1"])
        | st.text(max_size=10),
        "options": _some(
            [
                "faults",
                "batch_duration",
                "batch_max_requests",
                "batch_max_bytes",
                "state_dir",
                "max_tokens_field",
                "structured_output",
                "stream_usage",
                "api",
                "strict_tools",
            ],
            anything,
        ),
        "timeout": st.floats(allow_nan=False) | st.integers(),
        "max_retries": st.integers(-3, 10),
        "headers": st.dictionaries(word, st.text(max_size=10), max_size=2),
    },
)


@st.composite
def usable_catalogs(draw: st.DrawFn) -> dict[str, Any]:
    """Catalogs that mostly load, so the adapters they name get built."""
    providers = draw(st.dictionaries(word, usable_provider, min_size=1, max_size=2))
    target = st.builds("{}/{}".format, st.sampled_from(sorted(providers)), word)
    params = _some(["temperature", "max_tokens", "top_p", "stop", "seed", "reasoning"], anything)
    models = st.fixed_dictionaries({"target": target}, optional={"params": params})
    return {
        "providers": providers,
        "models": draw(st.dictionaries(word, models, min_size=1, max_size=3)),
    }


yaml_snippets = st.sampled_from(
    [
        "a: &x [1, *x]\n",
        "models: &m {fast: *m}\n",
        "? [a, b]\n: c\n",
        "!!python/object:os.system {}\n",
        "models: {fast: !!binary aGVsbG8=}\n",
        "<<: {a: 1}\n",
        "%YAML 1.1\n---\n...\n---\n",
        "models:\n  fast: mock/echo\n  fast: mock/echo\n",
        "\t- x\n",
        "'\\ud800'\n",
        "defaults: {timeout: .nan}\n",
        "defaults: {max_retries: 99999999999999999999999}\n",
    ]
)

short_form = st.fixed_dictionaries(
    {"id": st.text(max_size=8) | anything, "prompt": st.text(max_size=20) | anything},
    optional={
        "model": st.just("mock/echo") | anything,
        "system_prompt": anything,
        "provider_args": _some(
            [
                "temperature",
                "top_p",
                "max_tokens",
                "stop",
                "seed",
                "reasoning",
                "tools",
                "tool_choice",
                "response_schema",
                "tags",
                "metadata",
                "other",
            ],
            anything,
        )
        | anything,
    },
)
part = _some(
    ["type", "text", "data", "url", "media_type", "id", "name", "arguments", "call_id"],
    anything | st.sampled_from(["text", "image", "document", "tool_call", "tool_result"]),
)
message = _some(["role", "content"], anything | st.sampled_from(["user", "assistant", "tool"]))
full_form = st.fixed_dictionaries(
    {
        "custom_id": st.text(max_size=8) | anything,
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.just("user"), "content": st.lists(part, max_size=2)})
            | message,
            max_size=3,
        )
        | anything,
    },
    optional={
        "model": st.just("mock/echo") | anything,
        "system": anything,
        "config": anything,
        "tools": anything,
        "response_schema": anything,
        "provider_kwargs": anything,
    },
)
request_like = short_form | full_form | anything
hostile_ids = (
    st.text()
    | st.text(alphabet="./\\\x00-_~ é日", max_size=20)
    | st.sampled_from(
        [
            "../escape",
            "../../etc/passwd",
            "/abs/olute",
            "a/../../b",
            "a\x00b",
            "..",
            ".",
            ".hidden",
            "-dash",
            "x" * 129,
            "x" * 10_000,
            "ｆｕｌｌｗｉｄｔｈ",
            "日本語",
            "nul\x00",
            "trailing\n",
            "C:\\windows",
            "~/home",
            "%2e%2e%2f",
        ]
    )
)


# ---------------------------------------------------------------------------- catalogs


def test_the_catalog_loader_answers_anything_with_a_config_error(tmp_path: Path) -> None:
    tried: Counter[str] = Counter()
    before = tree(tmp_path)

    def check(load: Callable[[], Any]) -> None:
        error = _error_of(load)
        if error is not None and not isinstance(error, ConfigError):
            raise error
        assert error is None or str(error).strip()

    @EXAMPLES
    @given(st.text())
    def text(value: str) -> None:
        tried["text"] += 1
        check(lambda: parse_catalog(value))

    @EXAMPLES
    @given(st.binary())
    @example(b"\xff\xfe\x00")
    @example(b"models:\n  fast: \xc3\x28\n")
    def raw_bytes(value: bytes) -> None:
        tried["bytes"] += 1
        path = tmp_path / "relay.yaml"
        path.write_bytes(value)
        check(lambda: load_catalog(path))

    @EXAMPLES
    @given(catalogs, st.lists(yaml_snippets, max_size=2))
    def structures(value: dict[str, Any], snippets: list[str]) -> None:
        tried["structures"] += 1
        text = yaml.safe_dump(value, allow_unicode=True)
        check(lambda: parse_catalog(text))
        for snippet in snippets:
            tried["structures"] += 1
            check(lambda snippet=snippet: parse_catalog(snippet + text))

    registry = PluginRegistry()  # entry points read once, not per catalog

    @EXAMPLES
    @given(usable_catalogs())
    def adapters(value: dict[str, Any]) -> None:
        # A catalog that loads may still name an adapter that cannot be built: that, too,
        # must be a typed error (ConfigError, PluginNotInstalled...), when it is built.
        tried["adapters"] += 1
        try:
            catalog = parse_catalog(yaml.safe_dump(value, allow_unicode=True))
        except ConfigError:
            return
        with Hub(catalog, plugins=registry) as hub:
            for alias in catalog.aliases():
                error = _error_of(lambda alias=alias: hub.get(alias).adapter)
                if error is not None and not isinstance(error, RelayError):
                    raise error

    text()
    raw_bytes()
    structures()
    adapters()
    assert tree(tmp_path) == before | {"relay.yaml"}
    FIGURES.record("hostile", catalogs=dict(tried))


def test_a_mock_option_of_the_wrong_kind_is_a_config_error() -> None:
    catalog = parse_catalog("providers:\n  mock:\n    options: {state_dir: 5}\n")
    with Hub(catalog) as hub, pytest.raises(ConfigError):
        hub.get("mock/echo").adapter  # noqa: B018 - building it is the point


def _laughs(levels: int, width: int = 5) -> str:
    lines = ['l0: &l0 ["lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_catalog_of_nested_aliases_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(_laughs(12))  # 5**11 references in about 400 bytes
    load = "import sys, relay_core\ntry:\n    relay_core.load_catalog(sys.argv[1])\n"
    load += "except relay_core.ConfigError:\n    pass\n"
    # In a process of its own, so the test can stop it: an alarm signal cannot
    # interrupt work the garbage collector's callbacks are doing at that moment.
    try:
        subprocess.run([sys.executable, "-c", load, str(path)], check=True, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("a 400-byte catalog took more than 5 s to load")


# ---------------------------------------------------------------------------- requests


class _Jobs:
    """Submits hostile jobs to the engine on relay-mock, each guarded by a timeout, and
    sorts what happens: accepted or refused (a RelayError); anything else fails."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.workspace = tmp_path / "ws"
        self.client = AsyncRelayClient(self.workspace)
        self.outcomes: Counter[str] = Counter()
        self.number = 0

    def submit(self, requests: Any) -> None:
        self.number += 1
        job_id = f"hostile-{self.number}"
        submit = self.client.submit_batch(requests, job_id=job_id, model="mock/echo", mode="engine")
        error = _error_of(lambda: asyncio.run(asyncio.wait_for(submit, ENGINE_TIMEOUT)))
        if isinstance(error, asyncio.TimeoutError):
            pytest.fail(f"the engine hung on {requests!r}")
        if error is not None and not isinstance(error, RelayError):
            raise error
        if error is not None:
            self.outcomes["refused"] += 1
            assert str(error).strip()
            # Nothing of a refused job is kept.
            assert not (self.workspace / "jobs" / job_id).exists()
            return
        self.outcomes["accepted"] += 1
        job = asyncio.run(self.client.get_job(job_id))
        assert job.status == "completed"
        assert len(list(self.client.iter_results(job_id))) == job.n_requests

    def close(self) -> None:
        asyncio.run(self.client.aclose())


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[_Jobs]:
    submitter = _Jobs(tmp_path)
    yield submitter
    submitter.close()


def _workspace_only(tmp_path: Path, before: set[str], *inputs: str) -> None:
    """Nothing new outside the workspace but the test's own input files."""
    assert tree(tmp_path, exclude=tmp_path / "ws") <= before | set(inputs)
    for path in (tmp_path / "ws").iterdir():
        assert path.name in {
            "relay.db",
            "relay.db-wal",
            "relay.db-shm",
            "jobs",
            "cache.db",
            "cache.db-wal",
            "cache.db-shm",
        }, path


def test_jsonl_files_of_random_bytes_and_lines_are_read_or_refused(
    tmp_path: Path, jobs: _Jobs
) -> None:
    before = tree(tmp_path, exclude=tmp_path / "ws")
    path = tmp_path / "requests.jsonl"

    @EXAMPLES
    @given(st.binary(max_size=300))
    @example(b'{"id": "a", "prompt": "hi"}\n\xff\n')
    def raw(value: bytes) -> None:
        path.write_bytes(value)
        jobs.submit(str(path))

    @EXAMPLES
    @given(st.lists(request_like, min_size=1, max_size=4), st.booleans())
    @example([{"id": "a", "prompt": "x"}], True)
    def lines(values: list[Any], blank_lines: bool) -> None:
        text = "".join(json.dumps(v) + ("\n\n" if blank_lines else "\n") for v in values)
        path.write_text(text)
        jobs.submit(str(path))

    raw()
    lines()
    _workspace_only(tmp_path, before, "requests.jsonl")
    FIGURES.record("hostile", jsonl=dict(jobs.outcomes))


def test_requests_given_as_values_are_read_or_refused(tmp_path: Path, jobs: _Jobs) -> None:
    before = tree(tmp_path, exclude=tmp_path / "ws")
    tried: Counter[str] = Counter()

    @EXAMPLES
    @given(st.lists(request_like, min_size=1, max_size=3))
    def mappings(values: list[Any]) -> None:
        jobs.submit(values)

    @EXAMPLES
    @example(float("nan"), "x", None, None, {})  # found by a full run
    @given(
        st.text(max_size=8) | anything,
        st.text(max_size=20) | anything,
        st.none() | st.just("mock/echo") | anything,
        st.none() | anything,
        st.dictionaries(st.text(max_size=10), anything, max_size=3),
    )
    def batch_requests(id_: Any, prompt: Any, model: Any, system: Any, args: Any) -> None:
        request = BatchRequest(
            id=id_, prompt=prompt, model=model, system_prompt=system, provider_args=args
        )
        jobs.submit([request])

    @EXAMPLES
    @given(full_form | anything)
    def structured(value: Any) -> None:
        # The converter plugin authors use: its own errors are its contract (the
        # user-facing paths above must turn them into BatchInputError).
        tried["tried"] += 1
        with contextlib.suppress(cattrs.BaseValidationError, TypeError, ValueError):
            assert isinstance(structure(value, Request), Request)

    mappings()
    batch_requests()
    structured()
    _workspace_only(tmp_path, before)
    FIGURES.record("hostile", request_values=dict(jobs.outcomes), structure=dict(tried))


# The smallest input of each raw exception the first runs found (all fixed since), with
# what the BatchInputError must say.
MINIMAL = {
    "jsonl_not_utf8": (b'{"id": "a", "prompt": "caf\xe9"}\n', "not UTF-8"),
    "jsonl_deep_nesting": (b"[" * 100_000 + b"\n", "nested too deeply"),
    "provider_args_not_a_mapping": (
        b'{"id": "a", "prompt": "x", "provider_args": "hot"}\n',
        "provider_args must be a mapping",
    ),
    "full_request_cattrs_error": (b'{"custom_id": "a", "messages": "hello"}\n', "messages"),
    "model_not_a_string": (b'{"id": "a", "prompt": "x", "model": 5}\n', "model must be a string"),
    "custom_id_not_a_string": (b'{"id": ["a"], "prompt": "x"}\n', "id must be a string"),
    "custom_id_nan": (b'{"id": NaN, "prompt": "x"}\n', "id must be a string"),
    "prompt_not_text": (b'{"id": "a", "prompt": ["x"]}\n', "prompt must be a string"),
    "max_tokens_nan": (
        b'{"id": "a", "prompt": "x", "provider_args": {"max_tokens": NaN}}\n',
        "max_tokens must be an integer",
    ),
    "max_tokens_huge": (
        b'{"id": "a", "prompt": "x", "provider_args": {"max_tokens": 1e400}}\n',
        "max_tokens must be an integer",
    ),
}


@pytest.mark.parametrize("case", MINIMAL)
def test_a_bad_request_file_is_a_batch_input_error_at_its_line(tmp_path: Path, case: str) -> None:
    content, says = MINIMAL[case]
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b'{"id": "fine", "prompt": "x"}\n' + content)
    with RelayClient(tmp_path / "ws") as client, pytest.raises(BatchInputError) as caught:
        client.submit_batch(str(path), job_id="bad", model="mock/echo", mode="engine")
    assert says in str(caught.value)
    assert (caught.value.file, caught.value.line) == (str(path), 2)


class _BrokenAdapter(Provider):
    """An adapter with a bug: it raises something that is not a RelayError."""

    name = "broken"
    capabilities = frozenset({Capability.CHAT})

    async def chat(self, request: Request) -> Response:
        if request.custom_id == "bug":
            raise RuntimeError("adapter bug")
        return Response(content=(TextPart("fine"),), model=request.model)


class _BrokenPlugin:
    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        register("broken", _BrokenAdapter)


def test_an_adapter_bug_fails_its_request_and_the_job_goes_on(tmp_path: Path) -> None:
    async def run() -> None:
        hub = hub_for("", _BrokenPlugin(), relay_mock)
        client = AsyncRelayClient(tmp_path / "ws", hub=hub)
        requests = [BatchRequest(id=name, prompt="x") for name in ("before", "bug", "after")]
        try:
            job = await asyncio.wait_for(
                client.submit_batch(requests, job_id="bug", model="broken/m", mode="engine"),
                ENGINE_TIMEOUT,
            )
            assert (job.status, job.counts.completed, job.counts.failed) == ("completed", 2, 1)
            failed = {item.custom_id: item.error for item in client.iter_results("bug")}["bug"]
            assert failed is not None
            assert (failed.kind, failed.retryable) == ("RuntimeError", False)
            assert "adapter bug" in failed.message
        finally:
            await client.aclose()
            await hub.aclose()

    asyncio.run(run())


# ---------------------------------------------------------------------------- job ids


def test_hostile_job_ids_are_refused_and_never_reach_the_disk(tmp_path: Path) -> None:
    tried: Counter[str] = Counter()
    workspace = tmp_path / "ws"
    accepted: set[str] = set()

    with RelayClient(workspace) as client:
        outside = tree(tmp_path, exclude=workspace)

        def calls(job_id: Any) -> list[Callable[[], Any]]:
            return [
                lambda: client.submit_batch(
                    [BatchRequest(id="a", prompt="x")],
                    job_id=job_id,
                    model="mock/echo",
                    mode="engine",
                    overwrite=True,
                ),
                lambda: client.get_job(job_id),
                lambda: client.resume(job_id),
                lambda: client.cancel_batch(job_id),
                lambda: client.retrieve_batch_results(job_id),
                lambda: list(client.iter_results(job_id)),
            ]

        @EXAMPLES
        @given(hostile_ids | st.binary(max_size=20) | st.integers())
        @example(None)
        def ids(job_id: Any) -> None:
            tried["ids"] += 1
            try:
                assert check_job_id(job_id) == job_id
            except BatchInputError:
                pass
            else:
                # An accepted id names a directory right under jobs/, nothing else.
                target = (workspace / "jobs" / job_id).resolve()
                assert target.parent == (workspace / "jobs").resolve()
                accepted.add(job_id)
            # (None asks submit_batch for a fresh id: not hostile, so not submitted.)
            for call in calls(job_id)[job_id is None :]:
                tried["calls"] += 1
                error = _error_of(call)
                if error is not None and not isinstance(error, RelayError):
                    raise error

        ids()
        assert tree(tmp_path, exclude=workspace) == outside

    jobs_dir = workspace / "jobs"
    made = {path.name for path in jobs_dir.iterdir()} if jobs_dir.exists() else set()
    assert made <= accepted
    FIGURES.record("hostile", job_ids=dict(tried))


def test_resume_checks_the_job_id_like_every_other_method(tmp_path: Path) -> None:
    with RelayClient(tmp_path / "ws") as client, pytest.raises(RelayError):
        client.resume(10**30)  # type: ignore[arg-type]
