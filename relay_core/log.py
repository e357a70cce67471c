"""Structured logging through structlog, on top of the standard ``logging`` module.

Relay logs to the ``relay`` logger and leaves handlers to the application, as a library
should; :func:`configure_logging` adds one (console or JSON) for the CLI and for scripts.
Every event passes :func:`mask_secrets`, which blanks registered secrets and key-shaped
strings anywhere in the event, exception text included. structlog is imported on the
first record actually emitted, so a disabled level costs one ``isEnabledFor`` check.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from relay_core.secrets import mask

__all__ = ["configure_logging", "get_logger", "mask_secrets"]

_ROOT = "relay"


def mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: mask secrets in every value, recursively."""
    for key, value in event.items():
        event[key] = _mask_value(value)
    return event


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask(k) if isinstance(k, str) else k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return mask(repr(value))


_renderer: Any = None


def _render(logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
    global _renderer
    if _renderer is None:
        import structlog

        _renderer = structlog.dev.ConsoleRenderer(colors=False)
    rendered: str = _renderer(logger, method, event)
    return rendered


class Logger:
    """A thin front that checks the level before touching structlog."""

    def __init__(self, name: str) -> None:
        self._std = logging.getLogger(name)
        self._bound: Any = None

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if not self._std.isEnabledFor(level):
            return
        if self._bound is None:
            import structlog

            self._bound = structlog.wrap_logger(
                self._std,
                processors=[
                    structlog.stdlib.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.format_exc_info,
                    mask_secrets,
                    _render,
                ],
                wrapper_class=structlog.stdlib.BoundLogger,
            )
        self._bound.log(level, event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, fields)


def get_logger(name: str = _ROOT) -> Logger:
    """A logger under ``relay`` (``get_logger("relay.hub")``)."""
    return Logger(name if name.startswith(_ROOT) else f"{_ROOT}.{name}")


def configure_logging(
    format: str = "console", level: int | str = logging.INFO, *, stream: Any = None
) -> logging.Handler:
    """Send Relay's log records to ``stream`` (stderr) as ``console`` or ``json`` lines.

    Returns the handler, so a caller can remove it again.
    """
    global _renderer
    import structlog

    if format == "json":
        _renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        _renderer = structlog.dev.ConsoleRenderer(colors=False)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger(_ROOT)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
