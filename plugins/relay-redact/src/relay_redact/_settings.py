"""The catalog's ``plugins.redact`` section, checked strictly."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, get_args

from attrs import field, frozen

from relay_redact import _FIELDS
from relay_redact._detectors import ENTITIES
from relay_redact._redaction import MaskStyle, Mode

if TYPE_CHECKING:
    from relay_core.plugin import Catalog, Secret

_KEYS = frozenset(_FIELDS)


@frozen(kw_only=True)
class Settings:
    """How to redact: see the README's settings table.

    ``salt`` is the resolved secret for hash mode (``None``: a random one per process);
    ``allow`` holds literal values and ``allow_patterns`` regular expressions (matched
    against a whole found value) that are never redacted.
    """

    enabled: bool = True
    mode: Mode = "placeholder"
    entities: tuple[str, ...] = ENTITIES
    mask_style: MaskStyle = "label"
    salt: Secret | None = field(default=None, repr=False)
    allow: frozenset[str] = frozenset()
    allow_patterns: tuple[re.Pattern[str], ...] = ()
    max_maps: int = 10_000
    map_ttl: float = 3600.0

    def allowed(self, value: str) -> bool:
        """Whether ``value`` is on the allow list."""
        return value in self.allow or any(p.fullmatch(value) for p in self.allow_patterns)

    @classmethod
    def parse(cls, catalog: Catalog) -> Settings:
        """The settings under ``plugins.redact``; defaults when there are none.
        Raises :class:`relay_core.ConfigError` pointing at the offending node."""
        raw = catalog.plugins.get("redact")
        if raw is None:
            return cls()
        here = ("plugins", "redact")
        if not isinstance(raw, dict):
            raise catalog.error("plugins.redact must be a mapping", here)
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise catalog.error(
                f"unknown setting {unknown[0]!r} in plugins.redact "
                f"(known: {', '.join(sorted(_KEYS))})",
                (*here, unknown[0]),
            )
        options: dict[str, Any] = {}
        if "enabled" in raw:
            if not isinstance(raw["enabled"], bool):
                raise catalog.error("enabled must be true or false", (*here, "enabled"))
            options["enabled"] = raw["enabled"]
        for key, choices in (("mode", get_args(Mode)), ("mask_style", get_args(MaskStyle))):
            if key in raw:
                if raw[key] not in choices:
                    raise catalog.error(
                        f"{key} must be one of {', '.join(choices)}, not {raw[key]!r}",
                        (*here, key),
                    )
                options[key] = raw[key]
        if "entities" in raw:
            options["entities"] = _entities(catalog, raw["entities"])
        if "salt" in raw:
            options["salt"] = _salt(catalog, raw["salt"])
        if "allow" in raw:
            options["allow"], options["allow_patterns"] = _allow(catalog, raw["allow"])
        if "max_maps" in raw:
            value = raw["max_maps"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise catalog.error("max_maps must be a whole number ≥ 1", (*here, "max_maps"))
            options["max_maps"] = value
        if "map_ttl" in raw:
            value = raw["map_ttl"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise catalog.error("map_ttl must be a number of seconds > 0", (*here, "map_ttl"))
            options["map_ttl"] = float(value)
        return cls(**options)


def _entities(catalog: Catalog, value: Any) -> tuple[str, ...]:
    at = ("plugins", "redact", "entities")
    if not isinstance(value, list) or not value:
        raise catalog.error("entities must be a non-empty list of entity types", at)
    chosen: list[str] = []
    for index, name in enumerate(value):
        entity = name.upper() if isinstance(name, str) else name
        if entity not in ENTITIES:
            raise catalog.error(
                f"unknown entity {name!r} (known: {', '.join(ENTITIES)})", (*at, index)
            )
        chosen.append(entity)
    return tuple(dict.fromkeys(chosen))


def _salt(catalog: Catalog, value: Any) -> Secret:
    from relay_core.plugin import CredentialRef, PluginRegistry, resolve_credential

    at = ("plugins", "redact", "salt")
    if not isinstance(value, str):
        raise catalog.error("salt must be a credential reference such as $env.REDACT_SALT", at)
    try:
        reference = CredentialRef.parse(value)
    except ValueError as error:
        raise catalog.error(f"salt: {error}", at) from None
    # The built-in schemes (env, file, keyring) need no entry points; another scheme
    # needs the plugin that registers it.
    registry = PluginRegistry(autoload=False)
    if registry.credential_resolver(reference.scheme) is None:
        registry = PluginRegistry()
    return resolve_credential(reference, registry, where=catalog.where(at))


def _allow(catalog: Catalog, value: Any) -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    at = ("plugins", "redact", "allow")
    if not isinstance(value, list):
        raise catalog.error("allow must be a list of values or {pattern: REGEX} entries", at)
    literals: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for index, entry in enumerate(value):
        if isinstance(entry, str):
            literals.add(entry)
        elif isinstance(entry, dict) and set(entry) == {"pattern"}:
            try:
                patterns.append(re.compile(str(entry["pattern"])))
            except re.error as error:
                raise catalog.error(
                    f"allow pattern is not a valid regular expression: {error}",
                    (*at, index, "pattern"),
                ) from None
        else:
            raise catalog.error(
                "an allow entry is a value (a string) or {pattern: REGEX}", (*at, index)
            )
    return frozenset(literals), tuple(patterns)
