"""A one-line progress bar on stderr, for the CLI and for ``progress=True``.

Imported only when asked for. It redraws at most ten times a second, and only on a
terminal; elsewhere (a log file, CI) it prints one line per tenth of the job instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from relay_core.types import BatchItem

__all__ = ["ProgressBar"]

_WIDTH = 28


class ProgressBar:
    def __init__(self, stream: TextIO | None = None, *, label: str = "") -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self.total = self.done = self.failed = self.cached = 0
        self.cost: float | None = 0.0
        self._started = self._drawn = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next_tenth = 1

    def start(self, total: int, *, done: int = 0) -> None:
        self.total, self.done = total, done
        self._started = time.monotonic()
        self._draw(force=True)

    def advance(self, item: BatchItem) -> None:
        self.done += 1
        answer = item.answer
        if answer is None:
            self.failed += 1
        else:
            if answer.metadata.get("cached"):
                self.cached += 1
            amount = answer.cost.amount
            self.cost = None if self.cost is None or amount is None else self.cost + amount
        self._draw()

    def finish(self) -> None:
        if self._tty:
            self._draw(force=True)
            self.stream.write("\n")
        elif self._next_tenth <= 10:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        filled = int(share * _WIDTH)
        elapsed = max(time.monotonic() - self._started, 1e-9)
        cost = "cost unknown" if self.cost is None else f"${self.cost:.4f}"
        text = (
            f"{self.label}[{'#' * filled}{'.' * (_WIDTH - filled)}] {self.done}/{self.total}"
            f"  {self.failed} failed  {self.cached} cached  {cost}  {self.done / elapsed:.0f}/s"
        )
        return text

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._tty:
            if force or now - self._drawn >= 0.1:
                self.stream.write("\r" + self.line())
                self.stream.flush()
                self._drawn = now
            return
        tenth = self.done * 10 // self.total if self.total else 10
        if force or tenth >= self._next_tenth:
            self.stream.write(self.line() + "\n")
            self._next_tenth = tenth + 1
