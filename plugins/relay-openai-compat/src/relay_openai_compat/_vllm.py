"""vLLM: the OpenAI-compatible server for chat and streams, ``vllm run-batch`` for batches.

vLLM's server has no Batch API; its offline runner reads an OpenAI Batch input file and
writes an OpenAI batch output file (``vllm run-batch -i IN -o OUT --model MODEL``). Each
batch is a directory under ``batch_dir``, and every fact about it is a file there, so any
process on the machine sees the same batch:

``batch.json``  id, model, created_at, count, metadata, the command (written at submit)
``input.jsonl`` the lines of :meth:`VLLMProvider.batch_line`
``pid``         the id of the runner's process group (also its session), once started
``exit.json``   the runner's exit code and end time, written by a small supervisor
``cancel.json`` when a cancel was asked for
``output.jsonl`` vLLM's output, written in input order as requests finish
``batch.log``   the runner's stdout and stderr

The runner starts in a new session through a supervisor (``python -c``) that forks once,
so neither a dying client nor its terminal takes the batch down, and no Relay process is
ever left holding it as a zombie; the supervisor records the exit code when the command
ends. POSIX only (process groups, ``fork``), as vLLM itself.

Options (``providers.<name>.options``), besides the compatible server's:

``batch_command`` the command, default ``["vllm", "run-batch"]``
``batch_args``    extra arguments appended after ``-i``, ``-o`` and ``--model``
``batch_dir``     where batch directories live, default ``relay-vllm-batches`` under
                  ``$XDG_CACHE_HOME`` (else ``~/.cache``; the system temp dir without a home)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from relay_core.plugin import (
    BatchCounts,
    BatchItem,
    BatchLimits,
    BatchState,
    Capability,
    ConfigError,
    InvalidRequestError,
    NotFoundError,
    ProviderBatch,
    ProviderSettings,
    Request,
    error_info,
    jsonl,
    parse_lines,
)
from relay_openai_compat._adapter import _BASE_CAPABILITIES, TOP_K_SETTINGS, OpenAICompatProvider

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient

__all__ = ["VLLMProvider"]

_DEFAULT_COMMAND = ("vllm", "run-batch")
# Our ids are "vllm-batch-<hex>"; anything that could name another path is unknown.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Without a pid this long after submit, the launch died with its client.
_START_GRACE = 60.0
_LIST_LIMIT = 100
_LOG_TAIL = 4000

# Runs as `python -c _SUPERVISOR FOLDER COMMAND...` in a new session. It forks so the
# process its launcher waits for ends at once (the batch is then init's child, reaped
# there); it outlives SIGTERM so the command's own exit is what gets recorded.
_SUPERVISOR = """\
import json, os, signal, subprocess, sys, time
folder, command = sys.argv[1], sys.argv[2:]
if os.fork():
    os._exit(0)
signal.signal(signal.SIGTERM, lambda *_: None)
try:
    code = subprocess.call(command, stdin=subprocess.DEVNULL)
except OSError as error:
    print(f"relay: cannot run {command[0]!r}: {error}", file=sys.stderr, flush=True)
    code = 127
path = os.path.join(folder, "exit.json")
with open(path + ".tmp", "w") as file:
    json.dump({"exit_code": code, "ended_at": time.time()}, file)
os.replace(path + ".tmp", path)
"""


def default_batch_dir() -> Path:
    """A cache directory, not the temp dir: results outlive a reboot's clean-up."""
    cache = os.environ.get("XDG_CACHE_HOME")
    try:
        base = Path(cache) if cache else Path.home() / ".cache"
    except RuntimeError:  # no home directory to be found
        base = Path(tempfile.gettempdir())
    return base / "relay-vllm-batches"


def _succeeded(line: Any) -> bool:
    if not isinstance(line, dict) or line.get("error") is not None:
        return False
    response = line.get("response")
    return (
        isinstance(response, dict)
        and response.get("status_code", 200) == 200
        and isinstance(response.get("body"), dict)
    )


