"""relay-mock: the offline provider every Relay demo and test runs on.

This module only registers; it stays light because it is imported whenever plugins load.
The adapter (``relay_mock._provider``) is imported by the core on the first call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from relay_core.plugin import hookimpl

if TYPE_CHECKING:
    from relay_core.plugin import CostSource, ModelPrice, PricingSource

__all__ = ["PRICES", "MockPriceList"]

__version__ = "0.1.0"

# Fictional prices in USD per million tokens (input, output, cached input), so demos
# show real cost arithmetic. Any other mock model costs what "echo" costs. Batches cost
# half, as at the big providers.
PRICES: dict[str, tuple[float, float, float]] = {
    "echo": (0.50, 1.50, 0.05),
    "think": (3.00, 15.00, 0.30),
    "embed": (0.02, 0.0, 0.0),
}
BATCH_DISCOUNT = 0.5


class MockPriceList:
    """The mock's price list, a ``snapshot``-tier pricing source for provider ``mock``."""

    name: str = "relay-mock price list"
    tier: CostSource = "snapshot"

    def price(self, provider: str, model: str) -> ModelPrice | None:
        """The price of mock model ``model`` from :data:`PRICES` (a model not listed there
        costs what ``echo`` costs), batches at half price; ``None`` for any provider but
        ``mock``."""
        if provider != "mock":
            return None
        from relay_core.plugin import ModelPrice

        input_price, output_price, cached_price = PRICES.get(model, PRICES["echo"])
        return ModelPrice(
            input=input_price,
            output=output_price,
            cached_input=cached_price,
            batch_discount=BATCH_DISCOUNT,
        )


@hookimpl
def relay_register_providers(register: Callable[..., None]) -> None:
    register("mock", "relay_mock._provider:MockProvider")


@hookimpl
def relay_register_pricing_sources(register: Callable[[PricingSource], None]) -> None:
    register(MockPriceList())
