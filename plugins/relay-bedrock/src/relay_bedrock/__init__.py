"""relay-bedrock: AWS Bedrock as a Relay provider (Converse, ConverseStream, InvokeModel
in Anthropic's Messages format, batch inference jobs).

This module only registers and checks the catalog; it is imported whenever plugins load,
so it stays light. The adapter (``relay_bedrock._adapter``), httpx with it, and botocore
(only for a signed call) load when first used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from relay_core.plugin import hookimpl

if TYPE_CHECKING:
    from relay_core.plugin import Catalog

__all__: list[str] = []

__version__ = "0.1.0"


@hookimpl
def relay_register_providers(register: Callable[..., None]) -> None:
    register("bedrock", "relay_bedrock._adapter:BedrockProvider")


@hookimpl
def relay_configure(catalog: Catalog) -> None:
    """Check the options of every catalog provider served by this plugin, so a mistake
    is reported at its file and line (by ``relay validate`` too), not at the first call."""
    from relay_bedrock._options import Options

    for name, config in catalog.providers.items():
        if catalog.plugin_of(name) != "bedrock":
            continue

        def fail(message: str, path: Sequence[str | int], name: str = name) -> Exception:
            where = ".".join(str(step) for step in path)
            return catalog.error(
                f"providers.{name}.options.{where}: {message}",
                ("providers", name, "options", *path),
            )

        Options.parse(config.options, fail)
