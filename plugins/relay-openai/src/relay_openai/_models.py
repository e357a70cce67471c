"""OpenAI's model families: what each accepts, read from the model's name.

The one place relay-openai reads a model's name for what it accepts (the system
prompt's role, the sampling settings); :mod:`relay_openai.chat` re-exports the table
for the plugins built on this one.
"""

from __future__ import annotations

from typing import Literal

import attrs

from relay_core.plugin import SamplingLimits

__all__ = [
    "MODEL_FAMILIES",
    "REASONING_LIMITS",
    "ModelFamily",
    "is_reasoning_model",
    "model_family",
    "sampling_limits",
]


@attrs.frozen
class ModelFamily:
    """What Relay must know of one family of OpenAI models to build its requests.

    ``developer``: the system prompt goes as a ``developer`` message in Chat Completions.
    ``fixed_sampling``: when the family takes only the default ``temperature`` and
    ``top_p``: ``"always"`` (it reasons on every call), ``"reasoning"`` (only when a
    reasoning effort is sent), or ``None``.
    """

    developer: bool
    fixed_sampling: Literal["always", "reasoning"] | None


# OpenAI's model families by name prefix (a fine-tune's ``ft:`` removed), the longest
# matching prefix deciding; a model matching none is none of these. The o-series and
# gpt-5 reason on every call and answer any temperature or top_p with a 400; gpt-5.1
# and later default to no reasoning and take them then, but not with a reasoning
# effort; gpt-5-chat is not a reasoning model.
MODEL_FAMILIES: dict[str, ModelFamily] = {
    "o1": ModelFamily(developer=True, fixed_sampling="always"),
    "o3": ModelFamily(developer=True, fixed_sampling="always"),
    "o4": ModelFamily(developer=True, fixed_sampling="always"),
    "gpt-5": ModelFamily(developer=True, fixed_sampling="always"),
    "gpt-5.": ModelFamily(developer=True, fixed_sampling="reasoning"),
    "gpt-5-chat": ModelFamily(developer=True, fixed_sampling=None),
}
# What a reasoning model takes of the sampling settings: neither, whatever the value.
REASONING_LIMITS = SamplingLimits(
    reason="the model is a reasoning model, which takes only the default temperature and top_p",
    ranges={"temperature": None, "top_p": None},
)


def model_family(model: str) -> ModelFamily | None:
    """The entry of :data:`MODEL_FAMILIES` for ``model`` (fine-tunes included)."""
    name = model.removeprefix("ft:")
    prefixes = [prefix for prefix in MODEL_FAMILIES if name.startswith(prefix)]
    return MODEL_FAMILIES[max(prefixes, key=len)] if prefixes else None


def is_reasoning_model(model: str) -> bool:
    """True for the o-series and gpt-5 families (fine-tunes included): the models that
    take the system prompt as a ``developer`` message."""
    family = model_family(model)
    return family is not None and family.developer


def sampling_limits(model: str, *, thinks: bool) -> SamplingLimits | None:
    """The sampling settings ``model`` refuses (``thinks``: the request sends a
    reasoning effort), from :data:`MODEL_FAMILIES`."""
    family = model_family(model)
    fixed = family.fixed_sampling if family else None
    if fixed == "always" or (fixed == "reasoning" and thinks):
        return REASONING_LIMITS
    return None
