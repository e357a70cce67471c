"""Running one page of the site: its directory, its namespace, its catalogs served by
relay-mock, its cassettes, commands and servers, and the real servers it asks for."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import doctest
import io
import os
import re
import secrets
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
from site_blocks import ROOT, Block

from relay_core.real_servers import free_port

# A placeholder in each provider's variable for cassette blocks: cassettes hold no key.
CASSETTE_KEYS = {
    "OPENAI_API_KEY": "sk-docs-placeholder",
    "ANTHROPIC_API_KEY": "sk-ant-docs-placeholder",
    "GEMINI_API_KEY": "docs-placeholder",
    "MISTRAL_API_KEY": "docs-placeholder",
    "COHERE_API_KEY": "docs-placeholder",
    "CO_API_KEY": "docs-placeholder",  # the variable relay-cohere reads
}
# Provider settings the core applies whatever the plugin: kept when a page's catalog goes offline.
KEPT_PROVIDER_SETTINGS = ("timeout", "max_retries", "circuit_breaker")
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def offline(catalog: dict[str, Any]) -> dict[str, Any]:
    """The catalog with every provider it names served by the mock (one the page already
    serves with the mock keeps its settings, e.g. the faults it injects)."""
    names = set(catalog.get("providers") or {})
    for model in (catalog.get("models") or {}).values():
        target = model if isinstance(model, str) else model.get("target", "")
        if "/" in target:
            names.add(target.partition("/")[0])
    if "provider" in catalog:  # a default provider for bare model names
        names.add(catalog["provider"])
    mock: dict[str, Any] = {"options": {"batch_duration": 0}}
    providers: dict[str, Any] = {}
    for name in sorted(names):
        written = (catalog.get("providers") or {}).get(name) or {}
        kept = {k: v for k, v in written.items() if k in KEPT_PROVIDER_SETTINGS}
        if name == "mock" or written.get("plugin") == "mock":  # offline already: as written
            options = {**mock["options"], **(written.get("options") or {})}
            providers[name] = {**written, "options": options}
            continue
        providers[name] = {**({} if name == "mock" else {"plugin": "mock"}), **mock, **kept}
    return {**catalog, "providers": providers}


def _is_catalog(name: str, text: str) -> dict[str, Any] | None:
    if not name.endswith((".yaml", ".yml")):
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if isinstance(data, dict) and {"models", "providers", "groups"} & set(data):
        return data
    return None


def _check_output(block: Block, what: str, expected: str, got: str) -> None:
    if expected.strip() and not CHECKER.check_output(expected, got, FLAGS):
        pytest.fail(
            f"{block.where}: {what} printed\n{got}\nbut the page shows\n{expected}", pytrace=False
        )


class PageRun:
    """One page's directory, namespace, environment, catalogs and servers."""

    def __init__(self, page: Path, directory: Path) -> None:
        self.page = page
        self.directory = directory
        self.namespace: dict[str, Any] = {"__name__": "__main__"}
        self.servers: list[subprocess.Popen[bytes]] = []
        self.written_catalogs: dict[Path, str] = {}  # as the page wrote them
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("RELAY_") and k not in CASSETTE_KEYS
        }
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["HOME"] = str(directory / "home")
        (directory / "home").mkdir()
        self.ports: dict[str, str] = {}  # the page's --port N: the free port it got

    def with_ports(self, text: str) -> str:
        for shown, actual in self.ports.items():
            text = re.sub(rf"\b{shown}\b", actual, text)
        return text

    # ----------------------------------------------------------------- one block

    def run(self, block: Block) -> None:
        if block.title:
            self.write(block)
        elif not block.runs:
            return
        elif "cassette" in block.options:
            with self.on_cassette(block):
                self.run_code(block, in_process=True)
        else:
            self.run_code(block, in_process=False)

    def write(self, block: Block) -> None:
        assert block.title
        name, continued = re.subn(r", continued$", "", block.title)
        path = self.directory / name
        if continued:  # the rest of a file shown in parts: a class's next method...
            assert path.is_file(), f"{block.where}: continues {name}, which no block wrote"
            with path.open("a", encoding="utf-8") as file:
                file.write("\n" + block.code)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = _is_catalog(block.title, block.code)
        if catalog is None:
            path.write_text(block.code, encoding="utf-8")
            return
        self.written_catalogs[path] = block.code
        path.write_text(yaml.safe_dump(offline(catalog), sort_keys=False), encoding="utf-8")

    def run_code(self, block: Block, *, in_process: bool) -> None:
        if block.language in ("python", "py"):
            self.python(block)
        elif block.language == "console":
            self.console(block, in_process=in_process)
        else:
            lines = (line.strip() for line in block.code.replace("\\\n", " ").splitlines())
            commands = [line for line in lines if line and not line.startswith("#")]
            for index, command in enumerate(commands):
                last = index == len(commands) - 1
                self.command(block, command, None, last=last, in_process=in_process)

    @contextlib.contextmanager
    def on_cassette(self, block: Block) -> Iterator[None]:
        from relay_core.testing import cassette_player

        folder, _, name = block.options["cassette"].rpartition("/")
        for path, text in self.written_catalogs.items():
            path.write_text(text, encoding="utf-8")
        saved = {k: os.environ.get(k) for k in CASSETTE_KEYS}
        os.environ.update(CASSETTE_KEYS)
        # A random token sent to the provider (a batch job's chunk tag) would never match
        # the recorded body: cassette blocks draw them from a fixed sequence instead.
        counter = iter(range(1, 1 << 30))
        random_hex = secrets.token_hex
        secrets.token_hex = lambda n=None: f"{next(counter):0{2 * (n or 32)}x}"
        try:
            with cassette_player(ROOT / "cassettes" / folder)(name):
                yield
        finally:
            secrets.token_hex = random_hex
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            for path, text in self.written_catalogs.items():
                catalog = _is_catalog(path.name, text)
                assert catalog is not None
                path.write_text(yaml.safe_dump(offline(catalog), sort_keys=False), "utf-8")

    # ----------------------------------------------------------------- Python

    def python(self, block: Block) -> None:
        # Padded so a traceback's line numbers are the page's.
        source = "\n" * (block.line - 1) + self.with_ports(block.code)
        code = compile(source, str(block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), self.inside():
            result = eval(code, self.namespace)  # the page's own code
            if asyncio.iscoroutine(result):
                asyncio.run(result)
        expected = "".join(
            line.strip()[3:] + "\n" if line.strip() != "#>" else "\n"
            for line in block.code.splitlines()
            if line.strip().startswith("#>") and (line.strip() == "#>" or line.strip()[2] == " ")
        )
        _check_output(block, "the block", expected, printed.getvalue())

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """The page's directory as the working directory, its files importable."""
        before = os.getcwd()
        modules = set(sys.modules)
        os.chdir(self.directory)
        sys.path.insert(0, str(self.directory))
        try:
            yield
        finally:
            os.chdir(before)
            sys.path.remove(str(self.directory))
            for name in set(sys.modules) - modules:
                module = sys.modules[name]
                if str(getattr(module, "__file__", "") or "").startswith(str(self.directory)):
                    del sys.modules[name]

    # ----------------------------------------------------------------- shell

    def console(self, block: Block, *, in_process: bool) -> None:
        steps: list[tuple[str, list[str]]] = []
        lines = block.code.splitlines()
        index = 0
        while index < len(lines):
            line = lines[index]
            index += 1
            if not line.startswith("$ "):
                if steps:
                    steps[-1][1].append(line)
                elif line.strip():
                    pytest.fail(f"{block.where}: output before any $ command", pytrace=False)
                continue
            command = line[2:]
            while command.endswith("\\") and index < len(lines):
                command = command[:-1] + " " + lines[index].lstrip("> ").strip()
                index += 1
            steps.append((command.strip(), []))
        assert steps, f"{block.where}: a console block without a $ command"
        for number, (command, output) in enumerate(steps):
            expected = "\n".join(output).strip("\n")
            expected = expected + "\n" if expected else ""
            last = number == len(steps) - 1
            self.command(block, command, expected, last=last, in_process=in_process)

    def command(
        self, block: Block, command: str, expected: str | None, *, last: bool, in_process: bool
    ) -> None:
        wanted = int(block.options.get("exit", "0")) if last else 0
        command = self.with_ports(command)
        if command.startswith("pip install"):
            install, _, rest = command.partition("&&")  # `pip install ... && relay demo`
            for word in shlex.split(install, comments=True)[2:]:
                if word.startswith((".", "plugins/")):  # a path in this repository
                    assert (ROOT / word).is_dir() or list(ROOT.glob(word)), block.where
                elif not word.startswith("-"):
                    name = re.split(r"[\[<>=!~ ]", word.strip("'\""))[0]
                    metadata.distribution(name)  # the page names a distribution that exists
            if not rest.strip():
                return
            command = rest.strip()
        if command.endswith("&"):
            self.serve(block, command[:-1].strip())
            return
        if in_process:
            code, got = self.relay_in_process(block, command)
        else:
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=self.directory,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=180,
                check=False,
            )
            code, got = done.returncode, done.stdout.decode(errors="replace")
        if code != wanted:
            pytest.fail(
                f"{block.where}: {command!r} exited {code}, not {wanted}:\n{got}", pytrace=False
            )
        assert "Traceback (most recent call last)" not in got, f"{block.where}: {command!r}"
        if expected is not None:
            _check_output(block, repr(command), expected, got)

    def relay_in_process(self, block: Block, command: str) -> tuple[int, str]:
        from click.testing import CliRunner

        from relay_core import cli

        words = shlex.split(command, comments=True)
        assert words[0] == "relay", f"{block.where}: a cassette command must be a relay command"
        cli.with_plugins()
        runner = CliRunner()
        env = {k: v for k, v in self.env.items() if k.startswith("RELAY_")}
        with self.inside():
            result = runner.invoke(cli.cli, words[1:], env=env, prog_name="relay")
        return result.exit_code, result.output

    def serve(self, block: Block, command: str) -> None:
        shown = re.search(r"--port[ =](\d+)", command)
        assert shown, f"{block.where}: a server line ({command!r}) needs --port N"
        port = free_port()
        self.ports[shown.group(1)] = str(port)
        command = re.sub(r"--port[ =]\d+", f"--port {port}", command)
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.directory,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.servers.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"{block.where}: {command!r} exited:\n{output}", pytrace=False)
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        pytest.fail(f"{block.where}: {command!r} did not listen within 60s", pytrace=False)

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


@contextlib.contextmanager
def real_server(kind: str) -> Iterator[dict[str, str]]:
    """A real server a page needs, running: its address, and the environment besides
    that its clients need (``""`` is the address)."""
    from relay_core import real_servers

    if kind == "postgres":
        with real_servers.postgres_server() as postgres:
            yield {"": postgres.url}
    elif kind == "redis":
        with real_servers.redis_server() as redis:
            yield {"": redis.url}
    elif kind == "ray":
        with real_servers.ray_cluster() as cluster:
            # Its drivers keep to 127.0.0.1 (see RayCluster).
            yield {"": cluster.address, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    else:
        pytest.fail(f"a page needs {kind!r}: known are postgres, redis, ray", pytrace=False)
