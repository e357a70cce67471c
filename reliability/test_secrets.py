"""Recognisable fake keys go through a representative slice of Relay, with debug logging
on, against a server that echoes the Authorization header into every error body (as
careless providers do): chat, stream, 401/429/500 errors, an engine job, a provider-batch
job on relay-mock, and ``relay`` CLI commands. Then every log line, error text, file under
the workspace and tmp dirs, and every cassette under ``cassettes/`` is searched for the
keys: none may be there."""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import secrets
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from relay_core import (
    BatchRequest,
    ErrorInfo,
    Hub,
    RelayClient,
    RelayError,
    configure_logging,
    load_catalog,
)
from reliability.fault_server import FaultServer
from reliability.support import FIGURES

ROOT = Path(__file__).resolve().parents[1]

# The random middle of each key is what is searched for: finding it anywhere, whole, is
# a leak. One key has a well-known key shape (masked by shape and by value); the others
# look like nothing in particular, so only Relay's record of resolved secrets can mask
# them.
TOKENS = {name: secrets.token_hex(12) for name in ("shaped", "opaque", "mock")}
KEYS = {
    "RELAY_CANARY_KEY": f"sk-RELAYCANARY-{TOKENS['shaped']}",
    "RELAY_CANARY_OPAQUE": f"RELAYCANARY{TOKENS['opaque']}Zq",
    "RELAY_CANARY_MOCK": f"RELAYCANARY{TOKENS['mock']}Mk",
}

CATALOG = """
providers:
  local:
    plugin: openai-compat
    base_url: {base_url}
    timeout: 2
    max_retries: 1
    api_key: $env.RELAY_CANARY_KEY
  opaque:
    plugin: openai-compat
    base_url: {base_url}
    timeout: 2
    max_retries: 1
    api_key: $env.RELAY_CANARY_OPAQUE
  mock:
    api_key: $env.RELAY_CANARY_MOCK
    options: {{batch_duration: 0, state_dir: {state}}}
models:
  echo: local/echo-model
  quiet: opaque/echo-model
  fast: mock/echo
"""


def _status(request_id: str, attempt: int, stream: bool) -> str:
    """``status-401 ...`` answers 401 (and so on); anything else is answered."""
    head = request_id.split(" ", 1)[0]
    if head.startswith("status-") and head[7:].isdigit():
        return f"status:{head[7:]}"
    return "ok"


def _ask(hub: Hub, alias: str, prompt: str, *, stream: bool) -> object:
    return list(hub.stream(alias, prompt)) if stream else hub.chat(alias, prompt)


class Haystack:
    """Every text the run produced, by where it came from."""

    def __init__(self) -> None:
        self.texts: dict[str, list[str]] = {}

    def add(self, where: str, text: str | bytes) -> None:
        value = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        self.texts.setdefault(where, []).append(value)

    def error(self, error: BaseException) -> None:
        self.add("errors", str(error))
        self.add("errors", repr(error))
        self.add("errors", "".join(traceback.format_exception(error)))
        self.add("errors", repr(ErrorInfo.from_exception(error)))
        self.add("errors", pickle.dumps(error).decode("latin-1"))

    def files(self, root: Path, where: str) -> int:
        count = 0
        for path in sorted(root.rglob("*")):
            if path.is_file():
                self.add(where, path.read_bytes().decode("latin-1"))
                count += 1
        return count

    def leaks(self) -> list[tuple[str, str]]:
        return [
            (where, name)
            for where, texts in self.texts.items()
            for text in texts
            for name, token in TOKENS.items()
            if token in text
        ]


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    return dict(KEYS)


