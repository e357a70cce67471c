"""Who is calling, and whether they may call now: Bearer keys and per-key rate limits."""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from relay_serve._settings import ApiKey

if TYPE_CHECKING:
    from relay_serve._keystore import KeyReader

__all__ = ["Gatekeeper", "RateLimited", "TokenBucket", "Unauthorized"]


class Unauthorized(Exception):
    """No key, or a key that matches none configured. ``code`` is OpenAI's error code."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


class RateLimited(Exception):
    """The key is over its requests per minute; ``retry_after`` is the wait in seconds."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"rate limit reached for key {name!r}; retry after {retry_after:.0f}s")
        self.retry_after = retry_after


class TokenBucket:
    """``per_minute`` requests a minute, refilled continuously, with a burst of at most
    ``per_minute`` (a minute's worth), so a client may spend its minute at once."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Spend one token: 0.0 when granted, else the seconds until one is available."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


class Gatekeeper:
    """Checks the ``Authorization`` header against the configured key hashes, then the
    key's rate limit. With no keys configured (nor a key store) everyone is let in,
    unlimited. Keys made at runtime are looked up in ``store``."""

    def __init__(
        self,
        keys: Sequence[ApiKey],
        clock: Callable[[], float] = time.monotonic,
        *,
        store: KeyReader | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._keys = tuple(keys)
        self._store = store
        self._now = now
        self._clock = clock
        self._buckets = {
            key.name: TokenBucket(key.requests_per_minute, clock)
            for key in self._keys
            if key.requests_per_minute is not None
        }

    async def admit(self, authorization: str | None) -> ApiKey | None:
        """The caller's key (None on an open server); raises :class:`Unauthorized` or
        :class:`RateLimited`."""
        if not self._keys and self._store is None:
            return None
        key = await self.identify(authorization)
        bucket = self._buckets.get(key.name)
        if bucket is None and key.requests_per_minute is not None:
            # A store key's limit is known once it is presented (one bucket per name).
            bucket = self._buckets[key.name] = TokenBucket(key.requests_per_minute, self._clock)
        if bucket is not None:
            wait = bucket.take()
            if wait:
                raise RateLimited(key.name, max(1.0, math.ceil(wait)))
        return key

    async def identify(self, authorization: str | None) -> ApiKey:
        """The configured key the ``Authorization`` header presents, without spending
        from its rate limit (for reading the server's own state: health, metrics);
        raises :class:`Unauthorized`."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
                None,
            )
        presented = hashlib.sha256(token.encode()).digest()
        found: ApiKey | None = None
        # Compare with every key in constant time and without stopping at a match, so
        # the answer's timing says nothing about how close a guess was, or which key.
        for key in self._keys:
            if hmac.compare_digest(presented, key.digest):
                found = key
        if found is None and self._store is not None:
            found = await self._store.find(presented)
        if found is None:
            raise Unauthorized("Incorrect API key provided.", "invalid_api_key")
        if found.expires_at is not None and found.expires_at <= self._now():
            raise Unauthorized(
                f"The API key {found.name!r} has expired; ask for a new one.", "invalid_api_key"
            )
        return found
