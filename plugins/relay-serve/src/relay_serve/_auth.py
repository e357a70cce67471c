"""Who is calling: Bearer keys. Whether they may call now is ``relay_serve._quota``'s."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from relay_serve._settings import ApiKey

if TYPE_CHECKING:
    from relay_serve._keystore import KeyReader

__all__ = ["Gatekeeper", "Unauthorized"]


class Unauthorized(Exception):
    """No key, or a key that matches none configured. ``code`` is OpenAI's error code."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


class Gatekeeper:
    """Checks the ``Authorization`` header against the configured key hashes, then the
    key store (keys made at runtime). With no keys configured nor a key store, everyone
    is let in. What a key may spend is ``relay_serve._quota``'s business."""

    def __init__(
        self,
        keys: Sequence[ApiKey],
        *,
        store: KeyReader | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._keys = tuple(keys)
        self._store = store
        self._now = now

    async def admit(self, authorization: str | None) -> ApiKey | None:
        """The caller's key (None on an open server); raises :class:`Unauthorized`."""
        if not self._keys and self._store is None:
            return None
        return await self.identify(authorization)

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
