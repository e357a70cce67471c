"""docs/plugin-authors.md, followed as written: its code blocks become the plugin, which is
installed into a fresh virtual environment, asked through the guide's own `relay`
commands to answer (from a local stand-in for ACME's API), and tested by the guide's own
conformance test. Change the guide and this tests the change; no copy of its code lives
here.

A block with a title (```` ```python title="relay_acme/_adapter.py" ````) is a file of the
plugin, ``title="<path>, continued"`` appends to one, as the site's block runner writes
them; ``console`` and ``text`` blocks hold ``$ command`` lines followed by the output the
guide promises (the installed plugin's commands are ``text``: the site's runner cannot
install a plugin, so this test runs them)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import site
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay_core.testing import CONFORMANCE_TEXT

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugin-authors.md"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<options>[^\n]*)\n(?P<body>.*?)^```$", re.M | re.S)
TITLE = re.compile(r'title="(?P<path>[\w./-]+\.(?:py|toml))(?P<continued>, continued)?"')
PLUGIN_FILES = {
    "pyproject.toml",
    "relay_acme/__init__.py",
    "relay_acme/_adapter.py",
    "tests/test_conformance.py",
}
RELAY = "import sys; from relay_core.cli import main; sys.argv[0] = 'relay'; main(sys.argv[1:])"


def guide_files() -> dict[str, str]:
    """The plugin's files, from the guide's blocks with a title."""
    files: dict[str, str] = {}
    for block in FENCE.finditer(GUIDE.read_text(encoding="utf-8")):
        marker = TITLE.search(block["options"])
        if marker is None:
            continue
        path = marker["path"]
        if marker["continued"]:
            assert path in files, f"{marker[0]} continues a file no earlier block started"
            files[path] += "\n" + block["body"]
        else:
            assert path not in files, f"the guide starts {path} twice"
            files[path] = block["body"]
    return files


def guide_commands() -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the guide's console and text blocks, with the output lines
    shown after it."""
    commands: list[tuple[str, list[str]]] = []
    for block in FENCE.finditer(GUIDE.read_text(encoding="utf-8")):
        if block["lang"] not in ("console", "text"):
            continue
        for line in block["body"].splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], []))
            elif line.strip():
                commands[-1][1].append(line)
    return commands


def test_the_guide_holds_the_whole_plugin() -> None:
    files = guide_files()
    assert set(files) == PLUGIN_FILES
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")  # a continuation that does not fit is a SyntaxError


class StandIn:
    """ACME's API on 127.0.0.1, answering as the guide's conformance test's ``serve``
    answers the ``text`` scenario; it records what it was sent."""

    def __init__(self, conformance: Any) -> None:
        self.requests: list[httpx.Request] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = httpx.Request(
                    "POST", f"http://acme{self.path}", headers=dict(self.headers), content=body
                )
                stand_in.requests.append(request)
                stream = json.loads(body).get("stream") is True
                answer: httpx.Response = conformance.serve("text", request, stream)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> StandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _conformance_class(plugin: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The guide's ``TestConformance``, loaded here only to serve as ACME's API."""
    monkeypatch.syspath_prepend(str(plugin))
    spec = importlib.util.spec_from_file_location(
        "relay_guide_conformance", plugin / "tests" / "test_conformance.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in [m for m in sys.modules if m.split(".")[0] == "relay_acme"]:
        monkeypatch.delitem(sys.modules, name)
    return module.TestConformance()


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The guide's plugin, written from its blocks and pip-installed (editable, as the
    guide says) into a new virtual environment. The environment reaches relay-core and
    pytest through this interpreter's site directories: ``--system-site-packages`` would
    reach the base Python's, not this (virtual) environment's, and no index is used."""
    root = tmp_path_factory.mktemp("guide")
    plugin = root / "relay-acme"
    for path, text in guide_files().items():
        (plugin / path).parent.mkdir(parents=True, exist_ok=True)
        (plugin / path).write_text(text, encoding="utf-8")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    parents = [
        *site.getsitepackages(),
        *([site.getusersitepackages()] if site.ENABLE_USER_SITE else []),
    ]
    (Path(purelib) / "zz_relay_test_parent.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
    )
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    install += ["--no-deps", "--no-index", "--no-build-isolation", "-e", str(plugin)]
    result = subprocess.run(install, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return python, plugin


def _environment(**extra: str) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "PYTEST_", "ACME_"))
    }
    environment.update(extra)
    return environment


def test_the_guides_plugin_works_as_the_guide_says(
    fresh_venv: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python, plugin = fresh_venv
    commands = guide_commands()
    relay_commands = [(c, out) for c, out in commands if c.startswith("relay ")]
    assert [c for c, _ in relay_commands][:2] == [
        "relay plugins",
        'relay chat acme/acme-large "Say hi"',
    ]
    assert any("--stream" in c for c, _ in relay_commands)

    env = _environment()
    for command, _ in commands:
        exported = re.fullmatch(r"export (\w+)=\.\.\.", command)
        if exported:
            env[exported[1]] = "acme-guide-key"
    with StandIn(_conformance_class(plugin, monkeypatch)) as acme:
        (tmp_path / "relay.yaml").write_text(f"providers:\n  acme:\n    base_url: {acme.url}\n")
        for command, shown in relay_commands:
            args = shlex.split(command)[1:]
            result = subprocess.run(
                [str(python), "-c", RELAY, *args],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"{command}: {result.stderr}"
            lines = result.stdout.splitlines()
            for line in shown:
                assert line in lines, f"{command} did not print {line!r}:\n{result.stdout}"
            if args[0] == "chat":
                assert result.stdout.strip() == CONFORMANCE_TEXT, command
    sent = [json.loads(r.content) for r in acme.requests]
    assert [body.get("stream", False) for body in sent] == [False, True]
    assert {body["model"] for body in sent} == {"acme-large"}
    assert {r.headers["authorization"] for r in acme.requests} == {"Bearer acme-guide-key"}
    assert {r.url.path for r in acme.requests} == {"/v1/chat"}


def test_the_guides_conformance_test_passes(fresh_venv: tuple[Path, Path]) -> None:
    python, plugin = fresh_venv
    assert ("pytest tests", []) in guide_commands()
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests"],
        cwd=plugin,
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The stream's equality with chat, the entry point, the light module: all ran. The
    # one skipped is the tool call, which the guide's adapter does not declare.
    assert re.search(r"\b\d+ passed, 1 skipped", result.stdout), result.stdout
    assert "the adapter does not declare 'tools'" in result.stdout, result.stdout


def test_a_guide_stream_without_id_or_raw_fails_its_conformance_test(
    fresh_venv: tuple[Path, Path], tmp_path: Path
) -> None:
    """What the guide's streaming snippet once did: its own conformance test catches it."""
    python, plugin = fresh_venv
    adapter = (plugin / "relay_acme" / "_adapter.py").read_text()
    broken = tmp_path / "relay_acme"
    broken.mkdir()
    (broken / "__init__.py").write_text((plugin / "relay_acme" / "__init__.py").read_text())
    ended = 'id=chunks[0]["id"],\n                raw=chunks,\n'
    assert ended in adapter
    (broken / "_adapter.py").write_text(adapter.replace(ended, ""))
    result = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(plugin / "tests"),
            "-k",
            "stream_equals_chat",
        ],
        cwd=tmp_path,
        env=_environment(PYTHONPATH=str(tmp_path)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the stream's end response has no id" in result.stdout