def _line_succeeded(text: bytes) -> bool:
    try:
        return _succeeded(json.loads(text))
    except ValueError:
        return False


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _write_json(path: Path, value: Any) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, path)


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process group, but it exists
    return True


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - _LOG_TAIL))
            return file.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


class VLLMProvider(OpenAICompatProvider):
    """vLLM: chat and streams at ``base_url``; batches through ``vllm run-batch``."""

    capabilities = _BASE_CAPABILITIES | {Capability.BATCH, Capability.EMBEDDINGS}
    generation_settings = TOP_K_SETTINGS
    # The runner streams its input and output, so a batch holds whatever the disk does.
    batch_limits: BatchLimits = BatchLimits()
    batch_metadata: ClassVar[bool] = True

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        super().__init__(settings, http)
        options = settings.options
        command = options.get("batch_command", list(_DEFAULT_COMMAND))
        if not (isinstance(command, list) and command and all(_is_word(c) for c in command)):
            raise ConfigError(
                f"providers.{settings.name}.options.batch_command must be a non-empty list "
                f"of strings, e.g. ['vllm', 'run-batch'], not {command!r}"
            )
        args = options.get("batch_args", [])
        if not (isinstance(args, list) and all(_is_arg(a) for a in args)):
            raise ConfigError(
                f"providers.{settings.name}.options.batch_args must be a list of strings "
                f"(numbers are taken as text), e.g. ['--max-model-len', '8192'], not {args!r}"
            )
        directory = options.get("batch_dir")
        if directory is not None and not (isinstance(directory, str) and directory):
            raise ConfigError(
                f"providers.{settings.name}.options.batch_dir must be a directory path, "
                f"not {directory!r}"
            )
        self.batch_command: list[str] = list(command)
        self.batch_args: list[str] = [str(a) for a in args]
        self.batch_dir = (
            Path(directory).expanduser() if directory else default_batch_dir()
        ).absolute()
        # Per output file: bytes already counted, and the successes and failures in them.
        self._tallies: dict[Path, tuple[int, int, int]] = {}

    # -- submit -------------------------------------------------------------------------

    def batch_line(self, request: Request) -> Mapping[str, Any]:
        path, payload = self.build_payload(request)
        return {
            "custom_id": request.custom_id,
            "method": "POST",
            "url": f"/v1{path}",
            "body": payload,
        }

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        if not requests:
            raise self._refuse("a batch needs at least one request")
        models = sorted({request.model for request in requests})
        if len(models) > 1:
            raise self._refuse(
                f"vLLM's batch runner serves one model per run; this batch mixes {models}"
            )
        seen: set[str] = set()
        for index, request in enumerate(requests):
            if not request.custom_id or request.custom_id in seen:
                raise self._refuse(
                    f"request {index} of the batch needs a custom_id unique in the batch, "
                    f"not {request.custom_id!r}"
                )
            seen.add(request.custom_id)
        lines = [self.batch_line(request) for request in requests]
        batch_id = f"vllm-batch-{uuid.uuid4().hex}"
        return await asyncio.to_thread(
            self._start, batch_id, models[0], jsonl(lines), len(lines), dict(metadata)
        )

    def _start(
        self, batch_id: str, model: str, data: bytes, count: int, metadata: dict[str, str]
    ) -> ProviderBatch:
        folder = self.batch_dir / batch_id
        folder.mkdir(parents=True)
        (folder / "input.jsonl").write_bytes(data)
        command = [
            *self.batch_command,
            *("-i", str(folder / "input.jsonl"), "-o", str(folder / "output.jsonl")),
            *("--model", model),
            *self.batch_args,
        ]
        record = {
            "id": batch_id,
            "object": "relay.vllm_batch",
            "model": model,
            "created_at": time.time(),
            "count": count,
            "metadata": metadata,
            "command": command,
        }
        _write_json(folder / "batch.json", record)
        with (folder / "batch.log").open("ab") as log:
            try:
                launcher = subprocess.Popen(
                    [sys.executable, "-c", _SUPERVISOR, str(folder), *command],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=folder,
                    start_new_session=True,
                )
            except OSError as error:
                log.write(f"relay: cannot start the batch supervisor: {error}\n".encode())
                _write_json(folder / "exit.json", {"exit_code": 127, "ended_at": time.time()})
                return self._view(folder)
        # A new session: its id is the launcher's pid, and the group outlives the launcher.
        (folder / "pid").write_text(str(launcher.pid))
        if launcher.wait() != 0:
            _write_json(
                folder / "exit.json", {"exit_code": launcher.returncode, "ended_at": time.time()}
            )
        return self._view(folder)

    # -- status -------------------------------------------------------------------------

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        return await asyncio.to_thread(lambda: self._view(self._folder(batch_id)))

    async def list_batches(self) -> Sequence[ProviderBatch]:
        return await asyncio.to_thread(self._list)

    def _list(self) -> list[ProviderBatch]:
        found: list[tuple[float, Path]] = []
        if self.batch_dir.is_dir():
            for folder in self.batch_dir.iterdir():
                record = _read_json(folder / "batch.json") if _ID.fullmatch(folder.name) else None
                if isinstance(record, dict):
                    found.append((float(record.get("created_at") or 0), folder))
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [self._view(folder) for _, folder in found[:_LIST_LIMIT]]

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        return await asyncio.to_thread(self._cancel, batch_id)

    def _cancel(self, batch_id: str) -> ProviderBatch:
        folder = self._folder(batch_id)
        if self._view(folder).done:
            return self._view(folder)
        # A second cancel while the runner still lingers no longer asks: it kills.
        first = not (folder / "cancel.json").exists()
        if first:
            _write_json(folder / "cancel.json", {"cancelled_at": time.time()})
        group = _read_json(folder / "pid")
        if isinstance(group, int):
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.killpg(group, signal.SIGTERM if first else signal.SIGKILL)
        return self._view(folder)

    def _folder(self, batch_id: str) -> Path:
        folder = self.batch_dir / batch_id
        if not _ID.fullmatch(batch_id) or not (folder / "batch.json").is_file():
            raise NotFoundError(
                f"no batch {batch_id!r} in {self.batch_dir}",
                provider=self.settings.name,
                status_code=404,
            )
        return folder

    def _view(self, folder: Path) -> ProviderBatch:
        record = _read_json(folder / "batch.json")
        if not isinstance(record, dict):
            raise NotFoundError(
                f"batch {folder.name!r} has no readable batch.json", provider=self.settings.name
            )
        created_at = float(record["created_at"])
        group = _read_json(folder / "pid")
        group = group if isinstance(group, int) else None
        exit_record = _read_json(folder / "exit.json") or {}
        cancel_record = _read_json(folder / "cancel.json") or {}
        exit_code = exit_record.get("exit_code")
        running = "exit_code" not in exit_record and group is not None and _alive(group)
        output = folder / "output.jsonl"
        ended_at = exit_record.get("ended_at")
        problem = None
        state: BatchState
        if cancel_record:
            state = "cancelling" if running else "cancelled"
            ended_at = None if running else cancel_record["cancelled_at"]
        elif "exit_code" in exit_record:
            state = "completed" if exit_code == 0 and output.is_file() else "failed"
            if exit_code != 0:
                problem = f"the batch runner exited with code {exit_code}"
            elif state == "failed":
                problem = "the batch runner exited with code 0 but wrote no output file"
        elif running:
            state = "in_progress"
        elif group is not None or time.time() - created_at > _START_GRACE:
            state, ended_at = "failed", None
            problem = "the batch runner ended without recording an exit code"
        else:
            state = "validating"  # between writing batch.json and starting the runner
        done = state in ("completed", "failed", "cancelled")
        completed, failed = self._tally(output, final=not running)
        total = int(record["count"])
        if done:
            failed = max(failed, total - completed)  # requests never answered
        raw: dict[str, Any] = {
            **record,
            "status": state,
            "pid": group,
            "exit_code": exit_code,
            "ended_at": ended_at,
            "cancelled_at": cancel_record.get("cancelled_at"),
            "request_counts": {"total": total, "completed": completed, "failed": failed},
        }
        if problem is not None:
            raw["error"] = problem
            raw["log_tail"] = _tail(folder / "batch.log")
        return ProviderBatch(
            id=record["id"],
            provider=self.settings.name,
            state=state,
            counts=BatchCounts(total, completed, failed),
            created_at=created_at,
            ended_at=ended_at,
            metadata=dict(record.get("metadata") or {}),
            raw=raw,
        )

    def _tally(self, output: Path, *, final: bool) -> tuple[int, int]:
        """Successes and failures in the output so far. vLLM appends lines in input order,
        so each call reads only what was added since the last; a partly written last line
        counts once the runner is gone."""
        offset, completed, failed = self._tallies.get(output, (0, 0, 0))
        rest = b""
        try:
            with output.open("rb") as file:
                if os.fstat(file.fileno()).st_size < offset:
                    offset, completed, failed = 0, 0, 0
                file.seek(offset)
                while chunk := file.read(1 << 20):
                    *lines, rest = (rest + chunk).split(b"\n")
                    for line in lines:
                        offset += len(line) + 1
                        if line.strip():
                            ok = _line_succeeded(line)
                            completed, failed = completed + ok, failed + (not ok)
        except FileNotFoundError:
            return 0, 0
        self._tallies[output] = (offset, completed, failed)
        if final and rest.strip():
            ok = _line_succeeded(rest)
            return completed + ok, failed + (not ok)
        return completed, failed

    # -- results ------------------------------------------------------------------------

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        view = await self.batch_status(batch_id)
        if not view.done:
            raise self._refuse(
                f"batch {batch_id!r} is not finished (state {view.state}); results are "
                "available once batch_status reports it done"
            )
        model = str(view.raw["model"])
        output = self.batch_dir / batch_id / "output.jsonl"
        if not output.is_file():
            return  # it failed before writing anything: every request is unanswered

        def parse(line: Any) -> BatchItem:
            return self._batch_item(line, model)

        async for item in parse_lines(_lines(output), parse, source=f"output of batch {batch_id}"):
            yield item

    def _batch_item(self, line: Any, model: str) -> BatchItem:
        custom_id = line["custom_id"]
        if not isinstance(custom_id, str):
            raise TypeError(f"custom_id is not text: {custom_id!r}")
        response = line.get("response") or {}
        if _succeeded(line):
            parsed = self._parse_chat(response["body"], Request(messages=(), model=model))
            return BatchItem(
                custom_id, response=attrs.evolve(parsed, custom_id=custom_id), raw=line
            )
        # vLLM puts the reason in "error": its ErrorResponse, or a bare message for a
        # request that failed before reaching the engine (then status 400).
        reason = line.get("error") or response.get("body") or "no answer and no error"
        status = response.get("status_code")
        error = error_info(
            status if isinstance(status, int) and status >= 400 else 400,
            reason,
            provider=self.settings.name,
            rules=self.error_rules,
            custom_id=custom_id,
        )
        return BatchItem(custom_id, error=error, raw=line)

    def _refuse(self, message: str) -> InvalidRequestError:
        return InvalidRequestError(message, provider=self.settings.name)


def _is_word(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_arg(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


async def _lines(path: Path) -> AsyncIterator[str]:
    """The file's lines, read a block at a time off the event loop."""
    file = await asyncio.to_thread(path.open, "rb")
    try:
        rest = b""
        while chunk := await asyncio.to_thread(file.read, 1 << 20):
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                yield line.decode("utf-8", errors="replace")
        if rest:
            yield rest.decode("utf-8", errors="replace")
    finally:
        file.close()