def _relay(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from relay_core.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_no_key_reaches_a_log_an_error_a_file_or_a_cassette(
    tmp_path: Path, canaries: dict[str, str]
) -> None:
    found = Haystack()
    server = FaultServer(chooser=_status, echo_auth=True, client_timeout=2.0)
    errors_seen: list[BaseException] = []
    engine_errors = 0
    relay_log, all_log = io.StringIO(), io.StringIO()
    with server:
        catalog_path = tmp_path / "relay.yaml"
        catalog_path.write_text(
            CATALOG.format(base_url=server.base_url, state=tmp_path / "mock-state")
        )
        catalog = load_catalog(catalog_path)

        # Debug logging, Relay's and every other library's (httpx, httpcore...).
        relay_logger = logging.getLogger("relay")
        relay_level = relay_logger.level
        handler = configure_logging("json", "DEBUG", stream=relay_log)
        everything = logging.StreamHandler(all_log)
        root = logging.getLogger()
        previous_level = root.level
        root.addHandler(everything)
        root.setLevel(logging.DEBUG)
        try:
            with Hub(catalog) as hub:
                for alias in ("echo", "quiet"):
                    assert hub.chat(alias, f"hello from {alias}").text == f"hello from {alias}"
                    events = list(hub.stream(alias, f"stream from {alias}"))
                    assert events[-1].response.text == f"stream from {alias}"
                    for status in (401, 429, 500):
                        for stream in (False, True):
                            prompt = f"status-{status} {alias} stream={stream}"
                            with pytest.raises(RelayError) as caught:
                                _ask(hub, alias, prompt, stream=stream)
                            errors_seen.append(caught.value)

            requests = [
                BatchRequest(id=f"r{i}", prompt=prompt, model=model)
                for i, (prompt, model) in enumerate(
                    (f"{head} engine {n}", model)
                    for n in range(3)
                    for head in ("fine", "status-401", "status-429", "status-500")
                    for model in ("echo", "quiet")
                )
            ]
            with RelayClient(tmp_path / "ws", config=catalog) as client:
                job = client.submit_batch(requests, job_id="canary-engine", mode="engine")
                assert job.counts.completed == 6
                for item in client.get_results("canary-engine"):
                    if item.error is not None:
                        found.add("errors", item.error.message)
                        engine_errors += 1
                client.submit_batch(
                    [BatchRequest(id=f"b{i}", prompt=f"batch {i}") for i in range(5)],
                    job_id="canary-batch",
                    model="fast",
                    mode="batch",
                )
                client.wait("canary-batch", poll_interval=0.01, timeout=30)
                assert len(client.retrieve_batch_results("canary-batch")) == 5
        finally:
            handler.close()
            relay_logger.removeHandler(handler)
            relay_logger.setLevel(relay_level)
            root.removeHandler(everything)
            root.setLevel(previous_level)
        for error in errors_seen:
            found.error(error)

        # The CLI, in processes of its own, with the keys in their environment.
        env = {**os.environ, **canaries, "RELAY_WORKSPACE": str(tmp_path / "cli-ws")}
        (tmp_path / "requests.jsonl").write_text(
            "".join(
                json.dumps({"id": f"c{i}", "prompt": p}) + "\n"
                for i, p in enumerate(["fine cli", "status-401 cli", "status-500 cli"])
            )
        )
        config = ["-c", str(catalog_path)]
        commands = [
            [*config, "-vv", "chat", "echo", "hello cli"],
            [*config, "-vv", "--log-format", "json", "chat", "quiet", "hello cli", "--json"],
            [*config, "-vv", "chat", "echo", "status-401 cli"],
            [*config, "-vv", "chat", "quiet", "status-500 cli", "--stream"],
            [*config, "-vv", "validate", str(catalog_path)],
            [*config, "models", "list", "--json"],
            [*config, "models", "inspect", "echo"],
            [*config, "-vv", "batch", "submit", "requests.jsonl", "--model", "echo",
             "--mode", "engine", "--job-id", "canary-cli"],
            [*config, "batch", "status", "canary-cli", "--json"],
            [*config, "batch", "results", "canary-cli", "-o", "cli-results.jsonl"],
            [*config, "batch", "list"],
        ]  # fmt: skip
        exits = []
        for command in commands:
            done = _relay(*command, env=env, cwd=tmp_path)
            exits.append(done.returncode)
            found.add("cli", done.stdout)
            found.add("cli", done.stderr)

    assert exits[0] == 0
    assert exits[2] == 1  # the 401 is a failed call, reported as one
    # The server did get the keys, and did echo them into its error bodies...
    assert {
        f"Bearer {canaries['RELAY_CANARY_KEY']}",
        f"Bearer {canaries['RELAY_CANARY_OPAQUE']}",
    } <= set(server.authorizations)
    # ...which reached Relay's errors masked.
    assert any("You sent: Bearer ***" in str(error) for error in errors_seen)
    found.add("logs", relay_log.getvalue())
    found.add("logs", all_log.getvalue())
    assert relay_log.getvalue().strip()
    files = found.files(tmp_path, "files")
    cassettes = found.files(ROOT / "cassettes", "cassettes")
    leaks = found.leaks()
    assert not leaks, leaks
    # The search itself works: a key put where it was looked for is found.
    control = Haystack()
    control.add("control", f"... {KEYS['RELAY_CANARY_OPAQUE']} ...")
    assert control.leaks() == [("control", "opaque")]
    FIGURES.record(
        "secrets",
        keys=len(KEYS),
        errors_checked=len(errors_seen) + engine_errors,
        log_lines=sum(text.count("\n") for text in found.texts["logs"]),
        cli_commands=len(commands),
        files_scanned=files,
        cassettes_scanned=cassettes,
        error_bodies_echoing_the_key=sum(
            1 for t in server.tallies.values() for kind in t.faults if kind.startswith("status:")
        ),
        keys_found=len(leaks),
    )


def test_recording_a_cassette_keeps_an_echoed_key_out_of_it(
    tmp_path: Path, canaries: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay_core.testing import cassette_player

    monkeypatch.setenv("RELAY_RECORD", "all")
    server = FaultServer(chooser=_status, echo_auth=True, client_timeout=2.0)
    with server:
        path = tmp_path / "relay.yaml"
        path.write_text(CATALOG.format(base_url=server.base_url, state=tmp_path / "state"))
        use = cassette_player(tmp_path / "cassettes")
        with Hub(load_catalog(path)) as hub, use("echoed"):
            hub.chat("echo", "hello")
            with pytest.raises(RelayError):
                hub.chat("echo", "status-401 recorded")
    recorded = (tmp_path / "cassettes" / "echoed.yaml").read_text()
    assert "status-401" in recorded  # the error was recorded...
    assert TOKENS["shaped"] not in recorded  # ...without the key it echoed


# A private key where a one-line secret belongs: ``file:`` pointing at a PEM (or at
# /etc/shadow by mistake). Each line is random, so that finding one anywhere is a leak.
PEM_LINES = [secrets.token_hex(20) for _ in range(4)]
PEM = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(PEM_LINES) + "\n-----END PRIVATE KEY-----\n"

PEM_CATALOG = """
providers:
  local:
    plugin: openai-compat
    base_url: {base_url}
    timeout: 2
    max_retries: 0
    api_key: file:{key}
models:
  echo: local/echo-model
plugins:
  audit:
    sinks: [{{type: jsonl, path: {audit}}}]
"""


def test_a_credential_file_of_several_lines_is_never_echoed(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    key = tmp_path_factory.mktemp("keys") / "service.pem"
    key.write_text(PEM)
    found = Haystack()
    relay_log = io.StringIO()
    server = FaultServer(chooser=_status, echo_auth=True, client_timeout=2.0)
    with server:
        catalog_path = tmp_path / "relay.yaml"
        catalog_path.write_text(
            PEM_CATALOG.format(base_url=server.base_url, key=key, audit=tmp_path / "audit.jsonl")
        )
        catalog = load_catalog(catalog_path)
        relay_logger = logging.getLogger("relay")
        level = relay_logger.level
        handler = configure_logging("json", "DEBUG", stream=relay_log)
        try:
            with Hub(catalog) as hub, pytest.raises(RelayError) as caught:
                hub.chat("echo", "hello")
            found.error(caught.value)
            with RelayClient(tmp_path / "ws", config=catalog) as client:
                try:
                    client.submit_batch(
                        [BatchRequest(id="r0", prompt="engine", model="echo")],
                        job_id="pem-engine",
                        mode="engine",
                    )
                except RelayError as error:  # refused at submission, or...
                    found.error(error)
                else:  # ...each request failed and its error is stored
                    for item in client.get_results("pem-engine"):
                        assert item.error is not None
                        found.add("errors", item.error.message)
        finally:
            handler.close()
            relay_logger.removeHandler(handler)
            relay_logger.setLevel(level)
        env = {**os.environ, "RELAY_WORKSPACE": str(tmp_path / "cli-ws")}
        (tmp_path / "requests.jsonl").write_text(json.dumps({"id": "c0", "prompt": "x"}) + "\n")
        config = ["-c", str(catalog_path)]
        commands = [
            [*config, "-vv", "validate", str(catalog_path)],
            [*config, "-vv", "chat", "echo", "hello cli"],
            [*config, "-vv", "batch", "submit", "requests.jsonl", "--model", "echo",
             "--mode", "engine", "--job-id", "pem-cli"],
            [*config, "batch", "results", "pem-cli", "-o", "cli-results.jsonl"],
        ]  # fmt: skip
        exits = [_relay(*command, env=env, cwd=tmp_path) for command in commands]
        for done in exits:
            found.add("cli", done.stdout + done.stderr)
    found.add("logs", relay_log.getvalue())
    found.files(tmp_path, "files")
    leaks = sorted(
        {
            (where, index)
            for where, texts in found.texts.items()
            for text in texts
            for index, line in enumerate(PEM_LINES)
            if line in text
        }
    )
    assert not leaks, leaks
    assert exits[0].returncode == 2  # validate: a configuration error...
    assert str(key) in exits[0].stdout + exits[0].stderr  # ...naming the file
    assert "lines" in str(caught.value)
    assert not server.authorizations  # nothing of the file was sent anywhere either
