"""The in-memory store: an LRU of JSON answers with a freshness limit and two bounds."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from attrs import frozen

from relay_cache._codec import Answer, decode, encode
from relay_core.plugin import get_logger

__all__ = ["MemoryCache"]

_log = get_logger("relay.cache")


@frozen
class _Entry:
    text: str
    size: int
    stored_at: float


class MemoryCache:
    """Answers kept in this process, least recently used evicted first.

    Entries are kept as JSON text, not as the ``Response`` objects handed in: a caller
    that mutates a response's ``metadata`` dict cannot change what later hits see, and
    the size counted against ``max_bytes`` is the one the disk store counts. Every
    operation is O(1) under one lock, so the store is safe for asyncio tasks and threads
    alike (the lock is never held across an ``await``).
    """

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        ttl: float | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes of JSON held."""
        return self._bytes

    async def get(self, key: str) -> Answer | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.ttl is not None and self._clock() - entry.stored_at >= self.ttl:
                self._remove(key)
                return None
            self._entries.move_to_end(key)
        try:
            return decode(entry.text)
        except Exception as error:  # only a change of Response between put and get
            _log.warning("cache.unreadable", key=key, error=repr(error))
            with self._lock:
                if self._entries.get(key) is entry:
                    self._remove(key)
            return None

    async def put(self, key: str, response: Answer) -> None:
        text = encode(response)
        size = len(text.encode())
        if size > self.max_bytes:
            _log.debug("cache.too_big", key=key, size=size, max_bytes=self.max_bytes)
            return
        with self._lock:
            if key in self._entries:
                self._remove(key)
            self._entries[key] = _Entry(text, size, self._clock())
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._remove(oldest)

    async def aclose(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _remove(self, key: str) -> None:
        self._bytes -= self._entries.pop(key).size
