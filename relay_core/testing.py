"""Helpers for testing Relay plugins and applications (no pytest dependency).

::

    from relay_core.testing import hub_for, recorded_waits

    def test_my_adapter_retries():
        with hub_for("models:\\n  fast: acme/x\\n", my_plugin) as hub, recorded_waits() as waits:
            hub.chat("fast", "hi")
        assert waits == [2.0]          # the Retry-After the fake server sent
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from relay_core.config import parse_catalog
from relay_core.hub import Hub

__all__ = ["hub_for", "recorded_waits"]


def hub_for(
    catalog_text: str = "", *plugins: object, path: str = "relay.yaml", **kwargs: Any
) -> Hub:
    """A hub over catalog text that loads no entry points, with exactly ``plugins``
    registered in code, so a test sees only what it names. ``path`` appears in errors;
    ``kwargs`` go to :class:`Hub` (``transport=httpx.MockTransport(...)``)."""
    hub = Hub(parse_catalog(catalog_text, path=path), autoload=False, **kwargs)
    for plugin in plugins:
        hub.plugins.register(plugin, name=getattr(plugin, "__name__", None))
    return hub


@contextmanager
def recorded_waits() -> Iterator[list[float]]:
    """Within the block, retry backoff waits are recorded in the yielded list instead of
    slept through: retries stay fast and their waits can be asserted."""
    from relay_core import http

    recorded: list[float] = []
    original = http._sleep

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    http._sleep = record
    try:
        yield recorded
    finally:
        http._sleep = original
