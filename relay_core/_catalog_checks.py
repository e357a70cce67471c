"""What a catalog's types cannot check: names that must refer to something (a group's
members, ``defaults.model``, pricing profiles), groups whose settings contradict their
strategy, cycles of groups, and API keys pasted where a reference belongs.

:func:`check_references` runs on every catalog :mod:`relay_core.config` loads, after its
types were checked, and reports every problem at once, in the order of the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from relay_core.capabilities import TASKS, Capability
from relay_core.errors import ConfigError, UnknownAlias
from relay_core.secrets import has_known_key_shape, looks_like_api_key

if TYPE_CHECKING:
    from relay_core.config import Catalog, GroupConfig, Path_

__all__ = ["check_references"]


def check_references(catalog: Catalog) -> None:
    """Cross-references a type check cannot see: every problem found, in the order of
    the file, the first raised carrying the others (``ConfigError.also``)."""
    found = sorted(_problems(catalog), key=lambda e: (e.line or 0, e.column or 0))
    if found:
        first, *rest = found
        first.also = rest
        raise first


def _problems(catalog: Catalog) -> Iterator[ConfigError]:
    for name, model in catalog.models.items():
        provider, _, model_name = model.target.partition("/")
        if not provider or not model_name:
            yield catalog.error(
                f"model {name!r}: target {model.target!r} must be 'provider/model'",
                ("models", name, "target"),
            )
        if model.pricing_profile and model.pricing_profile not in catalog.pricing_profiles:
            yield catalog.error(
                f"model {name!r}: unknown pricing_profile {model.pricing_profile!r}",
                ("models", name, "pricing_profile"),
            )
    for name in [*catalog.models, *catalog.groups]:
        if "/" in name:
            section = "models" if name in catalog.models else "groups"
            yield catalog.error(
                f"alias {name!r} must not contain '/': that form is for provider/model targets",
                (section, name),
            )
    for name in sorted(set(catalog.models) & set(catalog.groups)):
        yield catalog.error(f"{name!r} is both a model and a group", ("groups", name))
    in_cycles: set[str] = set()
    for name, group in catalog.groups.items():
        if not group.members:
            yield catalog.error(f"group {name!r} has no members", ("groups", name, "members"))
            continue
        unknown = False
        for index, member in enumerate(group.members):
            try:
                catalog.lookup(member)
            except UnknownAlias as error:
                unknown = True
                yield catalog.error(
                    f"group {name!r}: {error.reason}", ("groups", name, "members", index)
                )
        yield from _group_setting_problems(catalog, name, group)
        if unknown or name in in_cycles:
            continue
        cycle = _cycle(catalog, name, ())
        if cycle is not None:  # one error for each cycle, not one for each of its groups
            in_cycles.update(cycle)
            chain = " -> ".join(cycle)
            yield catalog.error(f"groups refer to each other in a cycle: {chain}", ("groups", name))
    profile = catalog.defaults.pricing_profile
    if profile is not None and profile not in catalog.pricing_profiles:
        yield catalog.error(
            f"defaults: unknown pricing_profile {profile!r}", ("defaults", "pricing_profile")
        )
    if catalog.defaults.model is not None:
        try:
            catalog.lookup(catalog.defaults.model)
        except UnknownAlias as error:
            yield catalog.error(error.reason, ("defaults", "model"))
    for name, provider_config in catalog.providers.items():
        for header, value in provider_config.headers.items():
            if looks_like_api_key(value):
                yield catalog.error(
                    f"provider {name!r}: header {header!r} holds what looks like a key; "
                    "put it in api_key as a reference",
                    ("providers", name, "headers", header),
                )
        yield from _inline_keys(catalog, provider_config.options, ("providers", name, "options"))
    for name, model in catalog.models.items():
        yield from _inline_keys(catalog, model.provider_kwargs, ("models", name, "provider_kwargs"))


def _group_setting_problems(
    catalog: Catalog, name: str, group: GroupConfig
) -> Iterator[ConfigError]:
    here = ("groups", name)
    for member, weight in group.weights.items():
        if member not in group.members:
            yield catalog.error(
                f"group {name!r}: weights names {member!r}, which is not a member",
                (*here, "weights", member),
            )
        if not weight > 0:
            yield catalog.error(
                f"group {name!r}: the weight of {member!r} must be above 0, not {weight}",
                (*here, "weights", member),
            )
    if group.weights and group.strategy != "weighted":
        yield catalog.error(
            f"group {name!r}: weights apply to strategy 'weighted', not {group.strategy!r}",
            (*here, "weights"),
        )
    if group.rules and group.strategy != "rules":
        yield catalog.error(
            f"group {name!r}: rules apply to strategy 'rules', not {group.strategy!r}",
            (*here, "rules"),
        )
    if group.task is not None and group.task not in TASKS:
        yield catalog.error(
            f"group {name!r}: unknown task {group.task!r}; expected one of "
            f"{', '.join(sorted(TASKS))}",
            (*here, "task"),
        )
    known = {str(c) for c in Capability}
    for index, rule in enumerate(group.rules):
        at = (*here, "rules", index)
        for position, member in enumerate(rule.use):
            if member not in group.members:
                yield catalog.error(
                    f"group {name!r}: rule {index} uses {member!r}, which is not a member",
                    (*at, "use", position),
                )
        for position, need in enumerate(rule.when.needs):
            if need not in known:
                yield catalog.error(
                    f"group {name!r}: unknown capability {need!r}; expected one of "
                    f"{', '.join(sorted(known))}",
                    (*at, "when", "needs", position),
                )
        low, high = rule.when.min_prompt_tokens, rule.when.max_prompt_tokens
        if low is not None and high is not None and low > high:
            yield catalog.error(
                f"group {name!r}: rule {index} has min_prompt_tokens above max_prompt_tokens",
                (*at, "when"),
            )


def _inline_keys(catalog: Catalog, value: Any, at: Path_) -> Iterator[ConfigError]:
    """Free-form sections are where a pasted key would hide; look through them.

    Only well-known key formats are refused here: options legitimately hold opaque ids
    (an OpenAI organisation or project id looks like a key to the general heuristic).
    """
    if isinstance(value, str):
        if has_known_key_shape(value):
            yield catalog.error(
                "this value looks like an API key; keys belong in a provider's api_key, "
                "as a reference ($env.NAME, keyring:SERVICE/USER or file:PATH)",
                at,
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _inline_keys(catalog, item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _inline_keys(catalog, item, (*at, index))


def _cycle(catalog: Catalog, name: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
    """The chain of groups from ``name`` back to itself through members, if any."""
    if name in seen:
        return (*seen, name)
    group = catalog.groups.get(name)
    if group is not None:
        for member in group.members:
            found = _cycle(catalog, member, (*seen, name))
            if found is not None:
                return found
    return None
