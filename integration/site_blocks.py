"""Every code block of the documentation site runs, offline, so no page drifts from the code.

The site's pages are ``docs/**/*.md`` and each plugin's ``README.md`` (the site renders one
as the plugin's page); ``README.md`` is held to the same rule. Each page runs top to bottom
in a fresh directory of its own, its Python blocks sharing one namespace, as a reader who
follows the page would. A fence says what its block is::

    ```python                      run; ``#> `` lines under a print are its output, checked
    ```console                     ``$ `` lines run in bash; the lines under one are its output
    ```bash                        each line a command, its output not checked
    ```yaml title="relay.yaml"     a file the page writes (any language, any path)
    ```python title="a.py, continued"   appended to the file an earlier block wrote
    ```python cassette="docs/x"    run on a recorded provider instead of relay-mock
    ```console exit="2"            the block's last command must exit 2 (an error shown)
    ```python {.theirs}            another tool's code: shown, never run
    ```text                        shown: yaml, json and toml blocks must parse

A catalog a page writes (a YAML file with ``models``, ``providers`` or ``groups``) is
served by relay-mock: every provider it names is pointed at the mock, which answers at
once, with no key and no network. A block marked ``cassette="<folder>/<name>"`` runs on
the page's catalog as written instead, its HTTP replayed from ``cassettes/<folder>/<name>
.yaml`` (a request the cassette does not hold fails), with a placeholder key in every
provider's variable; its console commands must be ``relay`` commands, which then run in
this process. Output is compared as doctest compares it: ``...`` stands for any text,
and runs of whitespace are equal. A line ``$ pip install NAME`` is not run: NAME must be
a distribution that is installed, or a path of this repository (``-e plugins/relay-mock``);
a command after its ``&&`` runs. A command ending in ``&`` is a server, started, waited
for on its ``--port`` (swapped for a free one), and stopped when the page ends.

A page whose blocks need a real server says so in an HTML comment (not rendered),
``<!-- blocks need: postgres as RELAY_DB -->``: the runner starts one for the page
(``relay_core.real_servers``: ``postgres``, ``redis``, or a one-node ``ray`` cluster)
and gives every block its address in that variable (a URL; for Ray the cluster's
address, so ``RAY_ADDRESS`` makes ``--address auto`` find it), as a reader's shell
would hold theirs. The server is stopped when the page ends.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml
from attrs import field, frozen

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
RUN = frozenset({"python", "py", "console", "bash", "sh", "shell"})
SHOWN = frozenset(
    {"", "text", "yaml", "yml", "json", "jsonl", "toml", "ini", "http", "diff", "dockerfile"}
)
PARSED = {"yaml": yaml.safe_load, "yml": yaml.safe_load, "json": json.loads, "toml": tomllib.loads}
OPTION = re.compile(r'(\w+)="([^"]*)"|\.([\w-]+)')
NEEDS = re.compile(r"<!--\s*blocks need:\s*(\w+)\s+as\s+(\w+)\s*-->")


def site_pages() -> list[Path]:
    """The pages whose blocks run: the site's sources and the repository's README."""
    return [
        *sorted(ROOT.glob("docs/**/*.md")),
        *sorted(ROOT.glob("plugins/*/README.md")),
        ROOT / "README.md",
    ]


@frozen
class Block:
    page: Path
    line: int  # the first line of the block's body
    language: str
    options: dict[str, str]
    classes: frozenset[str]
    code: str = field(repr=False)
    # What the fence holds beside its language and options: superfences then renders the
    # block as a paragraph, not code, so the marks check refuses it.
    stray: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def title(self) -> str | None:
        return self.options.get("title")

    @property
    def runs(self) -> bool:
        return self.language in RUN and not self.title and "theirs" not in self.classes


def blocks_of(page: Path) -> list[Block]:
    """The page's fenced blocks, with the options of their opening fence."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        opening = re.match(r"^( *)(`{3,}|~{3,})\s*([\w+-]*)(.*)$", lines[number])
        number += 1
        if not opening:
            continue
        indent, fence, language, rest = opening.groups()
        start = number
        body: list[str] = []
        while number < len(lines) and not lines[number].strip().startswith(fence):
            body.append(lines[number][len(indent) :])
            number += 1
        number += 1
        options = {m[1]: m[2] for m in OPTION.finditer(rest) if m[1]}
        classes = frozenset(m[3] for m in OPTION.finditer(rest) if m[3])
        code = "\n".join(body) + "\n"
        stray = OPTION.sub("", rest).replace("{", "").replace("}", "").strip()
        found.append(Block(page, start + 1, language.lower(), options, classes, code, stray))
    return found
