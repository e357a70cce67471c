"""The server's metrics, rendered in the Prometheus text exposition format (0.0.4).

Written here rather than taken from ``prometheus_client``: six metrics and one histogram
are a few dozen lines, and a server that any Relay user may start should not pull in a
dependency (with its process-global registry) for them. Label values come only from
the server's own vocabulary (routes, catalog aliases, status codes, error class names),
never from raw client input, so a client cannot grow the label space without bound.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: from a cached answer to a long generation.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Metrics:
    """Counters, gauges and a latency histogram for one server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[Labels] = Counter()
        self._rejected: Counter[Labels] = Counter()
        self._upstream_errors: Counter[Labels] = Counter()
        self._cancelled: Counter[Labels] = Counter()
        self._spend: dict[Labels, float] = {}
        self._latency_counts: dict[Labels, list[int]] = {}
        self._latency_sums: dict[Labels, float] = {}
        self.in_flight = 0
        self.queue_depth = 0

    def request(self, route: str, model: str, status: int, seconds: float) -> None:
        """Count one answered request and observe its latency."""
        with self._lock:
            self._requests[(("route", route), ("model", model), ("status", str(status)))] += 1
            key = (("route", route),)
            counts = self._latency_counts.setdefault(key, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._latency_sums[key] = self._latency_sums.get(key, 0.0) + seconds

    def rejected(self, reason: str) -> None:
        """A request shed before any upstream call: ``queue_full`` or ``rate_limited``."""
        with self._lock:
            self._rejected[(("reason", reason),)] += 1

    def upstream_error(self, kind: str) -> None:
        """An upstream call that failed, by Relay error class name."""
        with self._lock:
            self._upstream_errors[(("kind", kind),)] += 1

    def cancelled(self, route: str) -> None:
        """A call abandoned because its client went away."""
        with self._lock:
            self._cancelled[(("route", route),)] += 1

    def spent(self, key: str, model: str, dollars: float) -> None:
        """Dollars an answered request cost: ``key`` is the key's name (the operator's
        vocabulary), ``model`` the request's metrics label."""
        with self._lock:
            labels = (("key", key), ("model", model))
            self._spend[labels] = self._spend.get(labels, 0.0) + dollars

    def gauges(self, in_flight: int, waiting: int) -> None:
        self.in_flight, self.queue_depth = in_flight, waiting

    def render(self, backends: Mapping[str, Sequence[Any]] | None = None) -> str:
        """Everything, as exposition text; ``backends`` are the pools' backend states by
        provider (``BackendState`` values: url, healthy, in_flight)."""
        lines: list[str] = []
        with self._lock:
            self._counter(lines, "relay_serve_requests_total", "Requests answered.", self._requests)
            self._histogram(lines)
            for name, help_text, value in (
                ("relay_serve_in_flight", "Upstream calls running now.", self.in_flight),
                ("relay_serve_queue_depth", "Requests waiting for a slot.", self.queue_depth),
            ):
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
            self._counter(
                lines,
                "relay_serve_rejected_total",
                "Requests refused before any upstream call (queue full, rate limited).",
                self._rejected,
            )
            self._counter(
                lines,
                "relay_serve_upstream_errors_total",
                "Upstream calls that failed, by error kind.",
                self._upstream_errors,
            )
            self._counter(
                lines,
                "relay_serve_cancelled_total",
                "Calls cancelled because the client disconnected.",
                self._cancelled,
            )
            name = "relay_serve_spend_dollars_total"
            lines += [
                f"# HELP {name} Dollars spent on answered requests (Relay's cost).",
                f"# TYPE {name} counter",
            ]
            lines += [
                # Fixed notation to the nano-dollar: readers of the text need no exponent.
                f"{name}{_labels(labels)} {value:.9f}".rstrip("0").rstrip(".")
                for labels, value in sorted(self._spend.items())
            ]
        if backends:
            for name, help_text, field in (
                (
                    "relay_serve_backend_healthy",
                    "1 while a pool backend is in rotation.",
                    "healthy",
                ),
                (
                    "relay_serve_backend_in_flight",
                    "Calls a pool backend is answering.",
                    "in_flight",
                ),
            ):
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
                for provider, states in sorted(backends.items()):
                    for state in states:
                        labels = (("provider", provider), ("backend", state.url))
                        lines.append(f"{name}{_labels(labels)} {int(getattr(state, field))}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _counter(lines: list[str], name: str, help_text: str, values: Counter[Labels]) -> None:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        lines += [f"{name}{_labels(labels)} {count}" for labels, count in sorted(values.items())]

    def _histogram(self, lines: list[str]) -> None:
        name = "relay_serve_request_duration_seconds"
        lines += [
            f"# HELP {name} Time from request to the last byte of the answer.",
            f"# TYPE {name} histogram",
        ]
        for labels, counts in sorted(self._latency_counts.items()):
            total = 0
            for bound, count in zip((*map(_number, BUCKETS), "+Inf"), counts, strict=True):
                total += count
                lines.append(f"{name}_bucket{_labels((*labels, ('le', bound)))} {total}")
            lines.append(f"{name}_sum{_labels(labels)} {_number(self._latency_sums[labels])}")
            lines.append(f"{name}_count{_labels(labels)} {total}")
