"""Putting originals back: the bounded store of placeholder maps, and the restorer.

The redacted request carries only an opaque id in its metadata; the map itself stays in
this process, in a store bounded in size and age, so a server running for months never
accumulates the maps of calls that failed before their answer was restored.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from relay_core.plugin import Request, Response, TextPart, ThinkingPart, ToolCallPart


class MapStore:
    """Placeholder maps by id, at most ``max_entries`` of them, each for ``ttl`` seconds.

    The oldest map goes first when the store is full; an expired map is gone as if it
    had never been stored. :meth:`take` removes the map it returns: each answer is
    restored once.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._maps: OrderedDict[str, tuple[float, dict[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, originals: dict[str, str]) -> None:
        with self._lock:
            now = self._clock()
            self._expire(now)
            self._maps[key] = (now + self.ttl, originals)
            while len(self._maps) > self.max_entries:
                self._maps.popitem(last=False)

    def take(self, key: str) -> dict[str, str] | None:
        with self._lock:
            self._expire(self._clock())
            entry = self._maps.pop(key, None)
        return entry[1] if entry is not None else None

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._maps)

    def _expire(self, now: float) -> None:
        # Entries are in insertion order and share one ttl, so expiry order is the same.
        while self._maps:
            key, (deadline, _) = next(iter(self._maps.items()))
            if deadline > now:
                break
            del self._maps[key]


class PlaceholderRestorer:
    """Restores one answer (a :class:`relay_core.calls.Restorer`).

    :meth:`feed` holds back a tail of the text that could still grow into a placeholder
    (``"<EMA"``), so a placeholder split across stream deltas is restored whole.
    """

    def __init__(self, originals: Mapping[str, str], request: Request | None = None) -> None:
        self._originals = dict(originals)
        self._request = request
        ordered = sorted(self._originals, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(p) for p in ordered)) if ordered else None
        self._longest = max((len(p) for p in self._originals), default=0)
        self._held = ""

    def text(self, text: str) -> str:
        """``text`` with every known placeholder replaced by its original."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._originals[m.group(0)], text)

    def feed(self, text: str) -> str:
        """The restored text that can be shown now that ``text`` arrived: a tail that may
        be the start of a placeholder (``"<EMA"``) is held back until the next piece
        says whether it is one."""
        buffer = self._held + text
        cut = self._partial_start(buffer)
        self._held = buffer[cut:]
        return self.text(buffer[:cut])

    def flush(self) -> str:
        """What :meth:`feed` held back, restored, at the end of the text; nothing is held
        afterwards."""
        held, self._held = self._held, ""
        return self.text(held)

    def _partial_start(self, buffer: str) -> int:
        """Where a proper prefix of some placeholder starts at the end of ``buffer``, or
        its length. Placeholders hold one '<', at their start, so only the last
        ``longest - 1`` characters can hold such a prefix."""
        start = buffer.find("<", max(0, len(buffer) - self._longest + 1))
        while start != -1:
            tail = buffer[start:]
            if any(p.startswith(tail) and p != tail for p in self._originals):
                return start
            start = buffer.find("<", start + 1)
        return len(buffer)

    def value(self, value: Any) -> Any:
        """A JSON-like value (tool-call arguments) with every known placeholder in its
        strings, dictionary keys included, replaced by its original."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(v) for v in value)
        return value

    def restore(self, response: Response) -> Response:
        """Text, thinking and tool-call arguments restored; ``raw`` stays as the
        provider sent it (it is what the provider saw and said)."""
        if self._pattern is None:
            return response
        content = tuple(
            attrs.evolve(p, text=self.text(p.text))
            if isinstance(p, (TextPart, ThinkingPart)) and not getattr(p, "redacted", False)
            else attrs.evolve(p, arguments=self.value(p.arguments))
            if isinstance(p, ToolCallPart)
            else p
            for p in response.content
        )
        restored = attrs.evolve(response, content=content)
        if response.parsed is not None and self._request is not None:
            restored = _reparsed(self._request, restored)
        return restored


def _reparsed(request: Request, response: Response) -> Response:
    """``parsed`` rebuilt from the restored text, so structured answers carry the
    originals too."""
    # The hub's own parser: one definition of how a structured answer is read.
    from relay_core.plugin import parse_structured

    return parse_structured(request, attrs.evolve(response, parsed=None))
