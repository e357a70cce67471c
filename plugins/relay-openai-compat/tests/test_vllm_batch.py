"""vLLM batches through ``vllm run-batch``, run here by a stand-in executable the tests write:
it parses ``-i/-o/--model`` as vLLM does and writes OpenAI batch output lines (an error line
and a garbled line when the prompt asks), then may wait for a file or exit non-zero. No
vLLM, no network, no cassettes: the wire is a pair of local files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import relay_openai_compat
from relay_core import (
    Capability,
    ConfigError,
    GenerationConfig,
    InvalidRequestError,
    NotFoundError,
    PluginRegistry,
    ProviderBatch,
    Request,
)
from relay_core.providers import ProviderSettings
from relay_openai_compat._vllm import VLLMProvider, default_batch_dir

STAND_IN = """\
#!{python}
import argparse, json, os, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("subcommand")
parser.add_argument("-i", "--input-file", required=True)
parser.add_argument("-o", "--output-file", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--wait-for")
parser.add_argument("--exit-code", type=int, default=0)
args, _ = parser.parse_known_args()
folder = os.path.dirname(args.output_file)
with open(os.path.join(folder, "seen.json"), "w") as file:
    json.dump({{"argv": sys.argv[1:], "sid": os.getsid(0), "pgid": os.getpgid(0)}}, file)
print("stand-in vllm: serving", args.model, flush=True)
with open(args.input_file) as source, open(args.output_file, "w") as out:
    for number, text in enumerate(source):
        line = json.loads(text)
        body = line["body"]
        prompt = body["messages"][-1]["content"]
        output = {{"id": f"vllm-{{number}}", "custom_id": line["custom_id"]}}
        if "please fail" in prompt:
            error = {{"message": "maximum context length is 8 tokens", "type": "BadRequestError",
                      "param": None, "code": 400}}
            output["response"] = {{"status_code": 400, "request_id": f"vllm-batch-{{number}}",
                                   "body": None}}
            output["error"] = {{"error": error}}
        else:
            completion = {{
                "id": f"chatcmpl-{{number}}", "object": "chat.completion", "created": 1,
                "model": body["model"],
                "choices": [{{"index": 0, "finish_reason": "stop",
                             "message": {{"role": "assistant", "content": "echo: " + prompt}}}}],
                "usage": {{"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}},
            }}
            output["response"] = {{"status_code": 200, "request_id": f"vllm-batch-{{number}}",
                                   "body": completion}}
            output["error"] = None
        text = json.dumps(output)
        if "please garble" in prompt:
            text = text[: text.index('"response"') + 20]
        out.write(text + "\\n")
        out.flush()
if args.wait_for:
    deadline = time.time() + 60
    while not os.path.exists(args.wait_for) and time.time() < deadline:
        time.sleep(0.02)
if args.exit_code:
    print("stand-in vllm: CUDA out of memory", file=sys.stderr, flush=True)
    sys.exit(args.exit_code)
"""

LOCAL = "http://127.0.0.1:8000/v1"
PROMPTS = {"r1": "Hi", "r2": "please fail", "r3": "Bye", "r4": "please garble"}
METADATA = {"relay_job": "eval-001", "relay_tag": "part-1"}


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    script = tmp_path / "bin" / "fake-vllm"
    script.parent.mkdir()
    script.write_text(STAND_IN.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def batch_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "batches"
    yield directory
    # Nothing a test started may outlive it.
    for pid in directory.glob("*/pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid.read_text()), signal.SIGKILL)


@pytest.fixture
def make_adapter(stand_in: Path, batch_dir: Path) -> Callable[..., VLLMProvider]:
    def make(*args: str, **options: Any) -> VLLMProvider:
        options.setdefault("batch_command", [str(stand_in), "run-batch"])
        options.setdefault("batch_dir", str(batch_dir))
        options.setdefault("batch_args", list(args))
        settings = ProviderSettings(name="vllm", base_url=LOCAL, options=options)
        return VLLMProvider(settings)

    return make


def requests(model: str = "Qwen/Qwen3-8B") -> list[Request]:
    return [
        Request.from_prompt(prompt, model=model, custom_id=custom_id, system="Be brief.")
        for custom_id, prompt in PROMPTS.items()
    ]


async def until(
    adapter: VLLMProvider, batch_id: str, done: Callable[[ProviderBatch], bool]
) -> ProviderBatch:
    deadline = time.monotonic() + 30
    while True:
        view = await adapter.batch_status(batch_id)
        if done(view):
            return view
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.02)


def group_exists(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------------------- registration


def test_the_vllm_preset_is_the_batch_adapter_and_chat_still_goes_to_the_server(
    server: Any, make_hub: Any
) -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(relay_openai_compat, name="openai-compat")
    assert registry.provider("vllm").load() is VLLMProvider
    assert Capability.BATCH in VLLMProvider.capabilities
    assert VLLMProvider.batch_metadata is True

    server.reply(
        {
            "id": "cmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "qwen3",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )
    hub = make_hub()
    answer = hub.chat("vllm/qwen3", "Hi", system="Be brief.", max_tokens=7, temperature=0.2)
    assert answer.text == "ok"
    assert str(server.requests[-1].url) == "http://127.0.0.1:8000/v1/chat/completions"
    adapter = hub.get("vllm/qwen3").adapter
    assert isinstance(adapter, VLLMProvider)
    request = Request.from_prompt(
        "Hi",
        model="qwen3",
        system="Be brief.",
        config=GenerationConfig(max_tokens=7, temperature=0.2),
        custom_id="r1",
    )
    assert adapter.batch_line(request) == {
        "custom_id": "r1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": server.payload,
    }


# ---------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"batch_command": "vllm run-batch"}, "batch_command"),
        ({"batch_command": []}, "batch_command"),
        ({"batch_command": ["vllm", 3]}, "batch_command"),
        ({"batch_args": "--max-model-len 8192"}, "batch_args"),
        ({"batch_args": [True]}, "batch_args"),
        ({"batch_dir": 5}, "batch_dir"),
        ({"batch_dir": ""}, "batch_dir"),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=rf"providers\.vllm\.options\.{named}"):
        VLLMProvider(ProviderSettings(name="vllm", base_url=LOCAL, options=options))


def test_option_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings = ProviderSettings(name="vllm", base_url=LOCAL, options={"batch_args": ["--x", 8192]})
    adapter = VLLMProvider(settings)
    assert adapter.batch_command == ["vllm", "run-batch"]
    assert adapter.batch_args == ["--x", "8192"]
    assert adapter.batch_dir == tmp_path / "cache" / "relay-vllm-batches"
    assert default_batch_dir() == adapter.batch_dir
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_batch_dir() == Path.home() / ".cache" / "relay-vllm-batches"


# ---------------------------------------------------------------------------- a batch's life


async def test_submit_progress_completion_and_results(
    make_adapter: Callable[..., VLLMProvider], batch_dir: Path, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    adapter = make_adapter("--wait-for", str(release), "--max-model-len", "4096")
    sent = requests()
    batch = await adapter.submit_batch(sent, metadata=METADATA)

    assert batch.state == "in_progress"
    assert batch.provider == "vllm"
    assert batch.metadata == METADATA
    assert batch.counts.total == 4
    folder = batch_dir / batch.id
    lines = [json.loads(line) for line in (folder / "input.jsonl").read_text().splitlines()]
    assert lines == [adapter.batch_line(request) for request in sent]
    assert lines[0]["body"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    record = json.loads((folder / "batch.json").read_text())
    assert record["model"] == "Qwen/Qwen3-8B"
    assert record["count"] == 4
    assert record["metadata"] == METADATA
    assert record["created_at"] == batch.created_at
    assert int((folder / "pid").read_text()) == batch.raw["pid"]
    assert group_exists(batch.raw["pid"])

    # Output lines are counted as vLLM writes them, while the runner still runs.
    running = await until(adapter, batch.id, lambda b: b.counts.pending == 0)
    assert running.state == "in_progress"
    assert (running.counts.completed, running.counts.failed) == (2, 2)
    assert running.ended_at is None

    release.touch()
    done = await until(adapter, batch.id, lambda b: b.done)
    assert done.state == "completed"
    assert done.raw["exit_code"] == 0
    assert done.ended_at is not None
    assert done.ended_at >= done.created_at
    assert (done.counts.completed, done.counts.failed) == (2, 2)

    seen = json.loads((folder / "seen.json").read_text())
    # Its own session: a client's terminal or death does not reach it.
    assert seen["sid"] == seen["pgid"] == batch.raw["pid"] != os.getsid(0)
    assert seen["argv"] == [
        "run-batch",
        "-i",
        str(folder / "input.jsonl"),
        "-o",
        str(folder / "output.jsonl"),
        "--model",
        "Qwen/Qwen3-8B",
        "--wait-for",
        str(release),
        "--max-model-len",
        "4096",
    ]

    items = {item.custom_id: item async for item in adapter.batch_results(batch.id)}
    assert sorted(items) == ["r1", "r2", "r3", "r4"]
    assert items["r1"].response is not None
    assert items["r1"].response.text == "echo: Hi"
    assert items["r1"].response.custom_id == "r1"
    assert items["r1"].response.usage.input_tokens == 5
    assert items["r1"].raw["response"]["status_code"] == 200
    assert items["r3"].ok
    error = items["r2"].error
    assert error is not None
    assert (error.kind, error.status_code) == ("ContextWindowExceeded", 400)
    assert "maximum context length" in error.message
    assert items["r2"].raw["error"]["error"]["code"] == 400
    garbled = items["r4"]
    assert garbled.error is not None
    assert garbled.error.kind == "MalformedResponse"
    assert isinstance(garbled.raw, str)
    assert garbled.raw.startswith('{"id": "vllm-3"')


async def test_another_process_sees_the_batch_after_its_client_died(
    make_adapter: Callable[..., VLLMProvider],
    stand_in: Path,
    batch_dir: Path,
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    options = {
        "batch_command": [str(stand_in), "run-batch"],
        "batch_dir": str(batch_dir),
        "batch_args": ["--wait-for", str(release)],
    }
    # A client process submits, prints the id and exits with the batch still running.
    code = f"""
        import asyncio, json
        from relay_core import Request
        from relay_core.providers import ProviderSettings
        from relay_openai_compat._vllm import VLLMProvider

        adapter = VLLMProvider(ProviderSettings(name="vllm", base_url={LOCAL!r},
                                                options={options!r}))
        batch = asyncio.run(adapter.submit_batch(
            [Request.from_prompt("Hi", model="m", custom_id="only")],
            metadata={{"relay_job": "from-elsewhere"}}))
        print(json.dumps([batch.id, batch.state]))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    batch_id, state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state == "in_progress"

    mine = make_adapter()
    earlier = await mine.submit_batch(requests(), metadata=METADATA)
    listed = await mine.list_batches()
    assert [b.id for b in listed][:2] == [earlier.id, batch_id]  # newest first
    theirs = next(b for b in listed if b.id == batch_id)
    assert theirs.metadata == {"relay_job": "from-elsewhere"}
    assert theirs.state == "in_progress"

    release.touch()
    done = await until(mine, batch_id, lambda b: b.done)
    assert done.state == "completed"
    assert [item.custom_id async for item in mine.batch_results(batch_id)] == ["only"]
    # A third instance, knowing nothing, agrees.
    third = make_adapter()
    assert (await third.batch_status(batch_id)).state == "completed"
    assert (await until(third, earlier.id, lambda b: b.done)).metadata == METADATA


async def test_a_failing_runner_is_a_failed_batch_with_its_log(
    make_adapter: Callable[..., VLLMProvider],
) -> None:
    adapter = make_adapter("--exit-code", "3")
    batch = await adapter.submit_batch(requests(), metadata=METADATA)
    done = await until(adapter, batch.id, lambda b: b.done)
    assert done.state == "failed"
    assert done.raw["exit_code"] == 3
    assert "exited with code 3" in done.raw["error"]
    assert "CUDA out of memory" in done.raw["log_tail"]
    assert "stand-in vllm: serving Qwen/Qwen3-8B" in done.raw["log_tail"]
    assert done.counts.pending == 0
    # What it wrote before failing is still delivered.
    assert len([item async for item in adapter.batch_results(batch.id)]) == 4


async def test_a_missing_command_is_a_failed_batch_saying_so(
    make_adapter: Callable[..., VLLMProvider], tmp_path: Path
) -> None:
    adapter = make_adapter(batch_command=[str(tmp_path / "no-such-vllm"), "run-batch"])
    batch = await adapter.submit_batch(requests(), metadata=METADATA)
    done = await until(adapter, batch.id, lambda b: b.done)
    assert done.state == "failed"
    assert done.raw["exit_code"] == 127
    assert "cannot run" in done.raw["log_tail"]
    assert (done.counts.completed, done.counts.failed) == (0, 4)
    assert [item async for item in adapter.batch_results(batch.id)] == []


async def test_cancel_terminates_the_running_process_group(
    make_adapter: Callable[..., VLLMProvider], batch_dir: Path, tmp_path: Path
) -> None:
    adapter = make_adapter("--wait-for", str(tmp_path / "never"))
    batch = await adapter.submit_batch(requests(), metadata=METADATA)
    pid = batch.raw["pid"]
    await until(adapter, batch.id, lambda b: b.counts.pending == 0)
    with pytest.raises(InvalidRequestError, match="not finished"):
        [item async for item in adapter.batch_results(batch.id)]

    asked = await adapter.cancel_batch(batch.id)
    assert asked.state in ("cancelling", "cancelled")
    done = await until(make_adapter(), batch.id, lambda b: b.done)
    assert done.state == "cancelled"
    assert done.ended_at is not None
    assert done.raw["exit_code"] == -signal.SIGTERM
    assert (batch_dir / batch.id / "cancel.json").is_file()
    deadline = time.monotonic() + 30
    while group_exists(pid):  # the supervisor writes its record, then leaves
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    # Cancelling a finished batch changes nothing.
    assert (await adapter.cancel_batch(batch.id)).state == "cancelled"
    assert len([item async for item in adapter.batch_results(batch.id)]) == 4


async def test_a_runner_killed_outright_is_a_failed_batch(
    make_adapter: Callable[..., VLLMProvider], tmp_path: Path
) -> None:
    adapter = make_adapter("--wait-for", str(tmp_path / "never"))
    batch = await adapter.submit_batch(requests(), metadata=METADATA)
    await until(adapter, batch.id, lambda b: b.counts.pending == 0)
    os.killpg(batch.raw["pid"], signal.SIGKILL)  # as the OOM killer would: nothing recorded
    done = await until(adapter, batch.id, lambda b: b.done)
    assert done.state == "failed"
    assert done.raw["exit_code"] is None
    assert "without recording an exit code" in done.raw["error"]


async def test_a_finished_batch_is_not_cancelled(
    make_adapter: Callable[..., VLLMProvider], batch_dir: Path
) -> None:
    adapter = make_adapter()
    batch = await adapter.submit_batch(requests(), metadata=METADATA)
    await until(adapter, batch.id, lambda b: b.done)
    assert (await adapter.cancel_batch(batch.id)).state == "completed"
    assert not (batch_dir / batch.id / "cancel.json").exists()


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "batch_id",
    ["vllm-batch-0123456789abcdef0123456789abcdef", "../outside", "..", "/etc", "a/../b", ""],
)
async def test_unknown_and_path_like_ids_are_not_found(
    make_adapter: Callable[..., VLLMProvider], batch_dir: Path, tmp_path: Path, batch_id: str
) -> None:
    batch_dir.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "batch.json").write_text(json.dumps({"id": "x", "created_at": 1, "count": 1}))
    (outside / "pid").write_text("1")
    adapter = make_adapter()
    with pytest.raises(NotFoundError):
        await adapter.batch_status(batch_id)
    with pytest.raises(NotFoundError):
        await adapter.cancel_batch(batch_id)
    with pytest.raises(NotFoundError):
        [item async for item in adapter.batch_results(batch_id)]
    assert await adapter.list_batches() == []


async def test_batches_it_cannot_run_are_refused_before_anything_starts(
    make_adapter: Callable[..., VLLMProvider], batch_dir: Path
) -> None:
    adapter = make_adapter()
    mixed = [*requests("a")[:1], *requests("b")[1:2]]
    with pytest.raises(InvalidRequestError, match="one model per run"):
        await adapter.submit_batch(mixed, metadata={})
    with pytest.raises(InvalidRequestError, match="at least one"):
        await adapter.submit_batch([], metadata={})
    twice = [requests()[0], requests()[0]]
    with pytest.raises(InvalidRequestError, match="unique"):
        await adapter.submit_batch(twice, metadata={})
    assert not batch_dir.exists()
