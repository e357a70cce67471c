"""MkDocs hook: the docs block runner's own fence options are taken off before rendering.

``integration/site_blocks.py`` reads ``cassette="..."`` and ``exit="..."`` on a fence;
superfences knows neither, and renders a fence with an option it does not know as a
paragraph, not as code. ``title="..."`` and ``{.theirs}`` render as they are.
"""

from __future__ import annotations

import re
from typing import Any

_RUNNER_OPTION = re.compile(r'\s*\b(?:cassette|exit)="[^"]*"')
_OPENING = re.compile(r"^( *(?:`{3,}|~{3,})\s*[\w+-]*)(.*)$", re.MULTILINE)


def without_runner_options(markdown: str) -> str:
    """The page with every fence's ``cassette`` and ``exit`` options taken off."""
    return _OPENING.sub(lambda m: m.group(1) + _RUNNER_OPTION.sub("", m.group(2)), markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return without_runner_options(markdown)
