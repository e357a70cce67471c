"""What the reliability tests share: the scale knob, the figures they report, catalogs."""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

__all__ = [
    "EXAMPLES",
    "FIGURES",
    "SCALE",
    "Figures",
    "Scale",
    "compat_catalog",
    "serve_catalog",
    "tree",
]


@dataclass(frozen=True)
class Scale:
    """How big each test runs. ``ci`` keeps the suite within about three minutes on two
    cores; ``full`` is for runs by hand (``nox -s reliability -- full``)."""

    name: str
    fault_requests: int  # one engine job through the fault server
    fault_concurrency: int
    stream_calls: int  # streams through the fault server
    batch_kills: int  # SIGKILLs during provider-batch submission
    batch_requests: int
    engine_kills: int  # SIGKILLs during an engine run
    engine_requests: int
    engine_concurrency: int
    examples: int  # hypothesis examples per property
    serve_requests: int  # requests fired at relay-serve at once, per burst
    serve_streams: int  # streams among them
    shared_clients: int  # clients at once across relay-serve processes sharing Redis
    shared_rpm: int  # the one key's requests per minute they share
    ray_requests: int  # one engine job on a local Ray cluster, a worker killed mid-run
    ray_concurrency: int  # calls in flight per Ray worker


SCALES = {
    "ci": Scale("ci", 2000, 32, 200, 5, 60, 5, 400, 16, 250, 400, 40, 200, 100, 2000, 16),
    "full": Scale(
        "full", 20000, 64, 2000, 50, 200, 50, 3000, 32, 2500, 2000, 200, 2000, 1000, 20000, 32
    ),
}


def _scale() -> Scale:
    name = os.environ.get("RELAY_RELIABILITY_SCALE", "ci").strip().lower() or "ci"
    if name not in SCALES:
        raise RuntimeError(f"RELAY_RELIABILITY_SCALE must be one of {sorted(SCALES)}, not {name!r}")
    return SCALES[name]


SCALE = _scale()


class Figures:
    """Counts the tests report, by section; written out at the end of the session."""

    SECTIONS = (
        "faults",
        "streams",
        "kills_batch",
        "kills_engine",
        "hostile",
        "secrets",
        "serve",
        "serve_shared",
        "ray_cluster",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sections: dict[str, dict[str, Any]] = {}
        self.findings: list[dict[str, str]] = []

    def record(self, section: str, **values: Any) -> None:
        with self._lock:
            self.sections.setdefault(section, {}).update(values)

    def add(self, section: str, key: str, n: int = 1) -> None:
        with self._lock:
            values = self.sections.setdefault(section, {})
            values[key] = values.get(key, 0) + n

    def complete(self) -> bool:
        return all(section in self.sections for section in self.SECTIONS)

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Counter):
                return dict(sorted(value.items()))
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple, set, frozenset)):
                items = [plain(v) for v in value]
                return sorted(items) if isinstance(value, (set, frozenset)) else items
            return value

        return {
            "scale": asdict(SCALE),
            "sections": plain(self.sections),
            "known_bugs": list(self.findings),
        }


FIGURES = Figures()

# For every property test: no example database (the suite writes nothing outside
# reliability/ and its tmp dirs), the same inputs on every CI run, fresh ones in full runs.
EXAMPLES = settings(
    max_examples=SCALE.examples,
    deadline=None,
    database=None,
    derandomize=SCALE.name == "ci",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


def compat_catalog(
    base_url: str,
    *,
    timeout: float = 1.0,
    max_retries: int = 2,
    api_key: str | None = None,
    extra: str = "",
) -> str:
    """A catalog with one OpenAI-compatible provider, ``local``, and the alias ``echo``."""
    text = (
        "providers:\n"
        "  local:\n"
        "    plugin: openai-compat\n"
        f"    base_url: {base_url}\n"
        f"    timeout: {timeout}\n"
        f"    max_retries: {max_retries}\n"
    )
    if api_key:
        text += f"    api_key: {api_key}\n"
    return text + "models:\n  echo: local/echo-model\n" + extra


def serve_catalog(*, latency: float, max_concurrency: int, max_queue: int) -> str:
    """A catalog for relay-serve over relay-mock: the alias ``slow`` echoes the prompt
    after ``latency`` seconds, and ``plugins.serve`` bounds the server's load."""
    return (
        "providers:\n"
        "  mock:\n"
        "    max_retries: 0\n"
        "    options:\n"
        f"      faults: {{slow: {{kind: latency, seconds: {latency}}}}}\n"
        "models:\n"
        "  slow: mock/slow\n"
        "plugins:\n"
        "  serve:\n"
        f"    max_concurrency: {max_concurrency}\n"
        f"    max_queue: {max_queue}\n"
    )


def tree(root: Path, *, exclude: Path | None = None) -> set[str]:
    """Every path under ``root`` (relative), leaving out ``exclude`` and what it holds."""
    found = set()
    for path in root.rglob("*"):
        if exclude is not None and (path == exclude or exclude in path.parents):
            continue
        found.add(str(path.relative_to(root)))
    return found
