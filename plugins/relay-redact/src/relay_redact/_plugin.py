"""The configured redactor: the per-call hooks ``relay_redact`` and ``relay_restorer``."""

from __future__ import annotations

import secrets
from functools import partial

import attrs

from relay_core.plugin import Request, Restorer, hookimpl
from relay_redact._detectors import find_pii
from relay_redact._redaction import Redaction, placeholders_in
from relay_redact._restore import MapStore, PlaceholderRestorer
from relay_redact._settings import Settings

# The key of the redacted request's metadata holding the id of its placeholder map.
METADATA_KEY = "relay_redact"

# Hash mode without a configured salt: one random salt for the process's lifetime, so
# tokens are stable within a process and unlinkable across processes.
_PROCESS_SALT = secrets.token_bytes(32)


class Redactor:
    """Redacts every request of a hub and restores the answers (placeholder mode).

    Build it from :class:`Settings` (``Redactor(Settings(mode="mask"))``) and register it
    with ``hub.plugins.register(...)``, or let the catalog configure it.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.maps = MapStore(max_entries=self.settings.max_maps, ttl=self.settings.map_ttl)
        salt = self.settings.salt
        self._salt = salt.reveal().encode() if salt is not None else _PROCESS_SALT
        self._find = partial(find_pii, entities=self.settings.entities)

    def __repr__(self) -> str:
        return f"Redactor(mode={self.settings.mode!r}, entities={self.settings.entities!r})"

    def redaction(self, taken: set[str] | frozenset[str] = frozenset()) -> Redaction:
        """A fresh :class:`Redaction` with these settings (one per request)."""
        return Redaction(
            self.settings.mode,
            find=self._find,
            salt=self._salt,
            mask_style=self.settings.mask_style,
            allowed=self.settings.allowed,
            taken=taken,
        )

    @hookimpl
    def relay_redact(self, request: Request) -> Request | None:
        if not self.settings.enabled:
            return None
        placeholder_mode = self.settings.mode == "placeholder"
        redaction = self.redaction(placeholders_in(request) if placeholder_mode else set())
        redacted = redaction.request(request)
        if redacted is request and METADATA_KEY not in request.metadata:
            return None  # nothing to hide: the request goes out as it came
        metadata = {k: v for k, v in request.metadata.items() if k != METADATA_KEY}
        if placeholder_mode and redaction.originals:
            key = secrets.token_urlsafe(12)
            self.maps.put(key, redaction.originals)
            metadata[METADATA_KEY] = key
        return attrs.evolve(redacted, metadata=metadata)

    @hookimpl
    def relay_restorer(self, request: Request) -> Restorer | None:
        key = request.metadata.get(METADATA_KEY)
        if not isinstance(key, str):
            return None
        originals = self.maps.take(key)
        if originals is None:  # expired or evicted: the answer stays redacted
            return None
        return PlaceholderRestorer(originals, request)
