"""docs/migrating.md is tested: every Relay snippet on the page runs, offline, on relay-mock.

Each fenced block carries a mark after its language: ``relay`` (run it), ``relay-catalog``
(the section's ``relay.yaml``) or ``theirs`` (another tool's code: shown, never run). A
block without one fails the page, so a snippet cannot go untested by being left unmarked.
Each ``##`` section runs in its own directory: its catalog is written with every provider
it names pointed at the mock, its Python snippets run in order in one namespace, its bash
lines run in a shell (a line ending in ``&`` is a server: started, waited for on its port,
stopped at the end; the ports of ``--port N`` are swapped for free ones).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from attrs import frozen

DOC = Path(__file__).resolve().parents[1] / "docs" / "migrating.md"
MARKS = frozenset({"relay", "relay-catalog", "theirs"})


@frozen
class Block:
    section: str
    line: int
    language: str
    marks: frozenset[str]
    code: str

    @property
    def where(self) -> str:
        return f"docs/migrating.md:{self.line}"


def _blocks() -> list[Block]:
    blocks: list[Block] = []
    section = "(top)"
    lines = DOC.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = re.match(r"^```(\S*)\s*(.*)$", line)
        if fence:
            start = number + 1
            body: list[str] = []
            number += 1
            while number < len(lines) and not lines[number].startswith("```"):
                body.append(lines[number])
                number += 1
            blocks.append(
                Block(
                    section=section,
                    line=start,
                    language=fence.group(1),
                    marks=frozenset(fence.group(2).split()),
                    code="\n".join(body) + "\n",
                )
            )
        number += 1
    return blocks


BLOCKS = _blocks()
SECTIONS = list(dict.fromkeys(b.section for b in BLOCKS if "relay" in b.marks))


def test_every_block_is_marked_run_catalog_or_theirs() -> None:
    wrong = [
        f"{b.where}: ```{b.language} {' '.join(sorted(b.marks))}"
        for b in BLOCKS
        if len(b.marks & MARKS) != 1
        or b.marks - MARKS
        or ("relay" in b.marks and b.language not in ("python", "bash"))
        or ("relay-catalog" in b.marks and b.language != "yaml")
    ]
    assert not wrong, "blocks without exactly one of relay / relay-catalog / theirs:\n" + "\n".join(
        wrong
    )


def test_every_migration_shows_their_code_beside_relays() -> None:
    migrations = [s for s in dict.fromkeys(b.section for b in BLOCKS) if s.startswith("From ")]
    assert len(migrations) == 5
    for section in migrations:
        marks = {m for b in BLOCKS if b.section == section for m in b.marks}
        assert {"theirs", "relay"} <= marks, section
    text = DOC.read_text(encoding="utf-8")
    for section in migrations:  # each has a table of their names and Relay's
        body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
        assert "| Relay |" in body, section


# ------------------------------------------------------------------------------- running


def offline(catalog_text: str) -> str:
    """The catalog with every provider it names served by the mock: answers at once,
    batches done as soon as they are submitted, no key, no network."""
    data: dict[str, Any] = yaml.safe_load(catalog_text) or {}
    names = set(data.get("providers") or {})
    for model in (data.get("models") or {}).values():
        target = model if isinstance(model, str) else model["target"]
        names.add(target.partition("/")[0])
    mock: dict[str, Any] = {"options": {"batch_duration": 0}}
    data["providers"] = {
        name: mock if name == "mock" else {"plugin": "mock", **mock} for name in sorted(names)
    }
    return yaml.safe_dump(data, sort_keys=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], line: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"{line!r} exited with {process.returncode}:\n{output}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"{line!r} did not listen on port {port} within 60s")


class Section:
    """One section's directory, catalog, Python namespace and servers."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.namespace: dict[str, Any] = {"__name__": "__migrating__"}
        self.servers: list[subprocess.Popen[bytes]] = []
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("RELAY_PLUGINS", "RELAY_BLOCK_PLUGINS", "RELAY_WORKSPACE")
        }
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["RELAY_CONFIG"] = str(directory / "relay.yaml")
        catalogs = [b for b in BLOCKS if b.section == name and "relay-catalog" in b.marks]
        assert len(catalogs) <= 1, f"{name}: one relay-catalog block per section"
        if catalogs:
            (directory / "relay.yaml").write_text(offline(catalogs[0].code), encoding="utf-8")

    def run(self, block: Block) -> None:
        if block.language == "python":
            # Padded so a traceback's line numbers are the page's.
            code = "\n" * (block.line - 1) + block.code
            exec(compile(code, str(DOC), "exec"), self.namespace)
        else:
            self.bash(block)

    def bash(self, block: Block) -> None:
        code = block.code.replace("\\\n", " ")
        for port in set(re.findall(r"--port (\d+)", code)):
            code = re.sub(rf"\b{port}\b", str(_free_port()), code)
        for line in filter(None, (raw.strip() for raw in code.splitlines())):
            if line.startswith("pip install"):
                for name in line.split()[2:]:
                    metadata.distribution(name)  # the page names a distribution that exists
                continue
            if line.endswith("&"):
                words = shlex.split(line[:-1])
                process = subprocess.Popen(
                    words,
                    cwd=self.directory,
                    env=self.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
                self.servers.append(process)
                port = int(words[words.index("--port") + 1])
                _wait_for_port(port, process, line)
                continue
            done = subprocess.run(
                line,
                shell=True,
                cwd=self.directory,
                env=self.env,
                capture_output=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, (
                f"{block.where}: {line!r} exited with {done.returncode}:\n"
                f"{done.stdout.decode()}{done.stderr.decode()}"
            )
            assert b"Traceback" not in done.stderr, f"{block.where}: {line!r}"

    def close(self) -> None:
        for process in self.servers:
            process.terminate()
        for process in self.servers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()


@pytest.fixture
def section_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("RELAY_PLUGINS", "RELAY_BLOCK_PLUGINS", "RELAY_CONFIG", "RELAY_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    opened: list[Section] = []

    def make(name: str) -> Section:
        opened.append(Section(name, tmp_path))
        return opened[-1]

    yield make
    for section in opened:
        section.close()


@pytest.mark.parametrize("name", SECTIONS)
def test_the_sections_relay_snippets_run_on_the_mock(name: str, section_in: Any) -> None:
    section = section_in(name)
    for block in BLOCKS:
        if block.section == name and "relay" in block.marks:
            section.run(block)


def test_the_offline_catalog_serves_every_named_provider_from_the_mock() -> None:
    rewritten = yaml.safe_load(
        offline(
            "providers:\n  openai: {api_key: $env.X}\nmodels:\n  a: groq/m\n  b: {target: mock/e}"
        )
    )
    assert rewritten["providers"] == {
        "groq": {"plugin": "mock", "options": {"batch_duration": 0}},
        "mock": {"options": {"batch_duration": 0}},
        "openai": {"plugin": "mock", "options": {"batch_duration": 0}},
    }
