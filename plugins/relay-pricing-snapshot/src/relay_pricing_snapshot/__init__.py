"""relay-pricing-snapshot: where Relay's prices come from when the catalog sets none.

Two pricing sources, registered through ``relay_register_pricing_sources``:

- :class:`~relay_pricing_snapshot._snapshot.SnapshotSource` (tier ``snapshot``): the
  providers' list prices, shipped in the package (``prices.json``), each row with the
  URL it was read from and the date it was checked.
- :class:`~relay_pricing_snapshot._openrouter.OpenRouterSource` (tier ``live_api``):
  OpenRouter's public models API, fetched only by ``relay pricing refresh`` and kept in
  an on-disk cache that ``price()`` reads.

This module only registers; it stays light because it is imported whenever plugins
load. Neither source reads a file before its first ``price()``, and httpx is imported
only by ``refresh()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from relay_core.plugin import hookimpl

if TYPE_CHECKING:
    from relay_core.plugin import PricingSource

__all__: list[str] = []

__version__ = "0.1.0"


@hookimpl
def relay_register_pricing_sources(register: Callable[[PricingSource], None]) -> None:
    from relay_pricing_snapshot._openrouter import OpenRouterSource
    from relay_pricing_snapshot._snapshot import SnapshotSource

    register(SnapshotSource())
    register(OpenRouterSource())
