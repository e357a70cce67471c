"""The ``plugins.otel`` section of the catalog, checked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import field, frozen

if TYPE_CHECKING:
    from relay_core.plugin import Catalog

NAME = "otel"
_CODE_ONLY = ("tracer_provider", "meter_provider")


@frozen(kw_only=True)
class Settings:
    """What ``plugins.otel`` may say.

    ``include_content`` records prompts and answers (as redacted) on the spans.
    ``tracer_provider`` and ``meter_provider`` are OpenTelemetry providers given in code
    only (``None``: the global ones, ``opentelemetry.trace.get_tracer_provider()``).
    """

    include_content: bool = False
    tracer_provider: Any = field(default=None, repr=False)
    meter_provider: Any = field(default=None, repr=False)

    @classmethod
    def parse(cls, catalog: Catalog) -> Settings:
        """Read and check ``catalog.plugins.otel``; a mistake is a ``ConfigError``
        pointing at its node."""
        raw = catalog.plugins.get(NAME)
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise catalog.error(
                f"plugins.otel must be a mapping, not {type(raw).__name__}", ("plugins", NAME)
            )
        for key in raw:
            if key != "include_content" and key not in _CODE_ONLY:
                raise catalog.error(
                    f"unknown setting {key!r} in plugins.otel (known: include_content)",
                    ("plugins", NAME, key),
                )
        include_content = raw.get("include_content", False)
        if not isinstance(include_content, bool):
            raise catalog.error(
                f"plugins.otel.include_content must be true or false, not {include_content!r}",
                ("plugins", NAME, "include_content"),
            )
        return cls(
            include_content=include_content,
            tracer_provider=_provider(catalog, raw, "tracer_provider", "get_tracer"),
            meter_provider=_provider(catalog, raw, "meter_provider", "get_meter"),
        )


def _provider(catalog: Catalog, raw: dict[str, Any], key: str, method: str) -> Any:
    value = raw.get(key)
    if value is not None and not callable(getattr(value, method, None)):
        raise catalog.error(
            f"plugins.otel.{key} is set in code only, to an OpenTelemetry "
            f"{key.replace('_', ' ')} (with {method}()), not {type(value).__name__}",
            ("plugins", NAME, key),
        )
    return value
