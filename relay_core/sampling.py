"""Sampling settings a model refuses in some mode, dropped before the call (for plugin
authors).

Some models take only part of the sampling settings in some mode: Claude with extended
thinking takes ``temperature`` 1 and ``top_p`` from 0.95 to 1 only, OpenAI's reasoning
models take neither. The provider answers any other value with a 400, so a catalog's
default ``temperature: 0.2`` would make every ``reasoning=`` call to such a model fail.

An adapter declares what its model refuses in the mode a request puts it in, as a
:class:`SamplingLimits`, and builds its payload from :func:`within_limits`'s request: the
settings refused are dropped (the provider's default applies) with a warning naming
provider, model, settings and the reason. Dropped rather than refused, because the
settings usually come from defaults meant for other calls, and the call can still be
answered as asked.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import field, frozen

from relay_core.errors import UnsupportedSetting
from relay_core.log import get_logger
from relay_core.types import GenerationConfig, Request

__all__ = [
    "BEST_EFFORT_SETTINGS",
    "NEUTRAL_VALUES",
    "SamplingLimits",
    "honoured",
    "within_limits",
]

BEST_EFFORT_SETTINGS: frozenset[str] = frozenset({"seed"})
"""Settings a provider that lacks them may leave out instead of refusing the call.

``seed`` asks for reproducible sampling, which no provider promises even when it takes
one; a catalog may set it for a fallback group that mixes providers, and a member
without seeds answers as it always does rather than being skipped."""

NEUTRAL_VALUES: Mapping[str, object] = {
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "logprobs": False,
    "top_logprobs": 0,
}
"""Values that ask for what a provider does anyway (no penalty, no log probabilities):
a provider without the setting honours them by leaving them out. Clients built for the
OpenAI API send them unasked (``presence_penalty: 0``), and relay-serve passes them on."""

# A setting the THINKING capability stands for, checked with the capabilities.
_A_CAPABILITY = frozenset({"reasoning"})
_CONFIG_FIELDS = frozenset(a.name for a in attrs.fields(GenerationConfig))
# Which drops were already reported: a batch of 50,000 requests built from one catalog
# alias would otherwise log the same warning 50,000 times.
_warned: set[tuple[str, str, tuple[str, ...], str]] = set()
_warned_lock = threading.Lock()


@frozen(kw_only=True)
class SamplingLimits:
    """What a model accepts of the sampling settings in one mode.

    ``reason`` says which mode, for the warning (``"extended thinking is on"``).
    ``ranges`` maps a :class:`GenerationConfig` setting (``temperature``, ``top_p``) to
    the closed range of values the model takes, or to ``None`` when it takes none; a
    setting not named is accepted whatever its value. ``kwargs`` names the top-level
    ``provider_kwargs`` keys the model refuses in this mode (Anthropic's ``top_k`` passed
    there rather than as the setting).
    """

    reason: str
    ranges: Mapping[str, tuple[float, float] | None] = field(factory=dict)
    kwargs: frozenset[str] = frozenset()

    def __attrs_post_init__(self) -> None:
        unknown = set(self.ranges) - _CONFIG_FIELDS
        if unknown:
            raise ValueError(f"not GenerationConfig settings: {sorted(unknown)}")

    def refused(self, request: Request) -> dict[str, Any]:
        """The settings of ``request`` this model refuses, with their values."""
        found: dict[str, Any] = {}
        for name, accepted in self.ranges.items():
            value = getattr(request.config, name)
            if value is None:
                continue
            if accepted is None or not accepted[0] <= value <= accepted[1]:
                found[name] = value
        for key in sorted(self.kwargs & set(request.provider_kwargs)):
            found[key] = request.provider_kwargs[key]
        return found


def within_limits(request: Request, limits: SamplingLimits | None, *, provider: str) -> Request:
    """``request`` without the settings ``limits`` refuses (``None``: no limits), which
    are logged once per process for each provider, model and set of settings as a
    ``sampling settings dropped`` warning on the ``relay.sampling`` logger."""
    if limits is None:
        return request
    dropped = limits.refused(request)
    if not dropped:
        return request
    key = (provider, request.model, tuple(dropped), limits.reason)
    with _warned_lock:
        first = key not in _warned
        _warned.add(key)
    if first:
        get_logger("relay.sampling").warning(
            "sampling settings dropped",
            provider=provider,
            model=request.model,
            settings=dropped,
            reason=limits.reason,
        )
    config = attrs.evolve(
        request.config, **{name: None for name in dropped if name in limits.ranges}
    )
    kwargs = {k: v for k, v in request.provider_kwargs.items() if k not in limits.kwargs}
    return attrs.evolve(request, config=config, provider_kwargs=kwargs)


def honoured(request: Request, settings: frozenset[str], *, provider: str) -> Request:
    """``request`` as a provider that honours ``settings`` may receive it: a setting it
    lacks raises :class:`UnsupportedSetting` before anything is sent, except the
    :data:`BEST_EFFORT_SETTINGS` and the :data:`NEUTRAL_VALUES`, which are left out.
    ``reasoning`` is the ``THINKING`` capability's to check, not this function's."""
    config = request.config
    lacking = config.settings() - settings - _A_CAPABILITY
    if not lacking:
        return request
    refused = sorted(
        name
        for name in lacking - BEST_EFFORT_SETTINGS
        if name not in NEUTRAL_VALUES or getattr(config, name) != NEUTRAL_VALUES[name]
    )
    if refused:
        raise UnsupportedSetting(provider, refused[0], model=request.model, takes=settings)
    return attrs.evolve(request, config=attrs.evolve(config, **dict.fromkeys(lacking)))
