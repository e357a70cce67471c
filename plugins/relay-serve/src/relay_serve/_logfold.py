"""Repeated log lines folded into one: ``<line> (repeated N times)``.

An attack repeats the same failure thousands of times a second (an accept that finds no
free file descriptor, a connection closed for sending too slowly), and a line, with its
traceback, for each would fill the disk faster than the attack fills anything else. The
first line of a kind is written as it comes; the same kind again within ``window`` seconds
is counted, not written; the next one after that is written with the count, without its
traceback. Two lines are the same kind when they come from the same logger at the same
level and their first lines differ only in words holding digits (timestamps, ports,
descriptors, request ids).
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RepeatFilter"]

_NUMBERS = re.compile(r"\w*\d\w*")
# Kinds remembered at once; the oldest is forgotten first (and written again if it recurs).
_KINDS = 512
_KIND_CHARS = 200
_FOLDED = "relay_folded"


class _Kind:
    __slots__ = ("last", "since", "suppressed")

    def __init__(self, since: float) -> None:
        self.since = since
        self.suppressed = 0
        self.last: logging.LogRecord | None = None


class RepeatFilter(logging.Filter):
    """A handler filter folding repeats (see the module); one instance may serve several
    handlers, so a line is counted once whichever of them sees it first."""

    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        self._kinds: OrderedDict[tuple[str, int, str], _Kind] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, _FOLDED, None)
        if decided is not None:  # seen by another handler: the same answer, counted once
            return bool(decided)
        first_line = record.getMessage().partition("\n")[0]
        key = (record.name, record.levelno, _NUMBERS.sub("#", first_line)[:_KIND_CHARS])
        now = self._clock()
        kind = self._kinds.get(key)
        if kind is not None and now - kind.since < self.window:
            kind.suppressed += 1
            kind.last = record
            setattr(record, _FOLDED, False)
            return False
        if kind is None:
            kind = self._kinds[key] = _Kind(now)
            if len(self._kinds) > _KINDS:
                self._kinds.popitem(last=False)
        else:
            self._kinds.move_to_end(key)
            if kind.suppressed:
                _summarise(record, kind.suppressed)
            kind.since, kind.suppressed, kind.last = now, 0, None
        setattr(record, _FOLDED, True)
        return True

    def flush(self) -> None:
        """Write the count of every kind with repeats not yet reported (at shutdown)."""
        for kind in self._kinds.values():
            if kind.suppressed and kind.last is not None:
                record = copy.copy(kind.last)
                _summarise(record, kind.suppressed)
                setattr(record, _FOLDED, True)
                kind.suppressed, kind.last = 0, None
                logging.getLogger(record.name).handle(record)


def _summarise(record: logging.LogRecord, repeats: int) -> None:
    record.msg = f"{record.getMessage()} (repeated {repeats} times)"
    record.args = None
    # The first line of the kind had its traceback; the count does not need it again.
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None
