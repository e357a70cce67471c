"""The configured plugin: turns each audit event into one record and hands it to every
sink, each on its own, so that one failing sink neither breaks the call nor stops the
others."""

from __future__ import annotations

import sys
import threading
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from relay_audit._record import build_record, canonical
from relay_audit._settings import Settings, SinkSpec, resolve_key
from relay_core.plugin import get_logger, hookimpl, mask

if TYPE_CHECKING:
    from relay_core.plugin import AuditEvent, Secret

__all__ = ["AuditPlugin", "Sink", "StdoutSink", "build_sink"]


class Sink(Protocol):
    """Where records go. ``name`` identifies the sink in logs and in
    :attr:`AuditPlugin.failures`; ``write`` raises when the record was not kept."""

    name: str

    def write(self, record: dict[str, Any]) -> None:
        """Keep ``record``; return only once it is kept, raise when it was not.

        ``record`` is one event as plain JSON data (see :func:`build_record`):
        ``schema``, ``kind``, ``outcome``, ``at`` and ``at_epoch`` always, the optional
        fields the settings keep, every string already masked. The same dict goes to
        every sink in turn: change a copy, never ``record`` itself.

        Called on the caller's path, from whichever thread makes the call (a hub's sync
        calls run on its own loop thread, async calls on the caller's loop), possibly
        from several at once: an implementation must be thread-safe, and should be
        quick, since the call (and an async caller's event loop) waits for it. Any
        exception means the record is lost: the plugin counts it in
        :attr:`AuditPlugin.failures`, logs it, does not retry, and the call goes on.
        """
        ...


class StdoutSink:
    """Writes each record to standard output as one JSON line (no hash chain)."""

    name = "stdout"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        """Print ``record`` as one line of canonical JSON (sorted keys, no spaces, ASCII)
        and flush; the lines it writes from several threads never interleave."""
        line = canonical(record) + "\n"
        with self._lock:
            stream = sys.stdout  # looked up each time: it may have been replaced
            stream.write(line)
            stream.flush()


def build_sink(spec: SinkSpec, key: Secret | None = None) -> Sink:
    """The sink ``spec`` describes (no file is opened until the first record); ``key``
    keys a JSONL sink's chain."""
    if spec.type == "stdout":
        return StdoutSink()
    assert spec.path is not None
    if spec.type == "jsonl":
        from relay_audit._jsonl import JsonlSink

        return JsonlSink(spec.path, fsync=spec.fsync, key=key)
    from relay_audit._sqlite import SqliteSink

    return SqliteSink(spec.path, timeout=spec.timeout)


class AuditPlugin:
    """Records every audit event to ``sinks``.

    Register one on a hub (``hub.plugins.register(AuditPlugin([JsonlSink("a.jsonl")]))``)
    or let the plugin build it from the catalog's ``plugins.audit``. ``include_content``
    adds the (redacted) request and response text to each record; ``fields`` keeps only
    those optional record fields.

    A sink that raises is skipped for that record: the others still get it, the call
    goes on, :attr:`failures` counts it, and ``audit.sink_failed`` is logged once at the
    start of each run of failures (``audit.sink_recovered`` when the sink works again).
    """

    def __init__(
        self,
        sinks: Iterable[Sink],
        *,
        include_content: bool = False,
        fields: Collection[str] | None = None,
    ) -> None:
        self.sinks = tuple(sinks)
        self.include_content = include_content
        self.fields = None if fields is None else frozenset(fields)
        self._failures = {sink.name: 0 for sink in self.sinks}
        self._burst = {sink.name: 0 for sink in self.sinks}
        self._lock = threading.Lock()
        self._log = get_logger("relay.audit")

    @classmethod
    def from_settings(
        cls, settings: Settings | Mapping[str, Any], *, key: Secret | None = None
    ) -> AuditPlugin:
        """The plugin for checked :class:`Settings`, or for a ``plugins.audit`` mapping
        (checked here; a mistake raises :class:`relay_core.ConfigError`). ``key`` is the
        resolved ``hmac_key``; when not given it is resolved here."""
        if not isinstance(settings, Settings):
            settings = Settings.parse(settings)
        if key is None and settings.hmac_key is not None:
            key = resolve_key(settings.hmac_key)
        return cls(
            [build_sink(spec, key) for spec in settings.sinks],
            include_content=settings.include_content,
            fields=settings.fields,
        )

    @property
    def failures(self) -> dict[str, int]:
        """Records each sink failed to keep, by sink name (``jsonl:/var/log/audit.jsonl``)."""
        with self._lock:
            return dict(self._failures)

    @hookimpl
    def relay_audit(self, event: AuditEvent) -> None:
        record = build_record(event, include_content=self.include_content, fields=self.fields)
        for sink in self.sinks:
            try:
                sink.write(record)
            except Exception as error:
                self._failed(sink, error)
            else:
                if self._burst[sink.name]:
                    self._recovered(sink)

    def _failed(self, sink: Sink, error: Exception) -> None:
        with self._lock:
            self._failures[sink.name] += 1
            self._burst[sink.name] += 1
            first = self._burst[sink.name] == 1
        if first:  # one line per run of failures, not one per call of a dead disk
            self._log.error(
                "audit.sink_failed", sink=sink.name, error=mask(f"{type(error).__name__}: {error}")
            )

    def _recovered(self, sink: Sink) -> None:
        with self._lock:
            lost, self._burst[sink.name] = self._burst[sink.name], 0
        if lost:
            self._log.warning("audit.sink_recovered", sink=sink.name, lost=lost)

    def close(self) -> None:
        """Close the sinks that hold a connection open (SQLite)."""
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                close()
