"""The catalog's ``plugins.guardrails`` mapping, checked strictly into :class:`Settings`.

Every mistake is a :class:`relay_core.ConfigError` naming the setting, pointed at its
file, line and column when the settings come from a catalog.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from attrs import field, frozen

from relay_core.plugin import ConfigError
from relay_guardrails import _FIELDS
from relay_guardrails._patterns import compile_pattern

if TYPE_CHECKING:
    from relay_core.plugin import Catalog

__all__ = ["DEFAULT_CALLER", "PatternRule", "Settings"]

Side = Literal["input", "output", "both"]
UnknownPrice = Literal["allow", "refuse"]
TokenCounting = Literal["estimate", "exact"]

# The allowed_models key for requests that name no other caller.
DEFAULT_CALLER = "default"

KNOWN = _FIELDS
_PATTERN_KEYS = ("name", "pattern", "applies_to")
_SIDES: tuple[Side, ...] = ("input", "output", "both")
_GLOB = re.compile(r"[*?\[]")

Path_ = tuple[str | int, ...]


@frozen
class PatternRule:
    """One blocked or required pattern, compiled once."""

    name: str
    pattern: re.Pattern[str] = field(repr=lambda p: repr(p.pattern))
    applies_to: Side = "both"

    def covers(self, side: Literal["input", "output"]) -> bool:
        return self.applies_to in (side, "both")


@frozen(kw_only=True)
class Settings:
    """What ``plugins.guardrails`` says, every default filled in. A rule left out is off.

    ``max_input_tokens`` is a tuple of ``(alias, target or glob, limit)`` pairs, the
    first match wins; a single number in the catalog becomes ``(("*", n),)``.
    ``allowed_models`` maps a caller to the aliases and targets (globs) it may use,
    with groups already replaced by their members.
    """

    max_input_tokens: tuple[tuple[str, int], ...] = ()
    blocked_patterns: tuple[PatternRule, ...] = ()
    required_patterns: tuple[PatternRule, ...] = ()
    allowed_models: Mapping[str, tuple[str, ...]] | None = None
    validate_output_schema: bool = False
    max_cost_per_call: float | None = None
    max_cost_per_job: float | None = None
    unknown_price: UnknownPrice = "allow"
    assumed_output_tokens: int = 1024
    max_scan_chars: int = 1_000_000
    token_count: TokenCounting = "estimate"

    @classmethod
    def parse(cls, raw: object, catalog: Catalog | None = None) -> Settings:
        """Check ``raw`` (the ``plugins.guardrails`` mapping) strictly. With ``catalog``,
        errors point at the catalog's lines and names of aliases and groups are checked
        against it; without one (settings built in code) they are taken as written."""
        return _Parser(catalog).settings(raw)


class _Parser:
    def __init__(self, catalog: Catalog | None) -> None:
        self.catalog = catalog

    def fail(self, message: str, *at: str | int, key: str | None = None) -> ConfigError:
        """An error about the setting at path ``at``; ``key`` (an unknown one) is
        pointed at but not repeated in the message, which names it already."""
        where = "plugins.guardrails" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in at
        )
        text = f"{where} {message}"
        if self.catalog is None:
            return ConfigError(text)
        point = (*at, key) if key is not None else at
        return self.catalog.error(text, ("plugins", "guardrails", *point))

    def settings(self, raw: object) -> Settings:
        if not isinstance(raw, Mapping):
            raise self.fail("must be a mapping of rules, e.g. {max_input_tokens: 8000}")
        for key in raw:
            if key not in KNOWN:
                raise self.fail(
                    f"has no setting {key!r}; the settings are {', '.join(KNOWN)}", key=key
                )
        values: dict[str, Any] = {}
        if "max_input_tokens" in raw:
            values["max_input_tokens"] = self.token_limits(raw["max_input_tokens"])
        blocked = self.patterns(raw.get("blocked_patterns", []), "blocked_patterns")
        required = self.patterns(raw.get("required_patterns", []), "required_patterns")
        self.unique_names(blocked, required)
        values["blocked_patterns"], values["required_patterns"] = blocked, required
        if "allowed_models" in raw:
            values["allowed_models"] = self.allowed(raw["allowed_models"])
        if "validate_output_schema" in raw:
            if not isinstance(raw["validate_output_schema"], bool):
                raise self.fail("must be true or false", "validate_output_schema")
            values["validate_output_schema"] = raw["validate_output_schema"]
        for key in ("max_cost_per_call", "max_cost_per_job"):
            if raw.get(key) is not None:
                values[key] = self.dollars(raw[key], key)
        if "unknown_price" in raw:
            if raw["unknown_price"] not in ("allow", "refuse"):
                raise self.fail(
                    f"must be allow or refuse (got {raw['unknown_price']!r})", "unknown_price"
                )
            values["unknown_price"] = raw["unknown_price"]
        if "token_count" in raw:
            if raw["token_count"] not in ("estimate", "exact"):
                raise self.fail(
                    f"must be estimate or exact (got {raw['token_count']!r})", "token_count"
                )
            values["token_count"] = raw["token_count"]
        for key in ("assumed_output_tokens", "max_scan_chars"):
            if key in raw:
                values[key] = self.count(raw[key], key)
        return Settings(**values)

    # -- one kind of value each ---------------------------------------------------------

    def count(self, value: object, *at: str | int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(f"must be a whole number above 0 (got {value!r})", *at)
        return value

    def dollars(self, value: object, key: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise self.fail(f"must be an amount in USD, 0 or more (got {value!r})", key)
        return float(value)

    def name(self, value: object, *at: str | int) -> str:
        """An alias, a group, a ``provider/model`` target or a glob over them."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                f"must be an alias, a provider/model target or a glob (got {value!r})", *at
            )
        catalog = self.catalog
        if (
            catalog is not None
            and "/" not in value
            and not _GLOB.search(value)
            and value not in catalog.models
            and value not in catalog.groups
        ):
            raise self.fail(
                f"names {value!r}, which is no model or group of the catalog "
                "(write provider/model for a target, or a glob such as 'fast-*')",
                *at,
            )
        return value

    def token_limits(self, value: object) -> tuple[tuple[str, int], ...]:
        if isinstance(value, Mapping):
            if not value:
                raise self.fail("must not be empty", "max_input_tokens")
            return tuple(
                (
                    self.name(key, "max_input_tokens", key),
                    self.count(limit, "max_input_tokens", key),
                )
                for key, limit in value.items()
            )
        return (("*", self.count(value, "max_input_tokens")),)

    def patterns(self, value: object, key: str) -> tuple[PatternRule, ...]:
        if not isinstance(value, list):
            raise self.fail("must be a list of {name, pattern, applies_to}", key)
        rules = []
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.fail("must be a mapping {name, pattern, applies_to}", key, index)
            for unknown in item:
                if unknown not in _PATTERN_KEYS:
                    raise self.fail(
                        f"has no setting {unknown!r}; a pattern takes name, pattern, applies_to",
                        key,
                        index,
                        key=unknown,
                    )
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                raise self.fail("needs a name (the rule a violation reports)", key, index)
            text = item.get("pattern")
            if not isinstance(text, str) or not text:
                raise self.fail("needs a pattern (a regular expression)", key, index)
            try:
                compiled = compile_pattern(text)
            except ValueError as error:
                raise self.fail(str(error), key, index, "pattern") from None
            side = item.get("applies_to", "both")
            if side not in _SIDES:
                raise self.fail(
                    f"must be input, output or both (got {side!r})", key, index, "applies_to"
                )
            rules.append(PatternRule(name, compiled, side))
        return tuple(rules)

    def unique_names(self, *lists: tuple[PatternRule, ...]) -> None:
        seen: set[str] = set()
        for key, rules in zip(("blocked_patterns", "required_patterns"), lists, strict=True):
            for index, rule in enumerate(rules):
                if rule.name in seen:
                    raise self.fail(
                        f"repeats the rule name {rule.name!r}: a violation must name one rule",
                        key,
                        index,
                        "name",
                    )
                seen.add(rule.name)

    def allowed(self, value: object) -> dict[str, tuple[str, ...]]:
        if not isinstance(value, Mapping) or not value:
            raise self.fail(
                "must map callers to the aliases they may use, e.g. {team-a: [fast, smart]}",
                "allowed_models",
            )
        allowed = {}
        for caller, names in value.items():
            if not isinstance(caller, str) or not caller:
                raise self.fail(f"has a caller that is not a name: {caller!r}", "allowed_models")
            if not isinstance(names, list):
                raise self.fail(
                    "must be a list of aliases, targets or globs", "allowed_models", caller
                )
            checked = [
                self.name(name, "allowed_models", caller, index) for index, name in enumerate(names)
            ]
            allowed[caller] = self.expand_groups(checked)
        return allowed

    def expand_groups(self, names: list[str]) -> tuple[str, ...]:
        # The hook sees the member a group is calling, never the group: allowing a group
        # allows its members (and theirs, for a group of groups).
        out: list[str] = []
        todo = list(names)
        while todo:
            name = todo.pop(0)
            if name in out:
                continue
            out.append(name)
            group = self.catalog.groups.get(name) if self.catalog is not None else None
            if group is not None:
                todo.extend(group.members)
        return tuple(out)
