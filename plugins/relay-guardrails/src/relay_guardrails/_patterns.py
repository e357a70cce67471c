"""Regular expressions checked for the classic catastrophic shape before they are used.

Python's ``re`` has no timeout: a pattern such as ``(\\w+\\s?)+$`` can backtrack for
hours over a few thousand characters, on the caller's path. No static check catches
every slow pattern, but the common one, an unbounded repetition inside another
(``(a+)+``, ``(.*,)*``, ``(\\w+\\s?)+``), is found in the parsed pattern and refused
when the settings are read. The other guard is the size of the text a pattern may
scan (``max_scan_chars``).
"""

from __future__ import annotations

import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    from re import _parser as sre_parse
else:  # pragma: no cover - the module's old name
    import sre_parse

__all__ = ["UNBOUNDED", "compile_pattern"]

# A repetition allowing more than this many repeats counts as unbounded: `{1,5000}`
# backtracks as badly as `+`.
UNBOUNDED = 100

_REPEATS = {"MAX_REPEAT", "MIN_REPEAT"}


def compile_pattern(text: str) -> re.Pattern[str]:
    """``text`` compiled; :class:`ValueError` saying why when it is not a valid pattern
    or nests an unbounded repetition inside another."""
    try:
        compiled = re.compile(text)
    except re.error as error:
        raise ValueError(f"is not a valid regular expression: {error}") from None
    nested = _nested_repeat(sre_parse.parse(text), inside=False)
    if nested:
        raise ValueError(
            "nests an unbounded repetition inside another, which can take exponential "
            "time on a long text (Python's re has no timeout); make the inner or the "
            "outer repetition possessive (a++, (?:...)++) or atomic ((?>...)), or "
            "bound it ({1,50})"
        )
    return compiled


def _nested_repeat(items: Any, *, inside: bool) -> bool:
    """Whether the parsed ``items`` hold an unbounded repetition inside another one
    (``inside``: the items are already the body of an unbounded repetition)."""
    for op, av in items:
        name = str(op)
        if name in _REPEATS:
            low, high, body = av
            unbounded = high > UNBOUNDED
            if inside and unbounded and low != high:
                return True
            if _nested_repeat(body, inside=inside or unbounded):
                return True
        elif name == "POSSESSIVE_REPEAT":
            # Possessive: never backtracked into, so what it holds cannot multiply.
            if _nested_repeat(av[2], inside=False):
                return True
        else:
            for child in _children(av):
                if _nested_repeat(child, inside=inside):
                    return True
    return False


def _children(av: Any) -> list[Any]:
    """The sub-patterns inside an opcode's argument (groups, branches, lookarounds)."""
    if isinstance(av, sre_parse.SubPattern):
        return [av]
    if isinstance(av, (tuple, list)):
        return [found for value in av for found in _children(value)]
    return []
