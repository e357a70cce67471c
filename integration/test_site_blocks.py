"""Every code block of the documentation site runs, offline, as the page shows it. The marks
a fence may carry are in ``site_blocks``; ``page_run`` runs one page."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path

import pytest
import yaml
from page_run import PageRun, real_server
from site_blocks import NEEDS, PARSED, ROOT, RUN, SHOWN, Block, blocks_of, site_pages

PAGES = site_pages()
BLOCKS = [block for page in PAGES for block in blocks_of(page)]


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# --------------------------------------------------------------------------- the marks


def test_there_are_blocks_on_every_part_of_the_site() -> None:
    assert len(PAGES) > 45
    assert sum(block.runs for block in BLOCKS) > 160


def test_every_block_is_run_written_or_shown() -> None:
    wrong = []
    for block in BLOCKS:
        known = RUN | SHOWN
        unknown = set(block.options) - {"title", "cassette", "exit", "hl_lines", "linenums"}
        if block.stray:
            wrong.append(f"{block.where}: {block.stray!r} after the language is not an option")
        elif block.language not in known and "theirs" not in block.classes:
            wrong.append(f"{block.where}: ```{block.language} is neither run nor shown")
        elif unknown or block.classes - {"theirs"}:
            wrong.append(f"{block.where}: unknown options {sorted(unknown | block.classes)}")
        elif "cassette" in block.options and not block.runs:
            wrong.append(f"{block.where}: a cassette on a block that does not run")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "block",
    [b for b in BLOCKS if b.language in PARSED and "theirs" not in b.classes],
    ids=lambda b: b.where,
)
def test_a_shown_data_block_parses(block: Block) -> None:
    code = block.code
    if block.language in ("yaml", "yml"):
        documents = list(yaml.safe_load_all(code))
        assert documents, block.where
        return
    try:
        PARSED[block.language](code)
    except ValueError as error:  # json's and toml's errors are ValueErrors
        pytest.fail(f"{block.where}: {error}")


def test_every_cassette_a_block_names_exists() -> None:
    missing = [
        f"{b.where}: cassettes/{b.options['cassette']}.yaml"
        for b in BLOCKS
        if "cassette" in b.options
        and not (ROOT / "cassettes" / f"{b.options['cassette']}.yaml").is_file()
    ]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize(
    "page", [p for p in PAGES if any(b.runs or b.title for b in blocks_of(p))], ids=_page_id
)
def test_the_pages_blocks_run_as_shown(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("RELAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with contextlib.ExitStack() as servers:
        exported: dict[str, str] = {}
        for kind, variable in NEEDS.findall(page.read_text(encoding="utf-8")):
            found = servers.enter_context(real_server(kind))
            exported.update({k: v for k, v in found.items() if k}, **{variable: found[""]})
        for name, value in exported.items():
            monkeypatch.setenv(name, value)  # for the Python blocks, run in this process
        run = PageRun(page, tmp_path)
        run.env.update(exported)
        # The Python blocks start programs too (an MCP server's `python`): from the same
        # PATH as the shell blocks, this interpreter's directory first, as in a venv.
        monkeypatch.setenv("PATH", run.env["PATH"])
        try:
            for block in blocks_of(page):
                run.run(block)
        finally:
            run.close()


def test_the_runners_own_fence_options_are_taken_off_for_rendering() -> None:
    spec = importlib.util.spec_from_file_location("docs_fences", ROOT / "tools/docs_fences.py")
    assert spec
    assert spec.loader
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = '```python cassette="docs/x"\nx\n```\n```console exit="2"\n$ x\n```\n'
    assert hook.without_runner_options(page) == "```python\nx\n```\n```console\n$ x\n```\n"
    kept = '```yaml title="relay.yaml"\na: 1\n```\n'
    assert hook.without_runner_options(kept) == kept
