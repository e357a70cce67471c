"""Who is calling: Bearer keys. Whether they may call now is ``relay_serve._quota``'s."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from relay_serve._settings import ApiKey

__all__ = ["Gatekeeper", "Unauthorized"]


class Unauthorized(Exception):
    """No key, or a key that matches none configured. ``code`` is OpenAI's error code."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


class Gatekeeper:
    """Checks the ``Authorization`` header against the configured key hashes. With no
    keys configured everyone is let in."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._keys = tuple(keys)

    def admit(self, authorization: str | None) -> ApiKey | None:
        """The caller's key (None on an open server); raises :class:`Unauthorized`."""
        if not self._keys:
            return None
        return self.identify(authorization)

    def identify(self, authorization: str | None) -> ApiKey:
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
        if found is None:
            raise Unauthorized("Incorrect API key provided.", "invalid_api_key")
        return found
